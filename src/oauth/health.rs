//! Connection health: one state per connection — connected, expired (renews on next use),
//! refresh failing, needs reconnect, not connected — read the same way by people (the app
//! page), scripts (`connected_apps.connection_status`) and `/metrics`.
//!
//! "Refresh failing" is the last failed refresh recorded by every refresh (a user's and the
//! keep-alive job's, in `flow::refresh_now`) in the table `ca_refresh_health`
//! (`health_store`), so every instance sees it; [`refresh_failure`] is the one place that
//! reads it.

use chrono::NaiveDateTime;
use serde_json::{json, Value};

use crate::db::DbConnection;
use crate::doc::row::Sql;
use crate::doc::store;
use crate::doctype::connected_app::ConnectedApp;
use crate::doctype::token_cache::{self, TokenCache};
use crate::error::{AppError, AppResult};
use crate::frappe::meta::{CONNECTED_APP, TOKEN_CACHE};
use crate::frappe::time;
use crate::state::AppState;

/// The state of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Connected,
    /// The access token has expired; a refresh token renews it on the next use.
    Expired,
    /// The last refresh failed (and no refresh has succeeded since).
    RefreshFailing,
    /// The provider refused the grant, or the token expired without a refresh token.
    NeedsReconnect,
    NotConnected,
}

/// Every state, in the order `/metrics` lists them.
pub const STATES: [Health; 5] = [
    Health::Connected,
    Health::Expired,
    Health::RefreshFailing,
    Health::NeedsReconnect,
    Health::NotConnected,
];

impl Health {
    pub fn label(self) -> &'static str {
        match self {
            Health::Connected => "connected",
            Health::Expired => "expired",
            Health::RefreshFailing => "refresh_failing",
            Health::NeedsReconnect => "needs_reconnect",
            Health::NotConnected => "not_connected",
        }
    }
}

/// What the state is decided from.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub has_access_token: bool,
    pub needs_reconnect: bool,
    /// Seconds until the access token expires (<= 0: expired).
    pub seconds_left: i64,
    pub has_refresh_token: bool,
    pub failing: bool,
}

pub fn classify(f: &Facts) -> Health {
    if !f.has_access_token {
        Health::NotConnected
    } else if f.needs_reconnect {
        Health::NeedsReconnect
    } else if f.failing {
        Health::RefreshFailing
    } else if f.seconds_left > 0 {
        Health::Connected
    } else if f.has_refresh_token {
        Health::Expired
    } else {
        Health::NeedsReconnect
    }
}

const NO_REFRESH_TOKEN: &str =
    "The access token has expired and there is no refresh token. Please connect again.";
const INVALID_GRANT: &str =
    "The provider no longer accepts this connection (invalid_grant). Please connect again.";

/// The last failed refresh of a connection, when no refresh has succeeded since.
pub fn refresh_failure(
    _state: &AppState,
    conn: &mut DbConnection,
    token_cache: &str,
) -> AppResult<Option<(String, NaiveDateTime)>> {
    super::health_store::refresh_failure(conn, token_cache)
}

/// `connected_apps.connection_status`: the state of `user`'s connection to `app`, with what a
/// person or a script needs to act on it. Never a token.
pub fn connection_status(
    state: &AppState,
    conn: &mut DbConnection,
    app: &str,
    user: &str,
) -> AppResult<Value> {
    let (app_name, token) = match token_cache::read(conn, app, Some(user))? {
        token_cache::Read::NoApp => return Err(AppError::not_found("Connected App", app)),
        token_cache::Read::App { app, token } => (app, token),
    };
    let app_doc = store::load(conn, &CONNECTED_APP, &app_name)?
        .ok_or_else(|| AppError::not_found("Connected App", &app_name))?;
    let requested = ConnectedApp::of(&app_doc).scopes();
    let tz = state.clock.tz.name();
    let mut out = json!({
        "connected_app": app_name,
        "user": user,
        "token_cache": null,
        "state": Health::NotConnected.label(),
        "expires_at": null,
        "has_refresh_token": false,
        "requested_scopes": requested,
        "granted_scopes": [],
        "last_error": null,
        "failing_since": null,
        "time_zone": tz,
    });
    let Some(t) = token else { return Ok(out) };
    let Some(tc) = store::load(conn, &TOKEN_CACHE, &t.stored_name)?.map(TokenCache::of) else {
        return Ok(out);
    };
    let has_refresh_token =
        crate::secrets::vault::stored(conn, "Token Cache", &t.stored_name, "refresh_token")?
            .is_some_and(|s| !s.value.is_empty());
    let failure = refresh_failure(state, conn, &t.stored_name)?;
    let base = t.received_at.or(tc.modified());
    let expires_in = tc.expires_in();
    // A token answered without `expires_in` never expires (see `token_extra`).
    let seconds_left = if t.never_expires && expires_in == 0 {
        i64::MAX
    } else {
        base.map_or(0, |b| expires_in - state.clock.seconds_since(b))
    };
    let facts = Facts {
        has_access_token: t.access_token.as_ref().is_some_and(|(v, _)| !v.is_empty()),
        needs_reconnect: t.needs_reconnect,
        seconds_left,
        has_refresh_token,
        failing: failure.is_some(),
    };
    let health = classify(&facts);
    out["token_cache"] = json!(tc.name());
    out["state"] = json!(health.label());
    out["has_refresh_token"] = json!(has_refresh_token);
    out["granted_scopes"] = json!(tc.scopes());
    if facts.has_access_token {
        out["expires_at"] = match base {
            Some(b) if expires_in > 0 => {
                json!(time::format(&(b + chrono::Duration::seconds(expires_in))))
            }
            _ => Value::Null,
        };
    }
    match health {
        Health::RefreshFailing => {
            if let Some((summary, since)) = failure {
                out["last_error"] = json!(summary);
                out["failing_since"] = json!(time::format(&since));
            }
        }
        Health::NeedsReconnect if t.needs_reconnect => out["last_error"] = json!(INVALID_GRANT),
        Health::NeedsReconnect => out["last_error"] = json!(NO_REFRESH_TOKEN),
        _ => {}
    }
    Ok(out)
}

/// How many users' connections are in each state (the app's own client-credentials tokens
/// are not connections of a person and are left out), in the order of [`STATES`].
pub fn count_by_state(state: &AppState, conn: &mut DbConnection) -> AppResult<[i64; 5]> {
    let ty = store::text_type(conn);
    // One query, whatever the number of connections: a scrape costs one scan.
    let sql = format!(
        "SELECT CAST(tc.`name` AS {ty}), CAST(tc.`expires_in` AS {ty}), CAST(tc.`modified` AS {ty}), \
         CAST(ts.`received_at` AS {ty}), CAST(ts.`needs_reconnect` AS {ty}), \
         CASE WHEN a.`password` IS NULL OR a.`password` = '' THEN '0' ELSE '1' END, \
         CASE WHEN r.`password` IS NULL OR r.`password` = '' THEN '0' ELSE '1' END, \
         CAST(te.`never_expires` AS {ty}), \
         CASE WHEN h.`token_cache` IS NULL THEN '0' ELSE '1' END \
         FROM `tabToken Cache` tc \
         LEFT JOIN `ca_refresh_health` h ON h.`token_cache` = tc.`name` \
         LEFT JOIN `ca_token_state` ts ON ts.`token_cache` = tc.`name` \
         LEFT JOIN `ca_token_extra` te ON te.`token_cache` = tc.`name` \
         LEFT JOIN `__Auth` a ON a.`doctype` = 'Token Cache' AND a.`name` = tc.`name` AND a.`fieldname` = 'access_token' \
         LEFT JOIN `__Auth` r ON r.`doctype` = 'Token Cache' AND r.`name` = tc.`name` AND r.`fieldname` = 'refresh_token' \
         WHERE tc.`user` IS NOT NULL AND tc.`user` <> ''"
    );
    let rows = Sql::new(sql).rows(conn)?;
    let mut counts = [0i64; 5];
    for mut row in rows {
        let mut col = |i: usize| row.0.get_mut(i).and_then(Option::take);
        let expires_in = col(1)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0) as i64;
        let modified = col(2).as_deref().and_then(time::parse);
        let received = col(3).as_deref().and_then(time::parse);
        let needs_reconnect = col(4).is_some_and(|v| v.trim() != "0");
        let has_access_token = col(5).as_deref() == Some("1");
        let has_refresh_token = col(6).as_deref() == Some("1");
        let never_expires = col(7).is_some_and(|v| v.trim() != "0") && expires_in == 0;
        let base = received.or(modified);
        let facts = Facts {
            has_access_token,
            needs_reconnect,
            seconds_left: if never_expires {
                i64::MAX
            } else {
                base.map_or(0, |b| expires_in - state.clock.seconds_since(b))
            },
            has_refresh_token,
            failing: col(8).as_deref() == Some("1"),
        };
        let h = classify(&facts);
        if let Some(i) = STATES.iter().position(|s| *s == h) {
            counts[i] += 1;
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_token_renews_only_with_a_refresh_token_and_failures_win_over_expiry() {
        let ok = Facts {
            has_access_token: true,
            seconds_left: 60,
            has_refresh_token: true,
            ..Default::default()
        };
        assert_eq!(classify(&ok), Health::Connected);
        let expired = Facts {
            seconds_left: 0,
            ..ok.clone()
        };
        assert_eq!(classify(&expired), Health::Expired);
        let no_rt = Facts {
            has_refresh_token: false,
            ..expired.clone()
        };
        assert_eq!(classify(&no_rt), Health::NeedsReconnect);
        let failing = Facts {
            failing: true,
            ..expired.clone()
        };
        assert_eq!(classify(&failing), Health::RefreshFailing);
        let refused = Facts {
            needs_reconnect: true,
            ..failing
        };
        assert_eq!(classify(&refused), Health::NeedsReconnect);
        assert_eq!(classify(&Facts::default()), Health::NotConnected);
    }
}
