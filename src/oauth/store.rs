//! The service's own OAuth tables: per-app settings and per-connection flow state.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{ca_app_settings, ca_token_state};
use crate::db::DbConnection;
use crate::doc::row::Sql;
use crate::error::AppResult;
use crate::frappe::time;

/// Flow data Frappe has no column for.
#[derive(Debug, Clone, Default, Queryable)]
pub struct TokenState {
    pub token_cache: String,
    /// Fernet-encrypted PKCE verifier of the pending authorization.
    pub code_verifier: Option<String>,
    pub state_expires_at: Option<NaiveDateTime>,
    pub received_at: Option<NaiveDateTime>,
    pub needs_reconnect: i32,
    pub refresh_lease_until: Option<NaiveDateTime>,
    pub refresh_lease_owner: Option<String>,
}

pub fn token_state(conn: &mut DbConnection, name: &str) -> AppResult<Option<TokenState>> {
    Ok(ca_token_state::table
        .filter(ca_token_state::token_cache.eq(name))
        .first(conn)
        .optional()?)
}

pub fn save_token_state(conn: &mut DbConnection, s: &TokenState) -> AppResult<()> {
    let n = diesel::update(
        ca_token_state::table.filter(ca_token_state::token_cache.eq(&s.token_cache)),
    )
    .set((
        ca_token_state::code_verifier.eq(&s.code_verifier),
        ca_token_state::state_expires_at.eq(s.state_expires_at),
        ca_token_state::received_at.eq(s.received_at),
        ca_token_state::needs_reconnect.eq(s.needs_reconnect),
    ))
    .execute(conn)?;
    if n == 0 {
        diesel::insert_into(ca_token_state::table)
            .values((
                ca_token_state::token_cache.eq(&s.token_cache),
                ca_token_state::code_verifier.eq(&s.code_verifier),
                ca_token_state::state_expires_at.eq(s.state_expires_at),
                ca_token_state::received_at.eq(s.received_at),
                ca_token_state::needs_reconnect.eq(s.needs_reconnect),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn delete_token_state(conn: &mut DbConnection, name: &str) -> AppResult<()> {
    diesel::delete(ca_token_state::table.filter(ca_token_state::token_cache.eq(name)))
        .execute(conn)?;
    Ok(())
}

/// Whether PKCE is used for an app (on unless switched off).
pub fn pkce_enabled(conn: &mut DbConnection, app: &str) -> AppResult<bool> {
    let v: Option<i32> = ca_app_settings::table
        .filter(ca_app_settings::connected_app.eq(app))
        .select(ca_app_settings::pkce)
        .first(conn)
        .optional()?;
    Ok(v.unwrap_or(1) != 0)
}

pub fn set_pkce(conn: &mut DbConnection, app: &str, on: bool) -> AppResult<()> {
    let v = i32::from(on);
    let n = diesel::update(ca_app_settings::table.filter(ca_app_settings::connected_app.eq(app)))
        .set(ca_app_settings::pkce.eq(v))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(ca_app_settings::table)
            .values((
                ca_app_settings::connected_app.eq(app),
                ca_app_settings::pkce.eq(v),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn delete_app_settings(conn: &mut DbConnection, app: &str) -> AppResult<()> {
    diesel::delete(ca_app_settings::table.filter(ca_app_settings::connected_app.eq(app)))
        .execute(conn)?;
    Ok(())
}

/// Takes the refresh lease of a connection when it is free or expired; true when taken.
/// One UPDATE decides, so exactly one process (and one request) wins.
pub fn take_lease(
    conn: &mut DbConnection,
    name: &str,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> AppResult<bool> {
    if token_state(conn, name)?.is_none() {
        let _ = save_token_state(
            conn,
            &TokenState {
                token_cache: name.to_string(),
                ..Default::default()
            },
        );
    }
    let n = diesel::update(
        ca_token_state::table
            .filter(ca_token_state::token_cache.eq(name))
            .filter(
                ca_token_state::refresh_lease_until
                    .is_null()
                    .or(ca_token_state::refresh_lease_until.lt(now)),
            ),
    )
    .set((
        ca_token_state::refresh_lease_until.eq(Some(until)),
        ca_token_state::refresh_lease_owner.eq(Some(owner)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Gives the lease back (only when still ours).
pub fn release_lease(conn: &mut DbConnection, name: &str, owner: &str) -> AppResult<()> {
    diesel::update(
        ca_token_state::table
            .filter(ca_token_state::token_cache.eq(name))
            .filter(ca_token_state::refresh_lease_owner.eq(owner)),
    )
    .set((
        ca_token_state::refresh_lease_until.eq(None::<NaiveDateTime>),
        ca_token_state::refresh_lease_owner.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(())
}

/// What `has_token` and `get_access_token` read about a connection, in one round trip: the
/// Token Cache's stored name and `modified` (to find the document in the cache), the flow
/// state, and the stored access token (no `Debug`, so it cannot reach a log line).
#[derive(Clone)]
pub struct TokenRead {
    pub stored_name: String,
    pub modified: Option<NaiveDateTime>,
    pub received_at: Option<NaiveDateTime>,
    pub needs_reconnect: bool,
    /// `__Auth`'s `password` and `encrypted` for `access_token`.
    pub access_token: Option<(String, bool)>,
}

pub fn token_read(conn: &mut DbConnection, name: &str) -> AppResult<Option<TokenRead>> {
    let ty = crate::doc::store::text_type(conn);
    let sql = format!(
        "SELECT CAST(tc.`name` AS {ty}), CAST(tc.`modified` AS {ty}), \
         CAST(ts.`received_at` AS {ty}), CAST(ts.`needs_reconnect` AS {ty}), \
         CAST(a.`password` AS {ty}), CAST(a.`encrypted` AS {ty}) \
         FROM `tabToken Cache` tc \
         LEFT JOIN `ca_token_state` ts ON ts.`token_cache` = ? \
         LEFT JOIN `__Auth` a ON a.`doctype` = 'Token Cache' AND a.`name` = ? AND a.`fieldname` = 'access_token' \
         WHERE tc.`name` = ? LIMIT 1"
    );
    let rows = Sql::new(sql)
        .bind_text(name)
        .bind_text(name)
        .bind_text(name)
        .rows(conn)?;
    let Some(mut row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let mut col = |i: usize| row.0.get_mut(i).and_then(Option::take);
    let stored_name = col(0).unwrap_or_default();
    let modified = col(1).as_deref().and_then(time::parse);
    let received_at = col(2).as_deref().and_then(time::parse);
    let needs_reconnect = col(3).is_some_and(|v| v.trim() != "0");
    let encrypted = col(5).is_some_and(|v| v.trim() != "0");
    let access_token = col(4).map(|p| (p, encrypted));
    Ok(Some(TokenRead {
        stored_name,
        modified,
        received_at,
        needs_reconnect,
        access_token,
    }))
}
