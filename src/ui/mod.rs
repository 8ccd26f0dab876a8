//! The web pages people use when no Frappe desk stands in front of the service: login, the
//! Connected App list and form, and the Token Cache list. Each page is a small HTML shell; the
//! embedded script (`app.js`) fills it by calling the service's own Frappe REST API.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, HttpResponseBuilder};

use crate::auth::CurrentUser;
use crate::error::{html_escape, AppError};
use crate::oauth::flow;
use crate::state::AppState;

const CSS: &str = include_str!("app.css");
const JS: &str = include_str!("app.js");
const CSS_PATH: &str = "/assets/connected-apps/app.css";
const JS_PATH: &str = "/assets/connected-apps/app.js";
const ICON: &str = include_str!("favicon.svg");
const ICON_PATH: &str = "/assets/connected-apps/favicon.svg";
const HOME: &str = "/app/connected-app";

/// Only our own script and style; no framing; no referrer to other origins.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// Registers the pages and their two assets.
pub fn routes(t: &mut crate::routes::route_table::RouteTable) {
    t.get(CSS_PATH, css)
        .get(JS_PATH, js)
        .get("/login", login)
        .get("/", home)
        .get("/app", home)
        .get("/app/", home)
        .get(HOME, app_list)
        .get("/app/connected-app/new", app_new)
        .get("/app/connected-app/{name}", app_form)
        .get("/app/token-cache", token_cache_list)
        .get("/app/token-cache/{name}", token_cache_form)
        .get("/app/Form/{doctype}/{name}", frappe_form_link)
        .get(ICON_PATH, icon)
        .get("/favicon.ico", icon);
}

fn secured(mut b: HttpResponseBuilder) -> HttpResponseBuilder {
    b.insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"));
    b
}

async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS)
}

async fn icon() -> HttpResponse {
    asset("image/svg+xml", ICON)
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    secured(HttpResponse::Ok())
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(body)
}

fn redirect(location: &str) -> HttpResponse {
    let mut resp = secured(HttpResponse::Found()).finish();
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// A Guest is sent to the login page, which brings them back here afterwards.
fn login_first(req: &HttpRequest) -> HttpResponse {
    let here = req.uri().path_and_query().map_or(HOME, |p| p.as_str());
    let target: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    redirect(&format!("/login?redirect-to={target}"))
}

/// What one page shell says about itself.
struct Shell<'a> {
    page: &'a str,
    title: &'a str,
    user: &'a CurrentUser,
    /// Extra `data-*` attributes for the script.
    data: &'a [(&'a str, &'a str)],
}

/// A page for the session it is served to, with the session's CSRF token (made on its first
/// page, as Frappe's `get_csrf_token`) in `<meta name="csrf-token">` for the script to send
/// as `X-Frappe-CSRF-Token`.
async fn page(state: &AppState, status: StatusCode, shell: Shell<'_>) -> HttpResponse {
    let token = crate::auth::csrf::page_token(state, shell.user).await;
    shell_html(status, shell, token.as_deref())
}

fn shell_html(status: StatusCode, shell: Shell<'_>, csrf_token: Option<&str>) -> HttpResponse {
    let mut data = String::new();
    for (k, v) in shell.data {
        data.push_str(&format!(" data-{k}=\"{}\"", html_escape(v)));
    }
    let nav = if shell.user.is_guest() {
        String::new()
    } else {
        let cache = if shell.user.is_system_manager() {
            "<li><a href=\"/app/token-cache\">Token Cache</a></li>"
        } else {
            "<li><a href=\"/app/token-cache\">My connections</a></li>"
        };
        format!(
            "<nav aria-label=\"Main\"><ul><li><a href=\"{HOME}\">Connected Apps</a></li>{cache}</ul></nav>\
<div class=\"who\"><span>{}</span> <button type=\"button\" id=\"logout\">Log out</button></div>",
            html_escape(&shell.user.name)
        )
    };
    let body = format!(
        "<!doctype html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{csrf}
<title>{title} · Connected Apps</title>
<link rel=\"icon\" href=\"{ICON_PATH}\" type=\"image/svg+xml\">
<link rel=\"stylesheet\" href=\"{CSS_PATH}\">
<script src=\"{JS_PATH}\" defer></script>
</head>
<body data-page=\"{page}\" data-user=\"{user}\" data-system-manager=\"{sm}\"{data}>
<a class=\"skip\" href=\"#main\">Skip to content</a>
<header><a class=\"brand\" href=\"{HOME}\">Connected Apps</a>{nav}</header>
<main id=\"main\" tabindex=\"-1\">
<h1 id=\"title\">{title}</h1>
<div id=\"messages\" role=\"alert\" aria-live=\"assertive\"></div>
<div id=\"content\"><noscript><p>These pages need JavaScript.</p></noscript></div>
</main>
</body>
</html>
",
        title = html_escape(shell.title),
        page = shell.page,
        user = html_escape(&shell.user.name),
        sm = u8::from(shell.user.is_system_manager()),
        csrf = csrf_token.map_or(String::new(), |t| format!(
            "\n<meta name=\"csrf-token\" content=\"{}\">",
            html_escape(t)
        )),
    );
    secured(HttpResponse::build(status))
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// `redirect-to` when it stays on this service (a `/path`, never `//host`), else the app list.
fn next_page(state: &AppState, req: &HttpRequest) -> String {
    let query = req.uri().query().unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "redirect-to")
        .and_then(|(_, v)| normalized_redirect(state, &v))
        .unwrap_or_else(|| HOME.to_string())
}

/// A redirect target on this service as the parsed URL says it, never the input's own text:
/// `\` and control characters are refused (`http://own\@evil/` is this service to a browser
/// but `evil` to other clients); a `/path` stays relative, an absolute URL is re-serialised.
fn normalized_redirect(state: &AppState, target: &str) -> Option<String> {
    if target.is_empty() || !flow::safe_redirect(state, target) {
        return None;
    }
    let base = url::Url::parse(&state.public_url).ok()?;
    let u = base.join(target).ok()?;
    if u.origin() != base.origin() {
        return None;
    }
    if !target.starts_with('/') {
        return Some(u.to_string());
    }
    let mut out = u.path().to_string();
    if let Some(q) = u.query() {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = u.fragment() {
        out.push('#');
        out.push_str(f);
    }
    Some(out)
}

async fn login(state: web::Data<AppState>, req: HttpRequest, user: CurrentUser) -> HttpResponse {
    let next = next_page(&state, &req);
    if !user.is_guest() {
        return redirect(&next);
    }
    shell_html(
        StatusCode::OK,
        Shell {
            page: "login",
            title: "Log in",
            user: &user,
            data: &[("next", &next)],
        },
        None,
    )
}

async fn home(req: HttpRequest, user: CurrentUser) -> HttpResponse {
    if user.is_guest() {
        return login_first(&req);
    }
    redirect(HOME)
}

async fn app_list(state: web::Data<AppState>, req: HttpRequest, user: CurrentUser) -> HttpResponse {
    if user.is_guest() {
        return login_first(&req);
    }
    page(
        &state,
        StatusCode::OK,
        Shell {
            page: "app-list",
            title: "Connected Apps",
            user: &user,
            data: &[],
        },
    )
    .await
}

async fn app_new(state: web::Data<AppState>, req: HttpRequest, user: CurrentUser) -> HttpResponse {
    if user.is_guest() {
        return login_first(&req);
    }
    page(
        &state,
        StatusCode::OK,
        Shell {
            page: "app-form",
            title: "New Connected App",
            user: &user,
            data: &[],
        },
    )
    .await
}

async fn app_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    name: web::Path<String>,
) -> HttpResponse {
    if user.is_guest() {
        return login_first(&req);
    }
    page(
        &state,
        StatusCode::OK,
        Shell {
            page: "app-form",
            title: "Connected App",
            user: &user,
            data: &[("name", &name)],
        },
    )
    .await
}

/// Every connection for a System Manager; a plain user's own (Frappe lets them read the
/// Token Caches they own).
async fn token_cache_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
) -> HttpResponse {
    if user.is_guest() {
        return login_first(&req);
    }
    let title = if user.is_system_manager() {
        "Token Cache"
    } else {
        "My connections"
    };
    page(
        &state,
        StatusCode::OK,
        Shell {
            page: "token-cache",
            title,
            user: &user,
            data: &[],
        },
    )
    .await
}

/// One connection (a Token Cache): its state, and a way to delete it.
async fn token_cache_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    name: web::Path<String>,
) -> HttpResponse {
    if user.is_guest() {
        return login_first(&req);
    }
    page(
        &state,
        StatusCode::OK,
        Shell {
            page: "token-cache-form",
            title: "Connection",
            user: &user,
            data: &[("name", &name)],
        },
    )
    .await
}

/// Frappe's desk links (`/app/Form/Connected App/<name>`, as in its error messages) open the
/// page of that document here.
async fn frappe_form_link(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (doctype, name) = path.into_inner();
    let base = match doctype
        .to_ascii_lowercase()
        .replace(['-', '_'], " ")
        .as_str()
    {
        "connected app" => HOME,
        "token cache" => "/app/token-cache",
        _ => {
            return page(
                &state,
                StatusCode::NOT_FOUND,
                Shell {
                    page: "not-found",
                    title: "Page not found",
                    user: &user,
                    data: &[],
                },
            )
            .await
        }
    };
    let target = format!("{base}/{}", crate::routes::call::path_segment(&name));
    if user.is_guest() {
        let q: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
        return redirect(&format!("/login?redirect-to={q}"));
    }
    redirect(&target)
}

/// A failed OAuth callback, for a person in a browser: the reason in plain words and the way
/// back to the app's page.
pub async fn callback_error(
    state: &AppState,
    user: &CurrentUser,
    app: &str,
    e: &AppError,
) -> HttpResponse {
    let reason = e
        .messages
        .last()
        .map(|m| strip_tags(&m.message))
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| "The connection could not be completed.".to_string());
    crate::routes::errors::report(e);
    page(
        state,
        e.status.into(),
        Shell {
            page: "callback-error",
            title: "Could not connect",
            user,
            data: &[("name", app), ("error", &reason)],
        },
    )
    .await
}

/// Messages may carry Frappe's links (`<a href=..>name</a>`): keep their text only.
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Whether the request comes from a browser navigating (it asks for HTML first).
pub fn wants_html(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.trim_start().starts_with("text/html"))
}
