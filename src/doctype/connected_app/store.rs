//! Connected App queries: typed Diesel lookups of `tabConnected App` for the hot paths (whether
//! a row exists, its `modified`, each one indexed, prepared query) and the Token Caches linking to
//! an app.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::connected_app as ca;
use crate::db::DbConnection;
use crate::doc::row::Sql;
use crate::error::AppResult;

/// The stored name of a Connected App (names match case-insensitively).
pub fn stored_name(conn: &mut DbConnection, name: &str) -> AppResult<Option<String>> {
    Ok(ca::table
        .filter(ca::name.eq(name))
        .select(ca::name)
        .first::<String>(conn)
        .optional()?)
}

/// The stored name and `modified` of a Connected App, in one indexed lookup.
pub fn modified_of(
    conn: &mut DbConnection,
    name: &str,
) -> AppResult<Option<(String, Option<NaiveDateTime>)>> {
    Ok(ca::table
        .filter(ca::name.eq(name))
        .select((ca::name, ca::modified))
        .first(conn)
        .optional()?)
}

/// The Token Caches linking to a Connected App, newest first (for LinkExistsError).
pub fn linked_token_caches(conn: &mut DbConnection, app: &str) -> AppResult<Vec<String>> {
    let sql = format!(
        "SELECT CAST(`name` AS {}) AS c0 FROM `tabToken Cache` WHERE `connected_app` = ? ORDER BY `modified` DESC",
        crate::doc::store::text_type(conn)
    );
    let rows = Sql::new(sql).bind_text(app).rows(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| r.0.into_iter().next().flatten())
        .collect())
}
