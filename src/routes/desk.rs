//! The desk endpoints a Frappe form and list view call for these DocTypes.

use actix_web::HttpResponse;
use serde_json::{json, Map, Value};

use super::call::Call;
use super::resource::meta_or_404;
use crate::auth::CurrentUser;
use crate::doc::{list, service, version};
use crate::error::AppError;
use crate::frappe::args::missing_argument;
use crate::frappe::meta::DocMeta;

/// The form sidebar data. This service keeps no comments or shares, so those lists are empty;
/// `versions` is the document's change history; the permissions are the user's real ones.
fn docinfo(
    user: &CurrentUser,
    meta: &DocMeta,
    name: &str,
    owner: Option<&str>,
    versions: Vec<Value>,
) -> Value {
    let p = |perm| i32::from(service::can(user, meta, perm, owner));
    json!({
        "user_info": {}, "comments": [], "shared": [], "assignment_logs": [], "attachment_logs": [],
        "info_logs": [], "like_logs": [], "workflow_logs": [], "doctype": meta.doctype(), "name": name,
        "attachments": [], "communications": [], "automated_messages": [], "versions": versions, "assignments": [],
        "permissions": {
            "select": p(service::Perm::Read), "read": p(service::Perm::Read), "write": p(service::Perm::Write),
            "create": p(service::Perm::Create), "delete": p(service::Perm::Delete), "submit": 0,
            "cancel": p(service::Perm::Write), "amend": p(service::Perm::Write), "print": p(service::Perm::Read),
            "email": p(service::Perm::Read), "report": p(service::Perm::Read), "import": 0,
            "export": p(service::Perm::Read), "share": p(service::Perm::Write)
        },
        "views": [], "energy_point_logs": [], "additional_timeline_content": [], "milestones": [],
        "is_document_followed": null, "tags": "", "document_email": null
    })
}

/// The document's Versions, newest first (Frappe's `get_versions`).
async fn versions(call: &Call, meta: &'static DocMeta, name: &str) -> Result<Vec<Value>, AppError> {
    let name = name.to_string();
    call.state
        .db
        .read(move |conn| version::for_docinfo(conn, meta, &name))
        .await
}

pub async fn getdoc(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    let meta = meta_or_404(&call.args.require_str("doctype", "getdoc")?)?;
    let docname = call.args.require_str("name", "getdoc")?;
    let doc = service::get(&call.state, &call.user, meta, &docname).await?;
    let history = versions(&call, meta, doc.name()).await?;
    let info = docinfo(
        &call.user,
        meta,
        doc.name(),
        doc.row.owner.as_deref(),
        history,
    );
    Ok(HttpResponse::Ok()
        .json(json!({ "docs": [doc.to_json_with_nulls()], "docinfo": info, "_link_titles": {} })))
}

/// `frappe.desk.reportview.get`: `{keys, values, user_info}` for the list view.
pub async fn reportview_get(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    let meta = meta_or_404(&call.args.require_str("doctype", "get")?)?;
    let mut args = call.args.map.clone();
    args.insert("as_dict".into(), json!(1));
    let with_comments = call
        .args
        .str("with_comment_count")
        .is_some_and(|v| v == "1" || v == "true");
    let rows = list::get_list(&call.state, &call.user, meta, &args)
        .await?
        .into_value();
    let rows = rows.as_array().cloned().unwrap_or_default();
    let mut keys: Vec<String> = match rows.first() {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let values: Vec<Value> = rows
        .iter()
        .map(|r| {
            let mut vals: Vec<Value> = keys
                .iter()
                .map(|k| r.get(k).cloned().unwrap_or(Value::Null))
                .collect();
            if with_comments {
                vals.push(json!(0));
            }
            Value::Array(vals)
        })
        .collect();
    if with_comments && !keys.is_empty() {
        keys.push("_comment_count".into());
    }
    let body = if rows.is_empty() {
        json!([])
    } else {
        json!({ "keys": keys, "values": values, "user_info": {} })
    };
    Ok(call.reply(body))
}

/// `frappe.desk.form.save.savedocs` with `action=Save`: inserts a new document or updates one.
pub async fn savedocs(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    call.require_post()?;
    let doc: Map<String, Value> = call
        .args
        .object("doc")?
        .ok_or_else(|| missing_argument("savedocs", "doc"))?;
    let action = call.args.str("action").unwrap_or_else(|| "Save".into());
    if action != "Save" {
        return Err(AppError::validation(format!(
            "Action {action} is not supported for this document type."
        )));
    }
    let dt = doc
        .get("doctype")
        .and_then(Value::as_str)
        .ok_or_else(|| AppError::validation("doc must have a doctype."))?;
    let meta = meta_or_404(dt)?;
    let is_new = doc
        .get("__islocal")
        .is_some_and(|v| v.as_i64() == Some(1) || v.as_bool() == Some(true))
        || doc
            .get("name")
            .and_then(Value::as_str)
            .map_or(true, |n| n.starts_with("new-"));
    let saved = if is_new {
        service::create(&call.state, &call.user, meta, doc).await?
    } else {
        let docname = doc
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        service::update(&call.state, &call.user, meta, &docname, doc).await?
    };
    let history = versions(&call, meta, saved.name()).await?;
    let info = docinfo(
        &call.user,
        meta,
        saved.name(),
        saved.row.owner.as_deref(),
        history,
    );
    let saved_msg = json!([
        json!({"message": "Saved", "title": "Message", "indicator": "green", "alert": 1})
            .to_string()
    ])
    .to_string();
    Ok(HttpResponse::Ok()
        .json(json!({ "docs": [saved.to_json_with_nulls()], "docinfo": info, "_server_messages": saved_msg })))
}
