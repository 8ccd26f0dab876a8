//! The typed view over a Token Cache row: domain code reads and writes its fields here, by
//! name once, never through `row.set("state", …)`.

use std::borrow::{Borrow, BorrowMut};

use chrono::NaiveDateTime;
use serde_json::Value;

use super::identity::Key;
use crate::doc::{ChildRow, Doc, Row};
use crate::frappe::meta::TOKEN_CACHE;
use crate::frappe::random_name;

/// A Token Cache document seen through its fields. `D` is how the document is held: owned
/// (`Doc`, to change and save it), borrowed (`&Doc`) or shared (`Arc<Doc>`, from the cache).
#[derive(Debug, Clone)]
pub struct TokenCache<D = Doc>(D);

impl<D: Borrow<Doc>> TokenCache<D> {
    /// The view of a Token Cache document.
    pub fn of(doc: D) -> TokenCache<D> {
        TokenCache(doc)
    }

    pub fn doc(&self) -> &Doc {
        self.0.borrow()
    }

    pub fn into_doc(self) -> D {
        self.0
    }

    pub fn name(&self) -> &str {
        self.doc().name()
    }

    fn text(&self, field: &str) -> Option<&str> {
        self.doc().row.get_str(field)
    }

    /// `connected_app`: the Connected App this connection is to.
    pub fn app(&self) -> Option<&str> {
        self.text("connected_app")
    }

    /// `user`: whose connection this is (empty or unset: the app's own token).
    pub fn user(&self) -> Option<&str> {
        self.text("user")
    }

    /// Whether the row is `key`'s connection: its `connected_app` and `user` columns are the
    /// key's, whatever its name says (see `identity`).
    pub fn is_of(&self, key: &Key) -> bool {
        key.matches_columns(self.app(), self.user())
    }

    /// The pending authorization's `state` (empty when none is pending).
    pub fn state(&self) -> &str {
        self.text("state").unwrap_or_default()
    }

    pub fn success_uri(&self) -> Option<&str> {
        self.text("success_uri")
    }

    /// `expires_in`: the access token's lifetime in seconds, from when it was received.
    pub fn expires_in(&self) -> i64 {
        self.doc().row.get_i64("expires_in").unwrap_or(0)
    }

    pub fn token_type(&self) -> Option<&str> {
        self.text("token_type")
    }

    /// The scopes granted, in order.
    pub fn scopes(&self) -> Vec<String> {
        self.doc().child_values("scopes", "scope")
    }

    pub fn modified(&self) -> Option<NaiveDateTime> {
        self.doc().row.modified
    }
}

impl TokenCache<Doc> {
    /// A new row for a connection: its name made from the key, `connected_app` and `user`
    /// from it, the app's `provider_name`, no tokens yet.
    pub fn new(key: &Key, provider_name: Option<&str>, by: &str, now: NaiveDateTime) -> Self {
        let mut doc = Doc::new(&TOKEN_CACHE, key.name());
        doc.row.owner = Some(by.to_string());
        doc.row.creation = Some(now);
        let mut tc = TokenCache(doc);
        tc.touch(by, now);
        if let Some(user) = &key.user {
            tc.put("user", Value::String(user.clone()));
        }
        tc.put("connected_app", Value::String(key.app.clone()));
        tc.set_provider_name(provider_name);
        tc.put("expires_in", Value::from(0));
        tc
    }
}

impl<D: BorrowMut<Doc>> TokenCache<D> {
    fn doc_mut(&mut self) -> &mut Doc {
        self.0.borrow_mut()
    }

    fn put(&mut self, field: &str, v: Value) {
        self.doc_mut().row.set(field, v);
    }

    /// The last change: `modified` and `modified_by`.
    pub fn touch(&mut self, by: &str, now: NaiveDateTime) {
        let row = &mut self.doc_mut().row;
        row.modified = Some(now);
        row.modified_by = Some(by.to_string());
    }

    /// The Connected App's `provider_name`, fetched as Frappe's `fetch_from` does.
    pub fn set_provider_name(&mut self, provider_name: Option<&str>) {
        self.put(
            "provider_name",
            provider_name.map_or(Value::Null, |p| Value::String(p.to_string())),
        );
    }

    /// Keeps the `connected_app` as the app stores its name.
    pub fn set_app(&mut self, app: &str) {
        self.put("connected_app", Value::String(app.to_string()));
    }

    /// A pending authorization's `state`; `None` once it is used up.
    pub fn set_state(&mut self, state: Option<&str>) {
        self.put(
            "state",
            state.map_or(Value::Null, |s| Value::String(s.to_string())),
        );
    }

    /// Where to send the user after connecting; each flow sets it, clearing an earlier one.
    pub fn set_success_uri(&mut self, uri: Option<&str>) {
        self.put(
            "success_uri",
            uri.map_or(Value::Null, |s| Value::String(s.to_string())),
        );
    }

    /// The mask a Password field shows for a token (the token itself lives in `__Auth`).
    pub fn set_access_token_mask(&mut self, mask: String) {
        self.put("access_token", Value::String(mask));
    }

    pub fn set_refresh_token_mask(&mut self, mask: String) {
        self.put("refresh_token", Value::String(mask));
    }

    /// `expires_in` as a provider sent it (none: 0), kept within the column's range.
    pub fn set_expires_in(&mut self, seconds: Option<i64>) {
        self.put(
            "expires_in",
            Value::from(seconds.unwrap_or(0).clamp(0, i32::MAX as i64)),
        );
    }

    pub fn set_token_type(&mut self, token_type: &str) {
        self.put("token_type", Value::String(token_type.to_string()));
    }

    /// Replaces the granted scopes (a space-separated list, as providers send it). Returns
    /// the child field to save as replaced.
    pub fn set_scopes(&mut self, scope: &str, by: &str, now: NaiveDateTime) -> &'static str {
        let doc = self.doc_mut();
        let (name, creation) = (doc.row.name.clone(), doc.row.creation);
        let rows = scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .enumerate()
            .map(|(i, s)| {
                let mut r = Row::new(random_name());
                r.owner = Some(by.to_string());
                r.creation = creation;
                r.modified = Some(now);
                r.modified_by = Some(by.to_string());
                r.idx = i as i64 + 1;
                r.set("scope", Value::String(s.to_string()));
                r.set("parent", Value::String(name.clone()));
                r.set("parentfield", Value::String(SCOPES.into()));
                r.set("parenttype", Value::String(TOKEN_CACHE.doctype().into()));
                ChildRow {
                    row: r,
                    unsaved: true,
                }
            })
            .collect();
        if let Some(i) = TOKEN_CACHE
            .children
            .iter()
            .position(|c| c.fieldname == SCOPES)
        {
            doc.children[i] = rows;
        }
        SCOPES
    }
}

/// The child field of the granted scopes.
const SCOPES: &str = "scopes";
