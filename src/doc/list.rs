//! Running list queries for a user: permission, the query, and Frappe's list shapes.

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

use super::coalesce::CountKey;
use super::page_cache::PageKey;
use super::row::{DynRow, Sql};
use super::service::StatePtr;
use super::service::{has_doctype_access, list_owner_filter, no_doctype_access};
use super::store;
use crate::auth::CurrentUser;
use crate::db::DbConnection;
use crate::error::{AppError, AppResult};
use crate::frappe::list_query::{
    self, AggItem, AggOutput, ListQuery, ListQueryError, RawListArgs, Select,
};
use crate::frappe::meta::{Column, ColumnKind, DocMeta};
use crate::frappe::time;
use crate::state::AppState;
use crate::state::SharedState;

/// Parses list arguments, turning parser errors into Frappe's 417s.
pub fn parse(meta: &'static DocMeta, args: &Map<String, Value>) -> AppResult<ListQuery> {
    list_query::parse(meta, &RawListArgs::from_map(args)).map_err(query_error)
}

pub fn query_error(e: ListQueryError) -> AppError {
    match e {
        ListQueryError::FieldNotPermitted(_) => {
            AppError::thrown(crate::error::ExcType::DataError, e.to_string())
        }
        ListQueryError::Invalid(m) => AppError::validation(m),
    }
}

/// `get_list`: the rows of a page as dicts (or lists with `as_dict=0`).
pub async fn get_list(
    state: &SharedState,
    user: &CurrentUser,
    meta: &'static DocMeta,
    args: &Map<String, Value>,
) -> AppResult<ListRows> {
    if !has_doctype_access(user) {
        return Err(no_doctype_access(user, meta, false));
    }
    let q = parse(meta, args)?;
    let owner = list_owner_filter(user, meta).map(str::to_string);
    if let Select::Count { alias } = &q.select {
        let alias = alias.clone();
        let n = count(state, meta, &q, owner.as_deref()).await?;
        let mut m = Map::new();
        m.insert(alias, Value::from(n));
        return Ok(ListRows::Built(vec![Value::Object(m)]));
    }
    if let Select::Aggregate(a) = &q.select {
        let items = a.items.clone();
        let as_dict = q.as_dict;
        let rows = state
            .db
            .read(move |conn| store::aggregate_rows(conn, meta, &q, owner.as_deref()))
            .await?;
        return Ok(ListRows::Built(aggregate_values(&items, &rows, as_dict)));
    }
    if let Some(columns) = plain_columns(meta, &q.select) {
        let st = StatePtr::new(state);
        return state
            .db
            .read(move |conn| plain_page(st.get(), conn, meta, &q, owner.as_deref(), columns))
            .await;
    }
    state
        .db
        .read(move |conn| {
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
                Select::Count { .. } | Select::Aggregate(_) => Vec::new(),
            };
            // Child-table fields: one output row per child row (a LEFT JOIN, as Frappe does).
            let child_tables: Vec<&'static crate::frappe::meta::TableMeta> = {
                let mut t: Vec<&'static crate::frappe::meta::TableMeta> = Vec::new();
                for (table, _, _) in &columns {
                    if let Some(table) = table {
                        if !t.iter().any(|x| x.table == table.table) {
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
                    on_child.filters.retain(|c| c.table.table == table.table);
                    on_child.or_filters.clear();
                    let filter = on_child.where_clause(meta, None);
                    store::child_rows(conn, meta, table, &names, Some(filter))?
                }
                None => Vec::new(),
            };
            // Child rows by parent (names match case-insensitively), in their order.
            let mut by_parent: HashMap<String, Vec<&super::Row>> = HashMap::new();
            for c in &children {
                if let Some(p) = c.get_str("parent") {
                    by_parent.entry(p.to_ascii_lowercase()).or_default().push(c);
                }
            }
            let mut out = Vec::with_capacity(rows.len());
            for row in &rows {
                let kids: Vec<&super::Row> = match child_tables.first() {
                    Some(_) => by_parent
                        .get(&row.name.to_ascii_lowercase())
                        .cloned()
                        .unwrap_or_default(),
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
            Ok(ListRows::Built(out))
        })
        .await
}

/// A plain list page: served from the page cache when the rows the query selects now have
/// the names and `modified` they had when the page was cached, otherwise read (with those
/// two columns appended) and cached.
fn plain_page(
    state: &AppState,
    conn: &mut DbConnection,
    meta: &'static DocMeta,
    q: &ListQuery,
    owner: Option<&str>,
    columns: Vec<PlainColumn>,
) -> AppResult<ListRows> {
    let b = store::backend(conn);
    let stamp_columns = match (meta.parent.column("name"), meta.parent.column("modified")) {
        (Some(n), Some(m)) => [n, m],
        _ => return Err(AppError::internal("a DocType without name or modified")),
    };
    let mut wanted: Vec<&Column> = columns.iter().map(|c| c.column).collect();
    wanted.extend(stamp_columns);
    let (from, binds) = store::list_from(b, meta, q, owner);
    let sql = store::select_text(b, &wanted, &from);
    let aliases: Vec<&str> = columns.iter().map(|c| c.alias.as_str()).collect();
    let key = PageKey::new(&sql, &binds, &aliases, q.as_dict);
    if let Some(page) = state.pages.get(&key) {
        let check = store::select_text(b, &stamp_columns, &from);
        let now = Sql::new(check).bind_all(binds.clone()).rows(conn)?;
        if page.stamps.len() == now.len()
            && page.stamps.iter().zip(&now).all(|(s, r)| r.0[..] == s[..])
        {
            return Ok(ListRows::Raw(page.json.clone()));
        }
    }
    let rows = Sql::new(sql).bind_all(binds).rows(conn)?;
    let n = columns.len();
    // Rows without `modified` cannot be checked later: such a page is not kept.
    let stamps: Option<Vec<[Option<String>; 2]>> = rows
        .iter()
        .map(|r| match (r.0.get(n), r.0.get(n + 1)) {
            (Some(Some(name)), Some(Some(modified))) => {
                Some([Some(name.clone()), Some(modified.clone())])
            }
            _ => None,
        })
        .collect();
    let plain = ListRows::Plain {
        columns,
        rows,
        as_dict: q.as_dict,
    };
    let Some(stamps) = stamps else {
        return Ok(plain);
    };
    let json = serde_json::to_string(&plain)
        .ok()
        .and_then(|j| RawValue::from_string(j).ok());
    match json {
        Some(json) => {
            let json = Arc::new(json);
            state.pages.put(key, stamps, json.clone());
            Ok(ListRows::Raw(json))
        }
        None => Ok(plain),
    }
}

/// A page of list rows, serialised straight from the database's text where no child table
/// is involved (the common case, and the one that must be fast).
pub enum ListRows {
    Built(Vec<Value>),
    /// A page already serialised (from the page cache).
    Raw(Arc<Box<RawValue>>),
    Plain {
        columns: Vec<PlainColumn>,
        rows: Vec<DynRow>,
        as_dict: bool,
    },
}

/// An output column of a plain list: the parent column and its key.
pub struct PlainColumn {
    column: &'static Column,
    alias: String,
}

/// The output columns when every selected field is on the parent table.
fn plain_columns(meta: &'static DocMeta, select: &Select) -> Option<Vec<PlainColumn>> {
    let plain = |column: &'static Column, alias: &str| PlainColumn {
        column,
        alias: alias.to_string(),
    };
    match select {
        Select::Names => Some(vec![plain(meta.parent.column("name")?, "name")]),
        Select::Star => Some(
            list_query::star_columns(meta)
                .into_iter()
                .map(|c| plain(c, c.name))
                .collect(),
        ),
        Select::Fields(f) => f
            .iter()
            .map(|f| match f.table {
                None => Some(plain(f.column, &f.alias)),
                Some(_) => None,
            })
            .collect(),
        Select::Count { .. } | Select::Aggregate(_) => None,
    }
}

/// The rows of an aggregate query: counts as integers, sums and averages as numbers (as
/// MariaDB's DECIMAL reaches Frappe's JSON), other values as their column shows them.
fn aggregate_values(items: &[AggItem], rows: &[DynRow], as_dict: bool) -> Vec<Value> {
    let value = |item: &AggItem, text: Option<&str>| -> Value {
        match item.output {
            AggOutput::Int => text
                .and_then(|t| t.parse::<i64>().ok())
                .map_or(Value::Null, Value::from),
            AggOutput::Float => text
                .and_then(|t| t.parse::<f64>().ok())
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Null, Value::Number),
            AggOutput::Column(c) => serde_json::to_value(Cell(c, text)).unwrap_or(Value::Null),
        }
    };
    rows.iter()
        .map(|row| {
            let cells = items
                .iter()
                .zip(&row.0)
                .map(|(i, t)| (i, value(i, t.as_deref())));
            if as_dict {
                Value::Object(cells.map(|(i, v)| (i.alias.clone(), v)).collect())
            } else {
                Value::Array(cells.map(|(_, v)| v).collect())
            }
        })
        .collect()
}

impl ListRows {
    pub fn into_value(self) -> Value {
        match self {
            ListRows::Built(v) => Value::Array(v),
            ListRows::Raw(json) => serde_json::from_str(json.get()).unwrap_or(Value::Null),
            plain => serde_json::to_value(&plain).unwrap_or(Value::Null),
        }
    }
}

impl Serialize for ListRows {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (columns, rows, as_dict) = match self {
            ListRows::Built(v) => return v.serialize(s),
            ListRows::Raw(json) => return json.serialize(s),
            ListRows::Plain {
                columns,
                rows,
                as_dict,
            } => (columns, rows, *as_dict),
        };
        let mut seq = s.serialize_seq(Some(rows.len()))?;
        for row in rows {
            if as_dict {
                seq.serialize_element(&DictRow(columns, row))?;
            } else {
                seq.serialize_element(&ListRow(columns, row))?;
            }
        }
        seq.end()
    }
}

struct DictRow<'a>(&'a [PlainColumn], &'a DynRow);
struct ListRow<'a>(&'a [PlainColumn], &'a DynRow);

impl Serialize for DictRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (c, v) in self.0.iter().zip(&self.1 .0) {
            map.serialize_entry(&c.alias, &Cell(c.column, v.as_deref()))?;
        }
        map.end()
    }
}

impl Serialize for ListRow<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (c, v) in self.0.iter().zip(&self.1 .0) {
            seq.serialize_element(&Cell(c.column, v.as_deref()))?;
        }
        seq.end()
    }
}

/// One value as `Row::from_text` then `Row::value` would render it.
struct Cell<'a>(&'static Column, Option<&'a str>);

impl Serialize for Cell<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Cell(column, text) = *self;
        match (column.name, column.kind, text) {
            ("name", _, v) => s.serialize_str(v.unwrap_or_default()),
            ("docstatus" | "idx", _, v) => {
                s.serialize_i64(v.and_then(|v| v.parse().ok()).unwrap_or(0))
            }
            ("creation" | "modified", _, Some(v)) => match time::canonical(v) {
                Some(v) => s.serialize_str(v),
                None => match time::parse(v) {
                    Some(t) => s.serialize_str(&time::format(&t)),
                    None => s.serialize_none(),
                },
            },
            (_, ColumnKind::Int, Some(v)) => match v.parse::<i64>() {
                Ok(i) => s.serialize_i64(i),
                Err(_) => s.serialize_none(),
            },
            (_, _, Some(v)) => s.serialize_str(v),
            (_, _, None) => s.serialize_none(),
        }
    }
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
    count(state, meta, &q, owner.as_deref()).await
}

/// Counts a list query's rows. Identical counts asked while one is being computed share the
/// next computation (see [`super::coalesce::Coalescer`]).
async fn count(
    state: &AppState,
    meta: &'static DocMeta,
    q: &ListQuery,
    owner: Option<&str>,
) -> AppResult<i64> {
    let (sql, binds) = store::count_sql(state.db.backend, meta, q, owner);
    state
        .counts
        .run(CountKey { sql, binds }, |key| {
            let (sql, binds) = (key.sql.clone(), key.binds.clone());
            state
                .db
                .read(move |conn| store::run_count(conn, sql, binds))
        })
        .await
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::frappe::meta::{CONNECTED_APP, TOKEN_CACHE};

    /// A column's text as a database might hand it over: canonical and short timestamps,
    /// impossible dates, numbers, words, empty strings and NULL.
    fn cell() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            Just(Some(String::new())),
            Just(Some("2026-11-28 08:35:16.132698".to_string())),
            Just(Some("2026-11-28 08:35:16".to_string())),
            Just(Some("2026-02-30 08:35:16.000000".to_string())),
            Just(Some("0000-00-00 00:00:00.000000".to_string())),
            Just(Some("2026-11-28 24:00:00.000000".to_string())),
            Just(Some(" 2026-11-28 08:35:16.5".to_string())),
            any::<i64>().prop_map(|i| Some(i.to_string())),
            "[ -~]{0,30}".prop_map(Some),
        ]
    }

    proptest! {
        /// The plain list path renders every value exactly as the document path
        /// (`Row::from_text`, then `Row::value`) does.
        #[test]
        fn plain_rows_render_as_documents_do(
            token_cache in any::<bool>(),
            rows in prop::collection::vec(prop::collection::vec(cell(), 40), 0..4),
            as_dict in any::<bool>(),
        ) {
            let meta: &'static DocMeta = if token_cache { &TOKEN_CACHE } else { &CONNECTED_APP };
            let table = meta.parent;
            let columns = plain_columns(meta, &Select::Star).unwrap();
            let mut expected = Vec::new();
            let mut dyn_rows = Vec::new();
            for values in &rows {
                let values = &values[..table.columns.len()];
                let row = super::super::Row::from_text(table, values);
                let pick = |c: &PlainColumn| {
                    let i = table.columns.iter().position(|t| t.name == c.column.name).unwrap();
                    values[i].clone()
                };
                dyn_rows.push(DynRow(columns.iter().map(pick).collect()));
                let cells: Vec<(String, Value)> = columns
                    .iter()
                    .map(|c| (c.alias.clone(), row.value(c.column.name)))
                    .collect();
                expected.push(if as_dict {
                    Value::Object(cells.into_iter().collect())
                } else {
                    Value::Array(cells.into_iter().map(|(_, v)| v).collect())
                });
            }
            let plain = ListRows::Plain { columns, rows: dyn_rows, as_dict };
            prop_assert_eq!(plain.into_value(), Value::Array(expected));
        }
    }
}
