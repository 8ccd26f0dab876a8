//! Revoking a deleted Token Cache's tokens at the provider (RFC 7009). What to revoke is read
//! by the Token Cache's delete hook (`doctype::token_cache`) before the row goes.

use secrecy::SecretString;

use super::client::{self, AppEndpoints, ClientLimits, TokenKind};
use crate::metrics::Outcome;
use crate::state::AppState;

/// Tokens to revoke once a Token Cache is deleted.
pub struct Revocation {
    pub endpoints: AppEndpoints,
    /// Refresh token first: revoking it usually ends the access token too.
    pub tokens: Vec<(SecretString, TokenKind)>,
    /// The Token Cache's name, for the log.
    pub name: String,
}

/// Revokes at the provider, refresh token first. Failures are logged, not raised: the user
/// asked to disconnect and the local tokens are already gone.
pub async fn revoke(state: &AppState, r: Revocation) {
    let limits = ClientLimits {
        max_response_bytes: state.settings.http_max_response,
    };
    for (token, kind) in &r.tokens {
        match client::revoke(&state.http, &limits, &r.endpoints, token, *kind).await {
            Ok(()) => {
                state.metrics.revocation(Outcome::Ok);
                tracing::info!(token_cache = %r.name, hint = kind.hint(), "token revoked")
            }
            Err(e) => {
                state.metrics.revocation(Outcome::Failed);
                tracing::warn!(token_cache = %r.name, hint = kind.hint(), error = %e, "token revocation failed")
            }
        }
    }
}
