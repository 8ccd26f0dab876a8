//! Parser and SQL renderer for Frappe v15 list queries: `GET /api/resource/{doctype}`, `frappe.client.get_list` /
//! `get_count`, `GET /api/v2/document/{doctype}` and `frappe.desk.reportview.get`.
//!
//! [`parse`] turns the raw request parameters ([`RawListArgs`]) into a [`ListQuery`] in which every field, operator
//! and order clause has been checked against the doctype's [`DocMeta`] and a closed operator list. Only then is SQL
//! rendered ([`ListQuery::where_clause`], [`ListQuery::order_clause`], [`ListQuery::limit_clause`], …): identifiers
//! come from the static metadata (always backtick-quoted), user values travel only as `?` binds.
//!
//! Decisions (Frappe v15 behaviour in brackets):
//! - `fields` given as a string is JSON-decoded; a string that is not JSON is split on commas, `"*"` is all columns
//!   [`frappe.model.db_query.DatabaseQuery.parse_args` does exactly this; only the v1 REST wrapper calls `json.loads`
//!   first and answers 500]. A missing/empty `fields` selects only `name`.
//! - `filters`/`or_filters` given as a string must be JSON (else [`ListQueryError::Invalid`]; Frappe answers 500
//!   JSONDecodeError). Shapes: a dict `{field: value}` / `{field: [op, value]}` (`make_filter_tuple`), a list of
//!   3-lists or 4-lists (longer lists are cut to 4, as `frappe.utils.get_filter` does), a list of one-key dicts.
//!   2-lists are rejected with Frappe's own message "Filter must have 4 values …". Raw SQL strings inside a filter
//!   list (which Frappe pastes into the WHERE clause) are rejected. An empty operator means `=` (as in `get_filter`).
//!   A field that is not on the parent doctype is looked up in the child tables, like `get_filter` does.
//! - NULL handling follows `DatabaseQuery.prepare_filter_condition`: `=`/`like` with a falsy value, and always
//!   `!=`, `<`, `>`, `<=`, `>=`, `not like`, `not in`, compare `IFNULL(col, fallback)` (fallback `''`, `0` for Int,
//!   `0001-01-01 00:00:00.000000` for Datetime; a JSON null value is replaced by the fallback too).
//!   Departures asked for by this service: `in []` is always false (`1=0`; Frappe renders `in ('')`), `not in []`
//!   is no condition at all (Frappe: `not in ('')`). Fallbacks and the `''` of `is set` are binds, not literals.
//! - Child-table conditions render as `EXISTS (… parent = t.name AND parenttype = ?)`, unless that child table is
//!   LEFT JOINed because a child field is selected; then, as in Frappe, the condition applies to the joined row.
//!   (Frappe always LEFT JOINs, so a parent *without* child rows can match a negative child condition there; with
//!   EXISTS it cannot.)
//! - `between` takes a 2-list; on Datetime columns a date-only upper bound is extended to `23:59:59.999999`
//!   (as `get_between_date_filter` does for datetime fields).
//! - `order_by`: comma-separated `column [asc|desc]` on the parent table only (plain, backticked or
//!   `` `tabDoctype`.`column` ``); anything else is rejected. Without `order_by` we order by `modified desc`
//!   (Frappe v15 sends no ORDER BY at all and lets the database decide).
//! - `group_by`: a comma-separated list of the parent table's columns (`name` alone, the primary key, is a
//!   no-op). With a `group_by`, or with an aggregate beside other fields, the query is a [`Select::Aggregate`]:
//!   `count`, `sum`, `avg`, `min`, `max` (with `as` aliases) over parent columns (`sum`/`avg` over Int columns
//!   only, `count(*)`, `count(distinct col)`), plain fields that are grouped as they are, and plain fields that
//!   are not grouped as `MIN(col)`: one value of the group, where MariaDB (without `ONLY_FULL_GROUP_BY`) gives
//!   any one. Its `order_by` may name grouped columns, aliases and aggregates; other columns order by their
//!   `MIN` (asc) or `MAX` (desc). Without `order_by` it is ordered by the `group_by` columns.
//! - Limits: default page length 20, start 0; `limit_page_length=0` means no limit. Non-numeric, fractional or
//!   negative values are rejected (Frappe's `cint` would silently turn them into 0); values above `i64::MAX` too.
//!   There is no upper cap: Frappe has none and `0` already asks for every row, so a cap would only truncate silently.
//!   An offset without a limit is honoured (`LIMIT -1` on SQLite, `LIMIT 18446744073709551615` on MariaDB).
//! - `fields`: `count(name)`/`count(*)` alone (optionally `as alias`) is [`Select::Count`] (output key = alias
//!   or the expression as written); other aggregates, or aggregates beside fields, are [`Select::Aggregate`]; no
//!   other function is accepted. `*` may be combined only with parent fields (then it is just `*`). Password
//!   fields are allowed; the caller masks them.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use thiserror::Error;

use super::meta::{ChildField, Column, ColumnKind, DocMeta, TableMeta};

/// Page length used when the request gives none (Frappe's `limit_page_length=20`).
pub const DEFAULT_PAGE_LENGTH: u64 = 20;

/// Fallback for NULL Datetime columns in `IFNULL` comparisons.
const DATETIME_FALLBACK: &str = "0001-01-01 00:00:00.000000";

/// The largest row count MariaDB accepts in `LIMIT`, used for "offset without limit".
const MYSQL_NO_LIMIT: &str = "18446744073709551615";

/// Raw list parameters as they arrive: strings from a query string or form, any JSON value from a JSON body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawListArgs {
    pub fields: Option<Value>,
    pub filters: Option<Value>,
    pub or_filters: Option<Value>,
    pub order_by: Option<Value>,
    pub limit_start: Option<Value>,
    pub limit_page_length: Option<Value>,
    pub as_dict: Option<Value>,
    pub group_by: Option<Value>,
}

impl RawListArgs {
    /// Picks the list parameters out of a request map (query string, form or JSON body).
    ///
    /// Page length: `limit_page_length`, else `page_length` (reportview), else `limit` (v1 alias, v2).
    /// Start: `limit_start`, else `start` (v2, reportview). JSON `null` counts as absent.
    pub fn from_map(map: &Map<String, Value>) -> Self {
        let get = |key: &str| map.get(key).filter(|v| !v.is_null()).cloned();
        RawListArgs {
            fields: get("fields"),
            filters: get("filters"),
            or_filters: get("or_filters"),
            order_by: get("order_by"),
            limit_start: get("limit_start").or_else(|| get("start")),
            limit_page_length: get("limit_page_length")
                .or_else(|| get("page_length"))
                .or_else(|| get("limit")),
            as_dict: get("as_dict"),
            group_by: get("group_by"),
        }
    }
}

/// Why a list request was refused. Both kinds are answered with 417.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ListQueryError {
    /// Frappe's `DataError` for a field that is not a column of the doctype.
    #[error("Field not permitted in query: {0}")]
    FieldNotPermitted(String),
    /// Any other malformed parameter (answered as a `ValidationError`).
    #[error("{0}")]
    Invalid(String),
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, ListQueryError> {
    Err(ListQueryError::Invalid(msg.into()))
}

/// SQL dialect, where the two databases differ.
pub use crate::db::Backend;

/// A value bound to a `?` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
    Float(f64),
    Null,
}

impl SqlValue {
    /// Frappe's truthiness: non-empty text, non-zero numbers.
    fn is_truthy(&self) -> bool {
        match self {
            SqlValue::Text(s) => !s.is_empty(),
            SqlValue::Int(i) => *i != 0,
            SqlValue::Float(f) => *f != 0.0,
            SqlValue::Null => false,
        }
    }

    fn is_null_or_empty(&self) -> bool {
        matches!(self, SqlValue::Null) || matches!(self, SqlValue::Text(s) if s.is_empty())
    }
}

/// The closed list of filter operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Like,
    NotLike,
    In,
    NotIn,
    IsSet,
    IsNotSet,
    Between,
}

/// The value side of a condition; its shape depends on the operator.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    /// `=`, `!=`, `<`, `>`, `<=`, `>=`, `like`, `not like`.
    One(SqlValue),
    /// `in`, `not in`.
    Many(Vec<SqlValue>),
    /// `between`.
    Pair(SqlValue, SqlValue),
    /// `is set`, `is not set`.
    None,
}

/// One checked filter condition.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The parent table or one of its child tables.
    pub table: &'static TableMeta,
    pub column: &'static Column,
    pub op: Operator,
    pub value: FilterValue,
}

/// One `ORDER BY` term on the parent table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderBy {
    pub column: &'static Column,
    pub desc: bool,
}

/// One selected column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectField {
    /// `Some` for a child-table field (``"`tabOAuth Scope`.scope"``), `None` for the parent table.
    pub table: Option<&'static TableMeta>,
    pub column: &'static Column,
    /// The output key.
    pub alias: String,
}

impl SelectField {
    /// The SQL expression (without alias): ``t.`col` `` or `` `tabChild`.`col` ``.
    pub fn sql_expr(&self) -> String {
        match self.table {
            None => format!("t.`{}`", self.column.name),
            Some(table) => format!("`{}`.`{}`", table.table, self.column.name),
        }
    }
}

/// What the query selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    /// The default: only `name`.
    Names,
    /// `*`: the parent table's columns (see [`star_columns`]).
    Star,
    Fields(Vec<SelectField>),
    /// `count(name) as alias` / `count(*)`.
    Count {
        alias: String,
    },
    /// Aggregates and/or a `group_by` (parent columns only).
    Aggregate(Aggregate),
}

/// An aggregate function of `fields`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

impl AggFunc {
    fn parse(name: &str) -> Option<AggFunc> {
        Some(match name.to_ascii_lowercase().as_str() {
            "count" => AggFunc::Count,
            "sum" => AggFunc::Sum,
            "avg" => AggFunc::Avg,
            "min" => AggFunc::Min,
            "max" => AggFunc::Max,
            _ => return None,
        })
    }

    fn sql(self) -> &'static str {
        match self {
            AggFunc::Count => "COUNT",
            AggFunc::Sum => "SUM",
            AggFunc::Avg => "AVG",
            AggFunc::Min => "MIN",
            AggFunc::Max => "MAX",
        }
    }
}

/// How an aggregate query's value is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggOutput {
    /// As the column's values are (`min`, `max`, plain fields).
    Column(&'static Column),
    /// An integer (`count`).
    Int,
    /// A number, as MariaDB's DECIMAL reaches Frappe's JSON (`sum`, `avg`).
    Float,
}

/// One selected item of an aggregate query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggItem {
    /// The SQL expression, on the parent table aliased `t`.
    pub expr: String,
    pub alias: String,
    pub output: AggOutput,
    /// A plain field (not a function): selected as is when grouped, else as `MIN(col)`.
    pub field: Option<&'static Column>,
}

/// `SELECT <items> … GROUP BY <group_by> ORDER BY <order>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    pub items: Vec<AggItem>,
    pub group_by: Vec<&'static Column>,
    /// SQL expressions and whether descending.
    pub order: Vec<(String, bool)>,
}

/// A checked list query.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    pub select: Select,
    /// ANDed.
    pub filters: Vec<Condition>,
    /// ORed as one group, ANDed with the rest.
    pub or_filters: Vec<Condition>,
    pub order_by: Vec<OrderBy>,
    pub start: u64,
    /// `None` = every row (`limit_page_length=0`).
    pub page_length: Option<u64>,
    pub as_dict: bool,
}

/// A piece of SQL and the values for its `?` placeholders, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlFragment {
    pub sql: String,
    pub binds: Vec<SqlValue>,
}

/// Frappe's `default_fields` order, which `*` uses for the standard columns.
const STAR_HEAD: [&str; 7] = [
    "name",
    "owner",
    "creation",
    "modified",
    "modified_by",
    "docstatus",
    "idx",
];

/// The columns `fields=["*"]` returns, in Frappe's order: the standard columns as `frappe.model.default_fields`
/// orders them, then the doctype's fields, without the optional `_user_tags`, `_comments`, `_assign`, `_liked_by`
/// (as recorded from Frappe v15, exchanges 106 and 502; not the table's own column order).
pub fn star_columns(meta: &DocMeta) -> Vec<&'static Column> {
    let head = STAR_HEAD.iter().filter_map(|name| meta.parent.column(name));
    let rest = meta
        .parent
        .columns
        .iter()
        .filter(|c| !c.name.starts_with('_') && !STAR_HEAD.contains(&c.name));
    head.chain(rest).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------------------------

/// Parses and checks list parameters against `meta`, within the [caps](#caps) on their size.
pub fn parse(meta: &'static DocMeta, args: &RawListArgs) -> Result<ListQuery, ListQueryError> {
    caps::check_args(args)?;
    let q = parse_within_caps(meta, args)?;
    caps::check_query(&q)?;
    Ok(q)
}

// ---------------------------------------------------------------------------------------------------------------
// Caps
// ---------------------------------------------------------------------------------------------------------------

/// Caps on the size of a list query, generous for real use. Each is checked as early as the
/// argument can be counted (before any item of it is parsed), so an oversized request costs
/// no more than reading its arguments, and is answered as a `ValidationError` (417) that names
/// the cap. Without them a 70,000-value `in` list failed in the database (500) and 30,000
/// filters cost half a second each.
pub mod caps {
    use serde_json::Value;

    use super::{invalid, FilterValue, ListQuery, ListQueryError, RawListArgs};

    /// Items of `fields` (a list, or text counted by its commas).
    pub const MAX_FIELDS: usize = 500;
    /// Conditions of `filters` and `or_filters` together.
    pub const MAX_FILTERS: usize = 500;
    /// Values of one `in` / `not in` list (a list, or text counted by its commas).
    pub const MAX_IN_VALUES: usize = 5_000;
    /// Comma-separated terms of `order_by`.
    pub const MAX_ORDER_BY: usize = 100;
    /// `?` placeholders one statement may need. SQLite's default limit is 32,766 per
    /// statement and MariaDB's 65,535; this leaves room for the permission condition, the
    /// page and the child rows' parent names (bound in chunks of their own).
    pub const MAX_PLACEHOLDERS: usize = 10_000;
    /// Placeholders a statement adds to its conditions' (owner, page, joins, permission).
    const RESERVED_PLACEHOLDERS: usize = 16;

    fn too_many<T>(what: &str, n: usize, max: usize) -> Result<T, ListQueryError> {
        invalid(format!("Too many {what}: {n} (at most {max})"))
    }

    /// Items a comma-separated text can hold at most.
    fn comma_items(s: &str) -> usize {
        s.bytes().filter(|b| *b == b',').count() + 1
    }

    /// Before parsing: `fields` and `order_by`, counted from the raw arguments.
    pub fn check_args(args: &RawListArgs) -> Result<(), ListQueryError> {
        let fields = match &args.fields {
            Some(Value::Array(items)) => items.len(),
            Some(Value::String(s)) => comma_items(s),
            _ => 0,
        };
        if fields > MAX_FIELDS {
            return too_many("fields", fields, MAX_FIELDS);
        }
        if let Some(Value::String(s)) = &args.order_by {
            let terms = comma_items(s);
            if terms > MAX_ORDER_BY {
                return too_many("order_by terms", terms, MAX_ORDER_BY);
            }
        }
        Ok(())
    }

    /// Before parsing its items: one `filters` / `or_filters` value (once decoded from JSON).
    pub fn check_filters(v: Option<&Value>) -> Result<(), ListQueryError> {
        let n = match v {
            Some(Value::Array(items)) => items.len(),
            Some(Value::Object(map)) => map.len(),
            _ => 0,
        };
        if n > MAX_FILTERS {
            return too_many("filters", n, MAX_FILTERS);
        }
        Ok(())
    }

    /// Before converting them: the values of an `in` / `not in` filter.
    pub fn check_in_values(v: &Value) -> Result<(), ListQueryError> {
        let n = match v {
            Value::Array(items) => items.len(),
            Value::String(s) => comma_items(s),
            _ => 0,
        };
        if n > MAX_IN_VALUES {
            return too_many("values in an 'in' filter", n, MAX_IN_VALUES);
        }
        Ok(())
    }

    /// After parsing: the conditions of `filters` and `or_filters` together, and an upper
    /// bound of the placeholders the statement will have.
    pub fn check_query(q: &ListQuery) -> Result<(), ListQueryError> {
        let conditions = q.filters.len() + q.or_filters.len();
        if conditions > MAX_FILTERS {
            return too_many("filters", conditions, MAX_FILTERS);
        }
        let placeholders = placeholder_bound(q);
        if placeholders > MAX_PLACEHOLDERS {
            return too_many("values in one query", placeholders, MAX_PLACEHOLDERS);
        }
        Ok(())
    }

    /// At least the number of `?` the query's statements render (see `predicate` and
    /// `render_condition`: a condition binds its values, a fallback, and the parent type of
    /// an `EXISTS`).
    pub fn placeholder_bound(q: &ListQuery) -> usize {
        let conditions: usize = q
            .filters
            .iter()
            .chain(&q.or_filters)
            .map(|c| {
                2 + match &c.value {
                    FilterValue::One(_) => 1,
                    FilterValue::Many(v) => v.len(),
                    FilterValue::Pair(..) => 2,
                    FilterValue::None => 0,
                }
            })
            .sum();
        conditions + RESERVED_PLACEHOLDERS
    }
}

/// Parses list parameters, once [`caps::check_args`] let them through.
fn parse_within_caps(
    meta: &'static DocMeta,
    args: &RawListArgs,
) -> Result<ListQuery, ListQueryError> {
    let select = parse_fields(meta, args.fields.as_ref())?;
    let filters = parse_filters(meta, args.filters.as_ref(), "filters")?;
    let or_filters = parse_filters(meta, args.or_filters.as_ref(), "or_filters")?;
    let group_by = parse_group_by(meta, args.group_by.as_ref())?;
    let (select, order_by) = match aggregate(meta, select, group_by, args.order_by.as_ref())? {
        Select::Aggregate(a) => (Select::Aggregate(a), Vec::new()),
        select => (select, parse_order_by(meta, args.order_by.as_ref())?),
    };
    let start = parse_count(args.limit_start.as_ref(), "limit_start", 0)?;
    let page_length = match parse_count(
        args.limit_page_length.as_ref(),
        "limit_page_length",
        DEFAULT_PAGE_LENGTH,
    )? {
        0 => None,
        n => Some(n),
    };
    let as_dict = parse_as_dict(args.as_dict.as_ref())?;
    Ok(ListQuery {
        select,
        filters,
        or_filters,
        order_by,
        start,
        page_length,
        as_dict,
    })
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Splits `col`, `` `col` ``, `table.col`, `` `table`.`col` `` into (table, column) without checking names.
/// `None` when the text is not shaped like a column reference.
fn split_ref(s: &str) -> Option<(Option<&str>, &str)> {
    let s = s.trim();
    let (table, col) = if let Some(rest) = s.strip_prefix('`') {
        let end = rest.find('`')?;
        let first = &rest[..end];
        let after = &rest[end + 1..];
        if after.is_empty() {
            return (is_ident(first)).then_some((None, first));
        }
        (Some(first), after.strip_prefix('.')?)
    } else if let Some((t, c)) = s.rsplit_once('.') {
        (Some(t), c)
    } else {
        (None, s)
    };
    let col = match col.strip_prefix('`') {
        Some(inner) => inner.strip_suffix('`')?,
        None => col,
    };
    if col != "*" && !is_ident(col) {
        return None;
    }
    if let Some(t) = table {
        if t.is_empty() || t.contains('`') {
            return None;
        }
    }
    Some((table, col))
}

/// A resolved table: the parent or one of its children.
#[derive(Clone, Copy)]
enum Target {
    Parent,
    Child(&'static ChildField),
}

impl Target {
    fn table(self, meta: &'static DocMeta) -> &'static TableMeta {
        match self {
            Target::Parent => meta.parent,
            Target::Child(c) => c.table,
        }
    }
}

/// Resolves `tabConnected App`, `Connected App`, a child table/doctype name or a child table field name.
fn resolve_table(meta: &'static DocMeta, name: &str) -> Option<Target> {
    let name = name.trim();
    if name == meta.parent.table || name == meta.parent.doctype {
        return Some(Target::Parent);
    }
    meta.child_by_doctype(name)
        .or_else(|| meta.child_by_field(name))
        .map(Target::Child)
}

fn unknown_table(meta: &DocMeta, name: &str) -> ListQueryError {
    ListQueryError::Invalid(format!(
        "{name} is neither {} nor one of its child tables",
        meta.doctype()
    ))
}

// ----- fields -----

fn parse_fields(meta: &'static DocMeta, v: Option<&Value>) -> Result<Select, ListQueryError> {
    match v {
        None | Some(Value::Null) => Ok(Select::Names),
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(Select::Names);
            }
            if s == "*" {
                return Ok(Select::Star);
            }
            match serde_json::from_str::<Value>(s) {
                Ok(Value::String(inner)) => select_from_list(meta, inner.split(',').collect()),
                Ok(decoded @ (Value::Array(_) | Value::Null)) => parse_fields(meta, Some(&decoded)),
                Ok(_) => invalid("fields must be a list of field names"),
                Err(_) => select_from_list(meta, s.split(',').collect()),
            }
        }
        Some(Value::Array(items)) => {
            let mut names = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::String(s) => names.push(s.as_str()),
                    _ => return invalid("fields must be a list of field names"),
                }
            }
            select_from_list(meta, names)
        }
        Some(_) => invalid("fields must be a list of field names"),
    }
}

fn select_from_list(meta: &'static DocMeta, items: Vec<&str>) -> Result<Select, ListQueryError> {
    let mut fields = Vec::new();
    let mut star = false;
    let mut count: Option<String> = None;
    let mut aggregates: Vec<(usize, AggItem)> = Vec::new();
    let mut n = 0usize;
    for raw in items {
        let item = raw.trim();
        if item.is_empty() {
            continue;
        }
        n += 1;
        let (expr, alias) = split_alias(item)?;
        if let Some(inner) = strip_count(expr) {
            if check_count_arg(meta, inner, expr).is_ok() {
                count = Some(alias.unwrap_or(expr).to_string());
                aggregates.push((
                    fields.len(),
                    AggItem {
                        expr: "COUNT(*)".into(),
                        alias: alias.unwrap_or(expr).to_string(),
                        output: AggOutput::Int,
                        field: None,
                    },
                ));
                continue;
            }
        }
        if expr.contains('(') {
            aggregates.push((fields.len(), aggregate_item(meta, expr, alias)?));
            continue;
        }
        let Some((table, col)) = split_ref(expr) else {
            return invalid(format!("Invalid field: {expr}"));
        };
        let target = match table {
            None => Target::Parent,
            Some(t) => resolve_table(meta, t).ok_or_else(|| unknown_table(meta, t))?,
        };
        if col == "*" {
            if alias.is_some() || matches!(target, Target::Child(_)) {
                return invalid(format!("Invalid field: {item}"));
            }
            star = true;
            continue;
        }
        let column = target
            .table(meta)
            .column(col)
            .ok_or_else(|| ListQueryError::FieldNotPermitted(col.to_string()))?;
        let table = match target {
            Target::Parent => None,
            Target::Child(c) => Some(c.table),
        };
        fields.push(SelectField {
            table,
            column,
            alias: alias.unwrap_or(col).to_string(),
        });
    }
    if let Some(alias) = count {
        if n == 1 {
            return Ok(Select::Count { alias });
        }
    }
    if !aggregates.is_empty() {
        if star {
            return invalid("* cannot be combined with aggregates");
        }
        return aggregate_select(meta, fields, aggregates);
    }
    if star {
        if fields.iter().any(|f| f.table.is_some()) {
            return invalid("* cannot be combined with child table fields");
        }
        return Ok(Select::Star);
    }
    if fields.is_empty() {
        return Ok(Select::Names);
    }
    Ok(Select::Fields(fields))
}

/// Splits `expr as alias` (case-insensitive `as`); the alias must be an identifier, optionally backticked.
fn split_alias(item: &str) -> Result<(&str, Option<&str>), ListQueryError> {
    let lower = item.to_ascii_lowercase();
    let Some(i) = lower.rfind(" as ") else {
        return Ok((item, None));
    };
    let expr = item[..i].trim();
    let raw_alias = item[i + 4..].trim();
    let alias = raw_alias
        .strip_prefix('`')
        .and_then(|a| a.strip_suffix('`'))
        .unwrap_or(raw_alias);
    if expr.is_empty() || !is_ident(alias) {
        return invalid(format!("Invalid field alias: {item}"));
    }
    Ok((expr, Some(alias)))
}

/// `count( … )` → the inner text.
fn strip_count(expr: &str) -> Option<&str> {
    let head = expr.get(..6)?;
    if !head.eq_ignore_ascii_case("count(") {
        return None;
    }
    expr[6..].strip_suffix(')').map(str::trim)
}

fn check_count_arg(meta: &'static DocMeta, inner: &str, expr: &str) -> Result<(), ListQueryError> {
    if inner == "*" {
        return Ok(());
    }
    match split_ref(inner) {
        Some((table, "name"))
            if table.map_or(true, |t| {
                matches!(resolve_table(meta, t), Some(Target::Parent))
            }) =>
        {
            Ok(())
        }
        _ => invalid(format!("Only count(name) or count(*) is allowed: {expr}")),
    }
}

// ----- filters -----

fn parse_filters(
    meta: &'static DocMeta,
    v: Option<&Value>,
    what: &str,
) -> Result<Vec<Condition>, ListQueryError> {
    caps::check_filters(v)?;
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => {
            if s.trim().is_empty() {
                return Ok(Vec::new());
            }
            match serde_json::from_str::<Value>(s) {
                Ok(decoded @ (Value::Object(_) | Value::Array(_) | Value::Null)) => {
                    parse_filters(meta, Some(&decoded), what)
                }
                Ok(_) => invalid(format!("{what} must be a JSON list or object")),
                Err(e) => invalid(format!("{what} is not valid JSON: {e}")),
            }
        }
        Some(Value::Object(map)) => map.iter().map(|(k, v)| dict_filter(meta, k, v)).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Array(parts) => list_filter(meta, parts),
                Value::Object(map) if map.len() == 1 => {
                    let (k, v) = map.iter().next().ok_or_else(bad_filter_item)?;
                    dict_filter(meta, k, v)
                }
                Value::Object(_) => {
                    invalid("A filter given as an object must have exactly one key")
                }
                Value::String(_) => invalid("Filters given as SQL strings are not allowed"),
                _ => Err(bad_filter_item()),
            })
            .collect(),
        Some(_) => invalid(format!("{what} must be a JSON list or object")),
    }
}

fn bad_filter_item() -> ListQueryError {
    ListQueryError::Invalid("Filter must be a tuple or list (in a list)".into())
}

/// `{field: value}` or `{field: [op, value]}` (Frappe's `make_filter_tuple`).
fn dict_filter(meta: &'static DocMeta, key: &str, v: &Value) -> Result<Condition, ListQueryError> {
    match v {
        Value::Array(pair) => {
            if pair.len() < 2 {
                return invalid(format!("Filter for {key} must be [operator, value]"));
            }
            build_condition(meta, None, key, &pair[0], &pair[1])
        }
        other => build_condition(meta, None, key, &Value::String("=".into()), other),
    }
}

/// `[field, op, value]` or `[doctype, field, op, value, …]` (Frappe's `get_filter`).
fn list_filter(meta: &'static DocMeta, parts: &[Value]) -> Result<Condition, ListQueryError> {
    let (doctype, field, op, value) = match parts {
        [f, o, v] => (None, f, o, v),
        [d, f, o, v, ..] => (Some(d), f, o, v),
        _ => {
            return invalid(format!(
                "Filter must have 4 values (doctype, fieldname, operator, value): {}",
                Value::Array(parts.to_vec())
            ))
        }
    };
    let doctype = match doctype {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return invalid("The doctype of a filter must be a string"),
    };
    let Value::String(field) = field else {
        return invalid("The fieldname of a filter must be a string");
    };
    build_condition(meta, doctype, field, op, value)
}

fn build_condition(
    meta: &'static DocMeta,
    doctype: Option<&str>,
    field: &str,
    op: &Value,
    value: &Value,
) -> Result<Condition, ListQueryError> {
    // Table and column.
    let explicit = match doctype {
        None => None,
        Some(d) => Some(resolve_table(meta, d).ok_or_else(|| unknown_table(meta, d))?),
    };
    let Some((prefix, col)) = split_ref(field) else {
        return invalid(format!("Invalid field in filter: {field}"));
    };
    if col == "*" {
        return invalid(format!("Invalid field in filter: {field}"));
    }
    let prefixed = match prefix {
        None => None,
        Some(t) => Some(resolve_table(meta, t).ok_or_else(|| unknown_table(meta, t))?),
    };
    let target = match (explicit, prefixed) {
        (Some(a), Some(b)) if !std::ptr::eq(a.table(meta), b.table(meta)) => {
            return invalid(format!("Filter table and field do not match: {field}"))
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => Target::Parent,
    };
    let (table, column) = match target.table(meta).column(col) {
        Some(c) => (target.table(meta), c),
        // Like frappe.utils.get_filter: a field missing on the parent is looked up in its child tables.
        None if matches!(target, Target::Parent) => meta
            .children
            .iter()
            .find_map(|c| c.table.column(col).map(|column| (c.table, column)))
            .ok_or_else(|| ListQueryError::FieldNotPermitted(col.to_string()))?,
        None => return Err(ListQueryError::FieldNotPermitted(col.to_string())),
    };

    // Operator.
    let op_text = match op {
        Value::Null => String::new(),
        Value::String(s) => s
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase(),
        _ => return invalid("The operator of a filter must be a string"),
    };
    let op = match op_text.as_str() {
        "" | "=" => Operator::Eq,
        "!=" => Operator::Ne,
        "<" => Operator::Lt,
        ">" => Operator::Gt,
        "<=" => Operator::Le,
        ">=" => Operator::Ge,
        "like" => Operator::Like,
        "not like" => Operator::NotLike,
        "in" => Operator::In,
        "not in" => Operator::NotIn,
        "between" => Operator::Between,
        "is" => match value {
            Value::String(s) if s.trim().eq_ignore_ascii_case("set") => Operator::IsSet,
            Value::String(s) if s.trim().eq_ignore_ascii_case("not set") => Operator::IsNotSet,
            _ => return invalid("The value of an 'is' filter must be 'set' or 'not set'"),
        },
        _ => return invalid(
            "Operator must be one of =, !=, <, >, <=, >=, like, not like, in, not in, is, between",
        ),
    };

    // Value.
    let value = match op {
        Operator::IsSet | Operator::IsNotSet => FilterValue::None,
        Operator::In | Operator::NotIn => FilterValue::Many(in_values(value)?),
        Operator::Between => match value {
            Value::Array(pair) if pair.len() == 2 => {
                let low = scalar(&pair[0])?;
                let mut high = scalar(&pair[1])?;
                if column.kind == ColumnKind::Datetime {
                    if let SqlValue::Text(s) = &high {
                        if is_bare_date(s) {
                            high = SqlValue::Text(format!("{} 23:59:59.999999", s.trim()));
                        }
                    }
                }
                FilterValue::Pair(low, high)
            }
            _ => return invalid("The value of a 'between' filter must be a list of two values"),
        },
        _ => FilterValue::One(scalar(value)?),
    };
    Ok(Condition {
        table,
        column,
        op,
        value,
    })
}

fn is_bare_date(s: &str) -> bool {
    let b = s.trim().as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

fn scalar(v: &Value) -> Result<SqlValue, ListQueryError> {
    Ok(match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Int(i64::from(*b)),
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => SqlValue::Int(i),
            (None, Some(f)) => SqlValue::Float(f),
            (None, None) => SqlValue::Text(n.to_string()),
        },
        Value::Array(_) | Value::Object(_) => {
            return invalid("A filter value must be a string, number, boolean or null")
        }
    })
}

/// Values of `in`/`not in`: a list or a comma-separated string; text is trimmed (Frappe: `cstr(v).strip()`).
fn in_values(v: &Value) -> Result<Vec<SqlValue>, ListQueryError> {
    caps::check_in_values(v)?;
    let trim = |s: &str| SqlValue::Text(s.trim().to_string());
    Ok(match v {
        Value::Null => Vec::new(),
        Value::String(s) if s.trim().is_empty() => Vec::new(),
        Value::String(s) => s.split(',').map(trim).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(trim(s)),
                other => scalar(other),
            })
            .collect::<Result<_, _>>()?,
        other => vec![scalar(other)?],
    })
}

// ----- order_by, group_by -----

fn parse_order_by(
    meta: &'static DocMeta,
    v: Option<&Value>,
) -> Result<Vec<OrderBy>, ListQueryError> {
    let default = || -> Result<Vec<OrderBy>, ListQueryError> {
        let column = meta
            .parent
            .column("modified")
            .ok_or_else(|| ListQueryError::Invalid("This doctype has no modified column".into()))?;
        Ok(vec![OrderBy { column, desc: true }])
    };
    let text = match v {
        None | Some(Value::Null) => return default(),
        Some(Value::String(s)) => s.trim(),
        Some(_) => return invalid("order_by must be a string"),
    };
    if text.is_empty() {
        return default();
    }
    text.split(',').map(|part| order_term(meta, part)).collect()
}

fn order_term(meta: &'static DocMeta, part: &str) -> Result<OrderBy, ListQueryError> {
    let part = part.trim();
    let bad = || ListQueryError::Invalid(format!("Invalid order_by: {part}"));
    let lower = part.to_ascii_lowercase();
    let (col_text, desc) = if lower.ends_with(" desc") {
        (&part[..part.len() - 5], true)
    } else if lower.ends_with(" asc") {
        (&part[..part.len() - 4], false)
    } else {
        (part, false)
    };
    let (table, col) = split_ref(col_text).ok_or_else(bad)?;
    if col == "*" {
        return Err(bad());
    }
    if let Some(t) = table {
        if !matches!(resolve_table(meta, t), Some(Target::Parent)) {
            return invalid(format!(
                "order_by may only use columns of {}: {part}",
                meta.doctype()
            ));
        }
    }
    let column = meta
        .parent
        .column(col)
        .ok_or_else(|| ListQueryError::FieldNotPermitted(col.to_string()))?;
    Ok(OrderBy { column, desc })
}

/// `group_by`: comma-separated parent columns; `name` alone is the primary key, a no-op (empty list).
fn parse_group_by(
    meta: &'static DocMeta,
    v: Option<&Value>,
) -> Result<Vec<&'static Column>, ListQueryError> {
    let text = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => s.trim(),
        Some(_) => return invalid("group_by must be a string"),
    };
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let mut out: Vec<&'static Column> = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (table, col) = split_ref(part)
            .filter(|(_, c)| *c != "*")
            .ok_or_else(|| ListQueryError::Invalid(format!("Invalid group_by: {part}")))?;
        if let Some(t) = table {
            if !matches!(resolve_table(meta, t), Some(Target::Parent)) {
                return invalid(format!(
                    "group_by may only use columns of {}: {part}",
                    meta.doctype()
                ));
            }
        }
        let column = meta
            .parent
            .column(col)
            .ok_or_else(|| ListQueryError::FieldNotPermitted(col.to_string()))?;
        if !out.iter().any(|c| std::ptr::eq(*c, column)) {
            out.push(column);
        }
    }
    if out.len() == 1 && out[0].name == "name" {
        return Ok(Vec::new());
    }
    Ok(out)
}

/// `func(arg)` of `fields` (other than a lone `count(name)`): an aggregate over a parent column.
fn aggregate_item(
    meta: &'static DocMeta,
    expr: &str,
    alias: Option<&str>,
) -> Result<AggItem, ListQueryError> {
    let bad = || {
        ListQueryError::Invalid(format!(
            "Use of functions in fields is not allowed (only count, sum, avg, min and max of a field): {expr}"
        ))
    };
    let open = expr.find('(').ok_or_else(bad)?;
    let func = AggFunc::parse(expr[..open].trim()).ok_or_else(bad)?;
    let inner = expr[open + 1..].strip_suffix(')').ok_or_else(bad)?.trim();
    let (distinct, arg) = match inner.get(..9) {
        Some(head) if head.eq_ignore_ascii_case("distinct ") => (true, inner[9..].trim()),
        _ => (false, inner),
    };
    let alias = alias.unwrap_or(expr).to_string();
    if arg == "*" {
        if func != AggFunc::Count || distinct {
            return Err(bad());
        }
        return Ok(AggItem {
            expr: "COUNT(*)".into(),
            alias,
            output: AggOutput::Int,
            field: None,
        });
    }
    if distinct && func != AggFunc::Count {
        return Err(bad());
    }
    let (table, col) = split_ref(arg).ok_or_else(bad)?;
    if let Some(t) = table {
        if !matches!(resolve_table(meta, t), Some(Target::Parent)) {
            return invalid(format!(
                "Aggregates may only use columns of {}: {expr}",
                meta.doctype()
            ));
        }
    }
    let column = meta
        .parent
        .column(col)
        .ok_or_else(|| ListQueryError::FieldNotPermitted(col.to_string()))?;
    let output = match func {
        AggFunc::Count => AggOutput::Int,
        AggFunc::Sum | AggFunc::Avg if column.kind == ColumnKind::Int => AggOutput::Float,
        AggFunc::Sum | AggFunc::Avg => {
            return invalid(format!("{expr}: sum and avg need a numeric field"))
        }
        AggFunc::Min | AggFunc::Max if column.kind == ColumnKind::Password => {
            return invalid(format!("{expr}: a password field cannot be aggregated"))
        }
        AggFunc::Min | AggFunc::Max => AggOutput::Column(column),
    };
    let distinct = if distinct { "DISTINCT " } else { "" };
    Ok(AggItem {
        expr: format!("{}({distinct}t.`{}`)", func.sql(), column.name),
        alias,
        output,
        field: None,
    })
}

/// An aggregate select from the plain fields and the aggregates (with their positions among them).
fn aggregate_select(
    meta: &'static DocMeta,
    fields: Vec<SelectField>,
    aggregates: Vec<(usize, AggItem)>,
) -> Result<Select, ListQueryError> {
    let mut items = Vec::with_capacity(fields.len() + aggregates.len());
    let mut aggregates = aggregates.into_iter().peekable();
    for (i, f) in fields.into_iter().enumerate() {
        while let Some((_, a)) = aggregates.next_if(|(at, _)| *at == i) {
            items.push(a);
        }
        items.push(plain_item(meta, f)?);
    }
    items.extend(aggregates.map(|(_, a)| a));
    Ok(Select::Aggregate(Aggregate {
        items,
        group_by: Vec::new(),
        order: Vec::new(),
    }))
}

fn plain_item(meta: &DocMeta, f: SelectField) -> Result<AggItem, ListQueryError> {
    if f.table.is_some() {
        return invalid(format!(
            "Only fields of {} can be selected with group_by or aggregates: {}",
            meta.doctype(),
            f.alias
        ));
    }
    Ok(AggItem {
        expr: format!("t.`{}`", f.column.name),
        alias: f.alias,
        output: AggOutput::Column(f.column),
        field: Some(f.column),
    })
}

/// Turns a select into an aggregate query when it has aggregates or a `group_by`, and settles
/// its grouping and order; any other select comes back as it was.
fn aggregate(
    meta: &'static DocMeta,
    select: Select,
    group_by: Vec<&'static Column>,
    order_by: Option<&Value>,
) -> Result<Select, ListQueryError> {
    let mut agg = match select {
        Select::Aggregate(a) => a,
        other if group_by.is_empty() => return Ok(other),
        Select::Names => Aggregate {
            items: vec![plain_item(
                meta,
                SelectField {
                    table: None,
                    column: meta.parent.column("name").ok_or_else(|| {
                        ListQueryError::Invalid("This doctype has no name column".into())
                    })?,
                    alias: "name".into(),
                },
            )?],
            group_by: Vec::new(),
            order: Vec::new(),
        },
        Select::Star => Aggregate {
            items: star_columns(meta)
                .into_iter()
                .map(|column| {
                    plain_item(
                        meta,
                        SelectField {
                            table: None,
                            column,
                            alias: column.name.to_string(),
                        },
                    )
                })
                .collect::<Result<_, _>>()?,
            group_by: Vec::new(),
            order: Vec::new(),
        },
        Select::Fields(fields) => match aggregate_select(meta, fields, Vec::new())? {
            Select::Aggregate(a) => a,
            other => return Ok(other),
        },
        Select::Count { alias } => Aggregate {
            items: vec![AggItem {
                expr: "COUNT(*)".into(),
                alias,
                output: AggOutput::Int,
                field: None,
            }],
            group_by: Vec::new(),
            order: Vec::new(),
        },
    };
    let grouped = |c: &'static Column| group_by.iter().any(|g| std::ptr::eq(*g, c));
    for item in &mut agg.items {
        if let Some(c) = item.field {
            if !grouped(c) {
                item.expr = format!("MIN(t.`{}`)", c.name);
            }
        }
    }
    agg.order = aggregate_order(meta, &agg.items, &group_by, order_by)?;
    agg.group_by = group_by;
    Ok(Select::Aggregate(agg))
}

fn aggregate_order(
    meta: &'static DocMeta,
    items: &[AggItem],
    group_by: &[&'static Column],
    v: Option<&Value>,
) -> Result<Vec<(String, bool)>, ListQueryError> {
    let text = match v {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.trim(),
        Some(_) => return invalid("order_by must be a string"),
    };
    if text.is_empty() {
        return Ok(group_by
            .iter()
            .map(|c| (format!("t.`{}`", c.name), false))
            .collect());
    }
    let mut out = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let lower = part.to_ascii_lowercase();
        let (term, desc) = if lower.ends_with(" desc") {
            (part[..part.len() - 5].trim(), true)
        } else if lower.ends_with(" asc") {
            (part[..part.len() - 4].trim(), false)
        } else {
            (part, false)
        };
        let unquoted = term.trim_matches('`');
        if let Some(item) = items
            .iter()
            .find(|i| i.alias == unquoted || i.alias == term)
        {
            out.push((item.expr.clone(), desc));
            continue;
        }
        if term.contains('(') {
            let item = if strip_count(term)
                .is_some_and(|inner| check_count_arg(meta, inner, term).is_ok())
            {
                "COUNT(*)".to_string()
            } else {
                aggregate_item(meta, term, None)?.expr
            };
            out.push((item, desc));
            continue;
        }
        let o = order_term(meta, term)?;
        let expr = if group_by.iter().any(|g| std::ptr::eq(*g, o.column)) {
            format!("t.`{}`", o.column.name)
        } else if desc {
            format!("MAX(t.`{}`)", o.column.name)
        } else {
            format!("MIN(t.`{}`)", o.column.name)
        };
        out.push((expr, desc));
    }
    Ok(out)
}

// ----- limits, as_dict -----

fn parse_count(v: Option<&Value>, what: &str, default: u64) -> Result<u64, ListQueryError> {
    let bad = || ListQueryError::Invalid(format!("{what} must be a non-negative integer"));
    let n = match v {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(u), _) => u,
            (None, Some(f)) if f >= 0.0 && f.fract() == 0.0 && f <= i64::MAX as f64 => f as u64,
            _ => return Err(bad()),
        },
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(default);
            }
            if !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse::<u64>().map_err(|_| bad())?
        }
        Some(_) => return Err(bad()),
    };
    if n > i64::MAX as u64 {
        return Err(bad());
    }
    Ok(n)
}

fn parse_as_dict(v: Option<&Value>) -> Result<bool, ListQueryError> {
    let bad = || ListQueryError::Invalid("as_dict must be 0, 1, true or false".into());
    match v {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => Ok(i != 0),
            None => Err(bad()),
        },
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" | "1" | "true" => Ok(true),
            "0" | "false" => Ok(false),
            _ => Err(bad()),
        },
        Some(_) => Err(bad()),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------------------------

fn fallback(kind: ColumnKind) -> SqlValue {
    match kind {
        ColumnKind::Int => SqlValue::Int(0),
        ColumnKind::Datetime => SqlValue::Text(DATETIME_FALLBACK.into()),
        ColumnKind::Data | ColumnKind::Password => SqlValue::Text(String::new()),
    }
}

fn empty_value(kind: ColumnKind) -> SqlValue {
    match kind {
        ColumnKind::Int => SqlValue::Int(0),
        _ => SqlValue::Text(String::new()),
    }
}

fn or_fallback(v: &SqlValue, fb: &SqlValue) -> SqlValue {
    match v {
        SqlValue::Null => fb.clone(),
        other => other.clone(),
    }
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The predicate on an already qualified column; `None` means "no condition".
/// A value whose shape does not fit the operator renders as `1=0` (fail closed).
fn predicate(col: &str, c: &Condition, binds: &mut Vec<SqlValue>) -> Option<String> {
    let kind = c.column.kind;
    let fb = fallback(kind);
    let cmp = |sql_op: &str, v: &SqlValue, binds: &mut Vec<SqlValue>| {
        binds.push(fb.clone());
        binds.push(or_fallback(v, &fb));
        format!("IFNULL({col}, ?) {sql_op} ?")
    };
    Some(match (c.op, &c.value) {
        (Operator::Eq, FilterValue::One(v)) if v.is_truthy() => {
            binds.push(v.clone());
            format!("{col} = ?")
        }
        (Operator::Eq, FilterValue::One(v)) => cmp("=", v, binds),
        (Operator::Ne, FilterValue::One(v)) => cmp("!=", v, binds),
        (Operator::Lt, FilterValue::One(v)) => cmp("<", v, binds),
        (Operator::Gt, FilterValue::One(v)) => cmp(">", v, binds),
        (Operator::Le, FilterValue::One(v)) => cmp("<=", v, binds),
        (Operator::Ge, FilterValue::One(v)) => cmp(">=", v, binds),
        (Operator::Like, FilterValue::One(v)) if v.is_truthy() => {
            binds.push(v.clone());
            format!("{col} LIKE ?")
        }
        (Operator::Like | Operator::NotLike, FilterValue::One(v)) => {
            let empty = SqlValue::Text(String::new());
            binds.push(empty.clone());
            binds.push(or_fallback(v, &empty));
            let not = if c.op == Operator::NotLike {
                "NOT "
            } else {
                ""
            };
            format!("IFNULL({col}, ?) {not}LIKE ?")
        }
        (Operator::In, FilterValue::Many(vs)) if vs.is_empty() => "1=0".to_string(),
        (Operator::NotIn, FilterValue::Many(vs)) if vs.is_empty() => return None,
        (Operator::In | Operator::NotIn, FilterValue::Many(vs)) => {
            let not = if c.op == Operator::NotIn { "NOT " } else { "" };
            if c.op == Operator::NotIn || vs.iter().any(SqlValue::is_null_or_empty) {
                binds.push(fb.clone());
                binds.extend(vs.iter().map(|v| or_fallback(v, &fb)));
                format!("IFNULL({col}, ?) {not}IN ({})", placeholders(vs.len()))
            } else {
                binds.extend(vs.iter().cloned());
                format!("{col} IN ({})", placeholders(vs.len()))
            }
        }
        (Operator::IsSet, _) => {
            binds.push(empty_value(kind));
            format!("({col} IS NOT NULL AND {col} != ?)")
        }
        (Operator::IsNotSet, _) => {
            binds.push(empty_value(kind));
            format!("({col} IS NULL OR {col} = ?)")
        }
        (Operator::Between, FilterValue::Pair(low, high)) => {
            binds.push(low.clone());
            binds.push(high.clone());
            format!("{col} BETWEEN ? AND ?")
        }
        _ => "1=0".to_string(),
    })
}

impl ListQuery {
    /// Child tables that are LEFT JOINed because one of their fields is selected, in `meta` order.
    pub fn joined_tables(&self) -> Vec<&'static TableMeta> {
        let mut out: Vec<&'static TableMeta> = Vec::new();
        if let Select::Fields(fields) = &self.select {
            for table in fields.iter().filter_map(|f| f.table) {
                if !out.iter().any(|t| std::ptr::eq(*t, table)) {
                    out.push(table);
                }
            }
        }
        out
    }

    /// The output keys of one row, in order (`name`, the `*` columns, the aliases, or the count alias).
    pub fn output_keys(&self, meta: &DocMeta) -> Vec<String> {
        match &self.select {
            Select::Names => vec!["name".into()],
            Select::Star => star_columns(meta)
                .iter()
                .map(|c| c.name.to_string())
                .collect(),
            Select::Fields(fields) => fields.iter().map(|f| f.alias.clone()).collect(),
            Select::Count { alias } => vec![alias.clone()],
            Select::Aggregate(a) => a.items.iter().map(|i| i.alias.clone()).collect(),
        }
    }

    /// A column list for `SELECT` matching [`ListQuery::output_keys`] (no aliases: callers key rows by position).
    pub fn select_list(&self, meta: &DocMeta) -> String {
        match &self.select {
            Select::Names => "t.`name`".into(),
            Select::Star => star_columns(meta)
                .iter()
                .map(|c| format!("t.`{}`", c.name))
                .collect::<Vec<_>>()
                .join(", "),
            Select::Fields(fields) => fields
                .iter()
                .map(SelectField::sql_expr)
                .collect::<Vec<_>>()
                .join(", "),
            Select::Count { .. } => "COUNT(*)".into(),
            Select::Aggregate(a) => a
                .items
                .iter()
                .map(|i| i.expr.clone())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// `" GROUP BY t.`col`, …"` of an aggregate query with a `group_by`, else `""`.
    pub fn group_clause(&self) -> String {
        match &self.select {
            Select::Aggregate(a) if !a.group_by.is_empty() => {
                let cols: Vec<String> = a
                    .group_by
                    .iter()
                    .map(|c| format!("t.`{}`", c.name))
                    .collect();
                format!(" GROUP BY {}", cols.join(", "))
            }
            _ => String::new(),
        }
    }

    /// `` LEFT JOIN `tabChild` ON `tabChild`.`parent` = t.`name` AND `tabChild`.`parenttype` = ?`` for each
    /// [`ListQuery::joined_tables`] (Frappe's join for child fields); `""` when none. Its binds come before the
    /// WHERE clause's.
    pub fn join_clause(&self, meta: &DocMeta) -> SqlFragment {
        let mut out = SqlFragment::default();
        for table in self.joined_tables() {
            let _ = write!(
                out.sql,
                " LEFT JOIN `{0}` ON `{0}`.`parent` = t.`name` AND `{0}`.`parenttype` = ?",
                table.table
            );
            out.binds.push(SqlValue::Text(meta.doctype().to_string()));
        }
        out
    }

    /// `` FROM `tabParent` t`` plus [`ListQuery::join_clause`].
    pub fn from_clause(&self, meta: &DocMeta) -> SqlFragment {
        let joins = self.join_clause(meta);
        SqlFragment {
            sql: format!(" FROM `{}` t{}", meta.parent.table, joins.sql),
            binds: joins.binds,
        }
    }

    /// `""` or `" WHERE …"` with the parent table aliased `t`. `filters` and `extra` (the caller's permission
    /// condition) are ANDed, `or_filters` form one ORed group.
    pub fn where_clause(&self, meta: &DocMeta, extra: Option<Condition>) -> SqlFragment {
        let joined = self.joined_tables();
        let mut parts = Vec::new();
        let mut binds = Vec::new();
        for c in self.filters.iter().chain(extra.as_ref()) {
            if let Some(sql) = render_condition(meta, &joined, c, &mut binds) {
                parts.push(sql);
            }
        }
        if !self.or_filters.is_empty() {
            let group: Vec<String> = self
                .or_filters
                .iter()
                .map(|c| {
                    render_condition(meta, &joined, c, &mut binds).unwrap_or_else(|| "1=1".into())
                })
                .collect();
            parts.push(format!("({})", group.join(" OR ")));
        }
        if parts.is_empty() {
            return SqlFragment::default();
        }
        SqlFragment {
            sql: format!(" WHERE {}", parts.join(" AND ")),
            binds,
        }
    }

    /// `" ORDER BY t.`modified` DESC"` or `""` when there is no order.
    pub fn order_clause(&self) -> String {
        if let Select::Aggregate(a) = &self.select {
            if a.order.is_empty() {
                return String::new();
            }
            let terms: Vec<String> = a
                .order
                .iter()
                .map(|(e, desc)| format!("{e} {}", if *desc { "DESC" } else { "ASC" }))
                .collect();
            return format!(" ORDER BY {}", terms.join(", "));
        }
        if self.order_by.is_empty() {
            return String::new();
        }
        let terms: Vec<String> = self
            .order_by
            .iter()
            .map(|o| {
                format!(
                    "t.`{}` {}",
                    o.column.name,
                    if o.desc { "DESC" } else { "ASC" }
                )
            })
            .collect();
        format!(" ORDER BY {}", terms.join(", "))
    }

    /// `" LIMIT ? OFFSET ?"`, an offset without limit in the backend's syntax, or `""`.
    pub fn limit_clause(&self, backend: Backend) -> SqlFragment {
        let int = |n: u64| SqlValue::Int(i64::try_from(n).unwrap_or(i64::MAX));
        match (self.page_length, self.start) {
            (Some(n), start) => SqlFragment {
                sql: " LIMIT ? OFFSET ?".into(),
                binds: vec![int(n), int(start)],
            },
            (None, 0) => SqlFragment::default(),
            (None, start) => {
                let all = match backend {
                    Backend::Mysql => MYSQL_NO_LIMIT,
                    Backend::Sqlite => "-1",
                };
                SqlFragment {
                    sql: format!(" LIMIT {all} OFFSET ?"),
                    binds: vec![int(start)],
                }
            }
        }
    }
}

fn render_condition(
    meta: &DocMeta,
    joined: &[&'static TableMeta],
    c: &Condition,
    binds: &mut Vec<SqlValue>,
) -> Option<String> {
    let is_parent = std::ptr::eq(c.table, meta.parent) || c.table.table == meta.parent.table;
    if is_parent {
        return predicate(&format!("t.`{}`", c.column.name), c, binds);
    }
    if joined.iter().any(|t| std::ptr::eq(*t, c.table)) {
        return predicate(
            &format!("`{}`.`{}`", c.table.table, c.column.name),
            c,
            binds,
        );
    }
    let mut inner = Vec::new();
    let pred = predicate(&format!("c.`{}`", c.column.name), c, &mut inner)?;
    binds.push(SqlValue::Text(meta.doctype().to_string()));
    binds.extend(inner);
    Some(format!(
        "EXISTS (SELECT 1 FROM `{}` c WHERE c.`parent` = t.`name` AND c.`parenttype` = ? AND {pred})",
        c.table.table
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frappe::meta::{CONNECTED_APP, OAUTH_SCOPE_TABLE, TOKEN_CACHE};
    use serde_json::json;

    fn text(s: &str) -> SqlValue {
        SqlValue::Text(s.into())
    }

    /// Parameters as a query string delivers them (every value a string).
    fn qs(meta: &'static DocMeta, pairs: &[(&str, &str)]) -> Result<ListQuery, ListQueryError> {
        let map: Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect();
        parse(meta, &RawListArgs::from_map(&map))
    }

    fn ca(pairs: &[(&str, &str)]) -> ListQuery {
        qs(&CONNECTED_APP, pairs).expect("parse")
    }

    fn ca_err(pairs: &[(&str, &str)]) -> ListQueryError {
        qs(&CONNECTED_APP, pairs).expect_err("should fail")
    }

    fn body(meta: &'static DocMeta, v: Value) -> Result<ListQuery, ListQueryError> {
        let Value::Object(map) = v else {
            panic!("object expected")
        };
        parse(meta, &RawListArgs::from_map(&map))
    }

    fn where_of(q: &ListQuery) -> (String, Vec<SqlValue>) {
        let f = q.where_clause(&CONNECTED_APP, None);
        (f.sql, f.binds)
    }

    fn keys(q: &ListQuery, meta: &DocMeta) -> Vec<String> {
        q.output_keys(meta)
    }

    fn owner_is(user: &str, meta: &'static DocMeta) -> Condition {
        Condition {
            table: meta.parent,
            column: meta.parent.column("owner").expect("owner"),
            op: Operator::Eq,
            value: FilterValue::One(text(user)),
        }
    }

    // ----- recorded exchanges -----

    #[test]
    fn ex105_no_params_defaults() {
        let q = ca(&[]);
        assert_eq!(q.select, Select::Names);
        assert_eq!((q.start, q.page_length, q.as_dict), (0, Some(20), true));
        assert!(q.filters.is_empty() && q.or_filters.is_empty());
        assert_eq!(q.order_clause(), " ORDER BY t.`modified` DESC");
        assert_eq!(where_of(&q), (String::new(), vec![]));
        let l = q.limit_clause(Backend::Mysql);
        assert_eq!(l.sql, " LIMIT ? OFFSET ?");
        assert_eq!(l.binds, vec![SqlValue::Int(20), SqlValue::Int(0)]);
        assert_eq!(keys(&q, &CONNECTED_APP), vec!["name"]);
        assert_eq!(q.select_list(&CONNECTED_APP), "t.`name`");
        assert_eq!(
            q.from_clause(&CONNECTED_APP).sql,
            " FROM `tabConnected App` t"
        );
    }

    #[test]
    fn ex106_252_fields_star() {
        let q = ca(&[("fields", "[\"*\"]")]);
        assert_eq!(q.select, Select::Star);
        let expected = "name owner creation modified modified_by docstatus idx provider_name openid_configuration \
                        client_id redirect_uri client_secret authorization_uri token_uri revocation_uri userinfo_uri \
                        introspection_uri";
        assert_eq!(
            keys(&q, &CONNECTED_APP),
            expected.split(' ').collect::<Vec<_>>()
        );
        assert!(q
            .select_list(&CONNECTED_APP)
            .starts_with("t.`name`, t.`owner`"));
        let q = ca(&[("fields", "[\"*\"]"), ("limit", "1")]);
        assert_eq!(q.page_length, Some(1));
    }

    #[test]
    fn ex107_fields_list_keeps_order_and_password() {
        let q = ca(&[(
            "fields",
            r#"["name", "provider_name", "client_id", "client_secret", "redirect_uri"]"#,
        )]);
        assert_eq!(
            keys(&q, &CONNECTED_APP),
            [
                "name",
                "provider_name",
                "client_id",
                "client_secret",
                "redirect_uri"
            ]
        );
        let Select::Fields(f) = &q.select else {
            panic!()
        };
        assert_eq!(f[3].column.kind, ColumnKind::Password);
        assert!(f.iter().all(|f| f.table.is_none()));
        assert_eq!(
            q.select_list(&CONNECTED_APP),
            "t.`name`, t.`provider_name`, t.`client_id`, t.`client_secret`, t.`redirect_uri`"
        );
    }

    #[test]
    fn ex108_filters_dict() {
        let q = ca(&[
            ("fields", r#"["name", "provider_name"]"#),
            ("filters", r#"{"provider_name": "Beta Provider"}"#),
        ]);
        assert_eq!(
            where_of(&q),
            (
                " WHERE t.`provider_name` = ?".into(),
                vec![text("Beta Provider")]
            )
        );
    }

    #[test]
    fn ex109_filters_list4_like() {
        let q = ca(&[(
            "filters",
            r#"[["Connected App", "provider_name", "like", "%Prov%"]]"#,
        )]);
        assert_eq!(
            where_of(&q),
            (
                " WHERE t.`provider_name` LIKE ?".into(),
                vec![text("%Prov%")]
            )
        );
    }

    #[test]
    fn ex111_or_filters() {
        let q = ca(&[(
            "or_filters",
            r#"[["provider_name", "=", "Gamma Provider"], ["client_id", "=", "beta-id"]]"#,
        )]);
        assert_eq!(
            where_of(&q),
            (
                " WHERE (t.`provider_name` = ? OR t.`client_id` = ?)".into(),
                vec![text("Gamma Provider"), text("beta-id")]
            )
        );
    }

    #[test]
    fn ex112_113_115_order_limit_as_dict() {
        let q = ca(&[("order_by", "provider_name asc")]);
        assert_eq!(q.order_clause(), " ORDER BY t.`provider_name` ASC");
        let q = ca(&[
            ("order_by", "provider_name asc"),
            ("limit_start", "1"),
            ("limit_page_length", "1"),
        ]);
        assert_eq!(
            q.limit_clause(Backend::Sqlite).binds,
            vec![SqlValue::Int(1), SqlValue::Int(1)]
        );
        let q = ca(&[("fields", r#"["name", "provider_name"]"#), ("as_dict", "0")]);
        assert!(!q.as_dict);
    }

    #[test]
    fn ex117_unknown_field() {
        let e = ca_err(&[("fields", r#"["name", "nonexistent_field"]"#)]);
        assert_eq!(
            e,
            ListQueryError::FieldNotPermitted("nonexistent_field".into())
        );
        assert_eq!(
            e.to_string(),
            "Field not permitted in query: nonexistent_field"
        );
    }

    #[test]
    fn ex118_171_limits() {
        let q = ca(&[("fields", r#"["name"]"#), ("limit_page_length", "0")]);
        assert_eq!(q.page_length, None);
        assert_eq!(q.limit_clause(Backend::Mysql), SqlFragment::default());
        let q = ca(&[("limit_start", "5000")]);
        assert_eq!(
            q.limit_clause(Backend::Mysql).binds,
            vec![SqlValue::Int(20), SqlValue::Int(5000)]
        );
    }

    #[test]
    fn ex119_filters_not_json() {
        let e = ca_err(&[("filters", "not json")]);
        assert!(
            matches!(&e, ListQueryError::Invalid(m) if m.starts_with("filters is not valid JSON")),
            "{e}"
        );
        assert!(matches!(
            ca_err(&[("or_filters", "{oops")]),
            ListQueryError::Invalid(_)
        ));
    }

    #[test]
    fn ex201_202_203_client_get_list() {
        let q = ca(&[("doctype", "Connected App")]);
        assert_eq!(q, ca(&[]));
        let q = ca(&[
            ("doctype", "Connected App"),
            ("fields", r#"["name", "provider_name", "client_secret"]"#),
            ("filters", r#"{"provider_name": ["like", "%Prov%"]}"#),
            ("order_by", "provider_name asc"),
            ("limit_page_length", "2"),
        ]);
        assert_eq!(
            where_of(&q),
            (
                " WHERE t.`provider_name` LIKE ?".into(),
                vec![text("%Prov%")]
            )
        );
        assert_eq!(q.page_length, Some(2));
        let q = body(
            &CONNECTED_APP,
            json!({"doctype": "Connected App", "fields": ["name", "provider_name"],
                   "filters": [["provider_name", "=", "Beta Provider"]]}),
        )
        .expect("parse");
        assert_eq!(keys(&q, &CONNECTED_APP), ["name", "provider_name"]);
        assert_eq!(
            where_of(&q),
            (
                " WHERE t.`provider_name` = ?".into(),
                vec![text("Beta Provider")]
            )
        );
    }

    #[test]
    fn ex208_259_516_get_count_and_count_fields() {
        let q = ca(&[("doctype", "Connected App")]);
        assert_eq!(q.where_clause(&CONNECTED_APP, None).sql, "");
        let q = ca(&[("fields", r#"["count(name) as cnt"]"#)]);
        assert_eq!(
            q.select,
            Select::Count {
                alias: "cnt".into()
            }
        );
        assert_eq!(q.select_list(&CONNECTED_APP), "COUNT(*)");
        let q = qs(&TOKEN_CACHE, &[("doctype", "Token Cache")]).expect("parse");
        let w = q.where_clause(
            &TOKEN_CACHE,
            Some(owner_is("user1@example.com", &TOKEN_CACHE)),
        );
        assert_eq!(w.sql, " WHERE t.`owner` = ?");
    }

    #[test]
    fn ex223_503_extra_permission_condition() {
        let q = ca(&[("fields", r#"["name", "provider_name"]"#)]);
        let w = q.where_clause(
            &CONNECTED_APP,
            Some(owner_is("user1@example.com", &CONNECTED_APP)),
        );
        assert_eq!(
            (w.sql.as_str(), w.binds),
            (" WHERE t.`owner` = ?", vec![text("user1@example.com")])
        );
        let q = qs(&TOKEN_CACHE, &[("fields", r#"["name", "owner", "user"]"#)]).expect("parse");
        assert_eq!(keys(&q, &TOKEN_CACHE), ["name", "owner", "user"]);
        // filters, then extra, then the OR group.
        let q = ca(&[
            ("filters", r#"{"client_id": "x"}"#),
            ("or_filters", r#"{"name": "a", "idx": 2}"#),
        ]);
        let w = q.where_clause(&CONNECTED_APP, Some(owner_is("u", &CONNECTED_APP)));
        assert_eq!(
            w.sql,
            " WHERE t.`client_id` = ? AND t.`owner` = ? AND (t.`name` = ? OR t.`idx` = ?)"
        );
        assert_eq!(
            w.binds,
            vec![text("x"), text("u"), text("a"), SqlValue::Int(2)]
        );
    }

    #[test]
    fn ex250_251_v2_list() {
        let q = ca(&[]);
        assert_eq!(q.page_length, Some(20));
        let q = ca(&[
            ("fields", r#"["name", "provider_name", "client_secret"]"#),
            ("filters", r#"{"provider_name": ["like", "%Prov%"]}"#),
            ("order_by", "provider_name asc"),
            ("limit", "2"),
            ("start", "1"),
        ]);
        assert_eq!((q.start, q.page_length), (1, Some(2)));
    }

    #[test]
    fn ex281_reportview_get() {
        let q = body(
            &CONNECTED_APP,
            json!({"doctype": "Connected App",
                   "fields": "[\"`tabConnected App`.`name`\", \"`tabConnected App`.`provider_name`\", \"`tabConnected App`.`client_id`\"]",
                   "filters": "[]", "order_by": "`tabConnected App`.`modified` desc", "start": "0", "page_length": "3",
                   "view": "List", "with_comment_count": "1"}),
        )
        .expect("parse");
        assert_eq!(
            keys(&q, &CONNECTED_APP),
            ["name", "provider_name", "client_id"]
        );
        assert_eq!(q.order_clause(), " ORDER BY t.`modified` DESC");
        assert_eq!((q.start, q.page_length), (0, Some(3)));
        assert_eq!(where_of(&q).0, "");
    }

    #[test]
    fn ex501_502_514_token_cache() {
        let q = qs(&TOKEN_CACHE, &[]).expect("parse");
        assert_eq!(q.select, Select::Names);
        let q = qs(&TOKEN_CACHE, &[("fields", r#"["*"]"#)]).expect("parse");
        let expected = "name owner creation modified modified_by docstatus idx user connected_app provider_name \
                        access_token refresh_token expires_in state success_uri token_type";
        assert_eq!(
            keys(&q, &TOKEN_CACHE),
            expected.split(' ').collect::<Vec<_>>()
        );
        let q = qs(
            &TOKEN_CACHE,
            &[(
                "fields",
                r#"["name", "user", "expires_in", "access_token"]"#,
            )],
        )
        .expect("parse");
        assert_eq!(
            keys(&q, &TOKEN_CACHE),
            ["name", "user", "expires_in", "access_token"]
        );
        // Connected App columns are not Token Cache columns.
        assert_eq!(
            qs(&TOKEN_CACHE, &[("fields", r#"["client_id"]"#)]),
            Err(ListQueryError::FieldNotPermitted("client_id".into()))
        );
    }

    // ----- fields shapes -----

    #[test]
    fn fields_qualified_and_aliases() {
        let q = ca(&[(
            "fields",
            r#"["`tabConnected App`.provider_name", "tabConnected App.client_id", "name as n", "idx AS `i`"]"#,
        )]);
        assert_eq!(
            keys(&q, &CONNECTED_APP),
            ["provider_name", "client_id", "n", "i"]
        );
        let Select::Fields(f) = &q.select else {
            panic!()
        };
        assert!(f.iter().all(|f| f.table.is_none()));
    }

    #[test]
    fn fields_child_table() {
        for field in [
            "`tabOAuth Scope`.scope",
            "tabOAuth Scope.scope",
            "`tabOAuth Scope`.`scope`",
            "scopes.scope",
        ] {
            let q = ca(&[("fields", &json!(["name", field]).to_string())]);
            let Select::Fields(f) = &q.select else {
                panic!()
            };
            assert_eq!(f[1].table, Some(&OAUTH_SCOPE_TABLE), "{field}");
            assert_eq!(f[1].alias, "scope");
            assert_eq!(f[1].sql_expr(), "`tabOAuth Scope`.`scope`");
            let from = q.from_clause(&CONNECTED_APP);
            assert_eq!(
                from.sql,
                " FROM `tabConnected App` t LEFT JOIN `tabOAuth Scope` ON `tabOAuth Scope`.`parent` = t.`name` \
                 AND `tabOAuth Scope`.`parenttype` = ?"
            );
            assert_eq!(from.binds, vec![text("Connected App")]);
        }
        let q = ca(&[("fields", r#"["`tabOAuth Scope`.scope as s"]"#)]);
        assert_eq!(keys(&q, &CONNECTED_APP), ["s"]);
        assert_eq!(
            ca_err(&[("fields", r#"["`tabOAuth Scope`.provider_name"]"#)]),
            ListQueryError::FieldNotPermitted("provider_name".into())
        );
        assert!(matches!(
            ca_err(&[("fields", r#"["`tabUser`.name"]"#)]),
            ListQueryError::Invalid(_)
        ));
        assert!(matches!(
            ca_err(&[("fields", r#"["*", "`tabOAuth Scope`.scope"]"#)]),
            ListQueryError::Invalid(_)
        ));
    }

    #[test]
    fn fields_string_forms() {
        assert_eq!(ca(&[("fields", "*")]).select, Select::Star);
        assert_eq!(ca(&[("fields", "")]).select, Select::Names);
        assert_eq!(ca(&[("fields", "[]")]).select, Select::Names);
        assert_eq!(
            keys(&ca(&[("fields", "name,provider_name")]), &CONNECTED_APP),
            ["name", "provider_name"]
        );
        assert_eq!(
            keys(&ca(&[("fields", "provider_name")]), &CONNECTED_APP),
            ["provider_name"]
        );
        assert_eq!(
            keys(&ca(&[("fields", "\"client_id\"")]), &CONNECTED_APP),
            ["client_id"]
        );
        assert_eq!(ca(&[("fields", r#"["name", "*"]"#)]).select, Select::Star);
        assert_eq!(
            ca(&[("fields", r#"["`tabConnected App`.*"]"#)]).select,
            Select::Star
        );
        assert!(matches!(
            ca_err(&[("fields", "{\"a\": 1}")]),
            ListQueryError::Invalid(_)
        ));
        assert!(matches!(
            ca_err(&[("fields", "[1, 2]")]),
            ListQueryError::Invalid(_)
        ));
        assert!(matches!(
            body(&CONNECTED_APP, json!({"fields": 5})),
            Err(ListQueryError::Invalid(_))
        ));
    }

    #[test]
    fn fields_count() {
        for (f, alias) in [
            ("count(name) as cnt", "cnt"),
            ("count(*) as count", "count"),
            ("COUNT(`name`)", "COUNT(`name`)"),
            ("count( `tabConnected App`.`name` ) as c", "c"),
            ("count(*)", "count(*)"),
        ] {
            assert_eq!(
                ca(&[("fields", &json!([f]).to_string())]).select,
                Select::Count {
                    alias: alias.into()
                },
                "{f}"
            );
        }
        for f in [
            r#"["sleep(5)"]"#,
            r#"["sum(provider_name)"]"#,
            r#"["max(client_secret)"]"#,
            r#"["sum(distinct expires_in)"]"#,
            r#"["count(`tabOAuth Scope`.scope)"]"#,
            r#"["max(*)"]"#,
            r#"["count(name) as c", "`tabOAuth Scope`.scope"]"#,
            r#"["count(name) as c", "*"]"#,
            r#"["count(name) as `bad alias`"]"#,
            r#"["name as x; drop"]"#,
            r#"["name as"]"#,
            r#"["(select 1)"]"#,
            r#"["name`"]"#,
            r#"["name provider_name"]"#,
        ] {
            assert!(
                matches!(ca_err(&[("fields", f)]), ListQueryError::Invalid(_)),
                "{f}"
            );
        }
    }

    // ----- filter shapes -----

    #[test]
    fn filters_list3_list5_and_dict_items() {
        let q = ca(&[("filters", r#"[["client_id", "=", "a"], {"name": "b"}]"#)]);
        assert_eq!(
            where_of(&q),
            (
                " WHERE t.`client_id` = ? AND t.`name` = ?".into(),
                vec![text("a"), text("b")]
            )
        );
        let q = ca(&[(
            "filters",
            r#"[["Connected App", "client_id", "=", "a", false]]"#,
        )]);
        assert_eq!(where_of(&q).0, " WHERE t.`client_id` = ?");
        let q = ca(&[("filters", r#"[[null, "client_id", "", "a"]]"#)]);
        assert_eq!(where_of(&q).0, " WHERE t.`client_id` = ?");
        for bad in [
            r#"[["client_id", "a"]]"#,
            r#"[["client_id"]]"#,
            r#"[[]]"#,
            r#"["client_id = 'a'"]"#,
            r#"[5]"#,
            r#"[{"a": 1, "b": 2}]"#,
            r#"[[1, "=", "a"]]"#,
            r#"[["client_id", 1, "a"]]"#,
            r#"[[["x"], "client_id", "=", "a"]]"#,
            r#""str""#,
            "5",
            r#"{"client_id": ["="]}"#,
            r#"{"client_id": {"a": 1}}"#,
            r#"{"client_id": ["=", ["a"]]}"#,
        ] {
            assert!(
                matches!(ca_err(&[("filters", bad)]), ListQueryError::Invalid(_)),
                "{bad}"
            );
        }
        assert!(matches!(
            ca_err(&[("filters", r#"[["client_id", "a"]]"#)]),
            ListQueryError::Invalid(m) if m.starts_with("Filter must have 4 values")
        ));
        assert_eq!(where_of(&ca(&[("filters", "{}")])).0, "");
        assert_eq!(where_of(&ca(&[("filters", "null")])).0, "");
        assert_eq!(where_of(&ca(&[("filters", "")])).0, "");
    }

    #[test]
    fn filters_unknown_fields_and_tables() {
        assert_eq!(
            ca_err(&[("filters", r#"{"nope": 1}"#)]),
            ListQueryError::FieldNotPermitted("nope".into())
        );
        assert_eq!(
            ca_err(&[("filters", r#"[["OAuth Scope", "provider_name", "=", 1]]"#)]),
            ListQueryError::FieldNotPermitted("provider_name".into())
        );
        assert!(matches!(
            ca_err(&[("filters", r#"[["User", "name", "=", 1]]"#)]),
            ListQueryError::Invalid(_)
        ));
        assert!(matches!(
            ca_err(&[("filters", r#"{"name; --": 1}"#)]),
            ListQueryError::Invalid(_)
        ));
        assert!(matches!(
            ca_err(&[(
                "filters",
                r#"[["OAuth Scope", "`tabConnected App`.name", "=", 1]]"#
            )]),
            ListQueryError::Invalid(_)
        ));
        // Token Cache's child is only OAuth Scope.
        assert!(matches!(
            qs(
                &TOKEN_CACHE,
                &[("filters", r#"[["Query Parameters", "key", "=", 1]]"#)]
            ),
            Err(ListQueryError::Invalid(_))
        ));
    }

    #[test]
    fn filters_child_table_exists() {
        let expect =
            " WHERE EXISTS (SELECT 1 FROM `tabOAuth Scope` c WHERE c.`parent` = t.`name` AND \
                      c.`parenttype` = ? AND c.`scope` = ?)";
        for f in [
            r#"[["OAuth Scope", "scope", "=", "email"]]"#,
            r#"[["tabOAuth Scope", "scope", "=", "email"]]"#,
            r#"[["scope", "=", "email"]]"#,
            r#"{"scope": "email"}"#,
            r#"[["`tabOAuth Scope`.scope", "=", "email"]]"#,
        ] {
            let q = ca(&[("filters", f)]);
            assert_eq!(q.filters[0].table, &OAUTH_SCOPE_TABLE);
            assert_eq!(
                where_of(&q),
                (expect.into(), vec![text("Connected App"), text("email")]),
                "{f}"
            );
        }
        // With the child field selected, the condition applies to the joined row (as Frappe's LEFT JOIN does).
        let q = ca(&[
            ("fields", r#"["name", "`tabOAuth Scope`.scope"]"#),
            ("filters", r#"[["OAuth Scope", "scope", "=", "email"]]"#),
        ]);
        assert_eq!(
            where_of(&q),
            (
                " WHERE `tabOAuth Scope`.`scope` = ?".into(),
                vec![text("email")]
            )
        );
        // Query Parameters `key` falls back to the second child table.
        let q = ca(&[("filters", r#"{"key": "k"}"#)]);
        assert_eq!(q.filters[0].table.doctype, "Query Parameters");
        let q = qs(
            &TOKEN_CACHE,
            &[("filters", r#"[["OAuth Scope", "scope", "=", "email"]]"#)],
        )
        .expect("parse");
        assert_eq!(
            q.where_clause(&TOKEN_CACHE, None).binds,
            vec![text("Token Cache"), text("email")]
        );
    }

    fn one(filter: Value) -> (String, Vec<SqlValue>) {
        let q = ca(&[("filters", &json!([filter]).to_string())]);
        where_of(&q)
    }

    #[test]
    fn operators_render() {
        let e = || text("");
        let cases: Vec<(Value, &str, Vec<SqlValue>)> = vec![
            (
                json!(["client_id", "=", "a"]),
                "t.`client_id` = ?",
                vec![text("a")],
            ),
            (
                json!(["client_id", "=", null]),
                "IFNULL(t.`client_id`, ?) = ?",
                vec![e(), e()],
            ),
            (
                json!(["client_id", "=", ""]),
                "IFNULL(t.`client_id`, ?) = ?",
                vec![e(), e()],
            ),
            (
                json!(["client_id", "!=", "a"]),
                "IFNULL(t.`client_id`, ?) != ?",
                vec![e(), text("a")],
            ),
            (
                json!(["idx", "<", 3]),
                "IFNULL(t.`idx`, ?) < ?",
                vec![SqlValue::Int(0), SqlValue::Int(3)],
            ),
            (
                json!(["idx", ">", 2.5]),
                "IFNULL(t.`idx`, ?) > ?",
                vec![SqlValue::Int(0), SqlValue::Float(2.5)],
            ),
            (
                json!(["idx", "<=", true]),
                "IFNULL(t.`idx`, ?) <= ?",
                vec![SqlValue::Int(0), SqlValue::Int(1)],
            ),
            (
                json!(["modified", ">=", "2024-01-01"]),
                "IFNULL(t.`modified`, ?) >= ?",
                vec![text(DATETIME_FALLBACK), text("2024-01-01")],
            ),
            (
                json!(["client_id", "LIKE", "%a%"]),
                "t.`client_id` LIKE ?",
                vec![text("%a%")],
            ),
            (
                json!(["client_id", "like", ""]),
                "IFNULL(t.`client_id`, ?) LIKE ?",
                vec![e(), e()],
            ),
            (
                json!(["client_id", "Not  Like", "%a%"]),
                "IFNULL(t.`client_id`, ?) NOT LIKE ?",
                vec![e(), text("%a%")],
            ),
            (
                json!(["name", "in", ["a", " b "]]),
                "t.`name` IN (?, ?)",
                vec![text("a"), text("b")],
            ),
            (
                json!(["name", "in", "a, b,c"]),
                "t.`name` IN (?, ?, ?)",
                vec![text("a"), text("b"), text("c")],
            ),
            (
                json!(["name", "in", ["a", null]]),
                "IFNULL(t.`name`, ?) IN (?, ?)",
                vec![e(), text("a"), e()],
            ),
            (
                json!(["idx", "in", 3]),
                "t.`idx` IN (?)",
                vec![SqlValue::Int(3)],
            ),
            (json!(["name", "in", []]), "1=0", vec![]),
            (json!(["name", "in", ""]), "1=0", vec![]),
            (
                json!(["name", "not in", ["a"]]),
                "IFNULL(t.`name`, ?) NOT IN (?)",
                vec![e(), text("a")],
            ),
            (
                json!(["client_id", "is", "set"]),
                "(t.`client_id` IS NOT NULL AND t.`client_id` != ?)",
                vec![e()],
            ),
            (
                json!(["client_id", "IS", "Not Set"]),
                "(t.`client_id` IS NULL OR t.`client_id` = ?)",
                vec![e()],
            ),
            (
                json!(["idx", "is", "set"]),
                "(t.`idx` IS NOT NULL AND t.`idx` != ?)",
                vec![SqlValue::Int(0)],
            ),
            (
                json!(["idx", "between", [1, 5]]),
                "t.`idx` BETWEEN ? AND ?",
                vec![SqlValue::Int(1), SqlValue::Int(5)],
            ),
            (
                json!(["modified", "between", ["2024-01-01", "2024-01-31"]]),
                "t.`modified` BETWEEN ? AND ?",
                vec![text("2024-01-01"), text("2024-01-31 23:59:59.999999")],
            ),
        ];
        for (filter, sql, binds) in cases {
            assert_eq!(
                one(filter.clone()),
                (format!(" WHERE {sql}"), binds),
                "{filter}"
            );
        }
        assert_eq!(one(json!(["name", "not in", []])).0, "");
        let q = ca(&[(
            "or_filters",
            r#"[["name", "not in", []], ["name", "=", "a"]]"#,
        )]);
        assert_eq!(where_of(&q).0, " WHERE (1=1 OR t.`name` = ?)");
    }

    #[test]
    fn operators_rejected() {
        for bad in [
            json!(["name", "regexp", "a"]),
            json!(["name", "==", "a"]),
            json!(["name", "descendants of", "a"]),
            json!(["name", "timespan", "last week"]),
            json!(["name", "is", "maybe"]),
            json!(["name", "is", null]),
            json!(["name", "between", ["a"]]),
            json!(["name", "between", "a,b"]),
            json!(["name", "between", [["a"], "b"]]),
            json!(["name", "in", [["a"]]]),
            json!(["name", "in", {"a": 1}]),
            json!(["name", "=", ["a"]]),
            json!(["name", "=", {"a": 1}]),
            json!(["name", 5, "a"]),
            json!(["name", "= 1 OR 1=1 --", "a"]),
        ] {
            let e = ca_err(&[("filters", &json!([bad]).to_string())]);
            assert!(matches!(e, ListQueryError::Invalid(_)), "{bad}");
        }
    }

    #[test]
    fn values_are_only_binds() {
        let nasty = "x' OR 1=1; -- `tabUser` \" \\";
        let q = ca(&[(
            "filters",
            &json!({"client_id": nasty, "name": ["like", nasty]}).to_string(),
        )]);
        let (sql, binds) = where_of(&q);
        assert!(
            !sql.contains('\'') && !sql.contains(';') && !sql.contains("--"),
            "{sql}"
        );
        assert_eq!(binds, vec![text(nasty), text(nasty)]);
    }

    // ----- order_by, group_by -----

    #[test]
    fn order_by_forms() {
        let q = ca(&[(
            "order_by",
            "`tabConnected App`.`modified` desc, name ASC , idx",
        )]);
        assert_eq!(
            q.order_clause(),
            " ORDER BY t.`modified` DESC, t.`name` ASC, t.`idx` ASC"
        );
        let q = ca(&[("order_by", "tabConnected App.creation DESC")]);
        assert_eq!(q.order_clause(), " ORDER BY t.`creation` DESC");
        assert_eq!(
            ca(&[("order_by", "")]).order_clause(),
            " ORDER BY t.`modified` DESC"
        );
        assert_eq!(
            ca_err(&[("order_by", "nope desc")]),
            ListQueryError::FieldNotPermitted("nope".into())
        );
        for bad in [
            "modified desc; drop table x",
            "sleep(1)",
            "(select 1)",
            "modified desc desc",
            "modified sideways",
            "modified desc,",
            "`tabOAuth Scope`.scope",
            "field(name, 'a')",
            "modified -- x",
            "*",
            "1",
        ] {
            let e = ca_err(&[("order_by", bad)]);
            assert!(
                !matches!(e, ListQueryError::FieldNotPermitted(ref f) if f == "modified"),
                "{bad}"
            );
            if bad != "1" {
                assert!(matches!(e, ListQueryError::Invalid(_)), "{bad}: {e}");
            }
        }
        assert!(matches!(
            body(&CONNECTED_APP, json!({"order_by": ["a"]})),
            Err(ListQueryError::Invalid(_))
        ));
    }

    #[test]
    fn group_by_name_alone_is_a_no_op() {
        assert_eq!(ca(&[("group_by", "name")]).select, Select::Names);
        assert_eq!(
            ca(&[("group_by", "`tabConnected App`.`name`")]).select,
            Select::Names
        );
    }

    fn agg(q: &ListQuery) -> &Aggregate {
        match &q.select {
            Select::Aggregate(a) => a,
            other => panic!("not an aggregate: {other:?}"),
        }
    }

    #[test]
    fn group_by_with_aggregates_and_fields() {
        let q = ca(&[
            (
                "fields",
                r#"["provider_name","count(name) as count","max(modified) as last","owner"]"#,
            ),
            ("group_by", "provider_name"),
        ]);
        assert_eq!(
            q.select_list(&CONNECTED_APP),
            "t.`provider_name`, COUNT(*), MAX(t.`modified`), MIN(t.`owner`)"
        );
        assert_eq!(
            q.output_keys(&CONNECTED_APP),
            ["provider_name", "count", "last", "owner"]
        );
        assert_eq!(q.group_clause(), " GROUP BY t.`provider_name`");
        // Without order_by: by the groups.
        assert_eq!(q.order_clause(), " ORDER BY t.`provider_name` ASC");
        assert!(q.order_by.is_empty());
        let q = ca(&[
            ("fields", r#"["provider_name","count(name) as count"]"#),
            ("group_by", "provider_name"),
            ("order_by", "count desc, provider_name"),
        ]);
        assert_eq!(
            q.order_clause(),
            " ORDER BY COUNT(*) DESC, t.`provider_name` ASC"
        );
        let q = ca(&[
            ("fields", r#"["provider_name"]"#),
            ("group_by", "provider_name"),
            ("order_by", "modified desc"),
        ]);
        assert_eq!(q.order_clause(), " ORDER BY MAX(t.`modified`) DESC");
        // A group_by alone groups the default field.
        let q = ca(&[("group_by", "provider_name, owner")]);
        assert_eq!(q.select_list(&CONNECTED_APP), "MIN(t.`name`)");
        assert_eq!(q.group_clause(), " GROUP BY t.`provider_name`, t.`owner`");
    }

    #[test]
    fn aggregates_without_group_by() {
        let q = body(
            &TOKEN_CACHE,
            json!({"fields": ["sum(expires_in) as total", "avg(expires_in)", "count(distinct user) as users", "count(connected_app)"]}),
        )
        .unwrap();
        let a = agg(&q);
        assert_eq!(
            q.select_list(&TOKEN_CACHE),
            "SUM(t.`expires_in`), AVG(t.`expires_in`), COUNT(DISTINCT t.`user`), COUNT(t.`connected_app`)"
        );
        assert_eq!(
            a.items.iter().map(|i| i.output).collect::<Vec<_>>()[..2],
            [AggOutput::Float, AggOutput::Float]
        );
        assert_eq!(
            q.output_keys(&TOKEN_CACHE),
            ["total", "avg(expires_in)", "users", "count(connected_app)"]
        );
        assert_eq!(q.group_clause(), "");
        assert_eq!(q.order_clause(), "");
        // count(name) beside a field is an aggregate, not the count fast path.
        let q = ca(&[("fields", r#"["count(name) as c", "name"]"#)]);
        assert_eq!(q.select_list(&CONNECTED_APP), "COUNT(*), MIN(t.`name`)");
    }

    #[test]
    fn group_by_rejects_what_is_not_a_parent_column() {
        for g in [
            "nope",
            "`tabOAuth Scope`.scope",
            "provider_name; drop",
            "*",
            "count(name)",
        ] {
            assert!(qs(&CONNECTED_APP, &[("group_by", g)]).is_err(), "{g}");
        }
        assert!(qs(
            &CONNECTED_APP,
            &[("group_by", "provider_name"), ("order_by", "sleep(1)")]
        )
        .is_err());
        assert!(qs(
            &CONNECTED_APP,
            &[("group_by", "provider_name"), ("order_by", "nope desc")]
        )
        .is_err());
    }

    // ----- limits, as_dict, from_map -----

    #[test]
    fn limits() {
        for bad in [
            "abc",
            "-1",
            "1.5",
            "1e3",
            "99999999999999999999",
            " 2 3",
            "+5",
        ] {
            assert!(
                matches!(
                    ca_err(&[("limit_page_length", bad)]),
                    ListQueryError::Invalid(_)
                ),
                "{bad}"
            );
            assert!(
                matches!(ca_err(&[("limit_start", bad)]), ListQueryError::Invalid(_)),
                "{bad}"
            );
        }
        for bad in [
            json!(-1),
            json!(1.5),
            json!(true),
            json!([1]),
            json!(u64::MAX),
        ] {
            assert!(
                body(&CONNECTED_APP, json!({"limit": bad})).is_err(),
                "{bad}"
            );
        }
        let q = body(
            &CONNECTED_APP,
            json!({"limit_page_length": 5.0, "limit_start": 7}),
        )
        .expect("parse");
        assert_eq!((q.start, q.page_length), (7, Some(5)));
        assert_eq!(ca(&[("limit_page_length", "")]).page_length, Some(20));
        assert_eq!(
            ca(&[("limit_page_length", "1000000")]).page_length,
            Some(1_000_000)
        );
        let q = ca(&[("limit_page_length", "0"), ("limit_start", "10")]);
        let sqlite = q.limit_clause(Backend::Sqlite);
        assert_eq!(
            (sqlite.sql.as_str(), sqlite.binds),
            (" LIMIT -1 OFFSET ?", vec![SqlValue::Int(10)])
        );
        assert_eq!(
            q.limit_clause(Backend::Mysql).sql,
            " LIMIT 18446744073709551615 OFFSET ?"
        );
    }

    #[test]
    fn as_dict_values() {
        for (v, b) in [
            ("0", false),
            ("1", true),
            ("true", true),
            ("False", false),
            ("", true),
        ] {
            assert_eq!(ca(&[("as_dict", v)]).as_dict, b, "{v}");
        }
        assert!(
            !body(&CONNECTED_APP, json!({"as_dict": false}))
                .expect("parse")
                .as_dict
        );
        assert!(
            !body(&CONNECTED_APP, json!({"as_dict": 0}))
                .expect("parse")
                .as_dict
        );
        assert!(matches!(
            ca_err(&[("as_dict", "maybe")]),
            ListQueryError::Invalid(_)
        ));
    }

    #[test]
    fn from_map_aliases() {
        let map = |v: Value| match v {
            Value::Object(m) => RawListArgs::from_map(&m),
            _ => unreachable!(),
        };
        let a = map(
            json!({"limit": 1, "page_length": 2, "limit_page_length": 3, "start": 4, "limit_start": 5}),
        );
        assert_eq!(
            (a.limit_page_length, a.limit_start),
            (Some(json!(3)), Some(json!(5)))
        );
        let a = map(json!({"limit": 1, "page_length": 2, "start": 4}));
        assert_eq!(
            (a.limit_page_length, a.limit_start),
            (Some(json!(2)), Some(json!(4)))
        );
        let a = map(json!({"limit": 1, "limit_page_length": null}));
        assert_eq!(a.limit_page_length, Some(json!(1)));
        let a = map(
            json!({"fields": "*", "or_filters": "[]", "group_by": "name", "as_dict": "0", "order_by": "name"}),
        );
        assert_eq!(a.fields, Some(json!("*")));
        assert!(
            a.or_filters.is_some()
                && a.group_by.is_some()
                && a.as_dict.is_some()
                && a.order_by.is_some()
        );
    }

    #[test]
    fn mis_shaped_extra_condition_fails_closed() {
        let q = ca(&[]);
        let c = Condition {
            table: CONNECTED_APP.parent,
            column: CONNECTED_APP.parent.column("owner").expect("owner"),
            op: Operator::Eq,
            value: FilterValue::Many(vec![text("a")]),
        };
        assert_eq!(q.where_clause(&CONNECTED_APP, Some(c)).sql, " WHERE 1=0");
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::frappe::meta::{CONNECTED_APP, TOKEN_CACHE};
    use proptest::prelude::*;

    const KEYWORDS: &[&str] = &[
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "IFNULL",
        "LIKE",
        "IS",
        "NULL",
        "BETWEEN",
        "EXISTS",
        "SELECT",
        "FROM",
        "t",
        "c",
        "ORDER",
        "BY",
        "ASC",
        "DESC",
        "LIMIT",
        "OFFSET",
        "LEFT",
        "JOIN",
        "ON",
        "COUNT",
        "1",
        "0",
        "18446744073709551615",
    ];

    fn known_ident(meta: &DocMeta, ident: &str) -> bool {
        let tables = std::iter::once(meta.parent).chain(meta.children.iter().map(|c| c.table));
        tables.clone().any(|t| t.table == ident)
            || tables
                .flat_map(|t| t.columns.iter())
                .any(|c| c.name == ident)
    }

    /// Every token of `sql` is a fixed keyword, punctuation, `?`, `-1` or a backticked name from `meta`.
    fn check_sql(meta: &DocMeta, sql: &str) -> Result<(), String> {
        let b = sql.as_bytes();
        let mut i = 0;
        while i < b.len() {
            let ch = b[i];
            if ch == b' ' || b"(),.=!<>?*".contains(&ch) {
                i += 1;
            } else if ch == b'`' {
                let end = sql[i + 1..].find('`').ok_or("unclosed backtick")? + i + 1;
                let ident = &sql[i + 1..end];
                if !known_ident(meta, ident) {
                    return Err(format!("unknown identifier {ident:?} in {sql}"));
                }
                i = end + 1;
            } else if sql[i..].starts_with("-1") {
                i += 2;
            } else if ch.is_ascii_alphanumeric() || ch == b'_' {
                let end = sql[i..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .map_or(b.len(), |e| e + i);
                if !KEYWORDS.contains(&&sql[i..end]) {
                    return Err(format!("unexpected word {:?} in {sql}", &sql[i..end]));
                }
                i = end;
            } else {
                return Err(format!("unexpected character {:?} in {sql}", ch as char));
            }
        }
        Ok(())
    }

    fn nasty() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("'".to_string()),
            Just("; DROP TABLE `tabUser` --".to_string()),
            Just("x' OR '1'='1".to_string()),
            Just("`".to_string()),
            Just("\\".to_string()),
            Just("/* */".to_string()),
            Just("set".to_string()),
            Just("not set".to_string()),
            Just("a,b,'c".to_string()),
            Just(String::new()),
            "[ -~]{0,12}",
            any::<String>(),
        ]
    }

    fn field_name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("name".to_string()),
            Just("provider_name".to_string()),
            Just("client_secret".to_string()),
            Just("idx".to_string()),
            Just("modified".to_string()),
            Just("scope".to_string()),
            Just("key".to_string()),
            Just("user".to_string()),
            Just("`tabOAuth Scope`.scope".to_string()),
            Just("tabConnected App.client_id".to_string()),
            Just("`tabConnected App`.`name`".to_string()),
            Just("count(name) as cnt".to_string()),
            Just("*".to_string()),
            Just("name as n".to_string()),
            nasty(),
        ]
    }

    fn operator() -> impl Strategy<Value = Value> {
        prop_oneof![
            prop::sample::select(vec![
                "=", "!=", "<", ">", "<=", ">=", "like", "NOT LIKE", "in", "not in", "is",
                "between", "", "regexp",
            ])
            .prop_map(|s| Value::String(s.into())),
            nasty().prop_map(Value::String),
            Just(Value::Null),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            nasty().prop_map(Value::String),
            field_name().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec((field_name(), inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn filter_item() -> impl Strategy<Value = Value> {
        let doctype = prop_oneof![
            Just(Value::String("Connected App".into())),
            Just(Value::String("OAuth Scope".into())),
            Just(Value::String("Query Parameters".into())),
            Just(Value::Null),
            nasty().prop_map(Value::String),
        ];
        prop_oneof![
            (field_name(), operator(), json_value()).prop_map(|(f, o, v)| Value::Array(vec![
                Value::String(f),
                o,
                v
            ])),
            (doctype, field_name(), operator(), json_value())
                .prop_map(|(d, f, o, v)| Value::Array(vec![d, Value::String(f), o, v])),
            (field_name(), operator(), json_value()).prop_map(|(f, o, v)| {
                let mut m = Map::new();
                m.insert(f, Value::Array(vec![o, v]));
                Value::Object(m)
            }),
            json_value(),
        ]
    }

    fn filters() -> impl Strategy<Value = Option<Value>> {
        let structured = prop::collection::vec(filter_item(), 0..4)
            .prop_map(Value::Array)
            .boxed();
        prop_oneof![
            Just(None),
            structured.clone().prop_map(Some),
            structured.prop_map(|v| Some(Value::String(v.to_string()))),
            json_value().prop_map(Some),
            nasty().prop_map(|s| Some(Value::String(s))),
        ]
    }

    fn fields() -> impl Strategy<Value = Option<Value>> {
        let list = prop::collection::vec(field_name().prop_map(Value::String), 0..4)
            .prop_map(Value::Array)
            .boxed();
        prop_oneof![
            Just(None),
            list.clone().prop_map(Some),
            list.prop_map(|v| Some(Value::String(v.to_string()))),
            field_name().prop_map(|s| Some(Value::String(s))),
            json_value().prop_map(Some),
        ]
    }

    fn order_by() -> impl Strategy<Value = Option<Value>> {
        let term = prop_oneof![
            field_name(),
            (
                field_name(),
                prop::sample::select(vec![" asc", " DESC", "", " desc;"])
            )
                .prop_map(|(f, d)| f + d),
        ];
        prop_oneof![
            Just(None),
            prop::collection::vec(term, 1..3).prop_map(|t| Some(Value::String(t.join(",")))),
            json_value().prop_map(Some),
        ]
    }

    fn scalar_param() -> impl Strategy<Value = Option<Value>> {
        prop_oneof![
            Just(None),
            (0u64..1000).prop_map(|n| Some(Value::String(n.to_string()))),
            json_value().prop_map(Some),
        ]
    }

    fn raw_args() -> impl Strategy<Value = RawListArgs> {
        (
            fields(),
            filters(),
            filters(),
            order_by(),
            scalar_param(),
            scalar_param(),
            scalar_param(),
            scalar_param(),
        )
            .prop_map(
                |(
                    fields,
                    filters,
                    or_filters,
                    order_by,
                    limit_start,
                    limit_page_length,
                    as_dict,
                    group_by,
                )| {
                    RawListArgs {
                        fields,
                        filters,
                        or_filters,
                        order_by,
                        limit_start,
                        limit_page_length,
                        as_dict,
                        group_by,
                    }
                },
            )
    }

    fn check(meta: &'static DocMeta, args: &RawListArgs) -> Result<bool, TestCaseError> {
        let q = match parse(meta, args) {
            Ok(q) => q,
            Err(ListQueryError::FieldNotPermitted(_) | ListQueryError::Invalid(_)) => {
                return Ok(false)
            }
        };
        let extra = Condition {
            table: meta.parent,
            column: meta
                .parent
                .column("owner")
                .ok_or_else(|| TestCaseError::fail("owner"))?,
            op: Operator::Eq,
            value: FilterValue::One(SqlValue::Text("'; --".into())),
        };
        let from = q.from_clause(meta);
        let where_ = q.where_clause(meta, Some(extra));
        let fragments = [
            from.clone(),
            where_.clone(),
            SqlFragment {
                sql: q.order_clause(),
                binds: vec![],
            },
            q.limit_clause(Backend::Mysql),
            q.limit_clause(Backend::Sqlite),
            SqlFragment {
                sql: q.select_list(meta),
                binds: vec![],
            },
        ];
        for f in &fragments {
            prop_assert_eq!(
                f.sql.matches('?').count(),
                f.binds.len(),
                "placeholders vs binds in {}",
                f.sql
            );
            if let Err(e) = check_sql(meta, &f.sql) {
                return Err(TestCaseError::fail(e));
            }
            prop_assert!(!f.sql.contains('\'') && !f.sql.contains(';') && !f.sql.contains("--"));
        }
        prop_assert_eq!(
            q.output_keys(meta).len(),
            q.select_list(meta).split(", ").count()
        );
        Ok(true)
    }

    proptest! {
        // PROPTEST_CASES sets a longer run (README, "Fuzzing").
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(4000),
            ..ProptestConfig::default()
        })]

        #[test]
        fn arbitrary_input_never_injects(args in raw_args(), token_cache in any::<bool>()) {
            let meta: &'static DocMeta = if token_cache { &TOKEN_CACHE } else { &CONNECTED_APP };
            check(meta, &args)?;
        }

        #[test]
        fn valid_filters_with_nasty_values(
            field in prop::sample::select(vec!["name", "provider_name", "client_id", "idx", "modified", "scope"]),
            op in prop::sample::select(vec!["=", "!=", "<", ">", "<=", ">=", "like", "not like", "in", "not in", "between"]),
            a in nasty(),
            b in nasty(),
            as_string in any::<bool>(),
        ) {
            let value = match op {
                "between" => serde_json::json!([a, b]),
                "in" | "not in" if as_string => Value::String(format!("{a},{b}")),
                "in" | "not in" => serde_json::json!([a, b]),
                _ => Value::String(a.clone()),
            };
            let filters = serde_json::json!([[field, op, value]]);
            let args = RawListArgs {
                filters: Some(Value::String(filters.to_string())),
                or_filters: Some(filters),
                ..RawListArgs::default()
            };
            prop_assert!(check(&CONNECTED_APP, &args)?, "valid filter refused");
        }
    }
}
