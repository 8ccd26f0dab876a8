//! API v2: `/api/v2/document/…`, `/api/v2/doctype/…` and `/api/v2/method/…`, with v2 errors.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::call::{data, Call};
use super::errors::V2Error;
use super::method;
use super::oauth;
use super::resource::{self, meta_or_404};
use super::RouteTable;
use crate::auth::CurrentUser;
use crate::doc::list;
use crate::doc::service::{self, Perm};
use crate::frappe::args::Args;
use crate::state::AppState;

type V2Result = Result<HttpResponse, V2Error>;

/// The v2 document and doctype routes; unknown `/api/v2` paths get the v2 404 from the
/// default service.
pub fn routes(t: &mut RouteTable) {
    let doc = "/api/v2/document/{doctype}/{name}";
    let method = "/api/v2/document/{doctype}/{name}/method/{method}";
    t.get("/api/v2/document/{doctype}", list_docs)
        .post("/api/v2/document/{doctype}", resource::create::<V2Error>)
        .get(doc, get)
        .put(doc, resource::update::<V2Error>)
        .patch(doc, resource::update::<V2Error>)
        .delete(doc, resource::delete::<V2Error>)
        .get(method, doc_method)
        .post(method, doc_method)
        .get("/api/v2/doctype/{doctype}/count", count)
        .get("/api/v2/doctype/{doctype}/meta", meta);
}

async fn list_docs(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    user: CurrentUser,
) -> V2Result {
    let meta = meta_or_404(&path)?;
    let (mut args, _) = Args::parse(&req, &[])?;
    // Frappe's v2 list hands its arguments to frappe.client.get_list, which has no `start`:
    // the recorded answer (exchange 251) ignores it; `limit_start` works.
    args.map.remove("start");
    Ok(data(list::get_list(&state, &user, meta, &args.map).await?))
}

async fn get(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    user: CurrentUser,
) -> V2Result {
    let (doctype, name) = path.into_inner();
    let meta = meta_or_404(&doctype)?;
    Ok(resource::read(&state, &user, meta, &name).await?)
}

/// A document method; GET needs read permission, POST needs write.
async fn doc_method(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: web::Bytes,
    user: CurrentUser,
) -> V2Result {
    let (doctype, name, method_name) = path.into_inner();
    let meta = meta_or_404(&doctype)?;
    let (args, _) = Args::parse(&req, &body)?;
    crate::auth::csrf::check_document_method(&state, &req, &method_name)?;
    let doc = service::get(&state, &user, meta, &name).await?;
    let post = req.method() == actix_web::http::Method::POST;
    if post && !service::can(&user, meta, Perm::Write, doc.row.owner.as_deref()) {
        return Err(service::forbidden(&user, meta, Perm::Read, Some(doc.name())).into());
    }
    Ok(data(
        oauth::run_document_method(&state, &user, doc, &method_name, &args, post).await?,
    ))
}

async fn count(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    user: CurrentUser,
) -> V2Result {
    let meta = meta_or_404(&path)?;
    let (args, _) = Args::parse(&req, &[])?;
    Ok(data(json!(
        list::get_count(&state, &user, meta, &args.map).await?
    )))
}

/// The DocType definition, as Frappe's `frappe.get_meta(doctype).as_dict()` returns it.
async fn meta(path: web::Path<String>, user: CurrentUser) -> V2Result {
    let meta = meta_or_404(&path)?;
    if user.is_guest() {
        return Err(service::no_doctype_access(&user, meta, false).into());
    }
    Ok(data(super::client::doctype_definition(meta)?))
}

/// `/api/v2/method/<name>`, including `<DocType>/<method>` for a DocType module's functions.
pub async fn method(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    user: CurrentUser,
) -> V2Result {
    let name = path.into_inner();
    let (args, _) = Args::parse(&req, &body)?;
    let call = Call {
        state,
        user,
        args,
        method: req.method().clone(),
        req,
        v2: true,
    };
    Ok(method::run(&name, call).await?)
}
