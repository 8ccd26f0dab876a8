//! A row of any served table, loaded as text by position (`c0`, `c1`, …) so one loader serves
//! every DocType whatever columns a query selects.

use diesel::backend::Backend;
use diesel::deserialize::{FromSql, QueryableByName};
use diesel::row::NamedRow;
use diesel::sql_types::{Nullable, Text};

/// Column values in select order; `None` is SQL NULL.
#[derive(Debug, Clone, Default)]
pub struct DynRow(pub Vec<Option<String>>);

/// Column aliases used by the SQL that `DynRow` reads.
pub const ALIASES: [&str; 32] = [
    "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10", "c11", "c12", "c13", "c14",
    "c15", "c16", "c17", "c18", "c19", "c20", "c21", "c22", "c23", "c24", "c25", "c26", "c27",
    "c28", "c29", "c30", "c31",
];

impl<DB> QueryableByName<DB> for DynRow
where
    DB: Backend,
    Option<String>: FromSql<Nullable<Text>, DB>,
{
    fn build<'a>(row: &impl NamedRow<'a, DB>) -> diesel::deserialize::Result<Self> {
        let mut values = Vec::new();
        for alias in ALIASES {
            match NamedRow::get::<Nullable<Text>, Option<String>>(row, alias) {
                Ok(v) => values.push(v),
                Err(_) => break,
            }
        }
        Ok(DynRow(values))
    }
}
