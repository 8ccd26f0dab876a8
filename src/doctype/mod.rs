//! The DocTypes' own rules, a module each (Frappe's controllers): naming, permissions,
//! validation, the hooks around save and delete, and the typed views over their rows. The
//! engine (`doc/`) calls the functions here at fixed points; each chooses the DocType's rule by
//! the `DocKind` of its metadata, so the engine never asks which DocType it holds.

pub mod connected_app;
pub mod token_cache;

use chrono::NaiveDateTime;
use serde_json::{Map, Value};

use crate::auth::CurrentUser;
use crate::db::DbConnection;
use crate::doc::perm::Perm;
use crate::doc::Doc;
use crate::error::AppResult;
use crate::frappe::meta::{DocKind, DocMeta};
use crate::oauth::revocation::Revocation;
use crate::state::{AppState, SharedState};

/// The name a new document gets (Frappe's `autoname`), from the body that creates it.
pub fn autoname(meta: &DocMeta, body: &Map<String, Value>) -> String {
    match meta.kind {
        DocKind::ConnectedApp => connected_app::autoname(),
        DocKind::TokenCache => token_cache::autoname(body),
    }
}

/// What a user who is neither Guest nor System Manager may do with a document of `owner`
/// (`None`: a new document).
pub fn permits(meta: &DocMeta, user: &CurrentUser, perm: Perm, owner: Option<&str>) -> bool {
    match meta.kind {
        DocKind::ConnectedApp => connected_app::permits(perm),
        DocKind::TokenCache => token_cache::permits(user, perm, owner),
    }
}

/// Whether such a user is listed only the documents it owns (`if_owner`).
pub fn lists_own_only(meta: &DocMeta) -> bool {
    match meta.kind {
        DocKind::ConnectedApp => false,
        DocKind::TokenCache => true,
    }
}

/// The stored name of a document (names match case-insensitively), in one indexed lookup.
pub fn stored_name(
    conn: &mut DbConnection,
    meta: &DocMeta,
    name: &str,
) -> AppResult<Option<String>> {
    match meta.kind {
        DocKind::ConnectedApp => connected_app::store::stored_name(conn, name),
        DocKind::TokenCache => token_cache::store::stored_name(conn, name),
    }
}

/// A document's stored name and its `modified`.
pub type NameAndModified = (String, Option<NaiveDateTime>);

/// The stored name and `modified` of a document, in one indexed lookup (which decides whether
/// a cached copy is current).
pub fn modified_of(
    conn: &mut DbConnection,
    meta: &DocMeta,
    name: &str,
) -> AppResult<Option<NameAndModified>> {
    match meta.kind {
        DocKind::ConnectedApp => connected_app::store::modified_of(conn, name),
        DocKind::TokenCache => token_cache::store::modified_of(conn, name),
    }
}

/// Frappe's `validate`, before every save (inside its transaction).
pub fn validate(state: &AppState, conn: &mut DbConnection, doc: &mut Doc) -> AppResult<()> {
    match doc.meta.kind {
        DocKind::ConnectedApp => connected_app::validate(&state.public_url, doc),
        DocKind::TokenCache => token_cache::validate(conn, doc),
    }
}

/// Before an update applies a body: the fields the save must keep as stored (an error when
/// the body tries to change one).
pub fn kept_on_update(
    doc: &Doc,
    body: &Map<String, Value>,
) -> AppResult<Vec<(&'static str, Value)>> {
    match doc.meta.kind {
        DocKind::ConnectedApp => Ok(Vec::new()),
        DocKind::TokenCache => token_cache::kept_on_update(doc, body),
    }
}

/// After a body is applied by an insert or an update (inside its transaction);
/// `previous_modified` is the document's `modified` before this save (`None`: an insert).
pub fn on_save(
    conn: &mut DbConnection,
    doc: &Doc,
    body: &Map<String, Value>,
    previous_modified: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> AppResult<()> {
    match doc.meta.kind {
        DocKind::ConnectedApp => Ok(()),
        DocKind::TokenCache => token_cache::on_save(conn, doc, body, previous_modified, now),
    }
}

/// What a delete does after it is committed, prepared before it ([`prepare_delete`]).
pub struct AfterDelete(Option<Revocation>);

/// Before a delete, outside its transaction: reads what [`after_delete`] needs once the
/// document is gone (a Token Cache's tokens to revoke).
pub async fn prepare_delete(state: &SharedState, meta: &DocMeta, name: &str) -> AfterDelete {
    AfterDelete(match meta.kind {
        DocKind::ConnectedApp => None,
        DocKind::TokenCache => token_cache::prepare_delete(state, name).await,
    })
}

/// Frappe's `on_trash`, inside the delete's transaction before the rows go: may refuse.
pub fn on_trash(conn: &mut DbConnection, doc: &Doc) -> AppResult<()> {
    match doc.meta.kind {
        DocKind::ConnectedApp => connected_app::on_trash(conn, doc),
        DocKind::TokenCache => Ok(()),
    }
}

/// Inside the delete's transaction, after the document's rows: what goes with it.
pub fn on_delete(conn: &mut DbConnection, doc: &Doc) -> AppResult<()> {
    match doc.meta.kind {
        DocKind::ConnectedApp => connected_app::on_delete(conn, doc),
        DocKind::TokenCache => token_cache::on_delete(conn, doc),
    }
}

/// After the delete is committed (revocation at the provider); never fails the delete.
pub async fn after_delete(state: &AppState, prepared: AfterDelete) {
    token_cache::after_delete(state, prepared.0).await;
}
