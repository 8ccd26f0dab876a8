//! Who is calling: API keys (`token key:secret` or Basic), `sid` sessions, or Guest; their
//! roles; logins and logouts.

pub mod api_key_cache;
pub mod csrf;
mod current_user;
pub mod store;
pub mod throttle;

pub use api_key_cache::ApiKeyCache;
pub use current_user::{authenticate_session, AuthMethod, CurrentUser};

pub const GUEST: &str = "Guest";
pub const ADMINISTRATOR: &str = "Administrator";
pub const SYSTEM_MANAGER: &str = "System Manager";
