//! The service's own OAuth tables: per-app settings and per-connection flow state, and what
//! a token response held beyond Frappe's columns.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::client::ClientAuth;
use crate::db::schema::{ca_app_settings, ca_job_lease, ca_token_extra, ca_token_state};
use crate::db::DbConnection;
use crate::error::AppResult;

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

/// Forgets a connection's flow state and its token extras (its Token Cache is deleted).
pub fn delete_token_state(conn: &mut DbConnection, name: &str) -> AppResult<()> {
    diesel::delete(ca_token_state::table.filter(ca_token_state::token_cache.eq(name)))
        .execute(conn)?;
    diesel::delete(ca_token_extra::table.filter(ca_token_extra::token_cache.eq(name)))
        .execute(conn)?;
    Ok(())
}

/// A connection's token extras: the sealed JSON of the response's other members, and whether
/// the response had no `expires_in`.
pub fn token_extra(
    conn: &mut DbConnection,
    name: &str,
) -> AppResult<Option<(Option<String>, bool)>> {
    Ok(ca_token_extra::table
        .filter(ca_token_extra::token_cache.eq(name))
        .select((ca_token_extra::extra, ca_token_extra::never_expires))
        .first::<(Option<String>, i32)>(conn)
        .optional()?
        .map(|(extra, never)| (extra, never != 0)))
}

/// Writes a connection's token extras; nothing to keep deletes the row.
pub fn save_token_extra(
    conn: &mut DbConnection,
    name: &str,
    extra: Option<&str>,
    never_expires: bool,
) -> AppResult<()> {
    if extra.is_none() && !never_expires {
        diesel::delete(ca_token_extra::table.filter(ca_token_extra::token_cache.eq(name)))
            .execute(conn)?;
        return Ok(());
    }
    let never = i32::from(never_expires);
    let n = diesel::update(ca_token_extra::table.filter(ca_token_extra::token_cache.eq(name)))
        .set((
            ca_token_extra::extra.eq(extra),
            ca_token_extra::never_expires.eq(never),
        ))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(ca_token_extra::table)
            .values((
                ca_token_extra::token_cache.eq(name),
                ca_token_extra::extra.eq(extra),
                ca_token_extra::never_expires.eq(never),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// How an app's client authenticates at the token endpoint (unset: as Frappe does it). A
/// stored name this version does not know reads as unset.
pub fn client_auth(conn: &mut DbConnection, app: &str) -> AppResult<ClientAuth> {
    let v: Option<Option<String>> = ca_app_settings::table
        .filter(ca_app_settings::connected_app.eq(app))
        .select(ca_app_settings::client_auth)
        .first(conn)
        .optional()?;
    Ok(v.flatten()
        .and_then(|name| ClientAuth::from_name(&name))
        .unwrap_or_default())
}

pub fn set_client_auth(conn: &mut DbConnection, app: &str, method: ClientAuth) -> AppResult<()> {
    let v = method.name();
    let n = diesel::update(ca_app_settings::table.filter(ca_app_settings::connected_app.eq(app)))
        .set(ca_app_settings::client_auth.eq(v))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(ca_app_settings::table)
            .values((
                ca_app_settings::connected_app.eq(app),
                ca_app_settings::client_auth.eq(v),
            ))
            .execute(conn)?;
    }
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

/// Whether the keep-alive job refreshes an app's connections ahead of expiry (off unless set).
pub fn keep_warm(conn: &mut DbConnection, app: &str) -> AppResult<bool> {
    let v: Option<i32> = ca_app_settings::table
        .filter(ca_app_settings::connected_app.eq(app))
        .select(ca_app_settings::keep_warm)
        .first(conn)
        .optional()?;
    Ok(v.unwrap_or(0) != 0)
}

/// The apps marked keep warm (names as stored in `ca_app_settings`).
pub fn keep_warm_apps(conn: &mut DbConnection) -> AppResult<Vec<String>> {
    Ok(ca_app_settings::table
        .filter(ca_app_settings::keep_warm.ne(0))
        .select(ca_app_settings::connected_app)
        .load(conn)?)
}

pub fn set_keep_warm(conn: &mut DbConnection, app: &str, on: bool) -> AppResult<()> {
    let v = i32::from(on);
    let n = diesel::update(ca_app_settings::table.filter(ca_app_settings::connected_app.eq(app)))
        .set(ca_app_settings::keep_warm.eq(v))
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(ca_app_settings::table)
            .values((
                ca_app_settings::connected_app.eq(app),
                ca_app_settings::keep_warm.eq(v),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Takes (or keeps) the lease of a background job: one conditional UPDATE when the row is
/// free, expired or already `owner`'s, else one INSERT of the first row. Exactly one
/// instance holds it at a time, on SQLite, MariaDB and Galera (a certification conflict
/// on the INSERT or UPDATE is a loss, and the caller tries again at its next tick).
pub fn take_job_lease(
    conn: &mut DbConnection,
    job: &str,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> AppResult<bool> {
    let n = diesel::update(
        ca_job_lease::table
            .filter(ca_job_lease::job.eq(job))
            .filter(
                ca_job_lease::lease_until
                    .lt(now)
                    .or(ca_job_lease::owner.eq(owner)),
            ),
    )
    .set((
        ca_job_lease::owner.eq(owner),
        ca_job_lease::lease_until.eq(until),
    ))
    .execute(conn)?;
    if n == 1 {
        return Ok(true);
    }
    let exists: Option<String> = ca_job_lease::table
        .filter(ca_job_lease::job.eq(job))
        .select(ca_job_lease::owner)
        .first(conn)
        .optional()?;
    if exists.is_some() {
        return Ok(false);
    }
    // Two instances may both insert: the primary key lets one through.
    let inserted = diesel::insert_into(ca_job_lease::table)
        .values((
            ca_job_lease::job.eq(job),
            ca_job_lease::owner.eq(owner),
            ca_job_lease::lease_until.eq(until),
        ))
        .execute(conn);
    Ok(inserted.is_ok())
}

/// Gives a job lease back (only when still `owner`'s), so another instance may take it at once.
pub fn release_job_lease(conn: &mut DbConnection, job: &str, owner: &str) -> AppResult<()> {
    diesel::delete(
        ca_job_lease::table
            .filter(ca_job_lease::job.eq(job))
            .filter(ca_job_lease::owner.eq(owner)),
    )
    .execute(conn)?;
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
