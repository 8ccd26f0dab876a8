//! A row of any served table, loaded as text by position so one loader serves every DocType
//! whatever columns a query selects, and the dynamic SQL that loads it.

use std::collections::HashSet;
use std::sync::Mutex;

use diesel::deserialize::{FromSql, FromSqlRow};
use diesel::expression::expression_types::Untyped;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::row::{Field, Row};
use diesel::sql_types::{BigInt, Double, Nullable, Text};
use diesel::{QueryResult, RunQueryDsl};

use crate::db::{DbConnection, MultiBackend};
use crate::frappe::list_query::SqlValue;

/// Column values in select order; `None` is SQL NULL.
#[derive(Debug, Clone, Default)]
pub struct DynRow(pub Vec<Option<String>>);

/// Column aliases used by the SQL that `DynRow` reads (for readable SQL; values are read by
/// position).
pub const ALIASES: [&str; 32] = [
    "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12", "c13", "c14",
    "c15", "c16", "c17", "c18", "c19", "c20", "c21", "c22", "c23", "c24", "c25", "c26", "c27",
    "c28", "c29", "c30", "c31",
];

impl FromSqlRow<Untyped, MultiBackend> for DynRow {
    fn build_from_row<'a>(row: &impl Row<'a, MultiBackend>) -> diesel::deserialize::Result<Self> {
        let n = row.field_count();
        let mut values = Vec::with_capacity(n);
        for i in 0..n {
            let field = row.get(i).ok_or("column index out of range")?;
            values.push(
                <Option<String> as FromSql<Nullable<Text>, MultiBackend>>::from_nullable_sql(
                    field.value(),
                )?,
            );
        }
        Ok(DynRow(values))
    }
}

/// SQL built from metadata (table and column names only) with every value bound.
///
/// Unlike `diesel::sql_query`, the connection may keep it prepared, which saves the prepare
/// and close round trips on MariaDB: the first [`MAX_PREPARED_SHAPES`] distinct statements a
/// process sees are cached, later ones are prepared per use, so a caller sending endless
/// filter combinations cannot grow the server's prepared statements without bound.
pub struct Sql {
    sql: String,
    binds: Vec<SqlValue>,
    cacheable: bool,
}

/// Distinct dynamic statements each connection keeps prepared.
pub const MAX_PREPARED_SHAPES: usize = 64;

/// Longest statement kept prepared. The longest hot statement, a Connected App with its child
/// tables, is about 2 KB; a long one (hundreds of filters, thousands of `in` values) is
/// prepared per use, so it neither stays in every connection's statement cache nor takes one
/// of the [`MAX_PREPARED_SHAPES`] places.
pub const MAX_PREPARED_SQL: usize = 16 * 1024;

static SHAPES: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn may_cache(sql: &str) -> bool {
    if sql.len() > MAX_PREPARED_SQL {
        return false;
    }
    let mut shapes = SHAPES.lock().unwrap_or_else(|e| e.into_inner());
    let shapes = shapes.get_or_insert_with(HashSet::new);
    if shapes.contains(sql) {
        return true;
    }
    if shapes.len() < MAX_PREPARED_SHAPES {
        shapes.insert(sql.to_string());
        return true;
    }
    false
}

static NULL_TEXT: Option<String> = None;

impl Sql {
    pub fn new(sql: String) -> Sql {
        let cacheable = may_cache(&sql);
        Sql {
            sql,
            binds: Vec::new(),
            cacheable,
        }
    }

    pub fn bind(mut self, v: SqlValue) -> Sql {
        self.binds.push(v);
        self
    }

    pub fn bind_text(self, s: impl Into<String>) -> Sql {
        self.bind(SqlValue::Text(s.into()))
    }

    pub fn bind_all(mut self, binds: impl IntoIterator<Item = SqlValue>) -> Sql {
        self.binds.extend(binds);
        self
    }

    pub fn rows(self, conn: &mut DbConnection) -> QueryResult<Vec<DynRow>> {
        self.load(conn)
    }

    pub fn run(self, conn: &mut DbConnection) -> QueryResult<usize> {
        self.execute(conn)
    }
}

impl QueryId for Sql {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Sql {
    type SqlType = Untyped;
}

impl RunQueryDsl<DbConnection> for Sql {}

impl QueryFragment<MultiBackend> for Sql {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        if !self.cacheable {
            out.unsafe_to_cache_prepared();
        }
        // Diesel writes each placeholder itself as it binds the value: the `?` in the text
        // mark where. Names come from metadata and never contain one.
        let mut pieces = self.sql.split('?');
        out.push_sql(pieces.next().unwrap_or_default());
        let mut binds = self.binds.iter();
        for piece in pieces {
            match binds.next() {
                Some(SqlValue::Text(s)) => out.push_bind_param::<Text, String>(s)?,
                Some(SqlValue::Int(i)) => out.push_bind_param::<BigInt, i64>(i)?,
                Some(SqlValue::Float(f)) => out.push_bind_param::<Double, f64>(f)?,
                Some(SqlValue::Null) => {
                    out.push_bind_param::<Nullable<Text>, Option<String>>(&NULL_TEXT)?
                }
                None => return Err(placeholder_mismatch()),
            }
            out.push_sql(piece);
        }
        if binds.next().is_some() {
            return Err(placeholder_mismatch());
        }
        Ok(())
    }
}

fn placeholder_mismatch() -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(
        "placeholders and bound values differ in number".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_statement_is_prepared_per_use_and_takes_no_place() {
        let long = format!(
            "SELECT 1 WHERE 'a_long_statement' IN ({})",
            vec!["?"; 6_000].join(", ")
        );
        assert!(!Sql::new(long.clone()).cacheable);
        let shapes = SHAPES.lock().unwrap();
        assert!(!shapes.as_ref().is_some_and(|s| s.contains(&long)));
    }

    #[test]
    fn only_a_bounded_number_of_statement_shapes_stay_prepared() {
        let first = "SELECT 'only_a_bounded_number first'".to_string();
        assert!(Sql::new(first.clone()).cacheable);
        for i in 0..MAX_PREPARED_SHAPES {
            Sql::new(format!("SELECT 'only_a_bounded_number {i}'"));
        }
        assert!(!Sql::new("SELECT 'only_a_bounded_number new'".into()).cacheable);
        assert!(
            Sql::new(first).cacheable,
            "a shape admitted earlier stays prepared"
        );
    }
}
