//! `order_by` and `group_by`.

use super::*;

// ----- order_by, group_by -----

pub(super) fn parse_order_by(
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

pub(super) fn order_term(meta: &'static DocMeta, part: &str) -> Result<OrderBy, ListQueryError> {
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
pub(super) fn parse_group_by(
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
