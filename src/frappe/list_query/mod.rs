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

pub mod caps;

mod aggregate;
mod fields;
mod filters;
mod order;
mod parse;
mod render;

use self::{aggregate::*, fields::*, filters::*, order::*, parse::*};

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
