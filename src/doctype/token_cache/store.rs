//! Typed Diesel lookups of `tabToken Cache` for the hot paths: whether a row exists and its
//! `modified` (which validates the document cache), in one indexed, prepared query each.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::token_cache as tc;
use crate::db::DbConnection;
use crate::error::AppResult;

/// The stored name of a Token Cache (names match case-insensitively).
pub fn stored_name(conn: &mut DbConnection, name: &str) -> AppResult<Option<String>> {
    Ok(tc::table
        .filter(tc::name.eq(name))
        .select(tc::name)
        .first::<String>(conn)
        .optional()?)
}

/// The stored name and `modified` of a Token Cache, in one indexed lookup.
pub fn modified_of(
    conn: &mut DbConnection,
    name: &str,
) -> AppResult<Option<(String, Option<NaiveDateTime>)>> {
    Ok(tc::table
        .filter(tc::name.eq(name))
        .select((tc::name, tc::modified))
        .first(conn)
        .optional()?)
}
