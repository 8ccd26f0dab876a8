//! Caps on the size of a list query, generous for real use. Each is checked as early as the
//! argument can be counted (before any item of it is parsed), so an oversized request costs
//! no more than reading its arguments, and is answered as a `ValidationError` (417) that names
//! the cap. Without them a 70,000-value `in` list failed in the database (500) and 30,000
//! filters cost half a second each.

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
