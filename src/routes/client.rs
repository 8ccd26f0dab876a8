//! `frappe.client.*`: the generic document functions scripts call.

use actix_web::HttpResponse;
use serde_json::{json, Map, Value};

use super::method::Call;
use super::oauth;
use super::resource::{json_kind, meta_or_404};
use crate::doc::{list, service};
use crate::error::AppError;
use crate::frappe::args::missing_argument;
use crate::frappe::meta::DocMeta;

fn doctype(call: &Call, function: &str) -> Result<&'static DocMeta, AppError> {
    let dt = call.args.require_str("doctype", function)?;
    meta_or_404(&dt)
}

pub async fn get_list(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    let meta = doctype(&call, "get_list")?;
    let v = list::get_list(&call.state, &call.user, meta, &call.args.map).await?;
    Ok(call.reply(v))
}

pub async fn get_count(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    let meta = doctype(&call, "get_count")?;
    let n = list::get_count(&call.state, &call.user, meta, &call.args.map).await?;
    Ok(call.reply(json!(n)))
}

/// The name a `filters` argument points at: a plain name, or the first match of real filters.
async fn name_from_filters(
    call: &Call,
    meta: &'static DocMeta,
    filters: &Value,
) -> Result<Option<String>, AppError> {
    match filters {
        Value::String(s) if !s.trim_start().starts_with(['{', '[']) => Ok(Some(s.clone())),
        _ => {
            let mut args = Map::new();
            let f = match filters {
                Value::String(s) => crate::frappe::args::parse_json(s.as_bytes())?,
                other => other.clone(),
            };
            args.insert("filters".into(), f);
            args.insert("limit_page_length".into(), json!(1));
            let rows = list::get_list(&call.state, &call.user, meta, &args)
                .await?
                .into_value();
            Ok(rows
                .get(0)
                .and_then(|r| r.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string))
        }
    }
}

pub async fn get(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    let meta = doctype(&call, "get")?;
    let docname = match call.args.str("name") {
        Some(n) => n,
        None => {
            let filters = call
                .args
                .get("filters")
                .cloned()
                .ok_or_else(|| missing_argument("get", "name"))?;
            match name_from_filters(&call, meta, &filters).await? {
                Some(n) => n,
                None => return Err(AppError::not_found(meta.doctype(), "None")),
            }
        }
    };
    let doc = service::get(&call.state, &call.user, meta, &docname).await?;
    Ok(call.reply(doc.to_json_with_nulls()))
}

/// `get_value`: one field or a list of fields of the first matching document; `{}` when none.
pub async fn get_value(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    let meta = doctype(&call, "get_value")?;
    let fieldname = call
        .args
        .get("fieldname")
        .cloned()
        .ok_or_else(|| missing_argument("get_value", "fieldname"))?;
    let fields: Vec<String> = match &fieldname {
        Value::String(s) if s.trim_start().starts_with('[') => {
            match crate::frappe::args::parse_json(s.as_bytes())? {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => {
                    return Err(AppError::validation(
                        "fieldname must be a field or a list of fields.",
                    ))
                }
            }
        }
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        other => {
            return Err(AppError::validation(format!(
                "fieldname must be a field or a list of fields, not {}.",
                json_kind(other)
            )))
        }
    };
    let filters = call.args.get("filters").cloned().unwrap_or(Value::Null);
    let mut args = Map::new();
    match &filters {
        Value::Null => {}
        Value::String(s) if !s.trim_start().starts_with(['{', '[']) => {
            args.insert("filters".into(), json!({ "name": s }));
        }
        other => {
            args.insert("filters".into(), other.clone());
        }
    }
    args.insert("fields".into(), json!(fields));
    args.insert("limit_page_length".into(), json!(1));
    args.insert("order_by".into(), json!("modified desc"));
    let rows = list::get_list(&call.state, &call.user, meta, &args)
        .await?
        .into_value();
    let v = rows.get(0).cloned().unwrap_or_else(|| json!({}));
    Ok(call.reply(v))
}

pub async fn insert(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    call.require_post()?;
    let doc = call
        .args
        .object("doc")?
        .ok_or_else(|| missing_argument("insert", "doc"))?;
    let dt = doc
        .get("doctype")
        .and_then(Value::as_str)
        .ok_or_else(|| AppError::validation("doc must have a doctype."))?;
    let meta = meta_or_404(dt)?;
    let created = service::create(&call.state, &call.user, meta, doc).await?;
    Ok(call.reply(created.to_json_with_nulls()))
}

pub async fn set_value(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    call.require_post()?;
    // Frappe refuses a standard field named as `fieldname` before anything else
    // (`frappe.model.default_fields + child_table_fields`); a dict of fields is not checked.
    if let Some(Value::String(f)) = call.args.get("fieldname") {
        const STANDARD: [&str; 11] = [
            "doctype",
            "name",
            "owner",
            "creation",
            "modified",
            "modified_by",
            "docstatus",
            "idx",
            "parent",
            "parentfield",
            "parenttype",
        ];
        if STANDARD.contains(&f.as_str()) {
            return Err(AppError::validation("Cannot edit standard fields"));
        }
    }
    let meta = doctype(&call, "set_value")?;
    let docname = call.args.require_str("name", "set_value")?;
    let fieldname = call
        .args
        .get("fieldname")
        .cloned()
        .ok_or_else(|| missing_argument("set_value", "fieldname"))?;
    let body: Map<String, Value> = match fieldname {
        Value::Object(m) => m,
        Value::String(s) if s.trim_start().starts_with('{') => {
            match crate::frappe::args::parse_json(s.as_bytes())? {
                Value::Object(m) => m,
                _ => {
                    return Err(AppError::validation(
                        "fieldname must be a field name or an object.",
                    ))
                }
            }
        }
        Value::String(s) => {
            let mut m = Map::new();
            m.insert(s, call.args.get("value").cloned().unwrap_or(Value::Null));
            m
        }
        other => {
            return Err(AppError::validation(format!(
                "fieldname must be a field name or an object, not {}.",
                json_kind(&other)
            )))
        }
    };
    // set_value never renames and never replaces whole child tables by accident.
    let mut body = body;
    body.remove("name");
    let doc = service::update(&call.state, &call.user, meta, &docname, body).await?;
    Ok(call.reply(doc.to_json_with_nulls()))
}

pub async fn delete(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    call.require_post()?;
    let meta = doctype(&call, "delete")?;
    let docname = call.args.require_str("name", "delete")?;
    let revocation = oauth::before_delete(&call.state, meta, &docname).await;
    service::delete(&call.state, &call.user, meta, &docname, true).await?;
    oauth::after_delete(&call.state, revocation).await;
    if call.v2 {
        return Ok(call.reply(Value::Null));
    }
    Ok(HttpResponse::Ok().json(json!({})))
}

pub async fn validate_link(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    let meta = doctype(&call, "validate_link")?;
    let docname = call.args.require_str("docname", "validate_link")?;
    let fields: Vec<String> = match call.args.json("fields")? {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let doc = match service::get(&call.state, &call.user, meta, &docname).await {
        Ok(d) => d,
        Err(e) if e.exc_type == "DoesNotExistError" => return Ok(call.reply(json!({}))),
        Err(e) => return Err(e),
    };
    let mut m = Map::new();
    m.insert("name".into(), json!(doc.name()));
    for f in fields {
        if meta.parent.column(&f).is_none() {
            return Err(list::query_error(
                crate::frappe::list_query::ListQueryError::FieldNotPermitted(f),
            ));
        }
        m.insert(f.clone(), doc.row.value(&f));
    }
    Ok(call.reply(Value::Object(m)))
}

/// Frappe returns cleartext secrets to Administrator here; this service never returns a
/// secret over HTTP (declared in tests/compat/deviations.json).
pub async fn get_password(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    let mut e = AppError::permission(vec![], None);
    e.exception = Some("frappe.exceptions.PermissionError".into());
    Err(e)
}
