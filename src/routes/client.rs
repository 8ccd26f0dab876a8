//! `frappe.client.*`: the generic document functions scripts call.

use actix_web::http::Method;
use actix_web::HttpResponse;
use serde_json::{json, Map, Value};

use super::call::Call;
use super::resource::{json_kind, meta_or_404};
use crate::doc::{list, service, store};
use crate::error::{AppError, ExcType};
use crate::frappe::args::missing_argument;
use crate::frappe::meta::{DocKind, DocMeta};

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
    // Frappe's `get_safe_filters`: a string is JSON-decoded when it can be (`frappe-client`
    // sends `json.dumps(None)`, "null", for no filters); a number or a plain string is a name.
    let filters = match call.args.get("filters").cloned().unwrap_or(Value::Null) {
        Value::String(s) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Number(n)) => Value::String(n.to_string()),
            Ok(v @ (Value::Null | Value::Object(_) | Value::Array(_) | Value::String(_))) => v,
            _ => Value::String(s),
        },
        v => v,
    };
    let mut args = Map::new();
    match &filters {
        Value::Null => {}
        Value::String(s) => {
            args.insert("filters".into(), json!({ "name": s }));
        }
        Value::Object(m) if m.is_empty() => {}
        Value::Array(a) if a.is_empty() => {}
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
    // `@frappe.whitelist(methods=["POST", "DELETE"])`.
    call.require_methods(&[Method::POST, Method::DELETE])?;
    let meta = doctype(&call, "delete")?;
    let docname = call.args.require_str("name", "delete")?;
    service::delete(&call.state, &call.user, meta, &docname, true).await?;
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
        Err(e) if e.exc_type == ExcType::DoesNotExistError => return Ok(call.reply(json!({}))),
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

/// The bundled DocType definition (`src/frappe/doctypes/*.json`), as `frappe.get_meta` reads it.
pub(super) fn doctype_definition(meta: &DocMeta) -> Result<Value, AppError> {
    let text = match meta.kind {
        DocKind::ConnectedApp => include_str!("../frappe/doctypes/connected_app.json"),
        DocKind::TokenCache => include_str!("../frappe/doctypes/token_cache.json"),
    };
    serde_json::from_str(text)
        .map_err(|_| AppError::internal("a bundled DocType definition is not JSON"))
}

/// Python's truthiness of a form or JSON argument (`merge=0`, `"false"`, `""` are false).
fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => {
            !matches!(s.trim().to_ascii_lowercase().as_str(), "" | "0" | "false")
        }
        Some(_) => true,
    }
}

/// `frappe.client.rename_doc` (POST/PUT): `frappe.model.rename_doc.rename_doc` with its checks
/// in Frappe's order. Both DocTypes have `allow_rename: 0`, so a rename that passes the other
/// checks is refused with Frappe's "<doctype> not allowed to be renamed" and nothing changes.
pub async fn rename_doc(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    call.require_post()?;
    let meta = doctype(&call, "rename_doc")?;
    let old = call.args.require_str("old_name", "rename_doc")?;
    let new = call.args.require_str("new_name", "rename_doc")?;
    let merge = truthy(call.args.get("merge"));
    let dt = meta.doctype();
    let (old_doc, new_found) = {
        let (old, new) = (old.clone(), new.clone());
        call.state
            .db
            .read(move |conn| {
                let old_doc = store::load(conn, meta, &old)?;
                let new_found = crate::doctype::stored_name(conn, meta, &new)?;
                Ok((old_doc, new_found))
            })
            .await?
    };
    // `frappe.get_doc(doctype, old)` comes first: a missing document is its 404.
    let old_doc = old_doc.ok_or_else(|| AppError::not_found(dt, &old))?;
    if old == new {
        return Err(AppError::validation(
            "No changes made because old and new name are the same.",
        ));
    }
    // A match that differs only in case or accents is the document itself being respelled.
    let exists = new_found.is_some_and(|found| found == new);
    if merge && !exists {
        return Err(AppError::validation(format!(
            "{dt} {new} does not exist, select a new target to merge"
        )));
    }
    if !merge && exists {
        return Err(AppError::validation(format!(
            "Another {dt} with name {new} exists, select another name"
        )));
    }
    if !service::can(
        &call.user,
        meta,
        service::Perm::Write,
        old_doc.row.owner.as_deref(),
    ) {
        return Err(AppError::validation(format!(
            "You need write permission on {dt} {old} to rename"
        )));
    }
    // Both DocTypes' definitions have `allow_rename: 0` (a test below holds them to it), so
    // this is where Frappe refuses every rename that got this far; nothing is changed.
    Err(AppError::validation(format!(
        "{dt} not allowed to be renamed"
    )))
}

/// `frappe.client.bulk_update` (POST/PUT): `docs` is a JSON list of changes, each naming its
/// document by `doctype` and `docname`. Each document is saved on its own, as in Frappe; the
/// ones that fail are returned in `failed_docs` with the one-line summary of their error
/// (Frappe sends the whole traceback), the others stay saved.
pub async fn bulk_update(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    call.require_post()?;
    let docs = match call.args.json("docs")? {
        Some(Value::Array(docs)) => docs,
        Some(other) => {
            return Err(AppError::bad_input(
                ExcType::TypeError,
                format!(
                    "docs must be a JSON list of documents, not {}.",
                    json_kind(&other)
                ),
            ))
        }
        None => return Err(missing_argument("bulk_update", "docs")),
    };
    if docs.iter().any(|d| !d.is_object()) {
        return Err(AppError::bad_input(
            ExcType::AttributeError,
            "Every entry of docs must be a JSON object.",
        ));
    }
    let mut failed = Vec::new();
    for doc in docs {
        let Value::Object(mut doc) = doc else {
            continue;
        };
        doc.remove("flags");
        if let Err(e) = bulk_update_one(&call, &doc).await {
            failed.push(json!({"doc": Value::Object(doc), "exc": e.summary()}));
        }
    }
    Ok(call.reply(json!({ "failed_docs": failed })))
}

async fn bulk_update_one(call: &Call, doc: &Map<String, Value>) -> Result<(), AppError> {
    let key_error = |k: &str| AppError::bad_input(ExcType::KeyError, format!("'{k}'"));
    let dt = doc.get("doctype").ok_or_else(|| key_error("doctype"))?;
    let docname = doc.get("docname").ok_or_else(|| key_error("docname"))?;
    let (Some(dt), Some(docname)) = (dt.as_str(), scalar_text(docname)) else {
        return Err(AppError::validation("doctype and docname must be strings."));
    };
    let meta = meta_or_404(dt)?;
    let mut body = doc.clone();
    body.remove("doctype");
    body.remove("docname");
    service::update(&call.state, &call.user, meta, &docname, body).await?;
    Ok(())
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `frappe.client.get_single_value`: the value of a Single DocType's field. Neither DocType
/// here is Single, so, as in Frappe (`frappe.db.get_single_value` reads `tabSingles`, finds no
/// row and casts None to the field's type), a field answers its type's empty value (`""` for
/// text, `0` for Int, nothing for other types) and an unknown field is a 417 ValidationError.
pub async fn get_single_value(name: &str, call: Call) -> Result<HttpResponse, AppError> {
    call.require_login(name)?;
    let meta = doctype(&call, "get_single_value")?;
    let field = call.args.require_str("field", "get_single_value")?;
    if !service::has_doctype_access(&call.user) {
        return Err(AppError::permission(
            vec![crate::error::ServerMessage::raised(format!(
                "No permission for {}",
                meta.doctype()
            ))],
            None,
        ));
    }
    let definition = doctype_definition(meta)?;
    let fieldtype = definition
        .get("fields")
        .and_then(Value::as_array)
        .and_then(|fields| {
            fields
                .iter()
                .find(|f| f.get("fieldname").and_then(Value::as_str) == Some(field.as_str()))
        })
        .map(|f| f.get("fieldtype").and_then(Value::as_str).unwrap_or(""));
    let Some(fieldtype) = fieldtype else {
        // Frappe passes `InvalidColumnName` to `str.format` instead of to `frappe.throw`, so an
        // unknown field raises a plain ValidationError (417), with both names in bold. The
        // field is escaped here (Frappe reflects it as it came).
        return Err(AppError::validation(format!(
            "Field <strong>{}</strong> does not exist on <strong>{}</strong>",
            crate::error::html_escape(&field),
            meta.doctype()
        )));
    };
    let value = match fieldtype {
        "Currency" | "Float" | "Percent" => json!(0.0),
        "Int" | "Check" => json!(0),
        "Data" | "Text" | "Small Text" | "Long Text" | "Text Editor" | "Select" | "Link"
        | "Dynamic Link" => json!(""),
        // Frappe leaves None as it is, and a None result is answered without `message`.
        _ if call.v2 => return Ok(call.reply(Value::Null)),
        _ => return Ok(HttpResponse::Ok().json(json!({}))),
    };
    Ok(call.reply(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frappe::meta::{CONNECTED_APP, TOKEN_CACHE};

    /// `rename_doc` refuses every rename because of this; a DocType that allowed renaming
    /// would need the rename itself (names in child rows, Token Cache links, `__Auth`).
    #[test]
    fn neither_doctype_allows_renaming() {
        for meta in [&CONNECTED_APP, &TOKEN_CACHE] {
            let d = doctype_definition(meta).unwrap();
            assert_eq!(d["allow_rename"], 0, "{}", meta.doctype());
            assert_eq!(d["issingle"], 0, "{}", meta.doctype());
        }
    }
}
