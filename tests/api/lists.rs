//! List queries: fields, filters and or_filters with every operator, ordering, paging,
//! `as_dict=0`, and Frappe-shaped 4xx answers for bad arguments (never a 5xx).

use serde_json::{json, Value};

use crate::helpers::*;
use crate::rest::{urlencode, CA};

/// Alpha (client a1; scopes openid, email), Beta (b2; email), Gamma (no client id, no scopes),
/// created in that order; returns their documents.
async fn seed(app: &TestApp) -> Vec<Value> {
    let mut docs = vec![];
    for body in [
        json!({"provider_name": "Alpha", "client_id": "a1", "scopes": [{"scope": "openid"}, {"scope": "email"}]}),
        json!({"provider_name": "Beta", "client_id": "b2", "scopes": [{"scope": "email"}]}),
        json!({"provider_name": "Gamma"}),
    ] {
        docs.push(app.create_app(body).await);
    }
    docs
}

/// `GET /api/resource/Connected App` with these parameters (values JSON-encoded unless strings).
async fn list(app: &TestApp, params: &[(&str, Value)]) -> (u16, Value) {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{k}={}", urlencode(&v))
        })
        .collect();
    app.get(&app.admin, &format!("{CA}?{}", query.join("&")))
        .await
}

/// The provider names a filter selects, in provider_name order.
async fn providers(app: &TestApp, key: &str, filters: Value) -> Vec<String> {
    let (status, v) = list(
        app,
        &[
            (key, filters.clone()),
            ("fields", json!(["provider_name"])),
            ("order_by", json!("provider_name asc")),
        ],
    )
    .await;
    assert_eq!(status, 200, "{key}={filters}: {v}");
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["provider_name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn fields_select_columns_stars_child_table_fields_and_counts() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let docs = seed(&app).await;
        let (status, v) = list(
            &app,
            &[
                ("fields", json!(["provider_name", "name"])),
                ("order_by", json!("provider_name asc")),
            ],
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let first = v["data"][0].as_object().unwrap();
        assert_eq!(first.keys().collect::<Vec<_>>(), ["provider_name", "name"]);
        assert_eq!(v["data"][0]["name"], docs[0]["name"]);

        let (status, v) = list(
            &app,
            &[
                ("fields", json!(["*"])),
                ("filters", json!({"provider_name": "Gamma"})),
            ],
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let row = v["data"][0].as_object().unwrap();
        assert_eq!(
            row["client_id"],
            Value::Null,
            "nulls are present in lists: {v}"
        );
        assert!(
            row.contains_key("revocation_uri") && row.contains_key("docstatus"),
            "{v}"
        );
        assert!(!row.contains_key("scopes"), "no child tables in lists: {v}");
        let (_, v) = list(
            &app,
            &[
                ("fields", json!("*")),
                ("filters", json!({"provider_name": "Gamma"})),
            ],
        )
        .await;
        assert_eq!(
            v["data"][0]["name"], docs[2]["name"],
            "fields=* as a plain string: {v}"
        );

        // A child-table field gives one row per child row (parents without rows get null).
        let (status, v) = list(
            &app,
            &[
                ("fields", json!(["name", "`tabOAuth Scope`.scope"])),
                ("order_by", json!("provider_name asc")),
            ],
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["data"],
            json!([
                {"name": docs[0]["name"], "scope": "openid"},
                {"name": docs[0]["name"], "scope": "email"},
                {"name": docs[1]["name"], "scope": "email"},
                {"name": docs[2]["name"], "scope": null}
            ])
        );

        let (status, v) = list(&app, &[("fields", json!(["count(name) as cnt"]))]).await;
        assert_eq!((status, v), (200, json!({"data": [{"cnt": 3}]})));
        let (status, v) = list(
            &app,
            &[
                ("fields", json!(["count(name) as cnt"])),
                ("filters", json!({"client_id": ["is", "set"]})),
            ],
        )
        .await;
        assert_eq!((status, v), (200, json!({"data": [{"cnt": 2}]})));
    }
}

#[tokio::test]
async fn filters_and_or_filters_accept_every_shape_and_operator() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let docs = seed(&app).await;
        let (a, b) = (docs[0]["creation"].clone(), docs[1]["creation"].clone());
        let cases: Vec<(Value, &[&str])> = vec![
            (json!({"provider_name": "Beta"}), &["Beta"]),
            (json!({"provider_name": ["like", "%mm%"]}), &["Gamma"]),
            (json!([["provider_name", "=", "Beta"]]), &["Beta"]),
            (
                json!([["Connected App", "provider_name", "=", "Beta"]]),
                &["Beta"],
            ),
            (
                json!([["provider_name", "!=", "Beta"]]),
                &["Alpha", "Gamma"],
            ),
            (json!([["provider_name", "<", "Beta"]]), &["Alpha"]),
            (json!([["provider_name", ">", "Beta"]]), &["Gamma"]),
            (json!([["provider_name", "<=", "Beta"]]), &["Alpha", "Beta"]),
            (json!([["provider_name", ">=", "Beta"]]), &["Beta", "Gamma"]),
            (json!([["provider_name", "like", "G%"]]), &["Gamma"]),
            (
                json!([["provider_name", "not like", "A%"]]),
                &["Beta", "Gamma"],
            ),
            (
                json!([["provider_name", "in", ["Alpha", "Gamma"]]]),
                &["Alpha", "Gamma"],
            ),
            (
                json!([["provider_name", "not in", ["Alpha", "Gamma"]]]),
                &["Beta"],
            ),
            (json!([["client_id", "is", "set"]]), &["Alpha", "Beta"]),
            (json!([["client_id", "is", "not set"]]), &["Gamma"]),
            (json!([["creation", "between", [a, b]]]), &["Alpha", "Beta"]),
            (
                json!([["OAuth Scope", "scope", "=", "email"]]),
                &["Alpha", "Beta"],
            ),
            (
                json!([["provider_name", "!=", "Alpha"], ["client_id", "is", "set"]]),
                &["Beta"],
            ),
        ];
        for (filters, expected) in &cases {
            assert_eq!(
                providers(&app, "filters", filters.clone()).await,
                *expected,
                "{backend:?} filters={filters}"
            );
        }
        let or_cases: Vec<(Value, &[&str])> = vec![
            (
                json!([
                    ["provider_name", "=", "Alpha"],
                    ["provider_name", "=", "Gamma"]
                ]),
                &["Alpha", "Gamma"],
            ),
            (
                json!({"provider_name": "Beta", "client_id": ["is", "not set"]}),
                &["Beta", "Gamma"],
            ),
            (
                json!([
                    ["Connected App", "client_id", "=", "a1"],
                    ["Connected App", "provider_name", "like", "%eta"]
                ]),
                &["Alpha", "Beta"],
            ),
        ];
        for (filters, expected) in &or_cases {
            assert_eq!(
                providers(&app, "or_filters", filters.clone()).await,
                *expected,
                "{backend:?} or_filters={filters}"
            );
        }
        // filters and or_filters combine with AND.
        let (_, v) = list(
            &app,
            &[
                ("filters", json!({"client_id": ["is", "set"]})),
                (
                    "or_filters",
                    json!([
                        ["provider_name", "=", "Alpha"],
                        ["provider_name", "=", "Gamma"]
                    ]),
                ),
                ("fields", json!(["provider_name"])),
            ],
        )
        .await;
        assert_eq!(v["data"], json!([{"provider_name": "Alpha"}]));
        // The same filters work through frappe.client.get_list and get_count.
        let (status, v) = app
            .post(
                &app.admin,
                "/api/method/frappe.client.get_count",
                &json!({"doctype": "Connected App", "filters": [["provider_name", "in", ["Alpha", "Beta"]]]}),
            )
            .await;
        assert_eq!((status, v), (200, json!({"message": 2})));
    }
}

#[tokio::test]
async fn order_by_paging_limit_and_as_dict_shape_the_page() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let docs = seed(&app).await;
        let names: Vec<Value> = docs.iter().map(|d| d["name"].clone()).collect();
        let (_, v) = list(
            &app,
            &[
                ("order_by", json!("provider_name desc")),
                ("fields", json!(["provider_name"])),
            ],
        )
        .await;
        assert_eq!(
            v["data"],
            json!([{"provider_name": "Gamma"}, {"provider_name": "Beta"}, {"provider_name": "Alpha"}])
        );
        let page = |extra: Vec<(&'static str, Value)>| {
            let mut p = vec![
                ("order_by", json!("provider_name asc")),
                ("fields", json!(["provider_name"])),
            ];
            p.extend(extra);
            let app = &app;
            async move {
                let (status, v) = list(app, &p).await;
                assert_eq!(status, 200, "{v}");
                v["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["provider_name"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            page(vec![
                ("limit_start", json!(1)),
                ("limit_page_length", json!(1))
            ])
            .await,
            ["Beta"]
        );
        assert_eq!(
            page(vec![("limit_start", json!(1)), ("limit", json!(5))]).await,
            ["Beta", "Gamma"]
        );
        assert_eq!(
            page(vec![("limit_page_length", json!(0))]).await,
            ["Alpha", "Beta", "Gamma"]
        );
        assert!(page(vec![("limit_start", json!(10))]).await.is_empty());

        let (status, v) = list(
            &app,
            &[
                ("fields", json!(["name", "provider_name"])),
                ("order_by", json!("provider_name asc")),
                ("as_dict", json!(0)),
            ],
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["data"][0], json!([names[0], "Alpha"]));
        assert_eq!(v["data"].as_array().unwrap().len(), 3);
        let (status, v) = app
            .post(
                &app.admin,
                "/api/method/frappe.client.get_list",
                &json!({"doctype": "Connected App", "fields": ["provider_name"], "as_dict": 0, "order_by": "provider_name asc"}),
            )
            .await;
        assert_eq!(
            (status, v),
            (200, json!({"message": [["Alpha"], ["Beta"], ["Gamma"]]}))
        );
    }
}

#[tokio::test]
async fn lists_default_to_twenty_names_by_modified_descending() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let mut names = vec![];
        for i in 0..22 {
            let d = app
                .create_app(json!({"provider_name": format!("P{i:02}")}))
                .await;
            names.push(d["name"].clone());
        }
        // Touch the first one: it becomes the most recently modified.
        let (status, _) = app
            .put(
                &app.admin,
                &format!("{CA}/{}", names[0].as_str().unwrap()),
                &json!({"client_id": "x"}),
            )
            .await;
        assert_eq!(status, 200);
        let (status, v) = app.get(&app.admin, CA).await;
        assert_eq!(status, 200);
        let got = v["data"].as_array().unwrap();
        assert_eq!(got.len(), 20, "{v}");
        assert_eq!(got[0], json!({"name": names[0]}));
        let mut expected = vec![json!({"name": names[0]})];
        expected.extend(names[3..].iter().rev().map(|n| json!({"name": n})));
        assert_eq!(got, &expected);
    }
}

#[tokio::test]
async fn an_unknown_field_is_a_417_data_error() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        seed(&app).await;
        for params in [
            vec![("fields", json!(["nonexistent_field"]))],
            vec![("filters", json!({"nonexistent_field": "x"}))],
            vec![("order_by", json!("nonexistent_field desc"))],
        ] {
            let (status, v) = list(&app, &params).await;
            assert_eq!(status, 417, "{params:?}: {v}");
            assert_eq!(v["exc_type"], "DataError", "{v}");
            assert_eq!(
                server_messages(&v),
                vec!["Field not permitted in query: nonexistent_field"],
                "{params:?}"
            );
        }
    }
}

#[tokio::test]
async fn malformed_list_arguments_and_bodies_are_frappe_shaped_4xx_never_5xx() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        seed(&app).await;
        let a = &app.admin;
        let mut answers = vec![
            (
                "fields not JSON",
                app.get(a, &format!("{CA}?fields=name,provider_name")).await,
            ),
            (
                "filters not JSON",
                app.get(a, &format!("{CA}?filters=not%20json")).await,
            ),
            (
                "or_filters not JSON",
                app.get(a, &format!("{CA}?or_filters=%5Bbroken")).await,
            ),
            (
                "filters a number",
                app.get(a, &format!("{CA}?filters=42")).await,
            ),
            (
                "limit not a number",
                app.get(a, &format!("{CA}?limit_page_length=abc")).await,
            ),
            (
                "bad operator",
                app.get(
                    a,
                    &format!(
                        "{CA}?filters={}",
                        urlencode(r#"[["provider_name","~~","x"]]"#)
                    ),
                )
                .await,
            ),
            (
                "short filter",
                app.get(
                    a,
                    &format!("{CA}?filters={}", urlencode(r#"[["provider_name"]]"#)),
                )
                .await,
            ),
            (
                "malformed JSON body",
                app.raw_body(
                    reqwest::Method::POST,
                    a,
                    CA,
                    "application/json",
                    "{\"provider_name\": ",
                )
                .await,
            ),
            (
                "list as body",
                app.post(a, CA, &json!([{"provider_name": "L"}])).await,
            ),
            (
                "data not an object",
                app.form(reqwest::Method::POST, a, CA, &[("data", "[1,2]")])
                    .await,
            ),
            (
                "PUT malformed JSON",
                app.raw_body(
                    reqwest::Method::PUT,
                    a,
                    &format!("{CA}/x"),
                    "application/json",
                    "{",
                )
                .await,
            ),
            (
                "get_list without doctype",
                app.get(a, "/api/method/frappe.client.get_list").await,
            ),
            (
                "get without name",
                app.get(a, "/api/method/frappe.client.get?doctype=Connected%20App")
                    .await,
            ),
            (
                "get_value without fieldname",
                app.get(
                    a,
                    "/api/method/frappe.client.get_value?doctype=Connected%20App",
                )
                .await,
            ),
            (
                "insert without doc",
                app.post(a, "/api/method/frappe.client.insert", &json!({}))
                    .await,
            ),
            (
                "set_value without name",
                app.post(
                    a,
                    "/api/method/frappe.client.set_value",
                    &json!({"doctype": "Connected App"}),
                )
                .await,
            ),
            (
                "delete without name",
                app.post(
                    a,
                    "/api/method/frappe.client.delete",
                    &json!({"doctype": "Connected App"}),
                )
                .await,
            ),
            (
                "run_doc_method without method",
                app.post(
                    a,
                    "/api/method/run_doc_method",
                    &json!({"dt": "Connected App"}),
                )
                .await,
            ),
            (
                "getdoc without name",
                app.get(
                    a,
                    "/api/method/frappe.desk.form.load.getdoc?doctype=Connected%20App",
                )
                .await,
            ),
            (
                "savedocs without doc",
                app.post(a, "/api/method/frappe.desk.form.save.savedocs", &json!({}))
                    .await,
            ),
            (
                "get_list malformed body",
                app.raw_body(
                    reqwest::Method::POST,
                    a,
                    "/api/method/frappe.client.get_list",
                    "application/json",
                    "[[",
                )
                .await,
            ),
        ];
        let (status, v) = app
            .get(a, "/api/v2/document/Connected%20App?filters=nope")
            .await;
        assert!((400..500).contains(&status), "v2 bad filters: {status} {v}");
        assert!(v["errors"][0]["type"].is_string(), "{v}");
        for (what, (status, v)) in answers.drain(..) {
            assert!(
                (400..500).contains(&status),
                "{backend:?} {what}: {status} {v}"
            );
            assert!(v["exc_type"].is_string(), "{what}: not Frappe-shaped: {v}");
            assert!(!v.to_string().contains("Traceback"), "{what}: {v}");
        }
        let (_, n) = app
            .get(
                a,
                "/api/method/frappe.client.get_count?doctype=Connected%20App",
            )
            .await;
        assert_eq!(n["message"], 3);
    }
}

#[tokio::test]
async fn a_child_table_filter_applies_to_the_selected_child_rows() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let docs = seed(&app).await;
        let (status, v) = list(
            &app,
            &[
                ("fields", json!(["name", "`tabOAuth Scope`.scope"])),
                ("filters", json!([["OAuth Scope", "scope", "=", "openid"]])),
            ],
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["data"],
            json!([{"name": docs[0]["name"], "scope": "openid"}]),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn more_query_shapes_than_stay_prepared_all_answer_correctly() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let docs = seed(&app).await;
        let alpha = docs[0]["name"].as_str().unwrap().to_string();
        // Each `in` list of a new length is a new statement; far more than the 64 that a
        // connection keeps prepared.
        for n in 1..=90 {
            let mut names: Vec<String> = (0..n).map(|i| format!("missing-{i}")).collect();
            names.push(alpha.clone());
            let got = providers(&app, "filters", json!([["name", "in", names]])).await;
            assert_eq!(got, ["Alpha"], "{backend:?}: in-list of {}", n + 1);
        }
    }
}

#[tokio::test]
async fn a_list_page_read_again_follows_every_change_to_its_rows() {
    use connected_apps::db::schema::connected_app;
    use diesel::prelude::*;
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let docs = seed(&app).await;
        let name = |i: usize| docs[i]["name"].as_str().unwrap().to_string();
        let page = |as_dict: bool| {
            let app = &app;
            async move {
                let (status, v) = list(
                    app,
                    &[
                        ("fields", json!(["provider_name", "client_id"])),
                        ("order_by", json!("provider_name asc")),
                        ("as_dict", json!(i32::from(as_dict))),
                    ],
                )
                .await;
                assert_eq!(status, 200, "{v}");
                v["data"].clone()
            }
        };
        let first = page(true).await;
        assert_eq!(page(true).await, first, "{backend:?}: read twice");
        assert_eq!(
            first,
            json!([
                {"provider_name": "Alpha", "client_id": "a1"},
                {"provider_name": "Beta", "client_id": "b2"},
                {"provider_name": "Gamma", "client_id": null},
            ])
        );
        // The same query as lists is another page.
        assert_eq!(page(false).await[0], json!(["Alpha", "a1"]), "{backend:?}");

        let (status, _) = app
            .put(
                &app.admin,
                &format!("{CA}/{}", name(1)),
                &json!({"client_id": "b3"}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(page(true).await[1]["client_id"], "b3", "{backend:?}: edit");

        app.create_app(json!({"provider_name": "Delta"})).await;
        let (status, _) = app.delete(&app.admin, &format!("{CA}/{}", name(0))).await;
        assert_eq!(status, 202);
        let providers: Vec<Value> = page(true)
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["provider_name"].clone())
            .collect();
        assert_eq!(
            providers,
            ["Beta", "Delta", "Gamma"],
            "{backend:?}: insert and delete"
        );

        // A write by another program (Frappe itself) sets `modified` too.
        let mut conn = app.db.raw();
        let later = chrono::Utc::now().naive_utc() + chrono::Duration::seconds(5);
        diesel::update(connected_app::table.filter(connected_app::name.eq(name(2))))
            .set((
                connected_app::client_id.eq(Some("g9")),
                connected_app::modified.eq(Some(later)),
            ))
            .execute(&mut conn)
            .unwrap();
        assert_eq!(
            page(true).await[2]["client_id"],
            "g9",
            "{backend:?}: outside write"
        );
    }
}

#[tokio::test]
async fn counts_asked_during_inserts_always_see_every_insert_finished_before_they_were_asked() {
    use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
    use std::sync::Arc;
    for backend in BACKENDS {
        let app = Arc::new(spawn_app(backend).await);
        let finished = Arc::new(AtomicI64::new(0));
        let started = Arc::new(AtomicI64::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut askers = Vec::new();
        for _ in 0..8 {
            let (app, finished, started, stop) =
                (app.clone(), finished.clone(), started.clone(), stop.clone());
            askers.push(tokio::spawn(async move {
                let mut seen = 0;
                while !stop.load(SeqCst) {
                    let before = finished.load(SeqCst);
                    let (status, v) = app
                        .get(&app.admin, "/api/method/frappe.client.get_count?doctype=Connected%20App")
                        .await;
                    let after = started.load(SeqCst);
                    assert_eq!(status, 200, "{v}");
                    let n = v["message"].as_i64().unwrap();
                    assert!(
                        before <= n && n <= after,
                        "count {n}: {before} inserts had finished before it was asked, {after} begun by its answer"
                    );
                    seen += 1;
                }
                seen
            }));
        }
        for i in 0..40 {
            started.fetch_add(1, SeqCst);
            app.create_app(json!({"provider_name": format!("C{i}")}))
                .await;
            finished.fetch_add(1, SeqCst);
        }
        stop.store(true, SeqCst);
        let mut total = 0;
        for a in askers {
            total += a.await.unwrap();
        }
        assert!(total > 40, "{backend:?}: only {total} counts were asked");
    }
}
