//! Running list queries for a user: permission, the query, and Frappe's list shapes.

use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::row::{DynRow, Sql};
use super::service::StatePtr;
use super::service::{has_doctype_access, list_owner_filter, no_doctype_access};
use super::store;
use crate::auth::CurrentUser;
use crate::db::DbConnection;
use crate::error::{AppError, AppResult};
use crate::frappe::list_query::SqlValue;
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
    let key = PageKey::new(&sql, &binds, &columns, q.as_dict);
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

/// What identifies a cached page: the statement, its values and the output's shape.
#[derive(PartialEq, Eq, Hash)]
struct PageKey(String);

impl PageKey {
    fn new(sql: &str, binds: &[SqlValue], columns: &[PlainColumn], as_dict: bool) -> PageKey {
        let aliases: Vec<&str> = columns.iter().map(|c| c.alias.as_str()).collect();
        PageKey(format!("{sql}\n{binds:?}\n{aliases:?}\n{as_dict}"))
    }
}

/// A cached page: its rows' names and `modified`, and the page as JSON.
struct Page {
    stamps: Vec<[Option<String>; 2]>,
    json: Arc<Box<RawValue>>,
}

/// Plain list pages already served, per process. Bounded in entries and in bytes (a page's
/// key, JSON and stamps all count); when either bound is reached the cache starts over.
#[derive(Default)]
pub struct PageCache {
    pages: Mutex<(HashMap<PageKey, Arc<Page>>, usize)>,
}

const MAX_PAGES: usize = 512;
const MAX_PAGE_BYTES: usize = 64 * 1024;
const MAX_CACHE_BYTES: usize = 8 * 1024 * 1024;

impl PageCache {
    fn get(&self, key: &PageKey) -> Option<Arc<Page>> {
        let pages = self.pages.lock().ok()?;
        pages.0.get(key).cloned()
    }

    fn put(&self, key: PageKey, stamps: Vec<[Option<String>; 2]>, json: Arc<Box<RawValue>>) {
        let page = Page { stamps, json };
        let size = key.0.len() + page.bytes();
        if size > MAX_PAGE_BYTES {
            return;
        }
        let Ok(mut pages) = self.pages.lock() else {
            return;
        };
        let (map, bytes) = &mut *pages;
        if map.len() >= MAX_PAGES || *bytes + size > MAX_CACHE_BYTES {
            map.clear();
            *bytes = 0;
        }
        *bytes += size;
        let key_len = key.0.len();
        if let Some(old) = map.insert(key, Arc::new(page)) {
            *bytes -= (key_len + old.bytes()).min(*bytes);
        }
    }

    /// Pages held and the bytes counted against [`MAX_CACHE_BYTES`].
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let pages = self.pages.lock().unwrap();
        (pages.0.len(), pages.1)
    }
}

impl Page {
    /// What a page holds: its JSON and its rows' names and `modified` (which, for a page of
    /// short rows, weigh more than the JSON).
    fn bytes(&self) -> usize {
        let stamps: usize = self
            .stamps
            .iter()
            .map(|s| {
                std::mem::size_of::<[Option<String>; 2]>()
                    + s.iter().flatten().map(String::len).sum::<usize>()
            })
            .sum();
        self.json.get().len() + stamps
    }
}

impl std::fmt::Debug for PageCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageCache").finish_non_exhaustive()
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
/// next computation (see [`Coalescer`]).
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

/// What makes two counts identical: the statement and every bound value.
#[derive(Debug, Clone, PartialEq)]
pub struct CountKey {
    pub sql: String,
    pub binds: Vec<SqlValue>,
}

impl std::hash::Hash for CountKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.sql.hash(h);
        for b in &self.binds {
            match b {
                SqlValue::Text(s) => (0u8, s).hash(h),
                SqlValue::Int(i) => (1u8, i).hash(h),
                SqlValue::Float(f) => (2u8, f.to_bits()).hash(h),
                SqlValue::Null => 3u8.hash(h),
            }
        }
    }
}

impl CountKey {
    /// Heap and inline bytes the key holds (for the coalescer's bound).
    fn bytes(&self) -> usize {
        let values: usize = self
            .binds
            .iter()
            .map(|b| match b {
                SqlValue::Text(s) => s.len(),
                _ => 0,
            })
            .sum();
        self.sql.len() + values + self.binds.len() * std::mem::size_of::<SqlValue>()
    }
}

/// Request coalescing for identical reads: of the requests that wait while one computation
/// runs, one computes again when it ends and the others take its answer.
///
/// An answer is only ever given to requests that arrived before the computation that
/// produced it began, so each one reflects the database at some moment between the request's
/// arrival and its answer, exactly as if the request had run its own query. Under load this
/// turns N identical `COUNT(*)`s (which MariaDB answers by scanning an index) into about one
/// per round trip.
///
/// Memory: flights are found by a hash of their key (keyed per process, so a caller cannot
/// aim for collisions) and told apart by comparing the whole key, which a flight holds (the
/// key of the request that opened it, moved, not copied) only while a request is in it: the
/// last request to leave, answered or cancelled, removes it. So the coalescer holds nothing
/// once counts are answered, and while they run at most [`MAX_FLIGHTS`] flights and
/// [`MAX_FLIGHT_KEY_BYTES`] of keys; a count beyond either bound runs on its own.
#[derive(Default)]
pub struct Coalescer {
    hasher: std::hash::RandomState,
    flights: Mutex<Flights>,
}

#[derive(Default)]
struct Flights {
    by_hash: HashMap<u64, Vec<Arc<Flight>>>,
    count: usize,
    key_bytes: usize,
}

struct Flight {
    key: CountKey,
    /// Requests in this flight now (changed only under the `flights` lock).
    users: std::sync::atomic::AtomicUsize,
    /// Requests that have arrived, ever; a request's ticket is its place in this sequence.
    arrivals: std::sync::atomic::AtomicU64,
    /// The last answer and the number of arrivals it covers.
    last: tokio::sync::Mutex<Option<(u64, AppResult<i64>)>>,
}

/// Counts in flight at once that can be coalesced.
pub const MAX_FLIGHTS: usize = 1024;
/// Bytes of the keys of the counts in flight that can be coalesced.
pub const MAX_FLIGHT_KEY_BYTES: usize = 16 * 1024 * 1024;

/// A request's place in a flight; leaving it (on answer or cancellation) removes the flight
/// when no one else is in it.
struct Seat<'a> {
    coalescer: &'a Coalescer,
    hash: u64,
    flight: Arc<Flight>,
}

impl Drop for Seat<'_> {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering::SeqCst;
        let mut flights = self
            .coalescer
            .flights
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if self.flight.users.fetch_sub(1, SeqCst) != 1 {
            return;
        }
        let flights = &mut *flights;
        if let Some(list) = flights.by_hash.get_mut(&self.hash) {
            if let Some(i) = list.iter().position(|f| Arc::ptr_eq(f, &self.flight)) {
                list.swap_remove(i);
                flights.count -= 1;
                flights.key_bytes -= self.flight.key.bytes();
            }
            if list.is_empty() {
                flights.by_hash.remove(&self.hash);
            }
        }
    }
}

impl Coalescer {
    pub async fn run<F, Fut>(&self, key: CountKey, compute: F) -> AppResult<i64>
    where
        F: FnOnce(&CountKey) -> Fut,
        Fut: std::future::Future<Output = AppResult<i64>>,
    {
        let hash = {
            use std::hash::BuildHasher;
            self.hasher.hash_one(&key)
        };
        self.run_hashed(hash, key, compute).await
    }

    /// [`Coalescer::run`] with the key's hash given (tests force collisions with it).
    async fn run_hashed<F, Fut>(&self, hash: u64, key: CountKey, compute: F) -> AppResult<i64>
    where
        F: FnOnce(&CountKey) -> Fut,
        Fut: std::future::Future<Output = AppResult<i64>>,
    {
        use std::sync::atomic::Ordering::SeqCst;
        let seat = match self.sit(hash, key) {
            Ok(seat) => seat,
            Err(key) => return compute(&key).await,
        };
        let flight = &seat.flight;
        let ticket = flight.arrivals.fetch_add(1, SeqCst) + 1;
        let mut last = flight.last.lock().await;
        if let Some((covered, answer)) = last.as_ref() {
            if *covered >= ticket {
                return answer.clone();
            }
        }
        // Every request counted so far arrived before this computation begins.
        let covered = flight.arrivals.load(SeqCst);
        let answer = compute(&flight.key).await;
        *last = Some((covered, answer.clone()));
        answer
    }

    /// Joins the flight of an equal key, or opens one; gives the key back when the bounds
    /// are reached (the count then runs on its own).
    fn sit(&self, hash: u64, key: CountKey) -> Result<Seat<'_>, CountKey> {
        use std::sync::atomic::Ordering::SeqCst;
        let Ok(mut flights) = self.flights.lock() else {
            return Err(key);
        };
        let flights = &mut *flights;
        let list = flights.by_hash.entry(hash).or_default();
        let flight = match list.iter().find(|f| f.key == key) {
            Some(f) => f.clone(),
            None => {
                let bytes = key.bytes();
                if flights.count >= MAX_FLIGHTS || flights.key_bytes + bytes > MAX_FLIGHT_KEY_BYTES
                {
                    if list.is_empty() {
                        flights.by_hash.remove(&hash);
                    }
                    return Err(key);
                }
                let f = Arc::new(Flight {
                    key,
                    users: Default::default(),
                    arrivals: Default::default(),
                    last: Default::default(),
                });
                list.push(f.clone());
                flights.count += 1;
                flights.key_bytes += bytes;
                f
            }
        };
        flight.users.fetch_add(1, SeqCst);
        Ok(Seat {
            coalescer: self,
            hash,
            flight,
        })
    }

    /// Flights held now and the bytes of their keys.
    #[cfg(test)]
    fn held(&self) -> (usize, usize, usize) {
        let f = self.flights.lock().unwrap();
        (f.by_hash.len(), f.count, f.key_bytes)
    }
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer").finish_non_exhaustive()
    }
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

    fn key(s: &str) -> CountKey {
        CountKey {
            sql: "SELECT COUNT(*) FROM t WHERE a = ?".into(),
            binds: vec![SqlValue::Text(s.into())],
        }
    }

    #[test]
    fn the_page_cache_counts_keys_json_and_stamps_against_its_bound() {
        let cache = PageCache::default();
        // Pages of 500 short rows: 3 KB of JSON, about 40 KB of names and `modified`.
        let page = |i: usize| {
            let stamps: Vec<[Option<String>; 2]> = (0..500)
                .map(|r| {
                    [
                        Some(format!("n{r}")),
                        Some("2026-11-28 08:35:16.132698".to_string()),
                    ]
                })
                .collect();
            let json = format!("[{}]", vec!["[1]"; 500].join(","));
            let json = Arc::new(RawValue::from_string(json).unwrap());
            (PageKey(format!("page {i}")), stamps, json)
        };
        let (key, stamps, json) = page(0);
        let one = key.0.len()
            + Page {
                stamps: stamps.clone(),
                json: json.clone(),
            }
            .bytes();
        assert!(one > 30_000, "stamps are counted: {one}");
        for i in 0..1_000 {
            let (key, stamps, json) = page(i);
            cache.put(key, stamps, json);
            let (pages, bytes) = cache.held();
            assert!(bytes <= MAX_CACHE_BYTES, "{bytes} bytes");
            assert!(
                pages * one <= MAX_CACHE_BYTES,
                "{pages} pages of {one} bytes"
            );
        }
        assert!(cache.held().0 > 0, "pages of this size are cached");
    }

    #[tokio::test]
    async fn a_flight_is_gone_once_its_requests_are_answered_or_cancelled() {
        let c = Arc::new(Coalescer::default());
        // Answered: nothing stays, however large the key was.
        for i in 0..100 {
            let big = format!("{i}{}", "x".repeat(100_000));
            assert_eq!(c.run(key(&big), |_| async { Ok(1) }).await, Ok(1));
        }
        assert_eq!(c.held(), (0, 0, 0));
        // Cancelled while computing and while waiting: the last one out removes the flight.
        let (_open, gate) = tokio::sync::oneshot::channel::<()>();
        let gate = Arc::new(tokio::sync::Mutex::new(Some(gate)));
        let running: Vec<_> = (0..3)
            .map(|_| {
                let (c, gate) = (c.clone(), gate.clone());
                tokio::spawn(async move {
                    c.run(key("slow"), |_| async move {
                        if let Some(g) = gate.lock().await.take() {
                            g.await.ok();
                        }
                        Ok(1)
                    })
                    .await
                })
            })
            .collect();
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
        let (hashes, flights, bytes) = c.held();
        assert_eq!((hashes, flights), (1, 1));
        assert_eq!(bytes, key("slow").bytes());
        for r in &running {
            r.abort();
        }
        for r in running {
            let _ = r.await;
        }
        assert_eq!(c.held(), (0, 0, 0));
    }

    #[tokio::test]
    async fn counts_whose_hashes_collide_never_share_an_answer() {
        let c = Arc::new(Coalescer::default());
        let (open, gate) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let c = c.clone();
            tokio::spawn(async move {
                c.run_hashed(7, key("a"), |_| async move {
                    gate.await.ok();
                    Ok(1)
                })
                .await
            })
        };
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        // Same hash, other key, while "a" is in flight: its own flight, its own answer.
        let second = c.run_hashed(7, key("b"), |k| {
            let k = k.clone();
            async move { Ok(if k == key("b") { 2 } else { -1 }) }
        });
        assert_eq!(second.await, Ok(2));
        assert_eq!(c.held().1, 1, "b's flight is gone, a's is still running");
        open.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(c.held(), (0, 0, 0));
    }

    #[tokio::test]
    async fn counts_beyond_the_bounds_run_on_their_own() {
        let c = Arc::new(Coalescer::default());
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        // Keys of 1 MiB each, all computing at once: only 15 fit in 16 MiB.
        let big = |i: usize| key(&format!("{i:02}{}", "x".repeat(1024 * 1024)));
        let waiting: Vec<_> = (0..20)
            .map(|i| {
                let (c, gate) = (c.clone(), gate.clone());
                tokio::spawn(async move {
                    c.run(big(i), |_| async move {
                        gate.acquire().await.map(|p| p.forget()).ok();
                        Ok(i as i64)
                    })
                    .await
                })
            })
            .collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        let (_, flights, bytes) = c.held();
        assert_eq!(flights, MAX_FLIGHT_KEY_BYTES / big(0).bytes());
        assert!(bytes <= MAX_FLIGHT_KEY_BYTES, "{bytes} bytes");
        gate.add_permits(20);
        for (i, w) in waiting.into_iter().enumerate() {
            assert_eq!(w.await.unwrap(), Ok(i as i64), "each count its own answer");
        }
        assert_eq!(c.held(), (0, 0, 0));
    }

    #[tokio::test]
    async fn requests_arriving_during_a_count_share_the_next_one_never_the_running_one() {
        use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
        let c = Arc::new(Coalescer::default());
        let computed = Arc::new(AtomicI64::new(0));
        let (open, gate) = tokio::sync::oneshot::channel::<()>();
        let first = {
            let (c, computed) = (c.clone(), computed.clone());
            tokio::spawn(async move {
                c.run(key("k"), |_| async move {
                    gate.await.ok();
                    Ok(computed.fetch_add(1, SeqCst) + 1)
                })
                .await
            })
        };
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        let later: Vec<_> = (0..10)
            .map(|_| {
                let (c, computed) = (c.clone(), computed.clone());
                tokio::spawn(async move {
                    c.run(key("k"), |_| async move {
                        Ok(computed.fetch_add(1, SeqCst) + 1)
                    })
                    .await
                })
            })
            .collect();
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        open.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
        for l in later {
            assert_eq!(
                l.await.unwrap(),
                Ok(2),
                "an answer begun before the request arrived"
            );
        }
        assert_eq!(
            computed.load(SeqCst),
            2,
            "ten waiting requests, one computation"
        );
        // One at a time, every request computes afresh.
        for want in 3..6 {
            let computed = computed.clone();
            let got = c
                .run(key("k"), |_| async move {
                    Ok(computed.fetch_add(1, SeqCst) + 1)
                })
                .await;
            assert_eq!(got, Ok(want));
        }
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
