//! The Token Cache DocType: whose connection a row is and its name `<app>-<user>`
//! (`identity`, the one place that composes it), finding a connection's row (`lookup`), the
//! typed view over the row (`view`), and the rules the engine calls: naming, who may do what,
//! `validate`, the identity a save may not change, the token lifetime a save starts, and on
//! delete the revocation of its tokens at the provider.

mod identity;
mod lookup;
pub mod store;
mod view;

pub use identity::Key;
pub use lookup::{load, read, slot, taken, Read, Slot, TokenRead};
pub use view::TokenCache;

use chrono::NaiveDateTime;
use serde_json::{Map, Value};

use crate::auth::store as users;
use crate::auth::CurrentUser;
use crate::db::DbConnection;
use crate::doc::perm::Perm;
use crate::doc::{store as docs, Doc};
use crate::error::{AppError, AppResult};
use crate::frappe::meta::{CONNECTED_APP, TOKEN_CACHE};
use crate::oauth::client::TokenKind;
use crate::oauth::revocation::{self, Revocation};
use crate::oauth::{health_store, store as oauth_store};
use crate::secrets::Vault;
use crate::state::{AppState, SharedState};

use super::connected_app::ConnectedApp;

/// The name a Token Cache created through the API gets: its `connected_app` and `user`'s.
pub fn autoname(body: &Map<String, Value>) -> String {
    let s = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    Key {
        app: s("connected_app"),
        user: Some(s("user")),
    }
    .name()
}

/// Role All may read and delete its own Token Caches (`if_owner`).
pub fn permits(user: &CurrentUser, perm: Perm, owner: Option<&str>) -> bool {
    matches!(perm, Perm::Read | Perm::Delete)
        && owner.is_some_and(|o| o.eq_ignore_ascii_case(&user.name))
}

/// Frappe's `validate`: `provider_name` is fetched from the Connected App (`fetch_from`),
/// whose stored name `connected_app` keeps; the user must exist.
pub fn validate(conn: &mut DbConnection, doc: &mut Doc) -> AppResult<()> {
    let mut tc = TokenCache::of(doc);
    if let Some(app) = tc.app().filter(|a| !a.is_empty()).map(str::to_string) {
        let Some(app_doc) = docs::load(conn, &CONNECTED_APP, &app)? else {
            return Err(AppError::validation(format!(
                "Could not find Connected App: {app}"
            )));
        };
        let app_doc = ConnectedApp::of(app_doc);
        tc.set_app(app_doc.name());
        tc.set_provider_name(app_doc.provider_name());
    }
    if let Some(u) = tc.user().filter(|u| !u.is_empty()) {
        if users::find_user(conn, u)?.is_none() {
            return Err(AppError::validation(format!("Could not find User: {u}")));
        }
    }
    Ok(())
}

/// A Token Cache's `connected_app` and `user` say whose connection it is, and its name was made
/// from them: a save may not change them (the row would then be another connection than its
/// name says, and lookups go by both). Sending the stored value again (in any case) is fine;
/// the stored values are returned to be kept as they are.
pub fn kept_on_update(
    doc: &Doc,
    body: &Map<String, Value>,
) -> AppResult<Vec<(&'static str, Value)>> {
    for (field, label) in [("connected_app", "Connected App"), ("user", "User")] {
        let Some(sent) = body.get(field) else {
            continue;
        };
        let sent = match sent {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let stored = doc.row.get_str(field).unwrap_or("");
        if sent != stored && sent.to_lowercase() != stored.to_lowercase() {
            return Err(AppError::validation(format!(
                "{label} of Token Cache {} cannot be changed: it says whose connection this is. \
                 Delete the Token Cache and connect again instead.",
                doc.name()
            )));
        }
    }
    Ok(["connected_app", "user"]
        .into_iter()
        .map(|f| (f, doc.row.value(f)))
        .collect())
}

/// A Token Cache's lifetime counts from when its tokens were received, never from `modified`:
/// a save that sets `access_token` or `expires_in` starts it now; any other save of a row that
/// has no received time yet (written by Frappe) pins it to the `modified` it had until now
/// (`previous_modified`, `None` for a new row).
pub fn on_save(
    conn: &mut DbConnection,
    doc: &Doc,
    body: &Map<String, Value>,
    previous_modified: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> AppResult<()> {
    let name = doc.name();
    let sets_token = body.contains_key("access_token") || body.contains_key("expires_in");
    let mut ts = oauth_store::token_state(conn, name)?.unwrap_or_default();
    let received = match (sets_token, ts.received_at) {
        (true, _) => Some(now),
        (false, Some(_)) => return Ok(()),
        (false, None) => previous_modified,
    };
    ts.token_cache = name.to_string();
    ts.received_at = received;
    oauth_store::save_token_state(conn, &ts)
}

/// Before a Token Cache is deleted: what to revoke at the provider afterwards. `None` when
/// there is nothing to revoke (no revocation URI, no tokens, no such row) or it cannot be read.
pub async fn prepare_delete(state: &SharedState, name: &str) -> Option<Revocation> {
    let n = name.to_string();
    let st = state.clone();
    state
        .db
        .run(move |conn| {
            let Some(tc) = docs::load(conn, &TOKEN_CACHE, &n)?.map(TokenCache::of) else {
                return Ok(None);
            };
            let app_name = tc.app().unwrap_or_default().to_string();
            let Some(app) = docs::load(conn, &CONNECTED_APP, &app_name)?.map(ConnectedApp::of)
            else {
                return Ok(None);
            };
            let vault = Vault::new(&st.keys);
            let endpoints = app.endpoints(&vault, conn)?;
            if endpoints.revocation_uri.is_none() {
                return Ok(None);
            }
            let mut tokens = Vec::new();
            let doctype = TOKEN_CACHE.doctype();
            if let Some(rt) = vault.read(conn, doctype, tc.name(), "refresh_token")? {
                tokens.push((rt, TokenKind::RefreshToken));
            }
            if let Some(at) = vault.read(conn, doctype, tc.name(), "access_token")? {
                tokens.push((at, TokenKind::AccessToken));
            }
            Ok((!tokens.is_empty()).then(|| Revocation {
                endpoints,
                tokens,
                name: tc.name().to_string(),
            }))
        })
        .await
        .ok()
        .flatten()
}

/// What goes with a deleted Token Cache: its token state and its refresh health.
pub fn on_delete(conn: &mut DbConnection, doc: &Doc) -> AppResult<()> {
    oauth_store::delete_token_state(conn, doc.name())?;
    health_store::delete_refresh_health(conn, doc.name())
}

/// After the delete: revoke at the provider; a failure is logged and never undoes the delete.
pub async fn after_delete(state: &AppState, revocation: Option<Revocation>) {
    if let Some(r) = revocation {
        revocation::revoke(state, r).await;
    }
}

#[cfg(test)]
mod tests;
