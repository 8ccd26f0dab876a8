//! What every handler shares: the call a method handler gets ([`Call`]) and Frappe's
//! envelopes (`{"data": …}`, `{"message": …}`); a document name as a URL path segment.

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::auth::CurrentUser;
use crate::error::AppError;
use crate::frappe::args::Args;
use crate::frappe::meta::{doc_meta, DocMeta};
use crate::state::AppState;

/// `{"data": v}`.
pub fn data(v: impl Serialize) -> HttpResponse {
    #[derive(Serialize)]
    struct Data<T> {
        data: T,
    }
    HttpResponse::Ok().json(Data { data: v })
}

/// `{"message": v}`.
pub fn message(v: impl Serialize) -> HttpResponse {
    #[derive(Serialize)]
    struct Message<T> {
        message: T,
    }
    HttpResponse::Ok().json(Message { message: v })
}

/// Everything a method handler gets.
pub struct Call {
    pub state: web::Data<AppState>,
    pub user: CurrentUser,
    pub args: Args,
    pub method: Method,
    pub req: HttpRequest,
    /// Answering under /api/v2 (`data` instead of `message`).
    pub v2: bool,
}

impl Call {
    /// Wraps a result the way the API version expects.
    pub fn reply(&self, v: impl Serialize) -> HttpResponse {
        if self.v2 {
            data(v)
        } else {
            message(v)
        }
    }

    pub fn require_login(&self, name: &str) -> Result<(), AppError> {
        if self.user.is_guest() {
            Err(AppError::not_whitelisted(name))
        } else {
            Ok(())
        }
    }

    pub fn require_post(&self) -> Result<(), AppError> {
        self.require_methods(&[Method::POST, Method::PUT])
    }

    /// Frappe's `@frappe.whitelist(methods=[…])`: any other HTTP method is 403 "Not permitted".
    pub fn require_methods(&self, allowed: &[Method]) -> Result<(), AppError> {
        if allowed.contains(&self.method) {
            Ok(())
        } else {
            Err(AppError::not_permitted())
        }
    }
}

/// A document name as one URL path segment: unreserved characters (and `@`) as they are,
/// everything else percent-encoded, so a name can neither leave the path nor break the header.
pub fn path_segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The served DocType, or Frappe's 404 "DocType … not found".
pub fn meta_or_404(doctype: &str) -> Result<&'static DocMeta, AppError> {
    doc_meta(doctype).ok_or_else(|| AppError::not_found("DocType", doctype))
}
