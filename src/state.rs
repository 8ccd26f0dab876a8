//! The application state every handler receives: settings, database, keys, clock, HTTP client.

use crate::auth::api_key_cache::ApiKeyCache;
use crate::configuration::Settings;
use crate::db::Db;
use crate::frappe::time::Clock;
pub use crate::secrets::Keys;

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
    pub pages: crate::doc::page_cache::PageCache,
    pub counts: crate::doc::coalesce::Coalescer,
    pub metrics: crate::metrics::Metrics,
    /// Password-check permits and the purge clock of login throttling.
    pub login: crate::auth::throttle::LoginLimits,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("public_url", &self.public_url)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}
