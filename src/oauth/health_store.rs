//! The last failed refresh of each connection (`ca_refresh_health`), written by every refresh
//! (the keep-alive job's and a user's) and read by connection health.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::ca_refresh_health;
use crate::db::DbConnection;
use crate::error::AppResult;

/// Longest stored summary (the column holds 255 characters).
const MAX_SUMMARY: usize = 250;

/// Records a failed refresh of `token_cache`: the summary replaces the last one, `since` stays
/// the time of the first failure in a row. The summary must name no secret (callers pass
/// [`summary_of`]'s words, never a provider's body).
pub fn record_refresh_failure(
    conn: &mut DbConnection,
    token_cache: &str,
    error_summary: &str,
    now: NaiveDateTime,
) -> AppResult<()> {
    let summary: String = error_summary.chars().take(MAX_SUMMARY).collect();
    let n = diesel::update(
        ca_refresh_health::table.filter(ca_refresh_health::token_cache.eq(token_cache)),
    )
    .set((
        ca_refresh_health::last_error.eq(&summary),
        ca_refresh_health::last_failure_at.eq(now),
        ca_refresh_health::failures.eq(ca_refresh_health::failures + 1),
    ))
    .execute(conn)?;
    if n == 0 {
        let inserted = diesel::insert_into(ca_refresh_health::table)
            .values((
                ca_refresh_health::token_cache.eq(token_cache),
                ca_refresh_health::last_error.eq(&summary),
                ca_refresh_health::failing_since.eq(now),
                ca_refresh_health::last_failure_at.eq(now),
                ca_refresh_health::failures.eq(1),
            ))
            .execute(conn);
        // A concurrent failure inserted it first: count this one on its row.
        if inserted.is_err() {
            diesel::update(
                ca_refresh_health::table.filter(ca_refresh_health::token_cache.eq(token_cache)),
            )
            .set((
                ca_refresh_health::last_error.eq(&summary),
                ca_refresh_health::last_failure_at.eq(now),
                ca_refresh_health::failures.eq(ca_refresh_health::failures + 1),
            ))
            .execute(conn)?;
        }
    }
    Ok(())
}

/// A refresh succeeded: the connection is no longer failing.
pub fn record_refresh_success(conn: &mut DbConnection, token_cache: &str) -> AppResult<()> {
    diesel::delete(ca_refresh_health::table.filter(ca_refresh_health::token_cache.eq(token_cache)))
        .execute(conn)?;
    Ok(())
}

/// The last error of a connection whose refresh is failing, and since when it fails.
pub fn refresh_failure(
    conn: &mut DbConnection,
    token_cache: &str,
) -> AppResult<Option<(String, NaiveDateTime)>> {
    Ok(ca_refresh_health::table
        .filter(ca_refresh_health::token_cache.eq(token_cache))
        .select((
            ca_refresh_health::last_error,
            ca_refresh_health::failing_since,
        ))
        .first(conn)
        .optional()?)
}

/// Forgets a deleted connection.
pub fn delete_refresh_health(conn: &mut DbConnection, token_cache: &str) -> AppResult<()> {
    record_refresh_success(conn, token_cache)
}

/// Words for a failed refresh that name no token, secret, address or provider body: the
/// OAuth error code a provider answered, or what kind of failure it was.
pub fn summary_of(e: &super::client::OAuthError) -> String {
    use super::client::OAuthError;
    match e {
        OAuthError::Unreachable { .. } | OAuthError::Refused { .. } => {
            "the provider could not be reached".into()
        }
        OAuthError::Timeout { .. } => "the provider did not answer in time".into(),
        _ if e.is_invalid_grant() => {
            "invalid_grant: the provider no longer accepts the refresh token".into()
        }
        // The code is the provider's text: only an OAuth-style word of it is kept.
        OAuthError::Provider { status, error, .. } => {
            let code: String = error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(40)
                .collect();
            format!("the provider answered HTTP {status} ({code})")
        }
        OAuthError::MissingToken { status } => {
            format!("the provider answered HTTP {status} without an access token")
        }
        OAuthError::InvalidTokenType => "the provider issued an invalid token type".into(),
        OAuthError::NotConfigured(field) => format!("{field} is not set for the Connected App"),
        _ => "the provider's answer could not be used".into(),
    }
}
