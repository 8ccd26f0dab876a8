//! Documents of the served DocTypes: their in-memory shape, Frappe's JSON rendering (key
//! order, nulls left out, masked secrets) and the storage in `store`.

pub mod cache;
pub mod coalesce;
pub mod list;
pub mod page_cache;
pub mod perm;
pub mod row;
pub mod service;
pub mod store;
pub mod version;

use chrono::NaiveDateTime;
use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::frappe::meta::{ColumnKind, DocMeta, TableMeta};
use crate::frappe::time;

/// Columns every table has, in this order.
pub const STANDARD: [&str; 7] = [
    "name",
    "creation",
    "modified",
    "modified_by",
    "owner",
    "docstatus",
    "idx",
];
/// The standard keys in the order Frappe prints them.
const STANDARD_OUT: [&str; 7] = [
    "name",
    "owner",
    "creation",
    "modified",
    "modified_by",
    "docstatus",
    "idx",
];
/// Child-table bookkeeping columns, printed after the row's own fields.
const CHILD_LINK: [&str; 3] = ["parent", "parentfield", "parenttype"];

/// What to do with a Password field on save.
#[derive(Debug, Clone)]
pub enum SecretChange {
    Keep,
    Remove,
    Set(SecretString),
}

/// One row of a table (a document or a child row): standard columns plus the others.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub owner: Option<String>,
    pub creation: Option<NaiveDateTime>,
    pub modified: Option<NaiveDateTime>,
    pub modified_by: Option<String>,
    pub docstatus: i64,
    pub idx: i64,
    /// Every other column, by name: `Value::String`, `Value::Number` or `Value::Null`.
    pub fields: Map<String, Value>,
}

impl Row {
    pub fn new(name: String) -> Self {
        Row {
            name,
            owner: None,
            creation: None,
            modified: None,
            modified_by: None,
            docstatus: 0,
            idx: 0,
            fields: Map::new(),
        }
    }

    pub fn get_str(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }

    pub fn get_i64(&self, field: &str) -> Option<i64> {
        self.fields.get(field).and_then(Value::as_i64)
    }

    pub fn set(&mut self, field: &str, v: Value) {
        self.fields.insert(field.to_string(), v);
    }

    /// The value of any column, standard or not, as JSON.
    pub fn value(&self, column: &str) -> Value {
        match column {
            "name" => Value::String(self.name.clone()),
            "owner" => opt_str(&self.owner),
            "creation" => opt_ts(&self.creation),
            "modified" => opt_ts(&self.modified),
            "modified_by" => opt_str(&self.modified_by),
            "docstatus" => Value::from(self.docstatus),
            "idx" => Value::from(self.idx),
            other => self.fields.get(other).cloned().unwrap_or(Value::Null),
        }
    }

    /// Builds a row from column values as text, in `table.columns` order.
    pub fn from_text(table: &TableMeta, values: &[Option<String>]) -> Row {
        let mut row = Row::new(String::new());
        for (col, v) in table.columns.iter().zip(values.iter()) {
            match col.name {
                "name" => row.name = v.clone().unwrap_or_default(),
                "owner" => row.owner = v.clone(),
                "creation" => row.creation = v.as_deref().and_then(time::parse),
                "modified" => row.modified = v.as_deref().and_then(time::parse),
                "modified_by" => row.modified_by = v.clone(),
                "docstatus" => {
                    row.docstatus = v.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0)
                }
                "idx" => row.idx = v.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0),
                name => {
                    let value = match (col.kind, v) {
                        (_, None) => Value::Null,
                        (ColumnKind::Int, Some(s)) => {
                            s.parse::<i64>().map(Value::from).unwrap_or(Value::Null)
                        }
                        (_, Some(s)) => Value::String(s.clone()),
                    };
                    row.fields.insert(name.to_string(), value);
                }
            }
        }
        row
    }
}

fn opt_str(v: &Option<String>) -> Value {
    v.clone().map(Value::String).unwrap_or(Value::Null)
}

fn opt_ts(v: &Option<NaiveDateTime>) -> Value {
    v.as_ref()
        .map(|t| Value::String(time::format(t)))
        .unwrap_or(Value::Null)
}

/// A child row and whether it was created by the current request (`__unsaved: 1`).
#[derive(Debug, Clone)]
pub struct ChildRow {
    pub row: Row,
    pub unsaved: bool,
}

/// A document with its child tables.
#[derive(Debug, Clone)]
pub struct Doc {
    pub meta: &'static DocMeta,
    pub row: Row,
    /// Child rows per child field, in `meta.children` order, each sorted by idx.
    pub children: Vec<Vec<ChildRow>>,
    /// `modified` as it was read from the database (`None` for a new document): on MariaDB
    /// the save writes only while it still holds (see `store::update`).
    pub loaded_modified: Option<chrono::NaiveDateTime>,
}

impl Doc {
    pub fn new(meta: &'static DocMeta, name: String) -> Doc {
        Doc {
            meta,
            row: Row::new(name),
            children: meta.children.iter().map(|_| Vec::new()).collect(),
            loaded_modified: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.row.name
    }

    /// The child rows of a child field (`scopes`).
    pub fn child(&self, fieldname: &str) -> &[ChildRow] {
        self.meta
            .children
            .iter()
            .position(|c| c.fieldname == fieldname)
            .map(|i| self.children[i].as_slice())
            .unwrap_or(&[])
    }

    /// The values of one column of a child table, in idx order (`scopes` → `scope`).
    pub fn child_values(&self, fieldname: &str, column: &str) -> Vec<String> {
        self.child(fieldname)
            .iter()
            .filter_map(|c| c.row.get_str(column).map(str::to_string))
            .collect()
    }

    /// Frappe's single-document JSON: standard keys, set fields in column order, `doctype`,
    /// then the child tables; nulls left out.
    pub fn to_json(&self) -> Value {
        self.render(false)
    }

    /// The same with null fields included (what `frappe.client.insert`/`set_value` return).
    pub fn to_json_with_nulls(&self) -> Value {
        self.render(true)
    }

    fn render(&self, nulls: bool) -> Value {
        let mut m = row_json(self.meta.parent, &self.row, false, nulls);
        m.insert("doctype".into(), Value::String(self.meta.doctype().into()));
        for (i, child) in self.meta.children.iter().enumerate() {
            let rows: Vec<Value> = self.children[i]
                .iter()
                .map(|c| {
                    let mut m = row_json(child.table, &c.row, true, nulls);
                    m.insert("doctype".into(), Value::String(child.table.doctype.into()));
                    if c.unsaved {
                        m.insert("__unsaved".into(), Value::from(1));
                    }
                    Value::Object(m)
                })
                .collect();
            m.insert(child.fieldname.into(), Value::Array(rows));
        }
        Value::Object(m)
    }
}

fn row_json(table: &TableMeta, row: &Row, child: bool, nulls: bool) -> Map<String, Value> {
    let mut m = Map::new();
    for key in STANDARD_OUT {
        let v = row.value(key);
        if !v.is_null() {
            m.insert(key.into(), v);
        }
    }
    for col in table
        .columns
        .iter()
        .filter(|c| !(STANDARD.contains(&c.name) || child && CHILD_LINK.contains(&c.name)))
    {
        let v = row.value(col.name);
        if !v.is_null() || (nulls && !col.name.starts_with('_')) {
            m.insert(col.name.into(), v);
        }
    }
    if child {
        for key in CHILD_LINK {
            let v = row.value(key);
            if !v.is_null() {
                m.insert(key.into(), v);
            }
        }
    }
    m
}

/// A list row for `fields=["*"]` and field lists: every requested column, nulls included.
pub fn list_row_json(row: &Row, columns: &[(&str, String)]) -> Value {
    let mut m = Map::new();
    for (col, alias) in columns {
        m.insert(alias.clone(), row.value(col));
    }
    Value::Object(m)
}
