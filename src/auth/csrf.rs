//! Cross-site request forgery defences, as Frappe has them and a little more:
//!
//! - The session of the service's own pages holds a CSRF token (`csrf_token` in
//!   `tabSessions.sessiondata`, as Frappe's `frappe.sessions.get_csrf_token` stores it), made
//!   when a page is first served to that session. Pages send it as `X-Frappe-CSRF-Token`; an
//!   unsafe request (POST, PUT, PATCH, DELETE) on such a session without it fails with Frappe's
//!   `CSRFTokenError` (Frappe's `HTTPRequest.validate_csrf_token`). Sessions that never served a
//!   page (made by `POST /api/method/login`, as `frappe-client` does) have no token and need
//!   none, exactly as in Frappe.
//! - A cookie-authenticated write, and every login, whose browser-declared origin (`Origin`,
//!   else `Referer`) is another site is refused unless the origin is listed in `allow_cors`.
//!   Same origin means the public URL's origin, or the request's own `Host` (a browser cannot
//!   make another site's page send our `Host` together with our cookies).
//! - Document methods that change data do not run on a GET a browser sends for a top-level
//!   navigation or on behalf of another site (`Sec-Fetch-*`); a script's GET still does.

use actix_web::http::header::{HOST, ORIGIN, REFERER};
use actix_web::http::Method;
use actix_web::HttpRequest;
use subtle::ConstantTimeEq;

use super::store;
use super::CurrentUser;
use crate::error::AppError;
use crate::state::AppState;

/// The header the pages (and Frappe's desk) send the token in.
pub const HEADER: &str = "X-Frappe-CSRF-Token";

/// Frappe's `UNSAFE_HTTP_METHODS`.
pub fn is_unsafe(method: &Method) -> bool {
    *method == Method::POST
        || *method == Method::PUT
        || *method == Method::PATCH
        || *method == Method::DELETE
}

/// Frappe's answer to a forged request: 400 `CSRFTokenError` "Invalid Request" (Frappe sets
/// `disable_traceback`, so the body has no `exception`/`exc`).
pub fn error() -> AppError {
    AppError::csrf("Invalid Request")
}

/// The origin the browser declares for a request: `Origin`, else the origin of `Referer`.
/// `Some("null")` for an opaque origin (sandboxed frames, some redirects); `None` when the
/// request says nothing (scripts, curl).
fn declared_origin(req: &HttpRequest) -> Option<String> {
    if let Some(v) = req.headers().get(ORIGIN) {
        return Some(v.to_str().unwrap_or("null").trim().to_string());
    }
    let referer = req.headers().get(REFERER)?.to_str().ok()?;
    Some(match url::Url::parse(referer.trim()) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => "null".to_string(),
    })
}

/// Whether `origin` (an `Origin` header's text) is this service itself: the public URL's
/// origin, or the scheme and the request's own `Host`.
fn is_own_origin(state: &AppState, req: &HttpRequest, origin: &str) -> bool {
    let Ok(o) = url::Url::parse(origin) else {
        return false;
    };
    if !matches!(o.scheme(), "http" | "https") {
        return false;
    }
    let o = o.origin();
    if url::Url::parse(&state.public_url).is_ok_and(|p| p.origin() == o) {
        return true;
    }
    let Some(host) = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
    else {
        return false;
    };
    let scheme = match &o {
        url::Origin::Tuple(scheme, _, _) => scheme.as_str(),
        url::Origin::Opaque(_) => return false,
    };
    // `Host` must be a plain authority: anything that makes a URL of it say more is refused.
    if host.is_empty() || host.contains(['/', '\\', '@', '?', '#', ' ']) {
        return false;
    }
    url::Url::parse(&format!("{scheme}://{host}")).is_ok_and(|h| h.origin() == o)
}

/// Whether `allow_cors` lets pages of `origin` act with the user's cookies, compared as
/// Frappe's `set_cors_headers` compares them (exact text, or `*` for any).
pub fn is_allowed(state: &AppState, origin: &str) -> bool {
    let origin = origin.trim_end_matches('/');
    origin != "null"
        && state
            .settings
            .allow_cors
            .iter()
            .any(|a| a == "*" || a.trim_end_matches('/') == origin)
}

/// Refuses a request that a browser sent on behalf of another site, unless that site is
/// allowed. A request that declares no origin (a script) passes.
pub fn check_origin(state: &AppState, req: &HttpRequest) -> Result<(), AppError> {
    match declared_origin(req) {
        Some(origin) => {
            if is_own_origin(state, req, &origin) || is_allowed(state, &origin) {
                Ok(())
            } else {
                Err(AppError::csrf(
                    "Invalid Request: this service does not accept requests from another site (see allow_cors).",
                ))
            }
        }
        // No Origin and no Referer, yet the browser says another site asked for it.
        None if is_cross_site_fetch(req) => Err(error()),
        None => Ok(()),
    }
}

fn sec_fetch<'a>(req: &'a HttpRequest, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn is_cross_site_fetch(req: &HttpRequest) -> bool {
    matches!(
        sec_fetch(req, "sec-fetch-site"),
        Some("cross-site" | "same-site")
    )
}

/// Document methods that change data: they store a flow's `state` or rewrite the endpoints.
const CHANGING_METHODS: [&str; 2] = ["get_openid_configuration", "initiate_web_application_flow"];

/// A document method that changes data does not run on a GET that a browser sends for a
/// top-level navigation (`Sec-Fetch-Mode: navigate`, `Sec-Fetch-Dest: document` or a frame),
/// nor on one sent for another site's page (`Sec-Fetch-Site` cross-site or same-site) unless
/// `allow_cors` lists that page's origin. A script's GET (no such headers) runs as in Frappe.
pub fn check_document_method(
    state: &AppState,
    req: &HttpRequest,
    method: &str,
) -> Result<(), AppError> {
    if is_unsafe(req.method()) || !CHANGING_METHODS.contains(&method) {
        return Ok(());
    }
    let navigation = sec_fetch(req, "sec-fetch-mode") == Some("navigate")
        || matches!(
            sec_fetch(req, "sec-fetch-dest"),
            Some("document" | "iframe" | "frame" | "embed" | "object")
        );
    let foreign = is_cross_site_fetch(req)
        && !req
            .headers()
            .get(ORIGIN)
            .and_then(|o| o.to_str().ok())
            .is_some_and(|o| is_allowed(state, o));
    if navigation || foreign {
        return Err(AppError::permission(
            vec![crate::error::ServerMessage::raised(format!(
                "{method} changes the document: call it with POST (or from a script), not by opening a link."
            ))],
            None,
        ));
    }
    Ok(())
}

/// Checks an unsafe request on a session against the session's token, when it has one.
pub fn check_token(req: &HttpRequest, saved: Option<&str>) -> Result<(), AppError> {
    let Some(saved) = saved.filter(|s| !s.is_empty()) else {
        return Ok(());
    };
    let sent = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if bool::from(sent.as_bytes().ct_eq(saved.as_bytes())) {
        Ok(())
    } else {
        Err(error())
    }
}

/// `csrf_token` in a session's data: Frappe writes the data as a Python dict's `str()`
/// (`{'user': 'x', …, 'csrf_token': 'abc…'}`); ours is written the same way. Quoted strings
/// are read with their escapes, so a value that merely contains the text is never taken for
/// the key.
pub fn token_in_data(data: &str) -> Option<&str> {
    let b = data.as_bytes();
    let mut i = 0;
    // The last string read, and whether it was followed by `:` (a key).
    let mut key: Option<&str> = None;
    let mut expect_value = false;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != q {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                let s = data.get(start..j.min(b.len()))?;
                if expect_value && key == Some("csrf_token") {
                    return Some(s).filter(|t| !t.is_empty() && !t.contains('\\'));
                }
                key = Some(s);
                expect_value = false;
                i = j + 1;
            }
            b':' => {
                expect_value = key.is_some();
                i += 1;
            }
            b',' | b'{' | b'}' => {
                key = None;
                expect_value = false;
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// The session data with `csrf_token` added.
fn with_token(data: Option<&str>, token: &str) -> String {
    let entry = format!("'csrf_token': '{token}'");
    match data.map(str::trim) {
        Some(d) if d.starts_with('{') && d.ends_with('}') => {
            let inner = d[1..d.len() - 1].trim_end();
            if inner.trim().is_empty() {
                format!("{{{entry}}}")
            } else {
                format!("{{{inner}, {entry}}}")
            }
        }
        _ => format!("{{{entry}}}"),
    }
}

/// The CSRF token of the session a page is served to, made and stored on its first page
/// (Frappe's `get_csrf_token`). `None` for Guests and API-key callers, or when it cannot be
/// stored (the page is then served without one and the session stays an API session; the
/// origin check still holds).
pub async fn page_token(state: &AppState, user: &CurrentUser) -> Option<String> {
    let sid = user.sid.clone()?;
    let fresh = crate::secrets::random_hex(56);
    let result = state
        .db
        .run(move |conn| {
            for _ in 0..3 {
                let Some(data) = store::session_data(conn, &sid)? else {
                    return Ok(None);
                };
                if let Some(t) = data.as_deref().and_then(token_in_data) {
                    return Ok(Some(t.to_string()));
                }
                let new = with_token(data.as_deref(), &fresh);
                // Compare-and-set: two pages served at once to a new session agree on one token.
                if store::replace_session_data(conn, &sid, data.as_deref(), &new)? == 1 {
                    return Ok(Some(fresh));
                }
            }
            Ok(None)
        })
        .await;
    match result {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %crate::error::cause_chain(&e), "could not store the session's CSRF token");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_frappes_session_data() {
        let frappe =
            "{'user': 'a@b.c', 'session_ip': '1.2.3.4', 'csrf_token': 'f00d', 'lang': 'en'}";
        assert_eq!(token_in_data(frappe), Some("f00d"));
        assert_eq!(token_in_data("{\"csrf_token\": \"beef\"}"), Some("beef"));
        assert_eq!(token_in_data("{'csrf_token': None}"), None);
        assert_eq!(token_in_data("{'user': 'x'}"), None);
        assert_eq!(token_in_data(""), None);
        // A value that contains the text is not the key.
        let planted = "{'user': \"x', 'csrf_token': 'evil\", 'full_name': 'n'}";
        assert_eq!(token_in_data(planted), None);
        let escaped = "{'user': 'x\\', \\'csrf_token\\': \\'evil', 'csrf_token': 'real'}";
        assert_eq!(token_in_data(escaped), Some("real"));
    }

    #[test]
    fn a_token_is_added_to_the_session_data_as_frappe_writes_it() {
        let d = with_token(Some("{'user': 'x', 'lang': 'en'}"), "ab12");
        assert_eq!(d, "{'user': 'x', 'lang': 'en', 'csrf_token': 'ab12'}");
        assert_eq!(token_in_data(&d), Some("ab12"));
        assert_eq!(with_token(None, "ab"), "{'csrf_token': 'ab'}");
        assert_eq!(with_token(Some("{}"), "ab"), "{'csrf_token': 'ab'}");
        assert_eq!(with_token(Some("garbage"), "ab"), "{'csrf_token': 'ab'}");
    }
}
