//! Running list queries for a user: permission, the query, and Frappe's list shapes.

use serde_json::{Map, Value};

use super::service::{has_doctype_access, list_owner_filter, no_doctype_access};
use super::store;
use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::frappe::list_query::{self, ListQuery, ListQueryError, RawListArgs, Select};
use crate::frappe::meta::DocMeta;
use crate::state::AppState;

/// Parses list arguments, turning parser errors into Frappe's 417s.
pub fn parse(meta: &'static DocMeta, args: &Map<String, Value>) -> AppResult<ListQuery> {
    list_query::parse(meta, &RawListArgs::from_map(args)).map_err(query_error)
}

pub fn query_error(e: ListQueryError) -> AppError {
    match e {
        ListQueryError::FieldNotPermitted(_) => AppError::thrown(
            actix_web::http::StatusCode::EXPECTATION_FAILED,
            "DataError",
            e.to_string(),
        ),
        ListQueryError::Invalid(m) => AppError::validation(m),
    }
}

/// `get_list`: the rows of a page as dicts (or lists with `as_dict=0`).
pub async fn get_list(
    state: &AppState,
    user: &CurrentUser,
    meta: &'static DocMeta,
    args: &Map<String, Value>,
) -> AppResult<Value> {
    if !has_doctype_access(user) {
        return Err(no_doctype_access(user, meta, false));
    }
    let q = parse(meta, args)?;
    let owner = list_owner_filter(user, meta).map(str::to_string);
    if let Select::Count { alias } = &q.select {
        let alias = alias.clone();
        let n = state
            .db
            .run(move |conn| store::count(conn, meta, &q, owner.as_deref()))
            .await?;
        let mut m = Map::new();
        m.insert(alias, Value::from(n));
        return Ok(Value::Array(vec![Value::Object(m)]));
    }
    state
        .db
        .run(move |conn| {
            let rows = store::list(conn, meta, &q, owner.as_deref())?;
            let columns: Vec<(
                Option<&'static crate::frappe::meta::TableMeta>,
                &'static str,
                String,
            )> = match &q.select {
                Select::Names => vec![(None, "name", "name".to_string())],
                Select::Star => list_query::star_columns(meta)
                    .into_iter()
                    .map(|c| (None, c.name, c.name.to_string()))
                    .collect(),
                Select::Fields(f) => f
                    .iter()
                    .map(|f| (f.table, f.column.name, f.alias.clone()))
                    .collect(),
                Select::Count { .. } => Vec::new(),
            };
            // Child-table fields: one output row per child row (a LEFT JOIN, as Frappe does).
            let child_tables: Vec<&'static crate::frappe::meta::TableMeta> = {
                let mut t: Vec<&'static crate::frappe::meta::TableMeta> = Vec::new();
                for (table, _, _) in &columns {
                    if let Some(table) = table {
                        if !t.iter().any(|x| std::ptr::eq(*x, *table)) {
                            t.push(table);
                        }
                    }
                }
                t
            };
            let children = match child_tables.first() {
                Some(table) => {
                    let names: Vec<String> = rows.iter().map(|r| r.name.clone()).collect();
                    // Only the child rows that match the filters on this child table, as
                    // Frappe's LEFT JOIN returns them.
                    let mut on_child = q.clone();
                    on_child.filters.retain(|c| std::ptr::eq(c.table, *table));
                    on_child.or_filters.clear();
                    let filter = on_child.where_clause(meta, None);
                    store::child_rows(conn, meta, table, &names, Some(filter))?
                }
                None => Vec::new(),
            };
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let kids: Vec<&super::Row> = match child_tables.first() {
                    Some(_) => children
                        .iter()
                        .filter(|c| {
                            c.get_str("parent")
                                .is_some_and(|p| p.eq_ignore_ascii_case(&row.name))
                        })
                        .collect(),
                    None => Vec::new(),
                };
                let variants: Vec<Option<&super::Row>> =
                    if child_tables.is_empty() || kids.is_empty() {
                        vec![None]
                    } else {
                        kids.into_iter().map(Some).collect()
                    };
                for kid in variants {
                    let values: Vec<(String, Value)> = columns
                        .iter()
                        .map(|(table, col, alias)| {
                            let v = match table {
                                None => row.value(col),
                                Some(_) => kid.map(|k| k.value(col)).unwrap_or(Value::Null),
                            };
                            (alias.clone(), v)
                        })
                        .collect();
                    if q.as_dict {
                        out.push(Value::Object(values.into_iter().collect()));
                    } else {
                        out.push(Value::Array(values.into_iter().map(|(_, v)| v).collect()));
                    }
                }
            }
            Ok(Value::Array(out))
        })
        .await
}

/// `get_count`.
pub async fn get_count(
    state: &AppState,
    user: &CurrentUser,
    meta: &'static DocMeta,
    args: &Map<String, Value>,
) -> AppResult<i64> {
    if !has_doctype_access(user) {
        return Err(no_doctype_access(user, meta, false));
    }
    let mut args = args.clone();
    args.remove("fields");
    args.remove("order_by");
    let q = parse(meta, &args)?;
    let owner = list_owner_filter(user, meta).map(str::to_string);
    state
        .db
        .run(move |conn| store::count(conn, meta, &q, owner.as_deref()))
        .await
}
