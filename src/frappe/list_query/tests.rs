//! Unit tests of list queries: Frappe's recorded requests (by exchange number), then each part.

use super::*;
use crate::frappe::meta::{CONNECTED_APP, OAUTH_SCOPE_TABLE, TOKEN_CACHE};
use serde_json::json;

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.into())
}

/// Parameters as a query string delivers them (every value a string).
fn qs(meta: &'static DocMeta, pairs: &[(&str, &str)]) -> Result<ListQuery, ListQueryError> {
    let map: Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    parse(meta, &RawListArgs::from_map(&map))
}

fn ca(pairs: &[(&str, &str)]) -> ListQuery {
    qs(&CONNECTED_APP, pairs).expect("parse")
}

fn ca_err(pairs: &[(&str, &str)]) -> ListQueryError {
    qs(&CONNECTED_APP, pairs).expect_err("should fail")
}

fn body(meta: &'static DocMeta, v: Value) -> Result<ListQuery, ListQueryError> {
    let Value::Object(map) = v else {
        panic!("object expected")
    };
    parse(meta, &RawListArgs::from_map(&map))
}

fn where_of(q: &ListQuery) -> (String, Vec<SqlValue>) {
    let f = q.where_clause(&CONNECTED_APP, None);
    (f.sql, f.binds)
}

fn keys(q: &ListQuery, meta: &DocMeta) -> Vec<String> {
    q.output_keys(meta)
}

fn owner_is(user: &str, meta: &'static DocMeta) -> Condition {
    Condition {
        table: meta.parent,
        column: meta.parent.column("owner").expect("owner"),
        op: Operator::Eq,
        value: FilterValue::One(text(user)),
    }
}

// ----- recorded exchanges -----

#[test]
fn ex105_no_params_defaults() {
    let q = ca(&[]);
    assert_eq!(q.select, Select::Names);
    assert_eq!((q.start, q.page_length, q.as_dict), (0, Some(20), true));
    assert!(q.filters.is_empty() && q.or_filters.is_empty());
    assert_eq!(q.order_clause(), " ORDER BY t.`modified` DESC");
    assert_eq!(where_of(&q), (String::new(), vec![]));
    let l = q.limit_clause(Backend::Mysql);
    assert_eq!(l.sql, " LIMIT ? OFFSET ?");
    assert_eq!(l.binds, vec![SqlValue::Int(20), SqlValue::Int(0)]);
    assert_eq!(keys(&q, &CONNECTED_APP), vec!["name"]);
    assert_eq!(q.select_list(&CONNECTED_APP), "t.`name`");
    assert_eq!(
        q.from_clause(&CONNECTED_APP).sql,
        " FROM `tabConnected App` t"
    );
}

#[test]
fn ex106_252_fields_star() {
    let q = ca(&[("fields", "[\"*\"]")]);
    assert_eq!(q.select, Select::Star);
    let expected = "name owner creation modified modified_by docstatus idx provider_name openid_configuration \
                    client_id redirect_uri client_secret authorization_uri token_uri revocation_uri userinfo_uri \
                    introspection_uri";
    assert_eq!(
        keys(&q, &CONNECTED_APP),
        expected.split(' ').collect::<Vec<_>>()
    );
    assert!(q
        .select_list(&CONNECTED_APP)
        .starts_with("t.`name`, t.`owner`"));
    let q = ca(&[("fields", "[\"*\"]"), ("limit", "1")]);
    assert_eq!(q.page_length, Some(1));
}

#[test]
fn ex107_fields_list_keeps_order_and_password() {
    let q = ca(&[(
        "fields",
        r#"["name", "provider_name", "client_id", "client_secret", "redirect_uri"]"#,
    )]);
    assert_eq!(
        keys(&q, &CONNECTED_APP),
        [
            "name",
            "provider_name",
            "client_id",
            "client_secret",
            "redirect_uri"
        ]
    );
    let Select::Fields(f) = &q.select else {
        panic!()
    };
    assert_eq!(f[3].column.kind, ColumnKind::Password);
    assert!(f.iter().all(|f| f.table.is_none()));
    assert_eq!(
        q.select_list(&CONNECTED_APP),
        "t.`name`, t.`provider_name`, t.`client_id`, t.`client_secret`, t.`redirect_uri`"
    );
}

#[test]
fn ex108_filters_dict() {
    let q = ca(&[
        ("fields", r#"["name", "provider_name"]"#),
        ("filters", r#"{"provider_name": "Beta Provider"}"#),
    ]);
    assert_eq!(
        where_of(&q),
        (
            " WHERE t.`provider_name` = ?".into(),
            vec![text("Beta Provider")]
        )
    );
}

#[test]
fn ex109_filters_list4_like() {
    let q = ca(&[(
        "filters",
        r#"[["Connected App", "provider_name", "like", "%Prov%"]]"#,
    )]);
    assert_eq!(
        where_of(&q),
        (
            " WHERE t.`provider_name` LIKE ?".into(),
            vec![text("%Prov%")]
        )
    );
}

#[test]
fn ex111_or_filters() {
    let q = ca(&[(
        "or_filters",
        r#"[["provider_name", "=", "Gamma Provider"], ["client_id", "=", "beta-id"]]"#,
    )]);
    assert_eq!(
        where_of(&q),
        (
            " WHERE (t.`provider_name` = ? OR t.`client_id` = ?)".into(),
            vec![text("Gamma Provider"), text("beta-id")]
        )
    );
}

#[test]
fn ex112_113_115_order_limit_as_dict() {
    let q = ca(&[("order_by", "provider_name asc")]);
    assert_eq!(q.order_clause(), " ORDER BY t.`provider_name` ASC");
    let q = ca(&[
        ("order_by", "provider_name asc"),
        ("limit_start", "1"),
        ("limit_page_length", "1"),
    ]);
    assert_eq!(
        q.limit_clause(Backend::Sqlite).binds,
        vec![SqlValue::Int(1), SqlValue::Int(1)]
    );
    let q = ca(&[("fields", r#"["name", "provider_name"]"#), ("as_dict", "0")]);
    assert!(!q.as_dict);
}

#[test]
fn ex117_unknown_field() {
    let e = ca_err(&[("fields", r#"["name", "nonexistent_field"]"#)]);
    assert_eq!(
        e,
        ListQueryError::FieldNotPermitted("nonexistent_field".into())
    );
    assert_eq!(
        e.to_string(),
        "Field not permitted in query: nonexistent_field"
    );
}

#[test]
fn ex118_171_limits() {
    let q = ca(&[("fields", r#"["name"]"#), ("limit_page_length", "0")]);
    assert_eq!(q.page_length, None);
    assert_eq!(q.limit_clause(Backend::Mysql), SqlFragment::default());
    let q = ca(&[("limit_start", "5000")]);
    assert_eq!(
        q.limit_clause(Backend::Mysql).binds,
        vec![SqlValue::Int(20), SqlValue::Int(5000)]
    );
}

#[test]
fn ex119_filters_not_json() {
    let e = ca_err(&[("filters", "not json")]);
    assert!(
        matches!(&e, ListQueryError::Invalid(m) if m.starts_with("filters is not valid JSON")),
        "{e}"
    );
    assert!(matches!(
        ca_err(&[("or_filters", "{oops")]),
        ListQueryError::Invalid(_)
    ));
}

#[test]
fn ex201_202_203_client_get_list() {
    let q = ca(&[("doctype", "Connected App")]);
    assert_eq!(q, ca(&[]));
    let q = ca(&[
        ("doctype", "Connected App"),
        ("fields", r#"["name", "provider_name", "client_secret"]"#),
        ("filters", r#"{"provider_name": ["like", "%Prov%"]}"#),
        ("order_by", "provider_name asc"),
        ("limit_page_length", "2"),
    ]);
    assert_eq!(
        where_of(&q),
        (
            " WHERE t.`provider_name` LIKE ?".into(),
            vec![text("%Prov%")]
        )
    );
    assert_eq!(q.page_length, Some(2));
    let q = body(
        &CONNECTED_APP,
        json!({"doctype": "Connected App", "fields": ["name", "provider_name"],
               "filters": [["provider_name", "=", "Beta Provider"]]}),
    )
    .expect("parse");
    assert_eq!(keys(&q, &CONNECTED_APP), ["name", "provider_name"]);
    assert_eq!(
        where_of(&q),
        (
            " WHERE t.`provider_name` = ?".into(),
            vec![text("Beta Provider")]
        )
    );
}

#[test]
fn ex208_259_516_get_count_and_count_fields() {
    let q = ca(&[("doctype", "Connected App")]);
    assert_eq!(q.where_clause(&CONNECTED_APP, None).sql, "");
    let q = ca(&[("fields", r#"["count(name) as cnt"]"#)]);
    assert_eq!(
        q.select,
        Select::Count {
            alias: "cnt".into()
        }
    );
    assert_eq!(q.select_list(&CONNECTED_APP), "COUNT(*)");
    let q = qs(&TOKEN_CACHE, &[("doctype", "Token Cache")]).expect("parse");
    let w = q.where_clause(
        &TOKEN_CACHE,
        Some(owner_is("user1@example.com", &TOKEN_CACHE)),
    );
    assert_eq!(w.sql, " WHERE t.`owner` = ?");
}

#[test]
fn ex223_503_extra_permission_condition() {
    let q = ca(&[("fields", r#"["name", "provider_name"]"#)]);
    let w = q.where_clause(
        &CONNECTED_APP,
        Some(owner_is("user1@example.com", &CONNECTED_APP)),
    );
    assert_eq!(
        (w.sql.as_str(), w.binds),
        (" WHERE t.`owner` = ?", vec![text("user1@example.com")])
    );
    let q = qs(&TOKEN_CACHE, &[("fields", r#"["name", "owner", "user"]"#)]).expect("parse");
    assert_eq!(keys(&q, &TOKEN_CACHE), ["name", "owner", "user"]);
    // filters, then extra, then the OR group.
    let q = ca(&[
        ("filters", r#"{"client_id": "x"}"#),
        ("or_filters", r#"{"name": "a", "idx": 2}"#),
    ]);
    let w = q.where_clause(&CONNECTED_APP, Some(owner_is("u", &CONNECTED_APP)));
    assert_eq!(
        w.sql,
        " WHERE t.`client_id` = ? AND t.`owner` = ? AND (t.`name` = ? OR t.`idx` = ?)"
    );
    assert_eq!(
        w.binds,
        vec![text("x"), text("u"), text("a"), SqlValue::Int(2)]
    );
}

#[test]
fn ex250_251_v2_list() {
    let q = ca(&[]);
    assert_eq!(q.page_length, Some(20));
    let q = ca(&[
        ("fields", r#"["name", "provider_name", "client_secret"]"#),
        ("filters", r#"{"provider_name": ["like", "%Prov%"]}"#),
        ("order_by", "provider_name asc"),
        ("limit", "2"),
        ("start", "1"),
    ]);
    assert_eq!((q.start, q.page_length), (1, Some(2)));
}

#[test]
fn ex281_reportview_get() {
    let q = body(
        &CONNECTED_APP,
        json!({"doctype": "Connected App",
               "fields": "[\"`tabConnected App`.`name`\", \"`tabConnected App`.`provider_name`\", \"`tabConnected App`.`client_id`\"]",
               "filters": "[]", "order_by": "`tabConnected App`.`modified` desc", "start": "0", "page_length": "3",
               "view": "List", "with_comment_count": "1"}),
    )
    .expect("parse");
    assert_eq!(
        keys(&q, &CONNECTED_APP),
        ["name", "provider_name", "client_id"]
    );
    assert_eq!(q.order_clause(), " ORDER BY t.`modified` DESC");
    assert_eq!((q.start, q.page_length), (0, Some(3)));
    assert_eq!(where_of(&q).0, "");
}

#[test]
fn ex501_502_514_token_cache() {
    let q = qs(&TOKEN_CACHE, &[]).expect("parse");
    assert_eq!(q.select, Select::Names);
    let q = qs(&TOKEN_CACHE, &[("fields", r#"["*"]"#)]).expect("parse");
    let expected =
        "name owner creation modified modified_by docstatus idx user connected_app provider_name \
                    access_token refresh_token expires_in state success_uri token_type";
    assert_eq!(
        keys(&q, &TOKEN_CACHE),
        expected.split(' ').collect::<Vec<_>>()
    );
    let q = qs(
        &TOKEN_CACHE,
        &[(
            "fields",
            r#"["name", "user", "expires_in", "access_token"]"#,
        )],
    )
    .expect("parse");
    assert_eq!(
        keys(&q, &TOKEN_CACHE),
        ["name", "user", "expires_in", "access_token"]
    );
    // Connected App columns are not Token Cache columns.
    assert_eq!(
        qs(&TOKEN_CACHE, &[("fields", r#"["client_id"]"#)]),
        Err(ListQueryError::FieldNotPermitted("client_id".into()))
    );
}

// ----- fields shapes -----

#[test]
fn fields_qualified_and_aliases() {
    let q = ca(&[(
        "fields",
        r#"["`tabConnected App`.provider_name", "tabConnected App.client_id", "name as n", "idx AS `i`"]"#,
    )]);
    assert_eq!(
        keys(&q, &CONNECTED_APP),
        ["provider_name", "client_id", "n", "i"]
    );
    let Select::Fields(f) = &q.select else {
        panic!()
    };
    assert!(f.iter().all(|f| f.table.is_none()));
}

#[test]
fn fields_child_table() {
    for field in [
        "`tabOAuth Scope`.scope",
        "tabOAuth Scope.scope",
        "`tabOAuth Scope`.`scope`",
        "scopes.scope",
    ] {
        let q = ca(&[("fields", &json!(["name", field]).to_string())]);
        let Select::Fields(f) = &q.select else {
            panic!()
        };
        assert_eq!(f[1].table, Some(&OAUTH_SCOPE_TABLE), "{field}");
        assert_eq!(f[1].alias, "scope");
        assert_eq!(f[1].sql_expr(), "`tabOAuth Scope`.`scope`");
        let from = q.from_clause(&CONNECTED_APP);
        assert_eq!(
            from.sql,
            " FROM `tabConnected App` t LEFT JOIN `tabOAuth Scope` ON `tabOAuth Scope`.`parent` = t.`name` \
             AND `tabOAuth Scope`.`parenttype` = ?"
        );
        assert_eq!(from.binds, vec![text("Connected App")]);
    }
    let q = ca(&[("fields", r#"["`tabOAuth Scope`.scope as s"]"#)]);
    assert_eq!(keys(&q, &CONNECTED_APP), ["s"]);
    assert_eq!(
        ca_err(&[("fields", r#"["`tabOAuth Scope`.provider_name"]"#)]),
        ListQueryError::FieldNotPermitted("provider_name".into())
    );
    assert!(matches!(
        ca_err(&[("fields", r#"["`tabUser`.name"]"#)]),
        ListQueryError::Invalid(_)
    ));
    assert!(matches!(
        ca_err(&[("fields", r#"["*", "`tabOAuth Scope`.scope"]"#)]),
        ListQueryError::Invalid(_)
    ));
}

#[test]
fn fields_string_forms() {
    assert_eq!(ca(&[("fields", "*")]).select, Select::Star);
    assert_eq!(ca(&[("fields", "")]).select, Select::Names);
    assert_eq!(ca(&[("fields", "[]")]).select, Select::Names);
    assert_eq!(
        keys(&ca(&[("fields", "name,provider_name")]), &CONNECTED_APP),
        ["name", "provider_name"]
    );
    assert_eq!(
        keys(&ca(&[("fields", "provider_name")]), &CONNECTED_APP),
        ["provider_name"]
    );
    assert_eq!(
        keys(&ca(&[("fields", "\"client_id\"")]), &CONNECTED_APP),
        ["client_id"]
    );
    assert_eq!(ca(&[("fields", r#"["name", "*"]"#)]).select, Select::Star);
    assert_eq!(
        ca(&[("fields", r#"["`tabConnected App`.*"]"#)]).select,
        Select::Star
    );
    assert!(matches!(
        ca_err(&[("fields", "{\"a\": 1}")]),
        ListQueryError::Invalid(_)
    ));
    assert!(matches!(
        ca_err(&[("fields", "[1, 2]")]),
        ListQueryError::Invalid(_)
    ));
    assert!(matches!(
        body(&CONNECTED_APP, json!({"fields": 5})),
        Err(ListQueryError::Invalid(_))
    ));
}

#[test]
fn fields_count() {
    for (f, alias) in [
        ("count(name) as cnt", "cnt"),
        ("count(*) as count", "count"),
        ("COUNT(`name`)", "COUNT(`name`)"),
        ("count( `tabConnected App`.`name` ) as c", "c"),
        ("count(*)", "count(*)"),
    ] {
        assert_eq!(
            ca(&[("fields", &json!([f]).to_string())]).select,
            Select::Count {
                alias: alias.into()
            },
            "{f}"
        );
    }
    for f in [
        r#"["sleep(5)"]"#,
        r#"["sum(provider_name)"]"#,
        r#"["max(client_secret)"]"#,
        r#"["sum(distinct expires_in)"]"#,
        r#"["count(`tabOAuth Scope`.scope)"]"#,
        r#"["max(*)"]"#,
        r#"["count(name) as c", "`tabOAuth Scope`.scope"]"#,
        r#"["count(name) as c", "*"]"#,
        r#"["count(name) as `bad alias`"]"#,
        r#"["name as x; drop"]"#,
        r#"["name as"]"#,
        r#"["(select 1)"]"#,
        r#"["name`"]"#,
        r#"["name provider_name"]"#,
    ] {
        assert!(
            matches!(ca_err(&[("fields", f)]), ListQueryError::Invalid(_)),
            "{f}"
        );
    }
}

// ----- filter shapes -----

#[test]
fn filters_list3_list5_and_dict_items() {
    let q = ca(&[("filters", r#"[["client_id", "=", "a"], {"name": "b"}]"#)]);
    assert_eq!(
        where_of(&q),
        (
            " WHERE t.`client_id` = ? AND t.`name` = ?".into(),
            vec![text("a"), text("b")]
        )
    );
    let q = ca(&[(
        "filters",
        r#"[["Connected App", "client_id", "=", "a", false]]"#,
    )]);
    assert_eq!(where_of(&q).0, " WHERE t.`client_id` = ?");
    let q = ca(&[("filters", r#"[[null, "client_id", "", "a"]]"#)]);
    assert_eq!(where_of(&q).0, " WHERE t.`client_id` = ?");
    for bad in [
        r#"[["client_id", "a"]]"#,
        r#"[["client_id"]]"#,
        r#"[[]]"#,
        r#"["client_id = 'a'"]"#,
        r#"[5]"#,
        r#"[{"a": 1, "b": 2}]"#,
        r#"[[1, "=", "a"]]"#,
        r#"[["client_id", 1, "a"]]"#,
        r#"[[["x"], "client_id", "=", "a"]]"#,
        r#""str""#,
        "5",
        r#"{"client_id": ["="]}"#,
        r#"{"client_id": {"a": 1}}"#,
        r#"{"client_id": ["=", ["a"]]}"#,
    ] {
        assert!(
            matches!(ca_err(&[("filters", bad)]), ListQueryError::Invalid(_)),
            "{bad}"
        );
    }
    assert!(matches!(
        ca_err(&[("filters", r#"[["client_id", "a"]]"#)]),
        ListQueryError::Invalid(m) if m.starts_with("Filter must have 4 values")
    ));
    assert_eq!(where_of(&ca(&[("filters", "{}")])).0, "");
    assert_eq!(where_of(&ca(&[("filters", "null")])).0, "");
    assert_eq!(where_of(&ca(&[("filters", "")])).0, "");
}

#[test]
fn filters_unknown_fields_and_tables() {
    assert_eq!(
        ca_err(&[("filters", r#"{"nope": 1}"#)]),
        ListQueryError::FieldNotPermitted("nope".into())
    );
    assert_eq!(
        ca_err(&[("filters", r#"[["OAuth Scope", "provider_name", "=", 1]]"#)]),
        ListQueryError::FieldNotPermitted("provider_name".into())
    );
    assert!(matches!(
        ca_err(&[("filters", r#"[["User", "name", "=", 1]]"#)]),
        ListQueryError::Invalid(_)
    ));
    assert!(matches!(
        ca_err(&[("filters", r#"{"name; --": 1}"#)]),
        ListQueryError::Invalid(_)
    ));
    assert!(matches!(
        ca_err(&[(
            "filters",
            r#"[["OAuth Scope", "`tabConnected App`.name", "=", 1]]"#
        )]),
        ListQueryError::Invalid(_)
    ));
    // Token Cache's child is only OAuth Scope.
    assert!(matches!(
        qs(
            &TOKEN_CACHE,
            &[("filters", r#"[["Query Parameters", "key", "=", 1]]"#)]
        ),
        Err(ListQueryError::Invalid(_))
    ));
}

#[test]
fn filters_child_table_exists() {
    let expect = " WHERE EXISTS (SELECT 1 FROM `tabOAuth Scope` c WHERE c.`parent` = t.`name` AND \
                  c.`parenttype` = ? AND c.`scope` = ?)";
    for f in [
        r#"[["OAuth Scope", "scope", "=", "email"]]"#,
        r#"[["tabOAuth Scope", "scope", "=", "email"]]"#,
        r#"[["scope", "=", "email"]]"#,
        r#"{"scope": "email"}"#,
        r#"[["`tabOAuth Scope`.scope", "=", "email"]]"#,
    ] {
        let q = ca(&[("filters", f)]);
        assert_eq!(q.filters[0].table, &OAUTH_SCOPE_TABLE);
        assert_eq!(
            where_of(&q),
            (expect.into(), vec![text("Connected App"), text("email")]),
            "{f}"
        );
    }
    // With the child field selected, the condition applies to the joined row (as Frappe's LEFT JOIN does).
    let q = ca(&[
        ("fields", r#"["name", "`tabOAuth Scope`.scope"]"#),
        ("filters", r#"[["OAuth Scope", "scope", "=", "email"]]"#),
    ]);
    assert_eq!(
        where_of(&q),
        (
            " WHERE `tabOAuth Scope`.`scope` = ?".into(),
            vec![text("email")]
        )
    );
    // Query Parameters `key` falls back to the second child table.
    let q = ca(&[("filters", r#"{"key": "k"}"#)]);
    assert_eq!(q.filters[0].table.doctype, "Query Parameters");
    let q = qs(
        &TOKEN_CACHE,
        &[("filters", r#"[["OAuth Scope", "scope", "=", "email"]]"#)],
    )
    .expect("parse");
    assert_eq!(
        q.where_clause(&TOKEN_CACHE, None).binds,
        vec![text("Token Cache"), text("email")]
    );
}

fn one(filter: Value) -> (String, Vec<SqlValue>) {
    let q = ca(&[("filters", &json!([filter]).to_string())]);
    where_of(&q)
}

#[test]
fn operators_render() {
    let e = || text("");
    let cases: Vec<(Value, &str, Vec<SqlValue>)> = vec![
        (
            json!(["client_id", "=", "a"]),
            "t.`client_id` = ?",
            vec![text("a")],
        ),
        (
            json!(["client_id", "=", null]),
            "IFNULL(t.`client_id`, ?) = ?",
            vec![e(), e()],
        ),
        (
            json!(["client_id", "=", ""]),
            "IFNULL(t.`client_id`, ?) = ?",
            vec![e(), e()],
        ),
        (
            json!(["client_id", "!=", "a"]),
            "IFNULL(t.`client_id`, ?) != ?",
            vec![e(), text("a")],
        ),
        (
            json!(["idx", "<", 3]),
            "IFNULL(t.`idx`, ?) < ?",
            vec![SqlValue::Int(0), SqlValue::Int(3)],
        ),
        (
            json!(["idx", ">", 2.5]),
            "IFNULL(t.`idx`, ?) > ?",
            vec![SqlValue::Int(0), SqlValue::Float(2.5)],
        ),
        (
            json!(["idx", "<=", true]),
            "IFNULL(t.`idx`, ?) <= ?",
            vec![SqlValue::Int(0), SqlValue::Int(1)],
        ),
        (
            json!(["modified", ">=", "2024-01-01"]),
            "IFNULL(t.`modified`, ?) >= ?",
            vec![text(DATETIME_FALLBACK), text("2024-01-01")],
        ),
        (
            json!(["client_id", "LIKE", "%a%"]),
            "t.`client_id` LIKE ?",
            vec![text("%a%")],
        ),
        (
            json!(["client_id", "like", ""]),
            "IFNULL(t.`client_id`, ?) LIKE ?",
            vec![e(), e()],
        ),
        (
            json!(["client_id", "Not  Like", "%a%"]),
            "IFNULL(t.`client_id`, ?) NOT LIKE ?",
            vec![e(), text("%a%")],
        ),
        (
            json!(["name", "in", ["a", " b "]]),
            "t.`name` IN (?, ?)",
            vec![text("a"), text("b")],
        ),
        (
            json!(["name", "in", "a, b,c"]),
            "t.`name` IN (?, ?, ?)",
            vec![text("a"), text("b"), text("c")],
        ),
        (
            json!(["name", "in", ["a", null]]),
            "IFNULL(t.`name`, ?) IN (?, ?)",
            vec![e(), text("a"), e()],
        ),
        (
            json!(["idx", "in", 3]),
            "t.`idx` IN (?)",
            vec![SqlValue::Int(3)],
        ),
        (json!(["name", "in", []]), "1=0", vec![]),
        (json!(["name", "in", ""]), "1=0", vec![]),
        (
            json!(["name", "not in", ["a"]]),
            "IFNULL(t.`name`, ?) NOT IN (?)",
            vec![e(), text("a")],
        ),
        (
            json!(["client_id", "is", "set"]),
            "(t.`client_id` IS NOT NULL AND t.`client_id` != ?)",
            vec![e()],
        ),
        (
            json!(["client_id", "IS", "Not Set"]),
            "(t.`client_id` IS NULL OR t.`client_id` = ?)",
            vec![e()],
        ),
        (
            json!(["idx", "is", "set"]),
            "(t.`idx` IS NOT NULL AND t.`idx` != ?)",
            vec![SqlValue::Int(0)],
        ),
        (
            json!(["idx", "between", [1, 5]]),
            "t.`idx` BETWEEN ? AND ?",
            vec![SqlValue::Int(1), SqlValue::Int(5)],
        ),
        (
            json!(["modified", "between", ["2024-01-01", "2024-01-31"]]),
            "t.`modified` BETWEEN ? AND ?",
            vec![text("2024-01-01"), text("2024-01-31 23:59:59.999999")],
        ),
    ];
    for (filter, sql, binds) in cases {
        assert_eq!(
            one(filter.clone()),
            (format!(" WHERE {sql}"), binds),
            "{filter}"
        );
    }
    assert_eq!(one(json!(["name", "not in", []])).0, "");
    let q = ca(&[(
        "or_filters",
        r#"[["name", "not in", []], ["name", "=", "a"]]"#,
    )]);
    assert_eq!(where_of(&q).0, " WHERE (1=1 OR t.`name` = ?)");
}

#[test]
fn operators_rejected() {
    for bad in [
        json!(["name", "regexp", "a"]),
        json!(["name", "==", "a"]),
        json!(["name", "descendants of", "a"]),
        json!(["name", "timespan", "last week"]),
        json!(["name", "is", "maybe"]),
        json!(["name", "is", null]),
        json!(["name", "between", ["a"]]),
        json!(["name", "between", "a,b"]),
        json!(["name", "between", [["a"], "b"]]),
        json!(["name", "in", [["a"]]]),
        json!(["name", "in", {"a": 1}]),
        json!(["name", "=", ["a"]]),
        json!(["name", "=", {"a": 1}]),
        json!(["name", 5, "a"]),
        json!(["name", "= 1 OR 1=1 --", "a"]),
    ] {
        let e = ca_err(&[("filters", &json!([bad]).to_string())]);
        assert!(matches!(e, ListQueryError::Invalid(_)), "{bad}");
    }
}

#[test]
fn values_are_only_binds() {
    let nasty = "x' OR 1=1; -- `tabUser` \" \\";
    let q = ca(&[(
        "filters",
        &json!({"client_id": nasty, "name": ["like", nasty]}).to_string(),
    )]);
    let (sql, binds) = where_of(&q);
    assert!(
        !sql.contains('\'') && !sql.contains(';') && !sql.contains("--"),
        "{sql}"
    );
    assert_eq!(binds, vec![text(nasty), text(nasty)]);
}

// ----- order_by, group_by -----

#[test]
fn order_by_forms() {
    let q = ca(&[(
        "order_by",
        "`tabConnected App`.`modified` desc, name ASC , idx",
    )]);
    assert_eq!(
        q.order_clause(),
        " ORDER BY t.`modified` DESC, t.`name` ASC, t.`idx` ASC"
    );
    let q = ca(&[("order_by", "tabConnected App.creation DESC")]);
    assert_eq!(q.order_clause(), " ORDER BY t.`creation` DESC");
    assert_eq!(
        ca(&[("order_by", "")]).order_clause(),
        " ORDER BY t.`modified` DESC"
    );
    assert_eq!(
        ca_err(&[("order_by", "nope desc")]),
        ListQueryError::FieldNotPermitted("nope".into())
    );
    for bad in [
        "modified desc; drop table x",
        "sleep(1)",
        "(select 1)",
        "modified desc desc",
        "modified sideways",
        "modified desc,",
        "`tabOAuth Scope`.scope",
        "field(name, 'a')",
        "modified -- x",
        "*",
        "1",
    ] {
        let e = ca_err(&[("order_by", bad)]);
        assert!(
            !matches!(e, ListQueryError::FieldNotPermitted(ref f) if f == "modified"),
            "{bad}"
        );
        if bad != "1" {
            assert!(matches!(e, ListQueryError::Invalid(_)), "{bad}: {e}");
        }
    }
    assert!(matches!(
        body(&CONNECTED_APP, json!({"order_by": ["a"]})),
        Err(ListQueryError::Invalid(_))
    ));
}

#[test]
fn group_by_name_alone_is_a_no_op() {
    assert_eq!(ca(&[("group_by", "name")]).select, Select::Names);
    assert_eq!(
        ca(&[("group_by", "`tabConnected App`.`name`")]).select,
        Select::Names
    );
}

fn agg(q: &ListQuery) -> &Aggregate {
    match &q.select {
        Select::Aggregate(a) => a,
        other => panic!("not an aggregate: {other:?}"),
    }
}

#[test]
fn group_by_with_aggregates_and_fields() {
    let q = ca(&[
        (
            "fields",
            r#"["provider_name","count(name) as count","max(modified) as last","owner"]"#,
        ),
        ("group_by", "provider_name"),
    ]);
    assert_eq!(
        q.select_list(&CONNECTED_APP),
        "t.`provider_name`, COUNT(*), MAX(t.`modified`), MIN(t.`owner`)"
    );
    assert_eq!(
        q.output_keys(&CONNECTED_APP),
        ["provider_name", "count", "last", "owner"]
    );
    assert_eq!(q.group_clause(), " GROUP BY t.`provider_name`");
    // Without order_by: by the groups.
    assert_eq!(q.order_clause(), " ORDER BY t.`provider_name` ASC");
    assert!(q.order_by.is_empty());
    let q = ca(&[
        ("fields", r#"["provider_name","count(name) as count"]"#),
        ("group_by", "provider_name"),
        ("order_by", "count desc, provider_name"),
    ]);
    assert_eq!(
        q.order_clause(),
        " ORDER BY COUNT(*) DESC, t.`provider_name` ASC"
    );
    let q = ca(&[
        ("fields", r#"["provider_name"]"#),
        ("group_by", "provider_name"),
        ("order_by", "modified desc"),
    ]);
    assert_eq!(q.order_clause(), " ORDER BY MAX(t.`modified`) DESC");
    // A group_by alone groups the default field.
    let q = ca(&[("group_by", "provider_name, owner")]);
    assert_eq!(q.select_list(&CONNECTED_APP), "MIN(t.`name`)");
    assert_eq!(q.group_clause(), " GROUP BY t.`provider_name`, t.`owner`");
}

#[test]
fn aggregates_without_group_by() {
    let q = body(
        &TOKEN_CACHE,
        json!({"fields": ["sum(expires_in) as total", "avg(expires_in)", "count(distinct user) as users", "count(connected_app)"]}),
    )
    .unwrap();
    let a = agg(&q);
    assert_eq!(
        q.select_list(&TOKEN_CACHE),
        "SUM(t.`expires_in`), AVG(t.`expires_in`), COUNT(DISTINCT t.`user`), COUNT(t.`connected_app`)"
    );
    assert_eq!(
        a.items.iter().map(|i| i.output).collect::<Vec<_>>()[..2],
        [AggOutput::Float, AggOutput::Float]
    );
    assert_eq!(
        q.output_keys(&TOKEN_CACHE),
        ["total", "avg(expires_in)", "users", "count(connected_app)"]
    );
    assert_eq!(q.group_clause(), "");
    assert_eq!(q.order_clause(), "");
    // count(name) beside a field is an aggregate, not the count fast path.
    let q = ca(&[("fields", r#"["count(name) as c", "name"]"#)]);
    assert_eq!(q.select_list(&CONNECTED_APP), "COUNT(*), MIN(t.`name`)");
}

#[test]
fn group_by_rejects_what_is_not_a_parent_column() {
    for g in [
        "nope",
        "`tabOAuth Scope`.scope",
        "provider_name; drop",
        "*",
        "count(name)",
    ] {
        assert!(qs(&CONNECTED_APP, &[("group_by", g)]).is_err(), "{g}");
    }
    assert!(qs(
        &CONNECTED_APP,
        &[("group_by", "provider_name"), ("order_by", "sleep(1)")]
    )
    .is_err());
    assert!(qs(
        &CONNECTED_APP,
        &[("group_by", "provider_name"), ("order_by", "nope desc")]
    )
    .is_err());
}

// ----- limits, as_dict, from_map -----

#[test]
fn limits() {
    for bad in [
        "abc",
        "-1",
        "1.5",
        "1e3",
        "99999999999999999999",
        " 2 3",
        "+5",
    ] {
        assert!(
            matches!(
                ca_err(&[("limit_page_length", bad)]),
                ListQueryError::Invalid(_)
            ),
            "{bad}"
        );
        assert!(
            matches!(ca_err(&[("limit_start", bad)]), ListQueryError::Invalid(_)),
            "{bad}"
        );
    }
    for bad in [
        json!(-1),
        json!(1.5),
        json!(true),
        json!([1]),
        json!(u64::MAX),
    ] {
        assert!(
            body(&CONNECTED_APP, json!({"limit": bad})).is_err(),
            "{bad}"
        );
    }
    let q = body(
        &CONNECTED_APP,
        json!({"limit_page_length": 5.0, "limit_start": 7}),
    )
    .expect("parse");
    assert_eq!((q.start, q.page_length), (7, Some(5)));
    assert_eq!(ca(&[("limit_page_length", "")]).page_length, Some(20));
    assert_eq!(
        ca(&[("limit_page_length", "1000000")]).page_length,
        Some(1_000_000)
    );
    let q = ca(&[("limit_page_length", "0"), ("limit_start", "10")]);
    let sqlite = q.limit_clause(Backend::Sqlite);
    assert_eq!(
        (sqlite.sql.as_str(), sqlite.binds),
        (" LIMIT -1 OFFSET ?", vec![SqlValue::Int(10)])
    );
    assert_eq!(
        q.limit_clause(Backend::Mysql).sql,
        " LIMIT 18446744073709551615 OFFSET ?"
    );
}

#[test]
fn as_dict_values() {
    for (v, b) in [
        ("0", false),
        ("1", true),
        ("true", true),
        ("False", false),
        ("", true),
    ] {
        assert_eq!(ca(&[("as_dict", v)]).as_dict, b, "{v}");
    }
    assert!(
        !body(&CONNECTED_APP, json!({"as_dict": false}))
            .expect("parse")
            .as_dict
    );
    assert!(
        !body(&CONNECTED_APP, json!({"as_dict": 0}))
            .expect("parse")
            .as_dict
    );
    assert!(matches!(
        ca_err(&[("as_dict", "maybe")]),
        ListQueryError::Invalid(_)
    ));
}

#[test]
fn from_map_aliases() {
    let map = |v: Value| match v {
        Value::Object(m) => RawListArgs::from_map(&m),
        _ => unreachable!(),
    };
    let a = map(
        json!({"limit": 1, "page_length": 2, "limit_page_length": 3, "start": 4, "limit_start": 5}),
    );
    assert_eq!(
        (a.limit_page_length, a.limit_start),
        (Some(json!(3)), Some(json!(5)))
    );
    let a = map(json!({"limit": 1, "page_length": 2, "start": 4}));
    assert_eq!(
        (a.limit_page_length, a.limit_start),
        (Some(json!(2)), Some(json!(4)))
    );
    let a = map(json!({"limit": 1, "limit_page_length": null}));
    assert_eq!(a.limit_page_length, Some(json!(1)));
    let a = map(
        json!({"fields": "*", "or_filters": "[]", "group_by": "name", "as_dict": "0", "order_by": "name"}),
    );
    assert_eq!(a.fields, Some(json!("*")));
    assert!(
        a.or_filters.is_some()
            && a.group_by.is_some()
            && a.as_dict.is_some()
            && a.order_by.is_some()
    );
}

#[test]
fn mis_shaped_extra_condition_fails_closed() {
    let q = ca(&[]);
    let c = Condition {
        table: CONNECTED_APP.parent,
        column: CONNECTED_APP.parent.column("owner").expect("owner"),
        op: Operator::Eq,
        value: FilterValue::Many(vec![text("a")]),
    };
    assert_eq!(q.where_clause(&CONNECTED_APP, Some(c)).sql, " WHERE 1=0");
}
