//! Document operations as Frappe performs them: permissions, validation, naming, secrets,
//! optimistic locking, child-table replacement and the DocType hooks.

use chrono::NaiveDateTime;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::store;
use super::{ChildRow, Doc, Row, SecretChange, STANDARD};
use crate::auth::CurrentUser;
use crate::db::DbConnection;
use crate::doctype;
use crate::error::{AppError, AppResult, ExcType};
use crate::frappe::meta::{ColumnKind, DocMeta};
use crate::frappe::{random_name, time};
use crate::secrets::{self, vault, Vault};
use crate::state::{AppState, SharedState};

pub use super::perm::{forbidden, has_doctype_access, no_doctype_access, Perm};

/// Whether the user may `perm` a document owned by `owner` (None: a new document).
/// System Manager: everything; anyone else what the DocType's rule allows.
pub fn can(user: &CurrentUser, meta: &DocMeta, perm: Perm, owner: Option<&str>) -> bool {
    if user.is_guest() {
        return false;
    }
    if user.is_system_manager() {
        return true;
    }
    doctype::permits(meta, user, perm, owner)
}

/// Only documents owned by the user are listed for it when the DocType says so (`if_owner`).
pub fn list_owner_filter<'a>(user: &'a CurrentUser, meta: &DocMeta) -> Option<&'a str> {
    (doctype::lists_own_only(meta) && !user.is_system_manager()).then_some(user.name.as_str())
}

/// Loads a document the user may read.
pub async fn get(
    state: &SharedState,
    user: &CurrentUser,
    meta: &'static DocMeta,
    name: &str,
) -> AppResult<Doc> {
    if !has_doctype_access(user) {
        return Err(no_doctype_access(user, meta, true));
    }
    let name = name.to_string();
    let st = StatePtr::new(state);
    let doc = state
        .db
        .read(move |conn| {
            let cache = &st.get().docs;
            // One indexed lookup of `modified` decides whether a cached copy is current; a
            // document this process holds no copy of is loaded at once (one query).
            let validated = if cache.holds(meta.doctype(), &name) {
                Some(doctype::modified_of(conn, meta, &name)?)
            } else {
                None
            };
            if let Some(found) = validated {
                let Some((stored, modified)) = found else {
                    cache.forget(meta.doctype(), &name);
                    return Err(AppError::not_found(meta.doctype(), &name));
                };
                if let Some(doc) = cache.get(meta.doctype(), &stored, modified) {
                    return Ok(Doc::clone(&doc));
                }
            }
            let doc = store::load(conn, meta, &name)?
                .ok_or_else(|| AppError::not_found(meta.doctype(), &name))?;
            cache.put(&doc);
            Ok(doc)
        })
        .await?;
    if !can(user, meta, Perm::Read, doc.row.owner.as_deref()) {
        return Err(forbidden(user, meta, Perm::Read, Some(doc.name())));
    }
    Ok(doc)
}

/// The secret changes a body asks for, per Password field.
fn secret_changes(
    meta: &DocMeta,
    body: &Map<String, Value>,
) -> AppResult<Vec<(&'static str, SecretChange)>> {
    let mut out = Vec::new();
    for col in meta
        .parent
        .columns
        .iter()
        .filter(|c| c.kind == ColumnKind::Password)
    {
        let change = match body.get(col.name) {
            None => SecretChange::Keep,
            Some(Value::Null) => SecretChange::Remove,
            Some(Value::String(s)) if s.is_empty() => SecretChange::Remove,
            Some(Value::String(s)) if secrets::is_mask(s) => SecretChange::Keep,
            Some(Value::String(s)) => SecretChange::Set(SecretString::from(s.clone())),
            Some(Value::Number(n)) => SecretChange::Set(SecretString::from(n.to_string())),
            Some(_) => return Err(AppError::validation(format!("{} must be text.", col.label))),
        };
        out.push((col.name, change));
    }
    Ok(out)
}

/// Applies the body's plain fields to a row; unknown keys are ignored as Frappe does.
fn apply_fields(meta: &DocMeta, row: &mut Row, body: &Map<String, Value>) -> AppResult<()> {
    for col in meta.parent.columns {
        if STANDARD.contains(&col.name)
            || col.kind == ColumnKind::Password
            || col.name.starts_with('_')
        {
            continue;
        }
        if let Some(v) = body.get(col.name) {
            row.set(col.name, coerce(col.kind, col.label, v)?);
        }
    }
    Ok(())
}

/// Turns a body value into what the column stores.
fn coerce(kind: ColumnKind, label: &str, v: &Value) -> AppResult<Value> {
    match (kind, v) {
        (_, Value::Null) => Ok(Value::Null),
        (ColumnKind::Int, Value::Number(n)) => {
            let i = n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .unwrap_or(0);
            if i32::try_from(i).is_err() {
                return Err(AppError::validation(format!("{label} is out of range.")));
            }
            Ok(Value::from(i))
        }
        (ColumnKind::Int, Value::String(s)) => match s.trim() {
            "" => Ok(Value::from(0)),
            t => t
                .parse::<i32>()
                .map(Value::from)
                .map_err(|_| AppError::validation(format!("{label} must be a whole number."))),
        },
        (ColumnKind::Int, Value::Bool(b)) => Ok(Value::from(i64::from(*b))),
        (_, Value::String(s)) => {
            if s.chars().count() > 140 && kind != ColumnKind::Password {
                return Err(AppError::validation(format!(
                    "{label} is too long: it can have at most 140 characters."
                )));
            }
            Ok(Value::String(s.clone()))
        }
        (_, Value::Number(n)) => Ok(Value::String(n.to_string())),
        (_, Value::Bool(b)) => Ok(Value::String(if *b { "1".into() } else { "0".into() })),
        _ => Err(AppError::validation(format!(
            "{label} must be a value, not a list or an object."
        ))),
    }
}

/// Builds the child rows a body sends for one child field (the whole table is replaced).
fn child_rows_from_body(
    doc: &Doc,
    child_index: usize,
    value: &Value,
    now: NaiveDateTime,
    user: &str,
) -> AppResult<Vec<ChildRow>> {
    let child = &doc.meta.children[child_index];
    let Value::Array(items) = value else {
        return Err(AppError::validation(format!(
            "{} must be a list of rows.",
            child.label
        )));
    };
    if items.len() > 1000 {
        return Err(AppError::validation(format!(
            "{} has too many rows.",
            child.label
        )));
    }
    let existing = &doc.children[child_index];
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(obj) = item else {
            return Err(AppError::validation(format!(
                "Row #{} of {} must be an object.",
                i + 1,
                child.label
            )));
        };
        let given_name = obj.get("name").and_then(Value::as_str);
        let old =
            given_name.and_then(|n| existing.iter().find(|c| c.row.name.eq_ignore_ascii_case(n)));
        let mut row = match old {
            Some(c) => c.row.clone(),
            None => {
                let mut r = Row::new(random_name());
                r.creation = doc.row.creation;
                // New rows belong to whoever saves them (Frappe sets owner on insert).
                r.owner = Some(user.to_string());
                r
            }
        };
        for col in child.table.columns {
            if STANDARD.contains(&col.name)
                || matches!(col.name, "parent" | "parentfield" | "parenttype")
            {
                continue;
            }
            if let Some(v) = obj.get(col.name) {
                row.set(col.name, coerce(col.kind, col.label, v)?);
            }
        }
        row.idx = i as i64 + 1;
        row.modified = Some(now);
        row.modified_by = Some(user.to_string());
        row.set("parent", Value::String(doc.row.name.clone()));
        row.set("parentfield", Value::String(child.fieldname.into()));
        row.set("parenttype", Value::String(doc.meta.doctype().into()));
        out.push(ChildRow {
            row,
            unsaved: old.is_none(),
        });
    }
    Ok(out)
}

/// Frappe's mandatory checks, parent first, then child rows in order.
fn validate_mandatory(doc: &Doc) -> AppResult<()> {
    let meta = doc.meta;
    for col in meta.parent.columns.iter().filter(|c| c.mandatory) {
        if is_blank(&doc.row.value(col.name)) {
            return Err(AppError::mandatory(
                meta.doctype(),
                doc.name(),
                col.name,
                col.label,
            ));
        }
    }
    for (i, child) in meta.children.iter().enumerate() {
        for c in &doc.children[i] {
            for col in child.table.columns.iter().filter(|c| c.mandatory) {
                if is_blank(&c.row.value(col.name)) {
                    return Err(AppError::mandatory_child(
                        meta.doctype(),
                        doc.name(),
                        child.table.doctype,
                        c.row.idx as usize,
                        col.name,
                        col.label,
                    ));
                }
            }
        }
    }
    Ok(())
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// Writes the secret changes: the column gets `*` × len, `__Auth` the Fernet token.
fn apply_secrets(
    state: &AppState,
    conn: &mut DbConnection,
    doc: &mut Doc,
    changes: &[(&'static str, SecretChange)],
) -> AppResult<()> {
    let doctype = doc.meta.doctype();
    for (field, change) in changes {
        match change {
            SecretChange::Keep => {}
            SecretChange::Remove => {
                doc.row.set(field, Value::String(String::new()));
                vault::remove(conn, doctype, &doc.row.name, field)?;
            }
            SecretChange::Set(v) => {
                let clear = v.expose_secret();
                doc.row
                    .set(field, Value::String(secrets::mask_secret(clear)));
                Vault::new(&state.keys).write(conn, doctype, &doc.row.name, field, clear)?;
            }
        }
    }
    Ok(())
}

/// Creates a document from a request body (Frappe's `insert`).
pub async fn create(
    state: &SharedState,
    user: &CurrentUser,
    meta: &'static DocMeta,
    body: Map<String, Value>,
) -> AppResult<Doc> {
    if !can(user, meta, Perm::Create, None) {
        return Err(forbidden(user, meta, Perm::Create, None));
    }
    let now = state.clock.now();
    let mut doc = Doc::new(meta, doctype::autoname(meta, &body));
    doc.row.owner = Some(user.name.clone());
    doc.row.modified_by = Some(user.name.clone());
    doc.row.creation = Some(now);
    doc.row.modified = Some(now);
    for col in meta
        .parent
        .columns
        .iter()
        .filter(|c| c.kind == ColumnKind::Int && !STANDARD.contains(&c.name))
    {
        doc.row.set(col.name, Value::from(0));
    }
    apply_fields(meta, &mut doc.row, &body)?;
    for (i, child) in meta.children.iter().enumerate() {
        if let Some(v) = body.get(child.fieldname) {
            doc.children[i] = child_rows_from_body(&doc, i, v, now, &user.name)?;
        }
    }
    let changes = secret_changes(meta, &body)?;
    let user_name = user.name.clone();
    // SAFETY of ownership: the closure needs 'static data; the state is cloned by the caller's Data.
    let st = StatePtr::new(state);
    state
        .db
        .write(move |conn| {
            let state = st.get();
            validate_mandatory(&doc)?;
            // A retried attempt starts again from the document as the request built it.
            let mut doc = doc.clone();
            crate::db::write_transaction(conn, |conn| {
                doctype::validate(state, conn, &mut doc)?;
                if doctype::stored_name(conn, meta, doc.name())?.is_some() {
                    return Err(duplicate(meta, doc.name()));
                }
                apply_secrets(state, conn, &mut doc, &changes)?;
                store::insert(conn, &doc)?;
                doctype::on_save(conn, &doc, &body, None, now)?;
                let _ = &user_name;
                Ok(doc)
            })
        })
        .await
}

fn duplicate(meta: &DocMeta, name: &str) -> AppError {
    let mut e = AppError::thrown(
        ExcType::DuplicateEntryError,
        format!("{} {} already exists", meta.doctype(), name),
    );
    e.exception = Some(format!(
        "frappe.exceptions.DuplicateEntryError: ('{}', '{}')",
        meta.doctype(),
        name
    ));
    e
}

/// Updates a document from a request body (Frappe's `doc.update(data); doc.save()`).
pub async fn update(
    state: &SharedState,
    user: &CurrentUser,
    meta: &'static DocMeta,
    name: &str,
    body: Map<String, Value>,
) -> AppResult<Doc> {
    if !has_doctype_access(user) {
        return Err(no_doctype_access(user, meta, true));
    }
    let changes = secret_changes(meta, &body)?;
    let name = name.to_string();
    let user = user.clone();
    let st = StatePtr::new(state);
    state
        .db
        .write(move |conn| {
            let state = st.get();
            crate::db::write_transaction(conn, |conn| {
                store::lock(conn, meta, &name)?;
                let mut doc = store::load(conn, meta, &name)?
                    .ok_or_else(|| AppError::not_found(meta.doctype(), &name))?;
                if !can(&user, meta, Perm::Write, doc.row.owner.as_deref()) {
                    return Err(forbidden(&user, meta, Perm::Write, Some(doc.name())));
                }
                if let Some(new) = body.get("name").and_then(Value::as_str) {
                    if !new.eq_ignore_ascii_case(doc.name()) {
                        // Frappe renames in memory, then fails to find the new name on save.
                        return Err(AppError::not_found(meta.doctype(), new));
                    }
                }
                let now = state.clock.now();
                check_modified(&doc, body.get("modified"), now)?;
                save_changes(state, conn, &mut doc, &body, &changes, &user.name, now)?;
                Ok(doc)
            })
        })
        .await
}

/// Rejects a stale `modified` (Frappe's TimestampMismatchError).
pub fn check_modified(doc: &Doc, sent: Option<&Value>, now: NaiveDateTime) -> AppResult<()> {
    let Some(sent) = sent.and_then(Value::as_str) else {
        return Ok(());
    };
    let Some(stored) = doc.row.modified else {
        return Ok(());
    };
    let same = time::parse(sent).is_some_and(|t| t == stored);
    if same {
        return Ok(());
    }
    Err(AppError::thrown(
        ExcType::TimestampMismatchError,
        format!(
            "Error: Document has been modified after you have opened it ({}, {}). Please refresh to get the latest document.",
            time::format(&stored),
            time::format(&now)
        ),
    ))
}

/// Applies a body to a loaded document and saves it (inside the caller's transaction).
pub fn save_changes(
    state: &AppState,
    conn: &mut DbConnection,
    doc: &mut Doc,
    body: &Map<String, Value>,
    changes: &[(&'static str, SecretChange)],
    user: &str,
    now: NaiveDateTime,
) -> AppResult<()> {
    let meta = doc.meta;
    let previous_modified = doc.row.modified;
    // The document as loaded, for the Version this save writes (track_changes).
    let before = super::version::tracked(meta).then(|| doc.clone());
    let kept = doctype::kept_on_update(doc, body)?;
    apply_fields(meta, &mut doc.row, body)?;
    for (field, stored) in kept {
        doc.row.set(field, stored);
    }
    doctype::on_save(conn, doc, body, previous_modified, now)?;
    doc.row.modified = Some(now);
    doc.row.modified_by = Some(user.to_string());
    let mut replaced = Vec::new();
    for (i, child) in meta.children.iter().enumerate() {
        if let Some(v) = body.get(child.fieldname) {
            doc.children[i] = child_rows_from_body(doc, i, v, now, user)?;
            replaced.push(child.fieldname);
        } else {
            for c in &mut doc.children[i] {
                c.row.modified = Some(now);
                c.row.modified_by = Some(user.to_string());
            }
        }
    }
    validate_mandatory(doc)?;
    doctype::validate(state, conn, doc)?;
    apply_secrets(state, conn, doc, changes)?;
    store::update(conn, doc, &replaced)?;
    if let Some(before) = before {
        super::version::record(conn, &before, doc, user, now)?;
    }
    Ok(())
}

/// Deletes a document: the DocType's `on_trash` may refuse (a Connected App that Token Caches
/// link to), its `on_delete` removes what goes with it, in the same transaction; what it
/// prepared before is done once the delete is committed (a Token Cache's tokens are revoked).
/// Returns the deleted document.
pub async fn delete(
    state: &SharedState,
    user: &CurrentUser,
    meta: &'static DocMeta,
    name: &str,
    bare_404: bool,
) -> AppResult<Doc> {
    if !has_doctype_access(user) {
        return Err(no_doctype_access(user, meta, true));
    }
    let prepared = doctype::prepare_delete(state, meta, name).await;
    let name = name.to_string();
    let user = user.clone();
    let doc = state
        .db
        .write(move |conn| {
            crate::db::write_transaction(conn, |conn| {
                store::lock(conn, meta, &name)?;
                let Some(doc) = store::load(conn, meta, &name)? else {
                    return Err(if bare_404 {
                        AppError::not_found_bare()
                    } else {
                        AppError::not_found(meta.doctype(), &name)
                    });
                };
                if !can(&user, meta, Perm::Delete, doc.row.owner.as_deref()) {
                    return Err(forbidden(&user, meta, Perm::Delete, Some(doc.name())));
                }
                doctype::on_trash(conn, &doc)?;
                store::delete(conn, meta, doc.name())?;
                super::version::forget(conn, meta, doc.name())?;
                doctype::on_delete(conn, &doc)?;
                Ok(doc)
            })
        })
        .await?;
    doctype::after_delete(state, prepared).await;
    Ok(doc)
}

/// A handle to the state that blocking closures own (an `Arc` clone), so a task that outlives
/// its request never points at freed memory.
#[derive(Clone)]
pub struct StatePtr(SharedState);

impl StatePtr {
    pub fn new(state: &SharedState) -> Self {
        StatePtr(state.clone())
    }

    pub fn get(&self) -> &AppState {
        &self.0
    }
}
