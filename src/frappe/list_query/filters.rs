//! `filters` and `or_filters`: their shapes, operators and values, checked into [`Condition`]s.

use super::*;

// ----- filters -----

pub(super) fn parse_filters(
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

pub(super) fn bad_filter_item() -> ListQueryError {
    ListQueryError::Invalid("Filter must be a tuple or list (in a list)".into())
}

/// `{field: value}` or `{field: [op, value]}` (Frappe's `make_filter_tuple`).
pub(super) fn dict_filter(
    meta: &'static DocMeta,
    key: &str,
    v: &Value,
) -> Result<Condition, ListQueryError> {
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
pub(super) fn list_filter(
    meta: &'static DocMeta,
    parts: &[Value],
) -> Result<Condition, ListQueryError> {
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

pub(super) fn build_condition(
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

pub(super) fn is_bare_date(s: &str) -> bool {
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

pub(super) fn scalar(v: &Value) -> Result<SqlValue, ListQueryError> {
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
pub(super) fn in_values(v: &Value) -> Result<Vec<SqlValue>, ListQueryError> {
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
