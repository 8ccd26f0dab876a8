//! The Connected App's whitelisted methods and the OAuth callback.

use actix_web::http::header::LOCATION;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::call::meta_or_404;
use super::call::{path_segment, Call};
use crate::auth::CurrentUser;
use crate::doc::service::{self, Perm};
use crate::doc::Doc;
use crate::error::{AppError, ServerMessage};
use crate::frappe::args::Args;
use crate::frappe::meta::{DocKind, CONNECTED_APP};
use crate::oauth::client::ClientAuth;
use crate::oauth::flow;
use crate::state::{AppState, SharedState};

const MODULE: &str = "frappe.integrations.doctype.connected_app.connected_app";

/// Runs a whitelisted method of a document. `write` is whether the route demands write
/// permission (a POST through the resource or v2 API).
pub async fn run_document_method(
    state: &SharedState,
    user: &CurrentUser,
    doc: Doc,
    method: &str,
    args: &Args,
    _write: bool,
) -> Result<Value, AppError> {
    if doc.meta.kind != DocKind::ConnectedApp {
        return Err(AppError::not_whitelisted(&format!(
            "frappe.integrations.doctype.token_cache.token_cache.{method}"
        )));
    }
    match method {
        "initiate_web_application_flow" => {
            let kwargs = method_kwargs(args)?;
            let user_arg = kwargs
                .get("user")
                .and_then(Value::as_str)
                .map(str::to_string);
            let success_uri = kwargs
                .get("success_uri")
                .and_then(Value::as_str)
                .map(str::to_string);
            Ok(json!(
                flow::initiate(state, user, &doc, user_arg, success_uri).await?
            ))
        }
        "get_openid_configuration" => Ok(flow::fill_from_discovery(state, user, &doc)
            .await?
            .to_json()),
        other => Err(AppError::not_whitelisted(&format!("{MODULE}.{other}"))),
    }
}

/// Method arguments: `args` (JSON text, as the desk sends), `kwargs` (v2), or the request's own.
fn method_kwargs(args: &Args) -> Result<Map<String, Value>, AppError> {
    if let Some(m) = args.object("args")? {
        return Ok(m);
    }
    if let Some(m) = args.object("kwargs")? {
        return Ok(m);
    }
    Ok(args.map.clone())
}

/// `run_doc_method` with `dt`/`dn`, or the desk's `docs` (JSON of the document), or v2's `document`.
pub async fn run_doc_method(_name: &str, call: Call) -> Result<HttpResponse, AppError> {
    let method = call.args.require_str("method", "run_doc_method")?;
    crate::auth::csrf::check_document_method(&call.state, &call.req, &method)?;
    let sent: Option<Map<String, Value>> = match call.args.object("docs")? {
        Some(d) => Some(d),
        None => call.args.object("document")?,
    };
    let (doctype, docname) = match &sent {
        Some(d) => (
            d.get("doctype")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            d.get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        None => (
            call.args.require_str("dt", "run_doc_method")?,
            call.args.require_str("dn", "run_doc_method")?,
        ),
    };
    let meta = meta_or_404(&doctype)?;
    let doc = match service::get(&call.state, &call.user, meta, &docname).await {
        Ok(d) => d,
        Err(mut e) if call.user.is_guest() && e.status == crate::error::Status::FORBIDDEN => {
            e.messages.push(ServerMessage::raised("Not permitted"));
            e.exception = Some("frappe.exceptions.PermissionError: Not permitted".into());
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    if call.v2
        && call.method == actix_web::http::Method::POST
        && !service::can(&call.user, meta, Perm::Write, doc.row.owner.as_deref())
    {
        return Err(service::forbidden(
            &call.user,
            meta,
            Perm::Read,
            Some(doc.name()),
        ));
    }
    if let Some(sent) = &sent {
        service::check_modified(&doc, sent.get("modified"), call.state.clock.now())?;
    }
    let docs = json!([doc.to_json_with_nulls()]);
    let v = run_document_method(&call.state, &call.user, doc, &method, &call.args, false).await?;
    let key = if call.v2 { "data" } else { "message" };
    Ok(HttpResponse::Ok().json(json!({ "docs": docs, key: v })))
}

/// The user a token method acts for: the caller, or the one named in `param`, which only a
/// System Manager may name.
fn target_user(call: &Call, param: &str, what: &str) -> Result<String, AppError> {
    match call.args.str(param).filter(|u| !u.is_empty()) {
        Some(u) if !u.eq_ignore_ascii_case(&call.user.name) && !call.user.is_system_manager() => {
            Err(AppError::permission(
                vec![ServerMessage::raised(format!(
                    "Only a System Manager can {what}."
                ))],
                None,
            ))
        }
        Some(u) => Ok(u),
        None => Ok(call.user.name.clone()),
    }
}

/// `has_token(connected_app, connected_user=None)`.
pub async fn has_token(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    let app = call.args.require_str("connected_app", "has_token")?;
    let user = target_user(
        &call,
        "connected_user",
        "ask about another user's connection",
    )?;
    let v = flow::has_token(&call.state, &app, &user).await?;
    Ok(call.reply(json!(v)))
}

/// `connected_apps.get_access_token(connected_app, user=None)`.
pub async fn get_access_token(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    let app = call.args.require_str("connected_app", "get_access_token")?;
    let user = target_user(&call, "user", "use another user's connection")?;
    let v = flow::get_access_token(&call.state, &app, Some(&user), &call.user.name).await?;
    Ok(call.reply(v))
}

/// `connected_apps.get_auth_header(connected_app, user=None)`: Frappe's
/// `TokenCache.get_auth_header()` for scripts, `{"Authorization": "Bearer <token>"}`, after the
/// same refresh rules as `get_access_token`.
pub async fn get_auth_header(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    let app = call.args.require_str("connected_app", "get_auth_header")?;
    let user = target_user(&call, "user", "use another user's connection")?;
    let v = flow::get_access_token(&call.state, &app, Some(&user), &call.user.name).await?;
    let token_type = v["token_type"].as_str().unwrap_or("Bearer");
    let token = v["access_token"].as_str().unwrap_or_default();
    Ok(call.reply(json!({ "Authorization": format!("{token_type} {token}") })))
}

/// `connected_apps.app_settings(connected_app[, pkce][, keep_warm][, client_auth])`: the
/// service's own per-app settings (Frappe has no field for them). Reading needs read permission
/// on the app; changing them (a POST with `pkce` or `keep_warm` = 0/1, `client_auth` =
/// `client_secret_post`, `client_secret_basic`, `none`, `auto`, or null/"" for Frappe's way)
/// needs System Manager.
pub async fn app_settings(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    let app = call.args.require_str("connected_app", "app_settings")?;
    let doc = service::get(&call.state, &call.user, &CONNECTED_APP, &app).await?;
    let app_name = doc.name().to_string();
    let may_change = || -> Result<(), AppError> {
        call.require_post()?;
        if !call.user.is_system_manager() {
            return Err(service::forbidden(
                &call.user,
                &CONNECTED_APP,
                Perm::Write,
                Some(&app_name),
            ));
        }
        Ok(())
    };
    let flag = |field: &'static str| -> Result<Option<bool>, AppError> {
        let Some(v) = call.args.get(field) else {
            return Ok(None);
        };
        may_change()?;
        Ok(Some(match v {
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_i64() != Some(0),
            Value::String(s) => !matches!(s.trim(), "0" | "false" | "off" | ""),
            _ => return Err(AppError::validation(format!("{field} must be 0 or 1."))),
        }))
    };
    let change = flag("pkce")?;
    let warm = flag("keep_warm")?;
    let client_auth = match call.args.get("client_auth") {
        None => None,
        Some(v) => {
            may_change()?;
            Some(client_auth_setting(v, &doc)?)
        }
    };
    let (pkce, keep_warm, client_auth) = call
        .state
        .db
        .run(move |conn| {
            use crate::oauth::store;
            if let Some(on) = change {
                store::set_pkce(conn, &app_name, on)?;
            }
            if let Some(on) = warm {
                store::set_keep_warm(conn, &app_name, on)?;
            }
            if let Some(method) = client_auth {
                store::set_client_auth(conn, &app_name, method)?;
            }
            Ok((
                store::pkce_enabled(conn, &app_name)?,
                store::keep_warm(conn, &app_name)?,
                store::client_auth(conn, &app_name)?,
            ))
        })
        .await?;
    Ok(call.reply(json!({
        "connected_app": doc.name(), "pkce": pkce, "keep_warm": keep_warm,
        "client_auth": client_auth.name(),
    })))
}

/// A `client_auth` value: one of the names, or null/"" for unset (Frappe's way). `auto`
/// reads the app's discovery document, so the app needs its OpenID Configuration URL.
fn client_auth_setting(v: &Value, app: &Doc) -> Result<ClientAuth, AppError> {
    let name = match v {
        Value::Null => return Ok(ClientAuth::Frappe),
        Value::String(s) if s.trim().is_empty() => return Ok(ClientAuth::Frappe),
        Value::String(s) => s.trim(),
        _ => "",
    };
    let method = ClientAuth::from_name(name).ok_or_else(|| {
        AppError::validation(format!(
            "client_auth must be one of {} (or empty for Frappe's way).",
            ClientAuth::NAMES.join(", ")
        ))
    })?;
    let has_discovery = app
        .row
        .get_str("openid_configuration")
        .is_some_and(|u| !u.trim().is_empty());
    if method == ClientAuth::Auto && !has_discovery {
        return Err(AppError::validation(
            "client_auth auto reads the provider's discovery document: set the OpenID Configuration URL first.",
        ));
    }
    Ok(method)
}

/// `connected_apps.connection_status(connected_app, user=None)`: the health of the caller's
/// connection (or `user`'s, for a System Manager) as `oauth::health` defines it; never a token.
pub async fn connection_status(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    let app = call
        .args
        .require_str("connected_app", "connection_status")?;
    let user = target_user(&call, "user", "read another user's connection")?;
    let st = crate::doc::service::StatePtr::new(&call.state);
    let v = call
        .state
        .db
        .read(move |conn| crate::oauth::health::connection_status(st.get(), conn, &app, &user))
        .await?;
    Ok(call.reply(v))
}

/// `connected_apps.get_backend_app_token(connected_app)`: client credentials (System Manager).
pub async fn get_backend_app_token(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    if !call.user.is_system_manager() {
        return Err(AppError::not_permitted());
    }
    let app = call
        .args
        .require_str("connected_app", "get_backend_app_token")?;
    let v = flow::backend_app_token(&call.state, &app, &call.user.name).await?;
    Ok(call.reply(v))
}

/// The provider's redirect back to us.
pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    if req.method() != actix_web::http::Method::GET {
        return Err(AppError::not_permitted());
    }
    let app = path.into_inner();
    if user.is_guest() {
        let full = format!(
            "{}{}",
            state.public_url,
            req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("")
        );
        let target: String = url::form_urlencoded::byte_serialize(full.as_bytes()).collect();
        return Ok(redirect(&format!("/login?redirect-to={target}")));
    }
    let (args, _) = Args::parse(&req, &[])?;
    let provider_error = args
        .str("error")
        .map(|e| (e, args.str("error_description")));
    let done = match flow::callback(
        &state,
        &user,
        &app,
        args.str("code"),
        args.str("state"),
        provider_error,
    )
    .await
    {
        Ok(done) => done,
        // A person's browser gets the reason as a page, scripts keep Frappe's error body.
        Err(e) if crate::ui::wants_html(&req) => {
            return Ok(crate::ui::callback_error(&state, &user, &app, &e).await);
        }
        Err(e) => return Err(e),
    };
    // The app's own name, never one parsed back out of `<app>-<user>` (a user named
    // `mary-jane@…` would make it `<app>-mary`).
    let app_page = format!("/app/connected-app/{}", path_segment(&done.app));
    let target = match done.success_uri {
        Some(u) if !u.is_empty() && flow::safe_redirect(&state, &u) => u,
        _ => app_page,
    };
    Ok(redirect(&target))
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((LOCATION, location.to_string()))
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n<p>You should be redirected automatically to the target URL: <a href=\"{0}\">{0}</a>. If not, click the link.\n",
            crate::error::html_escape(location)
        ))
}
