//! Property tests: whatever the arguments, the SQL names only known tables and columns and
//! carries every value as a bind.

use super::*;
use crate::frappe::meta::{CONNECTED_APP, TOKEN_CACHE};
use proptest::prelude::*;

const KEYWORDS: &[&str] = &[
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IFNULL",
    "LIKE",
    "IS",
    "NULL",
    "BETWEEN",
    "EXISTS",
    "SELECT",
    "FROM",
    "t",
    "c",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "LIMIT",
    "OFFSET",
    "LEFT",
    "JOIN",
    "ON",
    "COUNT",
    "1",
    "0",
    "18446744073709551615",
];

fn known_ident(meta: &DocMeta, ident: &str) -> bool {
    let tables = std::iter::once(meta.parent).chain(meta.children.iter().map(|c| c.table));
    tables.clone().any(|t| t.table == ident)
        || tables
            .flat_map(|t| t.columns.iter())
            .any(|c| c.name == ident)
}

/// Every token of `sql` is a fixed keyword, punctuation, `?`, `-1` or a backticked name from `meta`.
fn check_sql(meta: &DocMeta, sql: &str) -> Result<(), String> {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch == b' ' || b"(),.=!<>?*".contains(&ch) {
            i += 1;
        } else if ch == b'`' {
            let end = sql[i + 1..].find('`').ok_or("unclosed backtick")? + i + 1;
            let ident = &sql[i + 1..end];
            if !known_ident(meta, ident) {
                return Err(format!("unknown identifier {ident:?} in {sql}"));
            }
            i = end + 1;
        } else if sql[i..].starts_with("-1") {
            i += 2;
        } else if ch.is_ascii_alphanumeric() || ch == b'_' {
            let end = sql[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(b.len(), |e| e + i);
            if !KEYWORDS.contains(&&sql[i..end]) {
                return Err(format!("unexpected word {:?} in {sql}", &sql[i..end]));
            }
            i = end;
        } else {
            return Err(format!("unexpected character {:?} in {sql}", ch as char));
        }
    }
    Ok(())
}

fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("'".to_string()),
        Just("; DROP TABLE `tabUser` --".to_string()),
        Just("x' OR '1'='1".to_string()),
        Just("`".to_string()),
        Just("\\".to_string()),
        Just("/* */".to_string()),
        Just("set".to_string()),
        Just("not set".to_string()),
        Just("a,b,'c".to_string()),
        Just(String::new()),
        "[ -~]{0,12}",
        any::<String>(),
    ]
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name".to_string()),
        Just("provider_name".to_string()),
        Just("client_secret".to_string()),
        Just("idx".to_string()),
        Just("modified".to_string()),
        Just("scope".to_string()),
        Just("key".to_string()),
        Just("user".to_string()),
        Just("`tabOAuth Scope`.scope".to_string()),
        Just("tabConnected App.client_id".to_string()),
        Just("`tabConnected App`.`name`".to_string()),
        Just("count(name) as cnt".to_string()),
        Just("*".to_string()),
        Just("name as n".to_string()),
        nasty(),
    ]
}

fn operator() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            "=", "!=", "<", ">", "<=", ">=", "like", "NOT LIKE", "in", "not in", "is", "between",
            "", "regexp",
        ])
        .prop_map(|s| Value::String(s.into())),
        nasty().prop_map(Value::String),
        Just(Value::Null),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        nasty().prop_map(Value::String),
        field_name().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((field_name(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn filter_item() -> impl Strategy<Value = Value> {
    let doctype = prop_oneof![
        Just(Value::String("Connected App".into())),
        Just(Value::String("OAuth Scope".into())),
        Just(Value::String("Query Parameters".into())),
        Just(Value::Null),
        nasty().prop_map(Value::String),
    ];
    prop_oneof![
        (field_name(), operator(), json_value()).prop_map(|(f, o, v)| Value::Array(vec![
            Value::String(f),
            o,
            v
        ])),
        (doctype, field_name(), operator(), json_value())
            .prop_map(|(d, f, o, v)| Value::Array(vec![d, Value::String(f), o, v])),
        (field_name(), operator(), json_value()).prop_map(|(f, o, v)| {
            let mut m = Map::new();
            m.insert(f, Value::Array(vec![o, v]));
            Value::Object(m)
        }),
        json_value(),
    ]
}

fn filters() -> impl Strategy<Value = Option<Value>> {
    let structured = prop::collection::vec(filter_item(), 0..4)
        .prop_map(Value::Array)
        .boxed();
    prop_oneof![
        Just(None),
        structured.clone().prop_map(Some),
        structured.prop_map(|v| Some(Value::String(v.to_string()))),
        json_value().prop_map(Some),
        nasty().prop_map(|s| Some(Value::String(s))),
    ]
}

fn fields() -> impl Strategy<Value = Option<Value>> {
    let list = prop::collection::vec(field_name().prop_map(Value::String), 0..4)
        .prop_map(Value::Array)
        .boxed();
    prop_oneof![
        Just(None),
        list.clone().prop_map(Some),
        list.prop_map(|v| Some(Value::String(v.to_string()))),
        field_name().prop_map(|s| Some(Value::String(s))),
        json_value().prop_map(Some),
    ]
}

fn order_by() -> impl Strategy<Value = Option<Value>> {
    let term = prop_oneof![
        field_name(),
        (
            field_name(),
            prop::sample::select(vec![" asc", " DESC", "", " desc;"])
        )
            .prop_map(|(f, d)| f + d),
    ];
    prop_oneof![
        Just(None),
        prop::collection::vec(term, 1..3).prop_map(|t| Some(Value::String(t.join(",")))),
        json_value().prop_map(Some),
    ]
}

fn scalar_param() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        Just(None),
        (0u64..1000).prop_map(|n| Some(Value::String(n.to_string()))),
        json_value().prop_map(Some),
    ]
}

fn raw_args() -> impl Strategy<Value = RawListArgs> {
    (
        fields(),
        filters(),
        filters(),
        order_by(),
        scalar_param(),
        scalar_param(),
        scalar_param(),
        scalar_param(),
    )
        .prop_map(
            |(
                fields,
                filters,
                or_filters,
                order_by,
                limit_start,
                limit_page_length,
                as_dict,
                group_by,
            )| {
                RawListArgs {
                    fields,
                    filters,
                    or_filters,
                    order_by,
                    limit_start,
                    limit_page_length,
                    as_dict,
                    group_by,
                }
            },
        )
}

fn check(meta: &'static DocMeta, args: &RawListArgs) -> Result<bool, TestCaseError> {
    let q = match parse(meta, args) {
        Ok(q) => q,
        Err(ListQueryError::FieldNotPermitted(_) | ListQueryError::Invalid(_)) => return Ok(false),
    };
    let extra = Condition {
        table: meta.parent,
        column: meta
            .parent
            .column("owner")
            .ok_or_else(|| TestCaseError::fail("owner"))?,
        op: Operator::Eq,
        value: FilterValue::One(SqlValue::Text("'; --".into())),
    };
    let from = q.from_clause(meta);
    let where_ = q.where_clause(meta, Some(extra));
    let fragments = [
        from.clone(),
        where_.clone(),
        SqlFragment {
            sql: q.order_clause(),
            binds: vec![],
        },
        q.limit_clause(Backend::Mysql),
        q.limit_clause(Backend::Sqlite),
        SqlFragment {
            sql: q.select_list(meta),
            binds: vec![],
        },
    ];
    for f in &fragments {
        prop_assert_eq!(
            f.sql.matches('?').count(),
            f.binds.len(),
            "placeholders vs binds in {}",
            f.sql
        );
        if let Err(e) = check_sql(meta, &f.sql) {
            return Err(TestCaseError::fail(e));
        }
        prop_assert!(!f.sql.contains('\'') && !f.sql.contains(';') && !f.sql.contains("--"));
    }
    prop_assert_eq!(
        q.output_keys(meta).len(),
        q.select_list(meta).split(", ").count()
    );
    Ok(true)
}

proptest! {
    // PROPTEST_CASES sets a longer run (README, "Fuzzing").
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(4000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_input_never_injects(args in raw_args(), token_cache in any::<bool>()) {
        let meta: &'static DocMeta = if token_cache { &TOKEN_CACHE } else { &CONNECTED_APP };
        check(meta, &args)?;
    }

    #[test]
    fn valid_filters_with_nasty_values(
        field in prop::sample::select(vec!["name", "provider_name", "client_id", "idx", "modified", "scope"]),
        op in prop::sample::select(vec!["=", "!=", "<", ">", "<=", ">=", "like", "not like", "in", "not in", "between"]),
        a in nasty(),
        b in nasty(),
        as_string in any::<bool>(),
    ) {
        let value = match op {
            "between" => serde_json::json!([a, b]),
            "in" | "not in" if as_string => Value::String(format!("{a},{b}")),
            "in" | "not in" => serde_json::json!([a, b]),
            _ => Value::String(a.clone()),
        };
        let filters = serde_json::json!([[field, op, value]]);
        let args = RawListArgs {
            filters: Some(Value::String(filters.to_string())),
            or_filters: Some(filters),
            ..RawListArgs::default()
        };
        prop_assert!(check(&CONNECTED_APP, &args)?, "valid filter refused");
    }
}
