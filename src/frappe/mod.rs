//! Frappe's wire protocol: DocType metadata, list queries, request arguments, names,
//! timestamps and the response envelopes.

pub mod args;
pub mod list_query;
pub mod meta;
pub mod time;

use rand::Rng;

/// A random document name as Frappe v15 makes them: 10 characters from `[0-9a-v]`.
pub fn random_name() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuv";
    let mut rng = rand::thread_rng();
    (0..10)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}
