//! Aggregate queries: `count`/`sum`/`avg`/`min`/`max` in `fields`, with or without `group_by`,
//! their grouping and their order.

use super::*;

/// `func(arg)` of `fields` (other than a lone `count(name)`): an aggregate over a parent column.
pub(super) fn aggregate_item(
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
pub(super) fn aggregate_select(
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

pub(super) fn plain_item(meta: &DocMeta, f: SelectField) -> Result<AggItem, ListQueryError> {
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
pub(super) fn aggregate(
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

pub(super) fn aggregate_order(
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
