//! Verified API keys, kept for `api_key_cache_ttl` so steady-state requests neither decrypt
//! nor query; the state holds one.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Verified API keys, so steady-state requests neither decrypt nor query.
#[derive(Debug, Default)]
pub struct ApiKeyCache {
    entries: Mutex<HashMap<String, CachedKey>>,
}

#[derive(Debug, Clone)]
struct CachedKey {
    secret_digest: [u8; 32],
    user: String,
    roles: Vec<String>,
    until: Instant,
}

impl ApiKeyCache {
    pub(super) fn get(&self, api_key: &str, secret: &str) -> Option<(String, Vec<String>)> {
        let entries = self.entries.lock().ok()?;
        let e = entries.get(api_key)?;
        if e.until < Instant::now() {
            return None;
        }
        let digest: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        bool::from(digest.ct_eq(&e.secret_digest)).then(|| (e.user.clone(), e.roles.clone()))
    }

    pub(super) fn put(
        &self,
        api_key: &str,
        secret: &str,
        user: &str,
        roles: &[String],
        ttl: Duration,
    ) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() > 10_000 {
                let now = Instant::now();
                entries.retain(|_, e| e.until > now);
            }
            entries.insert(
                api_key.to_string(),
                CachedKey {
                    secret_digest: Sha256::digest(secret.as_bytes()).into(),
                    user: user.to_string(),
                    roles: roles.to_vec(),
                    until: Instant::now() + ttl,
                },
            );
        }
    }

    /// Forgets every cached key of a user (after its key changes).
    pub fn invalidate_user(&self, user: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.retain(|_, e| e.user != user);
        }
    }
}
