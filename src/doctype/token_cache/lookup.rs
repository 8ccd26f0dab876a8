//! Finding a connection's Token Cache: by its name (the primary key, one indexed read) and
//! then its `connected_app` and `user` columns, which must be the connection's.

use chrono::NaiveDateTime;

use super::identity::{name, Key};
use super::view::TokenCache;
use crate::db::DbConnection;
use crate::doc::row::Sql;
use crate::doc::store;
use crate::error::{AppError, AppResult};
use crate::frappe::meta::TOKEN_CACHE;
use crate::frappe::time;

/// What a connection's name holds.
pub enum Slot {
    /// This connection's own row.
    Own(Box<TokenCache>),
    /// No row has the name yet.
    Free(String),
    /// The name belongs to another connection (or to a row whose columns do not match it).
    Taken(String),
}

/// Loads the row that holds a connection's name and tells whose it is.
pub fn slot(conn: &mut DbConnection, key: &Key) -> AppResult<Slot> {
    let name = key.name();
    Ok(
        match store::load(conn, &TOKEN_CACHE, &name)?.map(TokenCache::of) {
            Some(tc) if tc.is_of(key) => Slot::Own(Box::new(tc)),
            Some(tc) => Slot::Taken(tc.name().to_string()),
            None => Slot::Free(name),
        },
    )
}

/// The connection's own row, if it has one.
pub fn load(conn: &mut DbConnection, key: &Key) -> AppResult<Option<TokenCache>> {
    Ok(match slot(conn, key)? {
        Slot::Own(tc) => Some(*tc),
        Slot::Free(_) | Slot::Taken(_) => None,
    })
}

/// The refusal when a connection's name is already another connection's: Frappe's duplicate
/// error. It names only the connection asked for, never the row's own user or app.
pub fn taken(key: &Key) -> AppError {
    let whose = match &key.user {
        Some(u) => format!("the connection of {u} to Connected App {}", key.app),
        None => format!("the token of Connected App {} itself", key.app),
    };
    AppError::thrown(
        crate::error::ExcType::DuplicateEntryError,
        format!(
            "The Token Cache name of {whose} is already used by another connection (a Connected \
             App name and a user name make the same name). Ask a System Manager to rename the \
             Connected App."
        ),
    )
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
    /// The sealed extras of the last token response (`ca_token_extra`).
    pub extra: Option<String>,
    /// The last token response had no `expires_in`.
    pub never_expires: bool,
}

/// The answer of [`read`].
pub enum Read {
    /// There is no Connected App of that name.
    NoApp,
    /// The app exists; its stored name, and the connection's row when it has one.
    App {
        app: String,
        token: Option<TokenRead>,
    },
}

/// Resolves the Connected App and reads the connection of `user` to it (`None`: the app's own
/// token) in one query: the app by its name, the Token Cache by its primary key, then its
/// `connected_app` and `user` columns must be the app's stored name and the user.
pub fn read(conn: &mut DbConnection, app: &str, user: Option<&str>) -> AppResult<Read> {
    let tc_name = name(app, user);
    let ty = store::text_type(conn);
    let sql = format!(
        "SELECT CAST(ca.`name` AS {ty}), CAST(tc.`name` AS {ty}), \
         CAST(tc.`connected_app` AS {ty}), CAST(tc.`user` AS {ty}), CAST(tc.`modified` AS {ty}), \
         CAST(ts.`received_at` AS {ty}), CAST(ts.`needs_reconnect` AS {ty}), \
         CAST(a.`password` AS {ty}), CAST(a.`encrypted` AS {ty}), \
         CAST(te.`extra` AS {ty}), CAST(te.`never_expires` AS {ty}) \
         FROM `tabConnected App` ca \
         LEFT JOIN `tabToken Cache` tc ON tc.`name` = ? \
         LEFT JOIN `ca_token_state` ts ON ts.`token_cache` = ? \
         LEFT JOIN `ca_token_extra` te ON te.`token_cache` = ? \
         LEFT JOIN `__Auth` a ON a.`doctype` = 'Token Cache' AND a.`name` = ? AND a.`fieldname` = 'access_token' \
         WHERE ca.`name` = ? LIMIT 1"
    );
    let rows = Sql::new(sql)
        .bind_text(&tc_name)
        .bind_text(&tc_name)
        .bind_text(&tc_name)
        .bind_text(&tc_name)
        .bind_text(app)
        .rows(conn)?;
    let Some(mut row) = rows.into_iter().next() else {
        return Ok(Read::NoApp);
    };
    let mut col = |i: usize| row.0.get_mut(i).and_then(Option::take);
    let app = col(0).unwrap_or_default();
    let Some(stored_name) = col(1) else {
        return Ok(Read::App { app, token: None });
    };
    let key = Key {
        app: app.clone(),
        user: user.map(str::to_string),
    };
    if !key.matches_columns(col(2).as_deref(), col(3).as_deref()) {
        return Ok(Read::App { app, token: None });
    }
    let modified = col(4).as_deref().and_then(time::parse);
    let received_at = col(5).as_deref().and_then(time::parse);
    let needs_reconnect = col(6).is_some_and(|v| v.trim() != "0");
    let encrypted = col(8).is_some_and(|v| v.trim() != "0");
    let access_token = col(7).map(|p| (p, encrypted));
    let extra = col(9);
    let never_expires = col(10).is_some_and(|v| v.trim() != "0");
    Ok(Read::App {
        app,
        token: Some(TokenRead {
            stored_name,
            modified,
            received_at,
            needs_reconnect,
            access_token,
            extra,
            never_expires,
        }),
    })
}
