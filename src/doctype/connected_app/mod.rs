//! The Connected App DocType's rules: random names, who may do what, `validate` (the redirect
//! URI and the provider endpoints), the link check before delete and what goes with a deleted
//! app; and the typed view over its row ([`ConnectedApp`]).

pub mod store;
mod view;

pub use view::ConnectedApp;

use crate::db::DbConnection;
use crate::doc::perm::Perm;
use crate::doc::Doc;
use crate::error::{AppError, AppResult, ExcType};
use crate::frappe::random_name;

/// The callback path every Connected App's redirect URI ends with.
pub const CALLBACK_PATH: &str =
    "/api/method/frappe.integrations.doctype.connected_app.connected_app.callback";

/// Frappe's `autoname: hash`.
pub fn autoname() -> String {
    random_name()
}

/// Role All may read Connected Apps, nothing more (System Manager: everything, in the engine).
pub fn permits(perm: Perm) -> bool {
    perm == Perm::Read
}

/// The provider endpoints a Connected App may be given (each an absolute http(s) URL).
const ENDPOINTS: [&str; 6] = [
    "authorization_uri",
    "token_uri",
    "revocation_uri",
    "userinfo_uri",
    "introspection_uri",
    "openid_configuration",
];

/// Frappe's `validate`: the redirect URI is this service's callback for the app, and every
/// endpoint given is an http(s) URL.
pub fn validate(public_url: &str, doc: &mut Doc) -> AppResult<()> {
    let uri = format!("{public_url}{CALLBACK_PATH}/{}", doc.row.name);
    ConnectedApp::of(&mut *doc).set_redirect_uri(uri);
    for field in ENDPOINTS {
        if let Some(u) = doc.row.get_str(field) {
            if !u.is_empty() {
                validate_endpoint(u, field)?;
            }
        }
    }
    Ok(())
}

/// Provider endpoints must be absolute http(s) URLs.
pub fn validate_endpoint(u: &str, field: &str) -> AppResult<()> {
    match url::Url::parse(u) {
        Ok(p) if (p.scheme() == "http" || p.scheme() == "https") && p.host().is_some() => Ok(()),
        _ => Err(AppError::validation(format!(
            "{field} must be an http or https URL."
        ))),
    }
}

/// Frappe's `on_trash` link check: an app that Token Caches link to cannot be deleted.
pub fn on_trash(conn: &mut DbConnection, doc: &Doc) -> AppResult<()> {
    let linked = store::linked_token_caches(conn, doc.name())?;
    if let Some(first) = linked.first() {
        return Err(AppError::thrown(
            ExcType::LinkExistsError,
            format!(
                "Cannot delete or cancel because Connected App <a href=\"/app/Form/Connected App/{0}\">{0}</a> is linked with Token Cache <a href=\"/app/Form/Token Cache/{1}\">{1}</a> ",
                doc.name(),
                first
            ),
        ));
    }
    Ok(())
}

/// A deleted app's own settings (PKCE, keep warm) go with it.
pub fn on_delete(conn: &mut DbConnection, doc: &Doc) -> AppResult<()> {
    crate::oauth::store::delete_app_settings(conn, doc.name())
}

#[cfg(test)]
mod tests;
