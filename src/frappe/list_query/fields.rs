//! `fields`: plain columns, `*`, child-table columns, `count(…)` and aliases.

use super::*;

// ----- fields -----

pub(super) fn parse_fields(
    meta: &'static DocMeta,
    v: Option<&Value>,
) -> Result<Select, ListQueryError> {
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

pub(super) fn select_from_list(
    meta: &'static DocMeta,
    items: Vec<&str>,
) -> Result<Select, ListQueryError> {
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
pub(super) fn split_alias(item: &str) -> Result<(&str, Option<&str>), ListQueryError> {
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
pub(super) fn strip_count(expr: &str) -> Option<&str> {
    let head = expr.get(..6)?;
    if !head.eq_ignore_ascii_case("count(") {
        return None;
    }
    expr[6..].strip_suffix(')').map(str::trim)
}

pub(super) fn check_count_arg(
    meta: &'static DocMeta,
    inner: &str,
    expr: &str,
) -> Result<(), ListQueryError> {
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
