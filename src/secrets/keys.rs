//! The site's Fernet keys as the running service holds them: re-read when another process
//! (`rotate-key`) rewrote the site config.

use std::path::PathBuf;
use std::sync::RwLock;

use secrecy::SecretString;

use super::{KeyRing, SecretsError};
use crate::configuration::SiteConfig;

/// The site's Fernet keys. When a value does not decrypt (another process rotated the key),
/// the site config is read again once before giving up.
pub struct Keys {
    ring: RwLock<KeyRing>,
    site_config: Option<PathBuf>,
    /// When the site config was last read, to notice a rotation by another process.
    loaded: std::sync::Mutex<Option<std::time::SystemTime>>,
}

impl Keys {
    pub fn new(ring: KeyRing, site_config: Option<PathBuf>) -> Self {
        let mtime = site_config
            .as_ref()
            .and_then(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        Self {
            ring: RwLock::new(ring),
            site_config,
            loaded: std::sync::Mutex::new(mtime),
        }
    }

    /// Re-reads the keys when the site config changed on disk (`rotate-key` rewrites it first,
    /// so every value written after that uses the new key).
    fn refresh_if_changed(&self) {
        let Some(path) = &self.site_config else {
            return;
        };
        let Ok(mtime) = std::fs::metadata(path).and_then(|m| m.modified()) else {
            return;
        };
        let changed = self
            .loaded
            .lock()
            .map(|l| *l != Some(mtime))
            .unwrap_or(false);
        if changed && self.reload() {
            if let Ok(mut l) = self.loaded.lock() {
                *l = Some(mtime);
            }
        }
    }

    /// A copy of the current keys (for bulk work such as imports).
    pub fn current_ring(&self) -> Result<KeyRing, SecretsError> {
        self.ring
            .read()
            .map(|r| r.clone())
            .map_err(|_| SecretsError::KeysUnavailable)
    }

    /// Encrypts with the current primary key. Fails (and nothing may be stored) when the
    /// keys cannot be read: a thread panicked while replacing them.
    pub fn encrypt(&self, cleartext: &str) -> Result<String, SecretsError> {
        self.refresh_if_changed();
        Ok(self.current_ring()?.encrypt(cleartext))
    }

    pub fn decrypt(&self, token: &str) -> Result<SecretString, SecretsError> {
        let ring = self.current_ring()?;
        match ring.decrypt(token) {
            Ok(v) => Ok(v),
            Err(e) => {
                if self.reload() {
                    self.current_ring()?.decrypt(token)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Re-reads the site config; true when the keys changed.
    pub fn reload(&self) -> bool {
        let Some(path) = &self.site_config else {
            return false;
        };
        let Ok(cfg) = SiteConfig::load(path, false) else {
            return false;
        };
        let Ok(ring) = KeyRing::with_fallbacks(&cfg.encryption_key, &cfg.previous_encryption_keys)
        else {
            return false;
        };
        match self.ring.write() {
            Ok(mut r) => {
                *r = ring;
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn encryption_fails_instead_of_returning_an_empty_ciphertext_when_the_keys_are_poisoned() {
        let keys = Arc::new(Keys::new(
            KeyRing::new(&crate::secrets::generate_key()).expect("key"),
            None,
        ));
        let token = keys.encrypt("s3cret").expect("encrypts while healthy");
        assert!(!token.is_empty());
        assert_eq!(
            keys.decrypt(&token).expect("decrypts").expose_secret(),
            "s3cret"
        );

        let poisoner = keys.clone();
        let panicked = std::thread::spawn(move || {
            let _guard = poisoner.ring.write().expect("lock");
            panic!("a thread dies while holding the key lock");
        })
        .join();
        assert!(panicked.is_err());

        assert_eq!(keys.encrypt("s3cret"), Err(SecretsError::KeysUnavailable));
        assert_eq!(
            keys.decrypt(&token).err(),
            Some(SecretsError::KeysUnavailable)
        );
        assert!(keys.current_ring().is_err());
    }
}
