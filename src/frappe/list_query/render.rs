//! SQL rendering of a checked [`ListQuery`]: identifiers from the metadata, every value a `?` bind.

use super::*;

pub(super) fn fallback(kind: ColumnKind) -> SqlValue {
    match kind {
        ColumnKind::Int => SqlValue::Int(0),
        ColumnKind::Datetime => SqlValue::Text(DATETIME_FALLBACK.into()),
        ColumnKind::Data | ColumnKind::Password => SqlValue::Text(String::new()),
    }
}

pub(super) fn empty_value(kind: ColumnKind) -> SqlValue {
    match kind {
        ColumnKind::Int => SqlValue::Int(0),
        _ => SqlValue::Text(String::new()),
    }
}

pub(super) fn or_fallback(v: &SqlValue, fb: &SqlValue) -> SqlValue {
    match v {
        SqlValue::Null => fb.clone(),
        other => other.clone(),
    }
}

pub(super) fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The predicate on an already qualified column; `None` means "no condition".
/// A value whose shape does not fit the operator renders as `1=0` (fail closed).
pub(super) fn predicate(col: &str, c: &Condition, binds: &mut Vec<SqlValue>) -> Option<String> {
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

pub(super) fn render_condition(
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
