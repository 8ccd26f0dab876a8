//! From the raw arguments to a checked [`ListQuery`]: the steps in order, column and table
//! references, limits and `as_dict`.

use super::*;

/// Parses list parameters, once [`caps::check_args`] let them through.
pub(super) fn parse_within_caps(
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

pub(super) fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Splits `col`, `` `col` ``, `table.col`, `` `table`.`col` `` into (table, column) without checking names.
/// `None` when the text is not shaped like a column reference.
pub(super) fn split_ref(s: &str) -> Option<(Option<&str>, &str)> {
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
pub(super) enum Target {
    Parent,
    Child(&'static ChildField),
}

impl Target {
    pub(super) fn table(self, meta: &'static DocMeta) -> &'static TableMeta {
        match self {
            Target::Parent => meta.parent,
            Target::Child(c) => c.table,
        }
    }
}

/// Resolves `tabConnected App`, `Connected App`, a child table/doctype name or a child table field name.
pub(super) fn resolve_table(meta: &'static DocMeta, name: &str) -> Option<Target> {
    let name = name.trim();
    if name == meta.parent.table || name == meta.parent.doctype {
        return Some(Target::Parent);
    }
    meta.child_by_doctype(name)
        .or_else(|| meta.child_by_field(name))
        .map(Target::Child)
}

pub(super) fn unknown_table(meta: &DocMeta, name: &str) -> ListQueryError {
    ListQueryError::Invalid(format!(
        "{name} is neither {} nor one of its child tables",
        meta.doctype()
    ))
}

// ----- limits, as_dict -----

pub(super) fn parse_count(
    v: Option<&Value>,
    what: &str,
    default: u64,
) -> Result<u64, ListQueryError> {
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

pub(super) fn parse_as_dict(v: Option<&Value>) -> Result<bool, ListQueryError> {
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
