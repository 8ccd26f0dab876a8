//! The application state every handler receives: settings, database, keys, clock, HTTP client.

use std::path::PathBuf;
use std::sync::RwLock;

use secrecy::SecretString;

use crate::auth::ApiKeyCache;
use crate::configuration::{Settings, SiteConfig};
use crate::db::Db;
use crate::frappe::time::Clock;
use crate::secrets::{KeyRing, SecretsError};

/// The state as handlers and blocking tasks hold it.
pub type SharedState = actix_web::web::Data<AppState>;

/// Shared by all workers (wrapped in `web::Data`).
pub struct AppState {
    pub settings: Settings,
    pub db: Db,
    pub keys: Keys,
    pub clock: Clock,
    /// `public_url` without a trailing slash.
    pub public_url: String,
    /// The one outbound HTTP client: no redirects, timeouts, http/https only, and only
    /// destinations `outbound_allow` permits.
    pub http: crate::oauth::client::HttpClient,
    pub api_keys: ApiKeyCache,
    pub oauth: crate::oauth::OAuthState,
    pub docs: crate::doc::cache::DocCache,
    pub pages: crate::doc::list::PageCache,
    pub counts: crate::doc::list::Coalescer,
    pub metrics: crate::metrics::Metrics,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("public_url", &self.public_url)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

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
    pub fn current_ring(&self) -> Option<KeyRing> {
        self.current()
    }

    fn current(&self) -> Option<KeyRing> {
        self.ring.read().ok().map(|r| r.clone())
    }

    pub fn encrypt(&self, cleartext: &str) -> String {
        self.refresh_if_changed();
        match self.current() {
            Some(r) => r.encrypt(cleartext),
            None => String::new(),
        }
    }

    pub fn decrypt(&self, token: &str) -> Result<SecretString, SecretsError> {
        let ring = self.current().ok_or(SecretsError::DecryptionFailed)?;
        match ring.decrypt(token) {
            Ok(v) => Ok(v),
            Err(e) => {
                if self.reload() {
                    self.current()
                        .ok_or(SecretsError::DecryptionFailed)?
                        .decrypt(token)
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
