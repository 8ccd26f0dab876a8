//! Typed Diesel lookups for the hot paths: whether a document exists and its `modified`
//! (which validates the document cache), in one indexed, prepared query each.

use crate::db::schema::{connected_app as ca, token_cache as tc};
use crate::db::DbConnection;
use crate::error::AppResult;
use crate::frappe::meta::{DocMeta, CONNECTED_APP, TOKEN_CACHE};
use chrono::NaiveDateTime;
use diesel::prelude::*;

/// The stored name of a document (names match case-insensitively); the outer `None` means
/// "no typed query for this DocType".
pub fn exists(
    conn: &mut DbConnection,
    meta: &DocMeta,
    name: &str,
) -> AppResult<Option<Option<String>>> {
    let found = if std::ptr::eq(meta, &CONNECTED_APP) {
        ca::table
            .filter(ca::name.eq(name))
            .select(ca::name)
            .first::<String>(conn)
            .optional()?
    } else if std::ptr::eq(meta, &TOKEN_CACHE) {
        tc::table
            .filter(tc::name.eq(name))
            .select(tc::name)
            .first::<String>(conn)
            .optional()?
    } else {
        return Ok(None);
    };
    Ok(Some(found))
}

/// A document's stored name and its `modified`.
pub type NameAndModified = (String, Option<NaiveDateTime>);

/// The stored name and `modified` of a document, in one indexed lookup; the outer `None`
/// means "no typed query for this DocType".
pub fn modified_of(
    conn: &mut DbConnection,
    meta: &DocMeta,
    name: &str,
) -> AppResult<Option<Option<NameAndModified>>> {
    let found = if std::ptr::eq(meta, &CONNECTED_APP) {
        ca::table
            .filter(ca::name.eq(name))
            .select((ca::name, ca::modified))
            .first(conn)
            .optional()?
    } else if std::ptr::eq(meta, &TOKEN_CACHE) {
        tc::table
            .filter(tc::name.eq(name))
            .select((tc::name, tc::modified))
            .first(conn)
            .optional()?
    } else {
        return Ok(None);
    };
    Ok(Some(found))
}
