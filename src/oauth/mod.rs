//! OAuth 2.0 flows for Connected Apps: the provider client, and per-connection single flight.

pub mod client;
pub mod flow;
pub mod health;
pub mod health_store;
pub mod keepalive;
pub mod outbound;
pub mod presets;
pub mod revocation;
pub mod store;
pub mod token_extra;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Process-wide OAuth bookkeeping: one async lock per Token Cache so that a token is
/// refreshed once however many requests ask at the same time.
#[derive(Debug, Default)]
pub struct OAuthState {
    locks: Mutex<HashMap<String, RefreshLock>>,
    /// What this instance's keep-alive job did.
    pub keepalive: keepalive::Stats,
}

/// The lock of one Token Cache; it holds the last failed refresh (when it failed, and its
/// error) so that requests queued behind it share its answer instead of each waiting for
/// the provider's timeout in turn.
pub type RefreshLock =
    Arc<tokio::sync::Mutex<Option<(std::time::Instant, crate::error::AppError)>>>;

impl OAuthState {
    /// The lock for one Token Cache (names compare case-insensitively, as in the database).
    pub fn lock_for(&self, token_cache: &str) -> RefreshLock {
        let key = token_cache.to_lowercase();
        let mut locks = match self.locks.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        if locks.len() > 10_000 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(key).or_default().clone()
    }
}
