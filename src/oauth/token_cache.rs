//! Which Token Cache is whose. A connection is identified by its owner and app — the row's
//! `user` and `connected_app` columns — never by its name alone: names are `<app>-<user>`
//! (`<app>-` for the app's own client-credentials token), as Frappe makes them, and different
//! pairs can make the same name (app `a` with user `mary-jane@x`, app `a-mary` with user
//! `jane@x`). This module is the only place that composes a name; every lookup goes by the
//! name (the primary key, so it stays one indexed read) *and* checks the columns.

use chrono::NaiveDateTime;

use crate::db::DbConnection;
use crate::doc::row::Sql;
use crate::doc::{store, Doc};
use crate::error::{AppError, AppResult};
use crate::frappe::meta::TOKEN_CACHE;
use crate::frappe::time;

/// The name Frappe gives a Token Cache: `<app>-<user>`, `<app>-` without a user.
pub fn name(app: &str, user: Option<&str>) -> String {
    format!("{app}-{}", user.unwrap_or(""))
}

/// One connection: a Connected App and the user it belongs to (`None`: the app itself).
#[derive(Debug, Clone)]
pub struct Key {
    pub app: String,
    pub user: Option<String>,
}

impl Key {
    pub fn user(app: &str, user: &str) -> Key {
        Key {
            app: app.to_string(),
            user: Some(user.to_string()),
        }
    }

    /// The app's own (client credentials) token.
    pub fn app_itself(app: &str) -> Key {
        Key {
            app: app.to_string(),
            user: None,
        }
    }

    /// The name this connection's row has (or gets).
    pub fn name(&self) -> String {
        name(&self.app, self.user.as_deref())
    }

    /// Whether a row's `connected_app` and `user` columns are this connection's. Names compare
    /// case-insensitively, as the database compares them; an empty `user` is the app itself.
    pub fn matches_columns(&self, connected_app: Option<&str>, user: Option<&str>) -> bool {
        let same = |a: &str, b: &str| a == b || a.to_lowercase() == b.to_lowercase();
        let user = user.filter(|u| !u.is_empty());
        connected_app.is_some_and(|a| same(a, &self.app))
            && match (user, self.user.as_deref()) {
                (None, None) => true,
                (Some(a), Some(b)) => same(a, b),
                _ => false,
            }
    }

    pub fn matches(&self, tc: &Doc) -> bool {
        self.matches_columns(tc.row.get_str("connected_app"), tc.row.get_str("user"))
    }
}

/// What a connection's name holds.
pub enum Slot {
    /// This connection's own row.
    Own(Box<Doc>),
    /// No row has the name yet.
    Free(String),
    /// The name belongs to another connection (or to a row whose columns do not match it).
    Taken(String),
}

/// Loads the row that holds a connection's name and tells whose it is.
pub fn slot(conn: &mut DbConnection, key: &Key) -> AppResult<Slot> {
    let name = key.name();
    Ok(match store::load(conn, &TOKEN_CACHE, &name)? {
        Some(tc) if key.matches(&tc) => Slot::Own(Box::new(tc)),
        Some(tc) => Slot::Taken(tc.name().to_string()),
        None => Slot::Free(name),
    })
}

/// The connection's own row, if it has one.
pub fn load(conn: &mut DbConnection, key: &Key) -> AppResult<Option<Doc>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_app_dash_user_and_different_pairs_can_make_the_same_one() {
        assert_eq!(
            name("a", Some("mary-jane@corp.example")),
            "a-mary-jane@corp.example"
        );
        assert_eq!(
            name("a-mary", Some("jane@corp.example")),
            "a-mary-jane@corp.example"
        );
        assert_eq!(name("a", None), "a-");
        assert_eq!(Key::app_itself("a").name(), "a-");
    }

    #[test]
    fn only_the_rows_own_app_and_user_match_whatever_its_name() {
        let jane = Key::user("a-mary", "jane@corp.example");
        assert!(jane.matches_columns(Some("a-mary"), Some("jane@corp.example")));
        assert!(jane.matches_columns(Some("A-Mary"), Some("JANE@corp.example")));
        // mary-jane's connection to `a` has jane's name for `a-mary`, but not her columns.
        assert!(!jane.matches_columns(Some("a"), Some("mary-jane@corp.example")));
        assert!(!jane.matches_columns(Some("a-mary"), None));
        assert!(!jane.matches_columns(None, Some("jane@corp.example")));
        // The app's own token has no user (NULL or empty, as Frappe leaves it).
        let own = Key::app_itself("a");
        assert!(own.matches_columns(Some("a"), None));
        assert!(own.matches_columns(Some("a"), Some("")));
        assert!(!own.matches_columns(Some("a"), Some("mary-jane@corp.example")));
    }
}
