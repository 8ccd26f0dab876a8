//! What a token response held beyond Frappe's Token Cache columns, per connection
//! (`ca_token_extra`): its other members (Salesforce's `instance_url`, an `id_token`, Slack's
//! `team`…), sealed with the site's keys since an `id_token` or a nested token is a credential,
//! and whether it came without `expires_in` (such a token never expires and is never
//! refreshed). Written with the tokens; `get_access_token` returns the members as `extra`.

use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use super::client::TokenSet;
use super::store as oauth_store;
use crate::db::DbConnection;
use crate::error::AppResult;
use crate::secrets::vault::Sealed;
use crate::secrets::Vault;
use crate::state::AppState;

/// The most JSON kept per connection; larger extras are not kept.
const MAX_EXTRA_BYTES: usize = 64 * 1024;

/// Keeps a token response's extras with the connection `name` (inside the transaction that
/// stores its tokens). A refresh answer's members are added to the ones kept (a refresh
/// rarely repeats an `id_token`); a new connection or client-credentials token replaces them.
pub fn store(
    state: &AppState,
    conn: &mut DbConnection,
    name: &str,
    tokens: &TokenSet,
) -> AppResult<()> {
    let mut extra = tokens.extra.0.clone();
    if tokens.from_refresh {
        if let Some((Some(sealed), _)) = oauth_store::token_extra(conn, name)? {
            for (k, v) in open(state, &sealed).unwrap_or_default() {
                extra.entry(k).or_insert(v);
            }
        }
    }
    let text = match (!extra.is_empty()).then(|| Value::Object(extra).to_string()) {
        Some(t) if t.len() > MAX_EXTRA_BYTES => {
            tracing::warn!(token_cache = %name, bytes = t.len(), "the token response's extra members are too large to keep");
            None
        }
        t => t,
    };
    let sealed = text
        .map(|t| Vault::new(&state.keys).seal(&t))
        .transpose()?
        .map(Sealed::into_string);
    oauth_store::save_token_extra(conn, name, sealed.as_deref(), tokens.expires_in.is_none())
}

/// A connection's kept extras (`None`: none, or not readable with the current keys).
pub fn open(state: &AppState, sealed: &str) -> Option<Map<String, Value>> {
    let clear = Vault::new(&state.keys).open(sealed).ok()?;
    match serde_json::from_str(clear.expose_secret()) {
        Ok(Value::Object(m)) if !m.is_empty() => Some(m),
        _ => None,
    }
}
