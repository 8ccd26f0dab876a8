//! The typed view over a Connected App row: its fields by name once, and what the provider
//! client needs from it.

use std::borrow::{Borrow, BorrowMut};

use serde_json::Value;

use crate::db::DbConnection;
use crate::doc::Doc;
use crate::error::AppResult;
use crate::oauth::client::AppEndpoints;
use crate::secrets::Vault;

/// A Connected App document seen through its fields; `D` is how the document is held.
#[derive(Debug, Clone)]
pub struct ConnectedApp<D = Doc>(D);

impl<D: Borrow<Doc>> ConnectedApp<D> {
    pub fn of(doc: D) -> ConnectedApp<D> {
        ConnectedApp(doc)
    }

    pub fn doc(&self) -> &Doc {
        self.0.borrow()
    }

    pub fn name(&self) -> &str {
        self.doc().name()
    }

    /// A text field, `None` when unset or empty.
    fn text(&self, field: &str) -> Option<&str> {
        self.doc().row.get_str(field).filter(|v| !v.is_empty())
    }

    pub fn provider_name(&self) -> Option<&str> {
        self.doc().row.get_str("provider_name")
    }

    /// The OpenID discovery document's URL, when set.
    pub fn openid_configuration(&self) -> Option<&str> {
        self.text("openid_configuration")
    }

    /// The requested scopes, in order.
    pub fn scopes(&self) -> Vec<String> {
        self.doc().child_values("scopes", "scope")
    }

    /// What the provider client needs from the app, its client secret decrypted.
    pub fn endpoints(&self, vault: &Vault<'_>, conn: &mut DbConnection) -> AppResult<AppEndpoints> {
        let s = |f: &str| self.text(f).map(str::to_string);
        Ok(AppEndpoints {
            client_id: s("client_id").unwrap_or_default(),
            client_secret: vault.read(conn, "Connected App", self.name(), "client_secret")?,
            authorization_uri: s("authorization_uri"),
            token_uri: s("token_uri"),
            revocation_uri: s("revocation_uri"),
            redirect_uri: s("redirect_uri").unwrap_or_default(),
            scopes: self.scopes(),
            client_auth: crate::oauth::store::client_auth(conn, self.name())?,
            openid_configuration: s("openid_configuration"),
            query_params: self
                .doc()
                .child("query_parameters")
                .iter()
                .map(|c| {
                    (
                        c.row.get_str("key").unwrap_or_default().to_string(),
                        c.row.get_str("value").unwrap_or_default().to_string(),
                    )
                })
                .collect(),
        })
    }
}

impl<D: BorrowMut<Doc>> ConnectedApp<D> {
    /// This service's callback for the app (set on every save).
    pub fn set_redirect_uri(&mut self, uri: String) {
        self.0
            .borrow_mut()
            .row
            .set("redirect_uri", Value::String(uri));
    }
}
