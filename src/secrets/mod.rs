//! Frappe-compatible secret handling: Fernet encryption of `__Auth` values, passlib password hashes, masking and random tokens.
//!
//! * [`KeyRing`] encrypts and decrypts values exactly like Frappe's `frappe.utils.password.encrypt`/`decrypt`
//!   (Python `cryptography.fernet.Fernet` with the site's `encryption_key`), with optional fallback keys for rotation.
//! * [`password`] reads and writes passlib `pbkdf2_sha256` hashes, as Frappe stores login passwords in `__Auth`.
//! * [`mask`] / [`is_mask`] reproduce the `*` placeholders Frappe puts in Password columns and API responses.
//! * [`random_token`] / [`random_hex`] produce CSPRNG-backed identifiers.
//! * [`Keys`] are the running service's keys, and the [`Vault`] the one owner of Password fields (`__Auth`).

mod fernet_keys;
mod keys;
pub mod password;
pub mod vault;

pub use fernet_keys::{generate_key, KeyRing};
pub use keys::Keys;
pub use vault::Vault;

use rand::distributions::{Alphanumeric, DistString};
use rand::rngs::OsRng;
use rand::RngCore;

/// Errors from secret handling. Their `Display`/`Debug` never contain cleartext, tokens or key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// A configured key is not 32 bytes of url-safe base64 (Frappe: "Encryption key is in invalid format!").
    #[error("{which} encryption key is invalid: it must be 32 url-safe base64-encoded bytes")]
    InvalidKey {
        /// Which key was rejected: `"primary"` or `"fallback #<n>"` (1-based); never the key itself.
        which: String,
    },
    /// The token is malformed, was tampered with, or was encrypted with a key not in the ring.
    #[error("could not decrypt value: invalid token or wrong encryption key")]
    DecryptionFailed,
    /// The token is stamped more than 60 s in the future (clock skew with the writer); the `fernet` crate rejects it.
    #[error("could not decrypt value: token timestamp is in the future (clock skew?)")]
    TokenFromFuture,
    /// The token decrypted, but the cleartext is not valid UTF-8.
    #[error("decrypted value is not valid UTF-8")]
    InvalidUtf8,
    /// The service's keys cannot be read (a thread panicked while replacing them).
    #[error("the encryption keys are unavailable")]
    KeysUnavailable,
}

/// Returns the mask Frappe shows instead of a Password field's value: `"*"` repeated `secret_len_chars` times.
///
/// Frappe uses `"*" * len(value)`, i.e. the number of characters (Unicode code points), not bytes;
/// see [`mask_secret`] to compute it from the cleartext.
pub fn mask(secret_len_chars: usize) -> String {
    "*".repeat(secret_len_chars)
}

/// Returns the mask for `cleartext`: one `*` per character (code point), like Frappe's `"*" * len(value)`.
pub fn mask_secret(cleartext: &str) -> String {
    mask(cleartext.chars().count())
}

/// Returns `true` if `s` is a Frappe password mask: non-empty and made only of `*`.
///
/// Frappe treats such a value, when sent back by a client, as "unchanged" rather than as a new secret.
pub fn is_mask(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b == b'*')
}

/// Returns `len` random characters from `[A-Za-z0-9]`, drawn from the OS CSPRNG (e.g. a 30-char OAuth `state`).
pub fn random_token(len: usize) -> String {
    Alphanumeric.sample_string(&mut OsRng, len)
}

/// Returns `len` random lowercase hex characters (`[0-9a-f]`) from the OS CSPRNG, like Frappe's
/// `frappe.generate_hash(length=len)` (API keys/secrets are 15 chars, session ids 56 chars in Frappe).
pub fn random_hex(len: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = vec![0u8; len.div_ceil(2)];
    OsRng.fill_bytes(&mut bytes);
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in &bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_matches_frappe() {
        assert_eq!(mask(12), "************");
        assert_eq!(mask(0), "");
        assert_eq!(mask_secret("s3cr3t-value"), "************");
        assert_eq!(mask_secret("päss"), "****");
    }

    #[test]
    fn is_mask_rules() {
        assert!(is_mask("*"));
        assert!(is_mask("***************"));
        assert!(!is_mask(""));
        assert!(!is_mask("**a*"));
        assert!(!is_mask(" ***"));
    }

    #[test]
    fn mask_matches_reference_table_columns() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/frappe-reference/auth_rows.json"
        );
        let text = std::fs::read_to_string(path).expect("read auth_rows.json");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("parse auth_rows.json");
        let rows = doc["auth_rows"].as_array().expect("auth_rows array");
        let cols = doc["table_column_values"]
            .as_object()
            .expect("table_column_values");
        let mut checked = 0;
        for row in rows.iter().filter(|r| r["encrypted"] == 1) {
            let key = format!(
                "{}.{}",
                row["doctype"].as_str().expect("doctype"),
                row["fieldname"].as_str().expect("fieldname")
            );
            let Some(values) = cols.get(&key).and_then(|v| v.as_array()) else {
                continue;
            };
            let Some(entry) = values.iter().find(|v| v["name"] == row["name"]) else {
                continue;
            };
            let column = entry[row["fieldname"].as_str().expect("fieldname")]
                .as_str()
                .expect("column value");
            let clear = row["cleartext"].as_str().expect("cleartext");
            assert_eq!(column, mask_secret(clear), "{key} {}", row["name"]);
            assert!(is_mask(column));
            checked += 1;
        }
        assert!(checked >= 9, "only {checked} masked columns checked");
    }

    #[test]
    fn random_token_charset_and_length() {
        for len in [0, 1, 30, 100] {
            let t = random_token(len);
            assert_eq!(t.len(), len);
            assert!(t.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        assert_ne!(random_token(30), random_token(30));
    }

    #[test]
    fn random_hex_charset_and_length() {
        for len in [0, 1, 15, 16, 56] {
            let h = random_hex(len);
            assert_eq!(h.len(), len);
            assert!(h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        }
        assert_ne!(random_hex(15), random_hex(15));
    }

    #[test]
    fn errors_do_not_leak() {
        let e = SecretsError::InvalidKey {
            which: "fallback #2".into(),
        };
        assert_eq!(
            e.to_string(),
            "fallback #2 encryption key is invalid: it must be 32 url-safe base64-encoded bytes"
        );
    }
}
