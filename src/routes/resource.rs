//! REST v1: `/api/resource/{doctype}[/{name}]` (also under `/api/v1/resource`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::call::data;
pub use super::call::meta_or_404;
use super::oauth;
use super::RouteTable;
use crate::auth::CurrentUser;
use crate::doc::{list, service};
use crate::error::{AppError, ExcType};
use crate::frappe::args::{parse_json, Args};
use crate::frappe::meta::DocMeta;
use crate::state::AppState;

pub fn routes(t: &mut RouteTable, prefix: &str) {
    let one = format!("{prefix}/{{doctype}}");
    let doc = format!("{prefix}/{{doctype}}/{{name}}");
    t.get(&one, list_docs)
        .post(&one, create::<AppError>)
        .get(&doc, get)
        .put(&doc, update::<AppError>)
        .delete(&doc, delete::<AppError>)
        .post(&doc, post_method);
}

/// The document a v1 POST/PUT sends: the `data` argument (JSON text) or the JSON body itself.
pub fn body_doc(args: &Args) -> Result<Map<String, Value>, AppError> {
    if let Some(v) = &args.non_object_body {
        return Err(AppError::bad_input(
            ExcType::TypeError,
            format!(
                "The request body must be a JSON object, not {}.",
                json_kind(v)
            ),
        ));
    }
    match args.get("data") {
        Some(Value::String(s)) => match parse_json(s.as_bytes())? {
            Value::Object(m) => Ok(m),
            other => Err(AppError::bad_input(
                ExcType::TypeError,
                format!("data must be a JSON object, not {}.", json_kind(&other)),
            )),
        },
        Some(Value::Object(m)) => Ok(m.clone()),
        Some(other) => Err(AppError::bad_input(
            ExcType::TypeError,
            format!("data must be a JSON object, not {}.", json_kind(other)),
        )),
        None => Ok(args.map.clone()),
    }
}

pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

async fn list_docs(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let meta = meta_or_404(&path)?;
    let (args, _) = Args::parse(&req, &body)?;
    // Frappe's v1 list JSON-decodes a `fields` text before anything else (a 500 there for a
    // comma list); the same JSONDecodeError is a 4xx here. frappe.client.get_list stays lenient.
    if let Some(Value::String(fields)) = args.get("fields") {
        if fields.trim() != "*" {
            parse_json(fields.as_bytes())?;
        }
    }
    Ok(data(list::get_list(&state, &user, meta, &args.map).await?))
}

/// Creates a document. `E` is the error body the API answers with: v1's (`AppError`) or v2's
/// (`V2Error`), which registers these handlers too.
pub(super) async fn create<E: From<AppError>>(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    user: CurrentUser,
) -> Result<HttpResponse, E> {
    let meta = meta_or_404(&path)?;
    let (args, _) = Args::parse(&req, &body)?;
    let doc = body_doc(&args)?;
    Ok(data(
        service::create(&state, &user, meta, doc).await?.to_json(),
    ))
}

async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let (doctype, name) = path.into_inner();
    let meta = meta_or_404(&doctype)?;
    let (args, _) = Args::parse(&req, &[])?;
    if let Some(method) = args.str("run_method") {
        crate::auth::csrf::check_document_method(&state, &req, &method)?;
        let doc = service::get(&state, &user, meta, &name).await?;
        let v = oauth::run_document_method(&state, &user, doc, &method, &args, false).await?;
        return Ok(data(v));
    }
    read(&state, &user, meta, &name).await
}

/// A document as v1 and v2 return it, `{"data": …}`.
pub(super) async fn read(
    state: &web::Data<AppState>,
    user: &CurrentUser,
    meta: &'static DocMeta,
    name: &str,
) -> Result<HttpResponse, AppError> {
    Ok(data(service::get(state, user, meta, name).await?.to_json()))
}

/// Updates a document (v1 and v2, as [`create`]).
pub(super) async fn update<E: From<AppError>>(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    user: CurrentUser,
) -> Result<HttpResponse, E> {
    let (doctype, name) = path.into_inner();
    let meta = meta_or_404(&doctype)?;
    let (args, _) = Args::parse(&req, &body)?;
    let doc = body_doc(&args)?;
    Ok(data(
        service::update(&state, &user, meta, &name, doc)
            .await?
            .to_json(),
    ))
}

/// Deletes a document (v1 and v2, as [`create`]); the engine revokes a Token Cache's tokens.
pub(super) async fn delete<E: From<AppError>>(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    user: CurrentUser,
) -> Result<HttpResponse, E> {
    let (doctype, name) = path.into_inner();
    let meta = meta_or_404(&doctype)?;
    service::delete(&state, &user, meta, &name, true).await?;
    Ok(HttpResponse::Accepted().json(json!({ "data": "ok" })))
}

/// `POST /api/resource/{doctype}/{name}` with `run_method`: needs write permission.
async fn post_method(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let (doctype, name) = path.into_inner();
    let meta = meta_or_404(&doctype)?;
    let (args, _) = Args::parse(&req, &body)?;
    let method = args
        .str("run_method")
        .ok_or_else(|| AppError::validation("run_method is required."))?;
    let doc = service::get(&state, &user, meta, &name).await?;
    if !service::can(&user, meta, service::Perm::Write, doc.row.owner.as_deref()) {
        let mut e = service::forbidden(&user, meta, service::Perm::Read, Some(doc.name()));
        e.messages
            .push(crate::error::ServerMessage::raised("Not permitted"));
        e.exception = Some("frappe.exceptions.PermissionError: Not permitted".into());
        return Err(e);
    }
    let v = oauth::run_document_method(&state, &user, doc, &method, &args, true).await?;
    Ok(data(v))
}
