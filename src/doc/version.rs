//! The change history Frappe keeps for DocTypes with `track_changes` (Connected App): a
//! `tabVersion` row per save that changed something, written as Frappe's `Version.set_diff`
//! writes it, removed with the document, and read back for the form's `docinfo.versions`.
//!
//! Frappe writes no Version on insert (only with an `updater_reference`, which REST never
//! sets) and deletes a document's Versions when it deletes the document. Password fields hold
//! `*` × len in their column, so a diff shows at most two masks, never a secret.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{json, Map, Value};

use super::{ChildRow, Doc, Row, STANDARD};
use crate::db::schema::version;
use crate::db::DbConnection;
use crate::error::AppResult;
use crate::frappe::meta::{ColumnKind, DocMeta, TableMeta};
use crate::frappe::{random_name, time};

/// How many Versions the form's sidebar gets (Frappe's `get_versions`: `limit=10`).
const DOCINFO_LIMIT: i64 = 10;

/// Whether the DocType has `track_changes` in Frappe.
pub fn tracked(meta: &DocMeta) -> bool {
    meta.track_changes
}

/// Writes the Version of a save: `before` as loaded, `after` as stored. Nothing is written
/// for an untracked DocType or a save that changed nothing Frappe compares.
pub fn record(
    conn: &mut DbConnection,
    before: &Doc,
    after: &Doc,
    user: &str,
    now: NaiveDateTime,
) -> AppResult<()> {
    if !tracked(after.meta) {
        return Ok(());
    }
    let Some(diff) = diff(before, after) else {
        return Ok(());
    };
    diesel::insert_into(version::table)
        .values((
            version::name.eq(random_name()),
            version::creation.eq(Some(now)),
            version::modified.eq(Some(now)),
            version::modified_by.eq(Some(user)),
            version::owner.eq(Some(user)),
            version::docstatus.eq(0),
            version::idx.eq(0),
            version::ref_doctype.eq(Some(after.meta.doctype())),
            version::docname.eq(Some(after.name())),
            version::data.eq(Some(frappe_json(&diff))),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes a document's Versions (Frappe's `delete_dynamic_links`).
pub fn forget(conn: &mut DbConnection, meta: &DocMeta, name: &str) -> AppResult<()> {
    diesel::delete(
        version::table
            .filter(version::ref_doctype.eq(meta.doctype()))
            .filter(version::docname.eq(name)),
    )
    .execute(conn)?;
    Ok(())
}

/// `docinfo.versions`: the newest ten, `{name, owner, creation, data}`.
pub fn for_docinfo(conn: &mut DbConnection, meta: &DocMeta, name: &str) -> AppResult<Vec<Value>> {
    type Item = (
        String,
        Option<String>,
        Option<NaiveDateTime>,
        Option<String>,
    );
    let rows: Vec<Item> = version::table
        .filter(version::ref_doctype.eq(meta.doctype()))
        .filter(version::docname.eq(name))
        .order(version::creation.desc())
        .limit(DOCINFO_LIMIT)
        .select((
            version::name,
            version::owner,
            version::creation,
            version::data,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(name, owner, creation, data)| {
            json!({
                "name": name,
                "owner": owner,
                "creation": creation.map(|t| time::format(&t)),
                "data": data,
            })
        })
        .collect())
}

/// Frappe's `get_diff(old, new)`: `None` when nothing it compares changed.
pub fn diff(before: &Doc, after: &Doc) -> Option<Value> {
    let meta = after.meta;
    let changed = changed_fields(meta.parent, &before.row, &after.row);
    let (mut added, mut removed, mut row_changed) = (Vec::new(), Vec::new(), Vec::new());
    for (i, child) in meta.children.iter().enumerate() {
        let old_rows = &before.children[i];
        let new_rows = &after.children[i];
        for (pos, new) in new_rows.iter().enumerate() {
            match old_rows.iter().find(|o| o.row.name == new.row.name) {
                Some(old) => {
                    let c = changed_fields(child.table, &old.row, &new.row);
                    if !c.is_empty() {
                        row_changed.push(json!([child.fieldname, pos, new.row.name, c]));
                    }
                }
                None => added.push(json!([child.fieldname, row_dict(child.table, new)])),
            }
        }
        for old in old_rows {
            if !new_rows.iter().any(|n| n.row.name == old.row.name) {
                removed.push(json!([child.fieldname, row_dict(child.table, old)]));
            }
        }
    }
    let mut changed = changed;
    if before.row.docstatus != after.row.docstatus {
        changed.push(json!([
            "docstatus",
            before.row.docstatus,
            after.row.docstatus
        ]));
    }
    if changed.is_empty() && added.is_empty() && removed.is_empty() && row_changed.is_empty() {
        return None;
    }
    Some(json!({
        "changed": changed, "added": added, "removed": removed, "row_changed": row_changed,
        "data_import": null, "updater_reference": null,
    }))
}

/// `[[field, old, new], …]` over a table's own fields, in column order.
fn changed_fields(table: &TableMeta, old: &Row, new: &Row) -> Vec<Value> {
    table
        .columns
        .iter()
        .filter(|c| !is_bookkeeping(c.name))
        .filter_map(|c| {
            let (o, n) = (old.value(c.name), new.value(c.name));
            if o == n {
                return None;
            }
            let (o, n) = (formatted(c.kind, o), formatted(c.kind, n));
            (o != n).then(|| json!([c.name, o, n]))
        })
        .collect()
}

fn is_bookkeeping(column: &str) -> bool {
    STANDARD.contains(&column)
        || column.starts_with('_')
        || matches!(column, "parent" | "parentfield" | "parenttype")
}

/// Frappe's `get_formatted` for a set value (an Int prints as text); falsy values stay as
/// they are.
fn formatted(kind: ColumnKind, v: Value) -> Value {
    match (kind, &v) {
        (ColumnKind::Int, Value::Number(n)) if n.as_i64() != Some(0) => {
            Value::String(n.to_string())
        }
        _ => v,
    }
}

/// A child row as Frappe's `as_dict()`: every column (nulls too), `doctype`, and
/// `__unsaved` for a row this save created.
fn row_dict(table: &TableMeta, c: &ChildRow) -> Value {
    let mut m = Map::new();
    for col in table.columns {
        m.insert(col.name.into(), c.row.value(col.name));
    }
    m.insert("doctype".into(), Value::String(table.doctype.into()));
    if c.unsaved {
        m.insert("__unsaved".into(), Value::from(1));
    }
    Value::Object(m)
}

/// `frappe.as_json(v, indent=None, separators=(",", ":"))`: keys sorted, compact, and
/// everything outside printable ASCII escaped (`ensure_ascii`).
pub fn frappe_json(v: &Value) -> String {
    let text = sorted(v).to_string();
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if (' '..='~').contains(&ch) {
            out.push(ch);
        } else {
            // Outside strings JSON has only ASCII, so this is inside a string.
            let mut buf = [0u16; 2];
            for unit in ch.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// The value with every object's keys in sorted order (Python's `sort_keys=True`).
fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frappe_json_sorts_keys_and_escapes_like_python() {
        let v = json!({"b": 1, "a": ["é😀\u{7f}", {"z": null, "__u": 1}]});
        assert_eq!(
            frappe_json(&v),
            r#"{"a":["\u00e9\ud83d\ude00\u007f",{"__u":1,"z":null}],"b":1}"#
        );
    }

    #[test]
    fn control_characters_keep_serde_escapes_that_python_writes_the_same() {
        let v = json!(["a\n\t\"\\\u{1}\u{1f}"]);
        assert_eq!(frappe_json(&v), r#"["a\n\t\"\\\u0001\u001f"]"#);
    }
}
