//! Frappe's other ways of reaching a whitelisted method, turned into `/api/method/<name>`
//! before routing, so they run through exactly the same dispatch (authentication, method and
//! permission checks) as the canonical path:
//!
//! - `cmd`: Frappe's `app.py` runs `frappe.handler.handle()` for any request whose form
//!   (the query string, a form or JSON body) carries `cmd`, whatever its path. `frappe-client`
//!   sends most of its calls as `POST /` with a form holding `cmd`, and `GET /?cmd=…`.
//! - A trailing part after the method name: Frappe's `handle_rpc_call` keeps only what comes
//!   before the first `/` (`/api/method/frappe.auth.get_logged_user/` is that method);
//!   `frappe-client`'s `get_api`/`post_api` always add the `/`. The OAuth callback, whose name
//!   is followed by the app, keeps its own route.
//!
//! The query string is checked on every request (a substring test first); a body is read
//! only for unsafe methods on paths outside `/api/` (where Frappe would render a page), so
//! the API's hot paths are untouched.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::http::uri::{PathAndQuery, Uri};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web;

use crate::error::{AppError, ExcType, Status};
use crate::frappe::args::form_pairs;

const METHOD_PREFIX: &str = "/api/method/";
const CALLBACK: &str = "frappe.integrations.doctype.connected_app.connected_app.callback";

/// The middleware (`actix_web::middleware::from_fn`).
pub async fn frappe_rpc(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(name) = target(&mut req).await? {
        rewrite(&mut req, &name);
    }
    next.call(req).await
}

/// The method a request names other than by its path, if any (the raw path segment for a
/// trailing part, the decoded `cmd` otherwise).
async fn target(req: &mut ServiceRequest) -> Result<Option<Target>, actix_web::Error> {
    if let Some(cmd) = query_cmd(req.query_string()) {
        return Ok(Some(Target::Cmd(cmd)));
    }
    let path = req.path();
    if let Some(rest) = path.strip_prefix(METHOD_PREFIX) {
        if let Some((first, _)) = rest.split_once('/') {
            if !first.is_empty() && first != CALLBACK {
                return Ok(Some(Target::Segment(first.to_string())));
            }
        }
        return Ok(None);
    }
    if path.starts_with("/api/")
        || !matches!(
            *req.method(),
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        )
    {
        return Ok(None);
    }
    let ct = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let form = ct.starts_with("application/x-www-form-urlencoded");
    let json = ct.starts_with("application/json");
    if !form && !json {
        return Ok(None);
    }
    // The body is read within the configured limit (413 beyond it) and put back as it was.
    let body = match req.extract::<web::Bytes>().await {
        Ok(body) => body,
        Err(e) => {
            let status = e.as_response_error().status_code();
            let msg = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "The request body is too large."
            } else {
                "The request could not be read."
            };
            return Err(AppError::thrown(ExcType::ValidationError, msg)
                .with_status(Status(status.as_u16()))
                .into());
        }
    };
    req.set_payload(actix_web::dev::Payload::from(body.clone()));
    let cmd = if form {
        form_pairs(&body)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "cmd"))
            .map(|(_, v)| v)
    } else {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("cmd").and_then(|c| c.as_str()).map(str::to_string))
    };
    Ok(cmd.filter(|c| !c.is_empty()).map(Target::Cmd))
}

enum Target {
    /// A decoded method name (`cmd`).
    Cmd(String),
    /// A path segment, still percent-encoded.
    Segment(String),
}

/// `cmd` from a query string; cheap when there is none.
fn query_cmd(query: &str) -> Option<String> {
    if !query.contains("cmd=") {
        return None;
    }
    form_pairs(query.as_bytes())
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "cmd")
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// Points the request at `/api/method/<name>`, keeping its query string.
fn rewrite(req: &mut ServiceRequest, target: &Target) {
    let segment = match target {
        Target::Cmd(name) => encode_segment(name),
        Target::Segment(raw) => raw.clone(),
    };
    let pq = match req.query_string() {
        "" => format!("{METHOD_PREFIX}{segment}"),
        q => format!("{METHOD_PREFIX}{segment}?{q}"),
    };
    let Ok(pq) = pq.parse::<PathAndQuery>() else {
        return;
    };
    let mut parts = req.head().uri.clone().into_parts();
    parts.path_and_query = Some(pq);
    let Ok(uri) = Uri::from_parts(parts) else {
        return;
    };
    req.match_info_mut().get_mut().update(&uri);
    req.head_mut().uri = uri;
}

/// Percent-encodes everything but unreserved characters (a method name may hold spaces).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmd_is_found_only_as_a_key() {
        assert_eq!(query_cmd("cmd=logout").as_deref(), Some("logout"));
        assert_eq!(
            query_cmd("a=1&cmd=frappe.client.get_value&b=2").as_deref(),
            Some("frappe.client.get_value")
        );
        assert_eq!(query_cmd("xcmd=logout"), None);
        assert_eq!(query_cmd("cmd="), None);
        assert_eq!(query_cmd("fields=%5B%22name%22%5D"), None);
    }

    #[test]
    fn names_are_encoded_as_one_segment() {
        assert_eq!(encode_segment("frappe.client.get"), "frappe.client.get");
        assert_eq!(
            encode_segment("Connected App/has_token"),
            "Connected%20App%2Fhas_token"
        );
    }
}
