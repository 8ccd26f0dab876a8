//! Generic SQL for the served DocTypes. Table and column names come only from `frappe::meta`;
//! every value is a bound parameter.

use super::row::{DynRow, Sql, ALIASES};
use super::{ChildRow, Doc, Row};
use crate::db::{Backend, DbConnection};
use crate::error::{AppError, AppResult};
use crate::frappe::list_query::{ListQuery, SqlValue};
use crate::frappe::meta::{Column, ColumnKind, DocMeta, TableMeta};
use crate::frappe::time;

pub fn backend(conn: &DbConnection) -> Backend {
    match conn {
        DbConnection::Mysql(_) => Backend::Mysql,
        DbConnection::Sqlite(_) => Backend::Sqlite,
    }
}

/// `CAST(t.col AS CHAR) AS c0, …` for every column of a table.
fn select_list(backend: Backend, table: &TableMeta, alias: &str) -> String {
    let ty = cast_ty(backend);
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("CAST({alias}.`{}` AS {ty}) AS {}", c.name, ALIASES[i]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads one document with its child tables in one query; names match case-insensitively.
///
/// Every table's columns come back as text, padded to the widest table, each row tagged with
/// the table it came from; child rows are matched to the parent's stored name.
pub fn load(conn: &mut DbConnection, meta: &'static DocMeta, name: &str) -> AppResult<Option<Doc>> {
    let ty = cast_ty(backend(conn));
    let tables: Vec<&TableMeta> = std::iter::once(meta.parent)
        .chain(meta.children.iter().map(|c| c.table))
        .collect();
    let width = tables.iter().map(|t| t.columns.len()).max().unwrap_or(0);
    let select = |part: usize, table: &TableMeta, alias: &str| {
        let mut cols = vec![format!("CAST('{part}' AS {ty})")];
        cols.extend(
            table
                .columns
                .iter()
                .map(|c| format!("CAST({alias}.`{}` AS {ty})", c.name)),
        );
        cols.extend((table.columns.len()..width).map(|_| format!("CAST(NULL AS {ty})")));
        cols.join(", ")
    };
    let mut sql = format!(
        "SELECT {} FROM `{}` p WHERE p.`name` = ?",
        select(0, meta.parent, "p"),
        meta.parent.table
    );
    let mut binds = vec![SqlValue::Text(name.to_string())];
    for (i, child) in meta.children.iter().enumerate() {
        sql.push_str(&format!(
            " UNION ALL SELECT {} FROM `{}` c{i} WHERE c{i}.`parent` = \
             (SELECT s{i}.`name` FROM `{}` s{i} WHERE s{i}.`name` = ?) \
             AND c{i}.`parenttype` = ? AND c{i}.`parentfield` = ?",
            select(i + 1, child.table, &format!("c{i}")),
            child.table.table,
            meta.parent.table,
        ));
        binds.extend([
            SqlValue::Text(name.to_string()),
            SqlValue::Text(meta.doctype().to_string()),
            SqlValue::Text(child.fieldname.to_string()),
        ]);
    }
    let rows = Sql::new(sql).bind_all(binds).rows(conn)?;
    let mut parent = None;
    let mut children: Vec<Vec<ChildRow>> = meta.children.iter().map(|_| Vec::new()).collect();
    for r in rows {
        let part: usize = match r.0.first().cloned().flatten().and_then(|p| p.parse().ok()) {
            Some(p) if p < tables.len() => p,
            _ => continue,
        };
        let values = &r.0[1..];
        let row = Row::from_text(tables[part], &values[..tables[part].columns.len()]);
        match part {
            0 => parent = Some(row),
            n => children[n - 1].push(ChildRow {
                row,
                unsaved: false,
            }),
        }
    }
    let Some(row) = parent else { return Ok(None) };
    for rows in &mut children {
        rows.sort_by_key(|c| c.row.idx);
    }
    Ok(Some(Doc {
        meta,
        loaded_modified: row.modified,
        row,
        children,
    }))
}

/// The type a column is `CAST` to so that it reads back as text: `CHAR` or `TEXT`.
pub fn text_type(conn: &DbConnection) -> &'static str {
    cast_ty(backend(conn))
}

fn cast_ty(b: Backend) -> &'static str {
    match b {
        Backend::Mysql => "CHAR",
        Backend::Sqlite => "TEXT",
    }
}

/// The bound value of a row's column for writing.
fn column_value(row: &Row, column: &str, kind: ColumnKind) -> SqlValue {
    match column {
        "name" => SqlValue::Text(row.name.clone()),
        "creation" => row
            .creation
            .map(|t| SqlValue::Text(time::format(&t)))
            .unwrap_or(SqlValue::Null),
        "modified" => row
            .modified
            .map(|t| SqlValue::Text(time::format(&t)))
            .unwrap_or(SqlValue::Null),
        "owner" => row
            .owner
            .clone()
            .map(SqlValue::Text)
            .unwrap_or(SqlValue::Null),
        "modified_by" => row
            .modified_by
            .clone()
            .map(SqlValue::Text)
            .unwrap_or(SqlValue::Null),
        "docstatus" => SqlValue::Int(row.docstatus),
        "idx" => SqlValue::Int(row.idx),
        other => match row.fields.get(other) {
            None | Some(serde_json::Value::Null) => match kind {
                ColumnKind::Int => SqlValue::Int(0),
                _ => SqlValue::Null,
            },
            Some(serde_json::Value::String(s)) => SqlValue::Text(s.clone()),
            Some(serde_json::Value::Number(n)) => match n.as_i64() {
                Some(i) => SqlValue::Int(i),
                None => SqlValue::Float(n.as_f64().unwrap_or(0.0)),
            },
            Some(serde_json::Value::Bool(b)) => SqlValue::Int(i64::from(*b)),
            Some(v) => SqlValue::Text(v.to_string()),
        },
    }
}

fn insert_row(conn: &mut DbConnection, table: &TableMeta, row: &Row) -> AppResult<()> {
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|c| format!("`{}`", c.name))
        .collect();
    let marks = vec!["?"; cols.len()].join(", ");
    let sql = format!(
        "INSERT INTO `{}` ({}) VALUES ({marks})",
        table.table,
        cols.join(", ")
    );
    let binds = table
        .columns
        .iter()
        .map(|c| column_value(row, c.name, c.kind));
    Sql::new(sql).bind_all(binds).run(conn)?;
    Ok(())
}

fn update_row(conn: &mut DbConnection, table: &TableMeta, row: &Row) -> AppResult<usize> {
    update_row_if(conn, table, row, None)
}

/// Updates a row by name, and only while its `modified` is `expected` when that is given.
fn update_row_if(
    conn: &mut DbConnection,
    table: &TableMeta,
    row: &Row,
    expected: Option<chrono::NaiveDateTime>,
) -> AppResult<usize> {
    let cols: Vec<&crate::frappe::meta::Column> = table
        .columns
        .iter()
        .filter(|c| c.name != "name" && c.name != "creation")
        .collect();
    let sets: Vec<String> = cols.iter().map(|c| format!("`{}` = ?", c.name)).collect();
    let mut sql = format!(
        "UPDATE `{}` SET {} WHERE `name` = ?",
        table.table,
        sets.join(", ")
    );
    let mut binds: Vec<SqlValue> = cols
        .iter()
        .map(|c| column_value(row, c.name, c.kind))
        .collect();
    binds.push(SqlValue::Text(row.name.clone()));
    if let Some(t) = expected {
        sql.push_str(" AND `modified` = ?");
        binds.push(SqlValue::Text(time::format(&t)));
    }
    Ok(Sql::new(sql).bind_all(binds).run(conn)?)
}

/// Inserts a new document and its child rows.
pub fn insert(conn: &mut DbConnection, doc: &Doc) -> AppResult<()> {
    insert_row(conn, doc.meta.parent, &doc.row)?;
    for (i, child) in doc.meta.children.iter().enumerate() {
        for c in &doc.children[i] {
            insert_row(conn, child.table, &c.row)?;
        }
    }
    Ok(())
}

/// Saves a changed document: the parent row, then each child table (rows that are gone are
/// deleted, kept rows updated in place, new rows inserted).
///
/// On MariaDB the parent row is written only while its `modified` is still the one the
/// document was loaded with: a write in between (through this node or, on a Galera cluster,
/// another one) makes this a conflict, which `Db::write` answers by running the whole
/// transaction again on fresh data. The decision is the UPDATE itself, which Galera
/// certifies across nodes (a `FOR UPDATE` lock is local to one node).
pub fn update(conn: &mut DbConnection, doc: &Doc, replaced_tables: &[&str]) -> AppResult<()> {
    let expected = match conn {
        DbConnection::Mysql(_) => doc.loaded_modified,
        // SQLite writers hold the database's write lock for the whole transaction.
        DbConnection::Sqlite(_) => None,
    };
    if update_row_if(conn, doc.meta.parent, &doc.row, expected)? == 0 {
        if expected.is_some() {
            return Err(AppError::conflict(format!(
                "{} {} changed since it was read",
                doc.meta.doctype(),
                doc.row.name
            )));
        }
        return Err(AppError::not_found(doc.meta.doctype(), &doc.row.name));
    }
    for (i, child) in doc.meta.children.iter().enumerate() {
        let rows = &doc.children[i];
        if !replaced_tables.contains(&child.fieldname) {
            // Untouched table: keep rows, follow the parent's modified/modified_by as Frappe does.
            let sql = format!(
                "UPDATE `{}` SET `modified` = ?, `modified_by` = ? WHERE `parent` = ? AND `parenttype` = ? AND `parentfield` = ?",
                child.table.table
            );
            let binds = vec![
                column_value(&doc.row, "modified", ColumnKind::Datetime),
                column_value(&doc.row, "modified_by", ColumnKind::Data),
                SqlValue::Text(doc.row.name.clone()),
                SqlValue::Text(doc.meta.doctype().into()),
                SqlValue::Text(child.fieldname.into()),
            ];
            Sql::new(sql).bind_all(binds).run(conn)?;
            continue;
        }
        let keep: Vec<SqlValue> = rows
            .iter()
            .filter(|r| !r.unsaved)
            .map(|r| SqlValue::Text(r.row.name.clone()))
            .collect();
        let mut sql = format!(
            "DELETE FROM `{}` WHERE `parent` = ? AND `parenttype` = ? AND `parentfield` = ?",
            child.table.table
        );
        if !keep.is_empty() {
            sql.push_str(&format!(
                " AND `name` NOT IN ({})",
                vec!["?"; keep.len()].join(", ")
            ));
        }
        let mut binds = vec![
            SqlValue::Text(doc.row.name.clone()),
            SqlValue::Text(doc.meta.doctype().into()),
            SqlValue::Text(child.fieldname.into()),
        ];
        binds.extend(keep);
        Sql::new(sql).bind_all(binds).run(conn)?;
        for r in rows {
            if r.unsaved {
                insert_row(conn, child.table, &r.row)?;
            } else {
                update_row(conn, child.table, &r.row)?;
            }
        }
    }
    Ok(())
}

/// Deletes a document, its child rows and its secrets.
pub fn delete(conn: &mut DbConnection, meta: &DocMeta, name: &str) -> AppResult<usize> {
    let n = Sql::new(format!(
        "DELETE FROM `{}` WHERE `name` = ?",
        meta.parent.table
    ))
    .bind_text(name)
    .run(conn)?;
    let mut done: Vec<&str> = Vec::new();
    for c in meta.children {
        if done.contains(&c.table.table) {
            continue;
        }
        done.push(c.table.table);
        Sql::new(format!(
            "DELETE FROM `{}` WHERE `parent` = ? AND `parenttype` = ?",
            c.table.table
        ))
        .bind_text(name)
        .bind_text(meta.doctype())
        .run(conn)?;
    }
    crate::secrets::vault::remove_all(conn, meta.doctype(), name)?;
    Ok(n)
}

/// Locks a document row until the transaction ends (MariaDB `FOR UPDATE`; SQLite transactions
/// that write are already exclusive).
///
/// Not on a Galera cluster: there the lock holds on one node only, and a local transaction
/// waiting on it when a conflicting write set arrives from another node can hang its client
/// (seen with MariaDB 10.11: the aborted thread stays `Killed` and never answers). There the
/// conditional UPDATE of `update` alone decides.
pub fn lock(conn: &mut DbConnection, meta: &DocMeta, name: &str) -> AppResult<()> {
    if let (DbConnection::Mysql(_), false) = (&conn, crate::db::on_galera()) {
        let sql = format!(
            "SELECT CAST(`name` AS CHAR) AS c0 FROM `{}` WHERE `name` = ? FOR UPDATE",
            meta.parent.table
        );
        Sql::new(sql).bind_text(name).rows(conn)?;
    }
    Ok(())
}

/// Runs a list query: full parent rows in the query's order and page.
pub fn list(
    conn: &mut DbConnection,
    meta: &'static DocMeta,
    q: &ListQuery,
    owner: Option<&str>,
) -> AppResult<Vec<Row>> {
    let all: Vec<&Column> = meta.parent.columns.iter().collect();
    let rows = list_text(conn, meta, q, owner, &all)?;
    Ok(rows
        .iter()
        .map(|r| Row::from_text(meta.parent, &r.0))
        .collect())
}

/// Runs a list query for some parent columns only, as the database's text in `columns` order.
pub fn list_text(
    conn: &mut DbConnection,
    meta: &'static DocMeta,
    q: &ListQuery,
    owner: Option<&str>,
    columns: &[&Column],
) -> AppResult<Vec<DynRow>> {
    let (sql, binds) = list_sql(backend(conn), meta, q, owner, columns);
    Ok(Sql::new(sql).bind_all(binds).rows(conn)?)
}

/// The SQL and bound values of a list query selecting `columns` of the parent table as text.
pub fn list_sql(
    b: Backend,
    meta: &'static DocMeta,
    q: &ListQuery,
    owner: Option<&str>,
    columns: &[&Column],
) -> (String, Vec<SqlValue>) {
    let (from, binds) = list_from(b, meta, q, owner);
    (select_text(b, columns, &from), binds)
}

/// `FROM … WHERE … ORDER BY … LIMIT …` of a list query, and its bound values: one query can
/// be asked for different columns without rendering its conditions again.
pub fn list_from(
    b: Backend,
    meta: &'static DocMeta,
    q: &ListQuery,
    owner: Option<&str>,
) -> (String, Vec<SqlValue>) {
    let (where_sql, mut binds) = where_with_owner(meta, q, owner);
    let limit = q.limit_clause(b);
    binds.extend(limit.binds);
    let from = format!(
        " FROM `{}` t{}{}{}",
        meta.parent.table,
        where_sql,
        q.order_clause(),
        limit.sql
    );
    (from, binds)
}

/// Runs an aggregate list query (`Select::Aggregate`): its items as text, one row per group.
pub fn aggregate_rows(
    conn: &mut DbConnection,
    meta: &'static DocMeta,
    q: &ListQuery,
    owner: Option<&str>,
) -> AppResult<Vec<DynRow>> {
    let crate::frappe::list_query::Select::Aggregate(a) = &q.select else {
        return Ok(Vec::new());
    };
    let b = backend(conn);
    let ty = cast_ty(b);
    let (where_sql, mut binds) = where_with_owner(meta, q, owner);
    let limit = q.limit_clause(b);
    binds.extend(limit.binds);
    let select = a
        .items
        .iter()
        .map(|i| format!("CAST({} AS {ty})", i.expr))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {select} FROM `{}` t{where_sql}{}{}{}",
        meta.parent.table,
        q.group_clause(),
        q.order_clause(),
        limit.sql
    );
    Ok(Sql::new(sql).bind_all(binds).rows(conn)?)
}

/// `SELECT CAST(t.col AS CHAR), …` followed by `from` (see [`list_from`]).
pub fn select_text(b: Backend, columns: &[&Column], from: &str) -> String {
    let ty = cast_ty(b);
    let select = columns
        .iter()
        .map(|c| format!("CAST(t.`{}` AS {ty})", c.name))
        .collect::<Vec<_>>()
        .join(", ");
    format!("SELECT {select}{from}")
}

/// Counts the rows a list query matches (ignoring its page).
pub fn count(
    conn: &mut DbConnection,
    meta: &'static DocMeta,
    q: &ListQuery,
    owner: Option<&str>,
) -> AppResult<i64> {
    let (sql, binds) = count_sql(backend(conn), meta, q, owner);
    run_count(conn, sql, binds)
}

/// The SQL and bound values that count a list query's rows.
pub fn count_sql(
    b: Backend,
    meta: &'static DocMeta,
    q: &ListQuery,
    owner: Option<&str>,
) -> (String, Vec<SqlValue>) {
    let (where_sql, binds) = where_with_owner(meta, q, owner);
    let sql = format!(
        "SELECT CAST(COUNT(*) AS {}) AS c0 FROM `{}` t{}",
        cast_ty(b),
        meta.parent.table,
        where_sql
    );
    (sql, binds)
}

pub fn run_count(conn: &mut DbConnection, sql: String, binds: Vec<SqlValue>) -> AppResult<i64> {
    let rows = Sql::new(sql).bind_all(binds).rows(conn)?;
    Ok(rows
        .first()
        .and_then(|r| r.0.first().cloned().flatten())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

fn where_with_owner(
    meta: &'static DocMeta,
    q: &ListQuery,
    owner: Option<&str>,
) -> (String, Vec<SqlValue>) {
    // Child fields are read with a second query, not a join: render filters without one.
    let mut plain = q.clone();
    plain.select = crate::frappe::list_query::Select::Names;
    let frag = plain.where_clause(meta, None);
    let mut sql = frag.sql;
    let mut binds = frag.binds;
    if let Some(owner) = owner {
        if sql.is_empty() {
            sql = " WHERE t.`owner` = ?".to_string();
        } else {
            sql = format!(
                " WHERE t.`owner` = ? AND ({})",
                sql.trim_start().trim_start_matches("WHERE").trim()
            );
        }
        binds.insert(0, SqlValue::Text(owner.to_string()));
    }
    (sql, binds)
}

/// Child rows of many parents at once (for list fields such as `` `tabOAuth Scope`.scope ``).
pub fn child_rows(
    conn: &mut DbConnection,
    meta: &DocMeta,
    table: &'static TableMeta,
    parents: &[String],
    filter: Option<crate::frappe::list_query::SqlFragment>,
) -> AppResult<Vec<Row>> {
    if parents.is_empty() {
        return Ok(Vec::new());
    }
    // The table keeps its own name (no alias): `filter` refers to `tabX`.`col`.
    let t = format!("`{}`", table.table);
    let (extra, extra_binds) = match filter {
        Some(f) if !f.sql.trim().is_empty() => {
            let cond = f
                .sql
                .trim_start()
                .trim_start_matches("WHERE")
                .trim()
                .to_string();
            (format!(" AND ({cond})"), f.binds)
        }
        _ => (String::new(), Vec::new()),
    };
    // A page may have any number of rows (`limit_page_length=0`): the parents are bound in
    // chunks, so a statement stays far below SQLite's and MariaDB's placeholder limits. Each
    // parent's rows come from one chunk, still in `idx` order.
    let columns = select_list(backend(conn), table, &t);
    let mut out = Vec::new();
    for chunk in parents.chunks(PARENTS_PER_STATEMENT) {
        let sql = format!(
            "SELECT {columns} FROM {t} WHERE {t}.`parenttype` = ? AND {t}.`parent` IN ({}){extra} ORDER BY {t}.`idx`",
            vec!["?"; chunk.len()].join(", ")
        );
        let rows = Sql::new(sql)
            .bind_text(meta.doctype())
            .bind_all(chunk.iter().map(|p| SqlValue::Text(p.clone())))
            .bind_all(extra_binds.iter().cloned())
            .rows(conn)?;
        out.extend(rows.iter().map(|r| Row::from_text(table, &r.0)));
    }
    Ok(out)
}

/// Parent names bound in one statement of [`child_rows`].
const PARENTS_PER_STATEMENT: usize = 1_000;
