//! passlib `pbkdf2_sha256` hashes (`$pbkdf2-sha256$<rounds>$<salt>$<checksum>`), as Frappe stores login passwords in `__Auth`.
//!
//! Salt and checksum use passlib's "ab64" encoding: standard base64 with `+` replaced by `.` and no padding.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Rounds used by [`hash_password`]: passlib's `pbkdf2_sha256` default (the value Frappe's hashes carry).
pub const DEFAULT_ROUNDS: u32 = 29_000;
/// Salt size in bytes used by [`hash_password`] (passlib's default).
pub const SALT_LEN: usize = 16;
/// Length in bytes of a PBKDF2-HMAC-SHA256 checksum.
const CHECKSUM_LEN: usize = 32;
/// passlib's upper bound for `pbkdf2_sha256` salts, in bytes.
const MAX_SALT_LEN: usize = 1024;
/// The modular-crypt prefix identifying this scheme.
const PREFIX: &str = "$pbkdf2-sha256$";

/// Standard base64 alphabet, unpadded, tolerant of non-zero trailing bits (like Python's `binascii`).
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Encodes bytes in passlib's "ab64" (base64, `+` → `.`, no padding).
fn ab64_encode(data: &[u8]) -> String {
    B64.encode(data).replace('+', ".")
}

/// Decodes passlib "ab64"; `None` on any character outside `[A-Za-z0-9./]` or an impossible length.
fn ab64_decode(s: &str) -> Option<Vec<u8>> {
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/')
    {
        return None;
    }
    B64.decode(s.replace('.', "+")).ok()
}

/// Parses passlib's rounds field: decimal digits, no zero-padding, 1..=u32::MAX.
fn parse_rounds(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.starts_with('0') {
        return None;
    }
    s.parse::<u32>().ok()
}

/// Computes PBKDF2-HMAC-SHA256 of `pw` with `salt` and `rounds`.
fn derive(pw: &str, salt: &[u8], rounds: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [0u8; CHECKSUM_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(pw.as_bytes(), salt, rounds, &mut out);
    out
}

/// Hashes `pw` as passlib's `pbkdf2_sha256.hash(pw)` does: 29000 rounds, 16-byte random salt, e.g.
/// `$pbkdf2-sha256$29000$V.p9LyVkzLlX6r23Nqa0Vg$Ssjwv3Hd.XAE1kUn/D4Na6T4yKPucJ1YqhB8isFH1TI`.
pub fn hash_password(pw: &str) -> String {
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    let checksum = derive(pw, &salt, DEFAULT_ROUNDS);
    format!(
        "{PREFIX}{DEFAULT_ROUNDS}${}${}",
        ab64_encode(&salt),
        ab64_encode(&checksum)
    )
}

/// Checks `pw` against a stored passlib `pbkdf2_sha256` hash, comparing checksums in constant time.
///
/// Returns `false` (never panics) for a wrong password or any malformed or other-scheme hash
/// (e.g. argon2, which Frappe's passlib context also accepts but this crate does not implement).
pub fn verify_password(pw: &str, stored: &str) -> bool {
    let Some(rest) = stored.strip_prefix(PREFIX) else {
        return false;
    };
    let mut parts = rest.split('$');
    let (Some(rounds), Some(salt), Some(checksum), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Some(rounds) = parse_rounds(rounds) else {
        return false;
    };
    let Some(salt) = ab64_decode(salt).filter(|s| s.len() <= MAX_SALT_LEN) else {
        return false;
    };
    let Some(expected) = ab64_decode(checksum).filter(|c| c.len() == CHECKSUM_LEN) else {
        return false;
    };
    derive(pw, &salt, rounds).ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const REF_DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/frappe-reference"
    );

    /// user1@example.com's `password` row from the reference `auth_rows.json` (encrypted=0).
    fn user1_hash() -> String {
        let text = std::fs::read_to_string(format!("{REF_DIR}/auth_rows.json"))
            .expect("read auth_rows.json");
        let doc: serde_json::Value = serde_json::from_str(&text).expect("parse auth_rows.json");
        let row = doc["auth_rows"]
            .as_array()
            .expect("auth_rows array")
            .iter()
            .find(|r| r["name"] == "user1@example.com" && r["fieldname"] == "password")
            .expect("user1 password row");
        assert_eq!(row["encrypted"], 0);
        row["stored"].as_str().expect("stored").to_owned()
    }

    fn python(script: &str, args: &[&str]) -> String {
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .output()
            .expect("python3 must be installed for interop tests");
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

    #[test]
    fn verifies_frappe_user1_hash() {
        let stored = user1_hash();
        assert_eq!(
            stored,
            "$pbkdf2-sha256$29000$V.p9LyVkzLlX6r23Nqa0Vg$Ssjwv3Hd.XAE1kUn/D4Na6T4yKPucJ1YqhB8isFH1TI"
        );
        assert!(verify_password("user1pass", &stored));
        assert!(!verify_password("user1pasS", &stored));
        assert!(!verify_password("user2pass", &stored));
        assert!(!verify_password("", &stored));
    }

    #[test]
    fn verifies_other_dump_hashes() {
        let dump = std::fs::read_to_string(format!("{REF_DIR}/dump.sql")).expect("read dump.sql");
        for (user, pw) in [
            ("user2@example.com", "user2pass"),
            ("Administrator", "admin"),
        ] {
            let needle = format!("'User','{user}','password','");
            let start = dump.find(&needle).expect("password row") + needle.len();
            let end = start + dump[start..].find('\'').expect("closing quote");
            assert!(verify_password(pw, &dump[start..end]), "{user}");
            assert!(!verify_password("nope", &dump[start..end]), "{user}");
        }
    }

    #[test]
    fn malformed_hashes_are_rejected() {
        let good = user1_hash();
        let cases = [
            String::new(),
            "user1pass".into(),
            "$pbkdf2-sha256$".into(),
            "$pbkdf2-sha256$29000$V.p9LyVkzLlX6r23Nqa0Vg".into(),
            good.replace("$29000$", "$$"),
            good.replace("$29000$", "$029000$"),
            good.replace("$29000$", "$0$"),
            good.replace("$29000$", "$-1$"),
            good.replace("$29000$", "$99999999999$"),
            good.replace("$29000$", "$29k$"),
            good.replace("pbkdf2-sha256", "pbkdf2-sha512"),
            format!("{good}$extra"),
            good[..good.len() - 1].to_owned(),
            format!("{good}A"),
            good.replace("V.p9", "V!p9"),
            good.replace("V.p9", "V+p9"),
            good.replace("Ssjw", "Ssj="),
            "$pbkdf2-sha256$29000$V$Ssjwv3Hd.XAE1kUn/D4Na6T4yKPucJ1YqhB8isFH1TI".into(),
            "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
            "$pbkdf2-sha256$29000$ü$ö".into(),
        ];
        for bad in &cases {
            assert!(!verify_password("user1pass", bad), "{bad:?}");
        }
    }

    #[test]
    fn hash_format_and_round_trip() {
        let h = hash_password("correct horse 🐎");
        let parts: Vec<&str> = h.split('$').collect();
        assert_eq!(parts.len(), 5, "{h}");
        assert_eq!(
            (parts[0], parts[1], parts[2]),
            ("", "pbkdf2-sha256", "29000")
        );
        assert_eq!(parts[3].len(), 22, "16-byte salt");
        assert_eq!(parts[4].len(), 43, "32-byte checksum");
        assert!(!h.contains('+') && !h.contains('='));
        assert!(verify_password("correct horse 🐎", &h));
        assert!(!verify_password("correct horse", &h));
        assert_ne!(hash_password("x"), hash_password("x"), "random salt");
    }

    #[test]
    fn python_hashlib_verifies_rust_hash_and_vice_versa() {
        // Recompute the Rust hash in Python's stdlib (passlib algorithm: ab64 salt, PBKDF2-HMAC-SHA256).
        let verify_py = r#"
import sys, hashlib, base64, hmac
def ab64d(s):
    s = s.replace('.', '+')
    return base64.b64decode(s + '=' * (-len(s) % 4))
def ab64e(b):
    return base64.b64encode(b).decode().rstrip('=').replace('+', '.')
pw, stored = sys.argv[1], sys.argv[2]
_, scheme, rounds, salt, chk = stored.split('$')
assert scheme == 'pbkdf2-sha256'
dk = hashlib.pbkdf2_hmac('sha256', pw.encode(), ab64d(salt), int(rounds))
print('ok' if hmac.compare_digest(ab64e(dk), chk) else 'mismatch')
"#;
        for pw in ["user1pass", "päss🔑", ""] {
            let h = hash_password(pw);
            assert_eq!(python(verify_py, &[pw, &h]), "ok", "{pw:?} {h}");
            assert_eq!(python(verify_py, &["wrong", &h]), "mismatch");
        }
        // The Python side agrees with the Frappe reference hash too.
        assert_eq!(python(verify_py, &["user1pass", &user1_hash()]), "ok");

        // A hash built by Python stdlib verifies in Rust.
        let make_py = r#"
import sys, hashlib, base64, os
def ab64e(b):
    return base64.b64encode(b).decode().rstrip('=').replace('+', '.')
salt = os.urandom(16)
dk = hashlib.pbkdf2_hmac('sha256', sys.argv[1].encode(), salt, 1000)
print('$pbkdf2-sha256$1000$' + ab64e(salt) + '$' + ab64e(dk))
"#;
        let py_hash = python(make_py, &["from-python ✓"]);
        assert!(verify_password("from-python ✓", &py_hash), "{py_hash}");
        assert!(!verify_password("from-python", &py_hash));
    }
}
