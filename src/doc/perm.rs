//! What a user may do with a document, and Frappe's 403s when it may not. Which user may do
//! what with which DocType is the DocType's rule (`doctype::permits`).

use crate::auth::CurrentUser;
use crate::error::{AppError, ServerMessage};
use crate::frappe::meta::DocMeta;

/// What a user may do with a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Perm {
    Read,
    Write,
    Create,
    Delete,
}

impl Perm {
    pub fn word(self) -> &'static str {
        match self {
            Perm::Read => "read",
            Perm::Write => "write",
            Perm::Create => "create",
            Perm::Delete => "delete",
        }
    }
}

/// Whether the user has any access to the DocType at all (Frappe's role permission check).
pub fn has_doctype_access(user: &CurrentUser) -> bool {
    !user.is_guest()
}

/// Frappe's 403 for a Guest (or any user without a role permission on the DocType).
pub fn no_doctype_access(user: &CurrentUser, meta: &DocMeta, for_document: bool) -> AppError {
    let mut msg = format!(
        "User <strong>{}</strong> does not have doctype access via role permission for document <strong>{}</strong>",
        user.name,
        meta.doctype()
    );
    if for_document {
        msg.push_str(&format!(
            "<br>User <strong>{}</strong> does not have access to this document",
            user.name
        ));
        AppError::permission(vec![ServerMessage::plain(msg)], None)
    } else {
        AppError::permission(
            vec![ServerMessage::plain(msg)],
            Some(format!("No permission for {}", meta.doctype())),
        )
    }
}

/// Frappe's 403 for a document the user may not `perm`.
pub fn forbidden(user: &CurrentUser, meta: &DocMeta, perm: Perm, name: Option<&str>) -> AppError {
    if !has_doctype_access(user) {
        return no_doctype_access(user, meta, true);
    }
    let access = ServerMessage::plain(format!(
        "User <strong>{}</strong> does not have access to this document: {} - {}",
        user.name,
        meta.doctype(),
        name.unwrap_or("None")
    ));
    match perm {
        Perm::Read => AppError::permission(vec![access], None),
        Perm::Delete => AppError::permission(
            vec![
                access,
                ServerMessage::raised(format!(
                    "User not allowed to delete {}: {}",
                    meta.doctype(),
                    name.unwrap_or("None")
                )),
            ],
            None,
        ),
        Perm::Write | Perm::Create => AppError::permission(
            vec![access],
            Some(format!(
                "You need the '{}' permission on <strong>{}</strong> {} to perform this action.",
                perm.word(),
                meta.doctype(),
                name.unwrap_or("")
            )),
        ),
    }
}
