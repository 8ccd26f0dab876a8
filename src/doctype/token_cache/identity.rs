//! Which Token Cache is whose. A connection is identified by its owner and app — the row's
//! `user` and `connected_app` columns — never by its name alone: names are `<app>-<user>`
//! (`<app>-` for the app's own client-credentials token), as Frappe makes them, and different
//! pairs can make the same name (app `a` with user `mary-jane@x`, app `a-mary` with user
//! `jane@x`). This module is the only place that composes a name (nothing parses one); every
//! lookup (`lookup`) goes by the name (the primary key, so it stays one indexed read) *and*
//! checks the columns.

/// The name Frappe gives a Token Cache: `<app>-<user>`, `<app>-` without a user.
pub(super) fn name(app: &str, user: Option<&str>) -> String {
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
}
