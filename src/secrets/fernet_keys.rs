//! Fernet key ring compatible with Frappe's `frappe.utils.password.encrypt`/`decrypt` (Python `cryptography.fernet`).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use fernet::Fernet;
use secrecy::SecretString;

use super::SecretsError;

/// Clock skew the `fernet` crate tolerates for token timestamps (seconds), mirrored for error reporting.
const MAX_CLOCK_SKEW_SECS: u64 = 60;

/// The site's Fernet `encryption_key` plus optional fallback keys, for encrypting and decrypting `__Auth` values.
///
/// Encryption always uses the primary key; decryption tries the primary key, then each fallback in order
/// (key rotation). `Debug` never shows key material.
#[derive(Clone)]
pub struct KeyRing {
    /// Primary first, then fallbacks in the order given.
    keys: Vec<Fernet>,
}

/// Normalises a key as Python's `base64.urlsafe_b64decode` would read it: surrounding whitespace is
/// ignored and the standard alphabet's `+`/`/` are accepted as well as `-`/`_`.
fn parse_key(key: &str, which: impl FnOnce() -> String) -> Result<Fernet, SecretsError> {
    let normalised: String = key
        .trim()
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            other => other,
        })
        .collect();
    Fernet::new(&normalised).ok_or_else(|| SecretsError::InvalidKey { which: which() })
}

impl KeyRing {
    /// Builds a ring from Frappe's `encryption_key` (url-safe base64 of 32 bytes, as in `site_config.json`).
    pub fn new(primary: &str) -> Result<KeyRing, SecretsError> {
        Self::with_fallbacks(primary, &[])
    }

    /// Builds a ring whose `primary` key encrypts and whose `fallbacks` (old keys) are also tried when decrypting.
    pub fn with_fallbacks(primary: &str, fallbacks: &[String]) -> Result<KeyRing, SecretsError> {
        let mut keys = Vec::with_capacity(1 + fallbacks.len());
        keys.push(parse_key(primary, || "primary".to_owned())?);
        for (i, key) in fallbacks.iter().enumerate() {
            keys.push(parse_key(key, || format!("fallback #{}", i + 1))?);
        }
        Ok(KeyRing { keys })
    }

    /// Number of fallback keys (not counting the primary key).
    pub fn fallback_count(&self) -> usize {
        self.keys.len() - 1
    }

    /// Encrypts `cleartext` with the primary key, returning the Fernet token exactly as Python's
    /// `Fernet(key).encrypt(value.encode()).decode()` produces it (url-safe base64 with padding).
    pub fn encrypt(&self, cleartext: &str) -> String {
        self.keys[0].encrypt(cleartext.as_bytes())
    }

    /// Decrypts a Fernet token with the primary key, then each fallback; no TTL is applied (like Frappe).
    ///
    /// Surrounding whitespace is ignored. Note: unlike Python (which skips all timestamp checks when no TTL
    /// is given), the `fernet` crate rejects tokens stamped more than 60 s in the future; that case is
    /// reported as [`SecretsError::TokenFromFuture`].
    pub fn decrypt(&self, token: &str) -> Result<SecretString, SecretsError> {
        let token = token.trim();
        let plain = self
            .keys
            .iter()
            .find_map(|key| key.decrypt(token).ok())
            .ok_or_else(|| {
                if token_is_from_future(token) {
                    SecretsError::TokenFromFuture
                } else {
                    SecretsError::DecryptionFailed
                }
            })?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| SecretsError::InvalidUtf8)
    }

    /// Returns `true` if `token` decrypts with the primary key (so it need not be re-encrypted after rotation).
    pub fn is_current(&self, token: &str) -> bool {
        self.keys[0].decrypt(token.trim()).is_ok()
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("primary", &"<redacted>")
            .field("fallbacks", &self.fallback_count())
            .finish()
    }
}

/// Whether the token parses as Fernet and carries a timestamp beyond the crate's allowed clock skew.
fn token_is_from_future(token: &str) -> bool {
    let Ok(data) =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token.trim_end_matches('='))
    else {
        return false;
    };
    let Some(ts_bytes) = data.get(1..9) else {
        return false;
    };
    let mut ts = [0u8; 8];
    ts.copy_from_slice(ts_bytes);
    let timestamp = u64::from_be_bytes(ts);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    data.first() == Some(&0x80) && now.saturating_add(MAX_CLOCK_SKEW_SECS) < timestamp
}

/// Generates a new random key in Frappe's format (`Fernet.generate_key().decode()`: url-safe base64 of 32 bytes).
pub fn generate_key() -> String {
    Fernet::generate_key()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::process::Command;

    const REF_DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/frappe-reference"
    );

    fn reference_key() -> String {
        std::fs::read_to_string(format!("{REF_DIR}/encryption_key.txt"))
            .expect("read encryption_key.txt")
            .trim()
            .to_owned()
    }

    fn reference_rows() -> serde_json::Value {
        let text = std::fs::read_to_string(format!("{REF_DIR}/auth_rows.json"))
            .expect("read auth_rows.json");
        serde_json::from_str(&text).expect("parse auth_rows.json")
    }

    /// Runs `python3 -c script args...`, failing the test (not skipping) if `cryptography` is missing.
    fn python(script: &str, args: &[&str]) -> String {
        let probe = Command::new("python3")
            .args(["-c", "import cryptography"])
            .output()
            .expect("python3 must be installed for interop tests");
        assert!(
            probe.status.success(),
            "Python package `cryptography` is not importable: run `pip install cryptography` ({})",
            String::from_utf8_lossy(&probe.stderr)
        );
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "python3 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .expect("utf-8 stdout")
            .trim()
            .to_owned()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn decrypts_every_reference_row() {
        let doc = reference_rows();
        let key = reference_key();
        assert_eq!(doc["encryption_key"].as_str(), Some(key.as_str()));
        let ring = KeyRing::new(&key).expect("reference key is valid");
        let rows = doc["auth_rows"].as_array().expect("auth_rows array");
        let mut n = 0;
        for row in rows.iter().filter(|r| r["encrypted"] == 1) {
            let stored = row["stored"].as_str().expect("stored");
            let clear = row["cleartext"].as_str().expect("cleartext");
            let got = ring.decrypt(stored).expect("decrypt reference row");
            assert_eq!(got.expose_secret(), clear, "row {}", row["name"]);
            assert!(ring.is_current(stored));
            n += 1;
        }
        assert_eq!(n, 11, "expected 11 encrypted rows");
    }

    #[test]
    fn round_trip_and_token_format() {
        let ring = KeyRing::new(&generate_key()).expect("generated key is valid");
        for clear in ["", "s3cr3t-value", "päss🔑 with spaces", &"x".repeat(1000)] {
            let token = ring.encrypt(clear);
            assert!(token.starts_with("gAAAAA"));
            assert!(token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=')));
            assert_eq!(token.len() % 4, 0, "padded like Python");
            assert_eq!(
                ring.decrypt(&token).expect("decrypt").expose_secret(),
                clear
            );
            assert_eq!(
                ring.decrypt(&format!(" {token}\n"))
                    .expect("trimmed")
                    .expose_secret(),
                clear
            );
        }
        assert_ne!(ring.encrypt("same"), ring.encrypt("same"), "random IV");
    }

    #[test]
    fn generated_keys_have_frappe_format() {
        let key = generate_key();
        assert_eq!(key.len(), 44);
        assert!(key.ends_with('='));
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(&key)
            .expect("url-safe base64");
        assert_eq!(raw.len(), 32);
        assert_ne!(generate_key(), key);
    }

    #[test]
    fn invalid_keys_are_rejected_without_leaking() {
        for bad in [
            "",
            "short",
            "KwEPMj8Mfe5_NGIraR-a6boL0VNZBSJ2F1kBHmq2zJ",
            "!!!!",
        ] {
            let err = KeyRing::new(bad).expect_err("invalid key");
            assert!(matches!(err, SecretsError::InvalidKey { .. }));
            if !bad.is_empty() {
                assert!(!err.to_string().contains(bad));
                assert!(!format!("{err:?}").contains(bad));
            }
        }
        let good = generate_key();
        let err = KeyRing::with_fallbacks(&good, &[generate_key(), "nope".into()])
            .expect_err("bad fallback");
        assert_eq!(
            err,
            SecretsError::InvalidKey {
                which: "fallback #2".into()
            }
        );
        // Standard-alphabet spelling and surrounding whitespace are accepted, like urlsafe_b64decode.
        let std_spelling = reference_key().replace('-', "+").replace('_', "/");
        let ring = KeyRing::new(&format!("{std_spelling}\n")).expect("std alphabet key");
        let doc = reference_rows();
        let stored = doc["auth_rows"][0]["stored"].as_str().expect("stored");
        assert_eq!(
            ring.decrypt(stored).expect("decrypt").expose_secret(),
            doc["auth_rows"][0]["cleartext"]
                .as_str()
                .expect("cleartext")
        );
    }

    #[test]
    fn debug_and_errors_never_reveal_secrets() {
        let key = reference_key();
        let old = generate_key();
        let ring = KeyRing::with_fallbacks(&key, std::slice::from_ref(&old)).expect("ring");
        let dbg = format!("{ring:?}");
        assert_eq!(dbg, r#"KeyRing { primary: "<redacted>", fallbacks: 1 }"#);
        assert!(!dbg.contains(&key) && !dbg.contains(&old));

        let token = ring.encrypt("top-secret-value");
        let other = KeyRing::new(&generate_key()).expect("ring");
        let err = other.decrypt(&token).expect_err("wrong key");
        assert_eq!(err, SecretsError::DecryptionFailed);
        for text in [err.to_string(), format!("{err:?}")] {
            assert!(!text.contains("top-secret-value") && !text.contains(&token));
        }
        let secret = ring.decrypt(&token).expect("decrypt");
        assert!(!format!("{secret:?}").contains("top-secret-value"));
    }

    #[test]
    fn malformed_tokens_fail_cleanly() {
        let ring = KeyRing::new(&reference_key()).expect("ring");
        let good = ring.encrypt("value");
        let mut tampered = good.clone().into_bytes();
        tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        for bad in [
            "",
            "gAAAAA",
            "not base64 !!",
            "****",
            &good[..good.len() - 8],
            &tampered,
        ] {
            assert_eq!(
                ring.decrypt(bad).expect_err(bad),
                SecretsError::DecryptionFailed
            );
        }
    }

    #[test]
    fn key_rotation() {
        let key_a = generate_key();
        let key_b = generate_key();
        let ring_a = KeyRing::new(&key_a).expect("A");
        let ring_b = KeyRing::new(&key_b).expect("B");
        let token_a = ring_a.encrypt("rotate-me");

        let rotated = KeyRing::with_fallbacks(&key_b, std::slice::from_ref(&key_a)).expect("B+A");
        assert_eq!(rotated.fallback_count(), 1);
        assert_eq!(
            rotated.decrypt(&token_a).expect("fallback").expose_secret(),
            "rotate-me"
        );
        assert!(!rotated.is_current(&token_a));

        let token_b = rotated.encrypt("fresh");
        assert!(rotated.is_current(&token_b));
        assert_eq!(
            ring_b.decrypt(&token_b).expect("B").expose_secret(),
            "fresh"
        );
        assert_eq!(
            ring_a.decrypt(&token_b).expect_err("A"),
            SecretsError::DecryptionFailed
        );
        let cloned = rotated.clone();
        assert_eq!(
            cloned.decrypt(&token_a).expect("clone").expose_secret(),
            "rotate-me"
        );
    }

    #[test]
    fn python_decrypts_rust_tokens_and_accepts_rust_keys() {
        let key = reference_key();
        let ring = KeyRing::new(&key).expect("ring");
        let script = "import sys\nfrom cryptography.fernet import Fernet\n\
                      print(Fernet(sys.argv[1].encode()).decrypt(sys.argv[2].encode()).hex())";
        for clear in ["s3cr3t-value", "", "päss🔑 ünïcode", "a=b&c=d/+"] {
            let token = ring.encrypt(clear);
            assert_eq!(
                python(script, &[&key, &token]),
                hex(clear.as_bytes()),
                "{clear:?}"
            );
        }
        // A key from generate_key() works in Python, and Python tokens decrypt in Rust.
        let new_key = generate_key();
        let py_token = python(
            "import sys\nfrom cryptography.fernet import Fernet\n\
             print(Fernet(sys.argv[1].encode()).encrypt('from-python ✓'.encode()).decode())",
            &[&new_key],
        );
        let ring = KeyRing::new(&new_key).expect("ring");
        assert_eq!(
            ring.decrypt(&py_token).expect("decrypt").expose_secret(),
            "from-python ✓"
        );
    }

    #[test]
    fn future_dated_tokens_report_clock_skew() {
        let key = reference_key();
        let token = python(
            "import sys, time\nfrom cryptography.fernet import Fernet\n\
             print(Fernet(sys.argv[1].encode()).encrypt_at_time(b'later', int(time.time()) + 3600).decode())",
            &[&key],
        );
        let ring = KeyRing::new(&key).expect("ring");
        assert_eq!(
            ring.decrypt(&token).expect_err("future"),
            SecretsError::TokenFromFuture
        );
    }

    #[test]
    fn python_generated_key_is_accepted() {
        let py_key = python(
            "from cryptography.fernet import Fernet\nprint(Fernet.generate_key().decode())",
            &[],
        );
        let ring = KeyRing::new(&py_key).expect("python key");
        let token = ring.encrypt("x");
        let script = "import sys\nfrom cryptography.fernet import Fernet\n\
                      print(Fernet(sys.argv[1].encode()).decrypt(sys.argv[2].encode()).decode())";
        assert_eq!(python(script, &[&py_key, &token]), "x");
    }
}
