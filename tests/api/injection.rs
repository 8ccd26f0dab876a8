//! SQL injection through list arguments and document names: every attempt is refused with a
//! 4xx or treated as a literal value, and the database is byte-for-byte unchanged afterwards.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::rest::{full_app, snapshot, urlencode, CA, TC};

const EVIL_NAME: &str = "Robert'); DROP TABLE `tabUser`;--";

/// An app whose provider_name is itself an injection attempt, a second app, and a Token Cache.
async fn seed(app: &TestApp) -> (String, String) {
    let evil = app
        .create_app(json!({"provider_name": EVIL_NAME, "client_id": "x\" OR \"1\"=\"1"}))
        .await;
    let doc = app.create_app(full_app("Plain")).await;
    let name = doc["name"].as_str().unwrap().to_string();
    let (status, v) = app
        .post(
            &app.admin,
            TC,
            &json!({"connected_app": name, "user": "Administrator", "access_token": "at"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    (evil["name"].as_str().unwrap().to_string(), name)
}

/// Status and body of a list request with one argument.
async fn list_with(app: &TestApp, path: &str, key: &str, value: &Value) -> (u16, Value) {
    let v = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    app.get(&app.admin, &format!("{path}?{key}={}", urlencode(&v)))
        .await
}

/// A list answer must be a refusal (4xx) or a plain result that leaks nothing.
fn refused_or_harmless(what: &str, status: u16, body: &Value) {
    assert!(status < 500, "{what}: {status} {body}");
    if status == 200 {
        let text = body.to_string();
        for leak in [
            "gAAAAA",
            "pbkdf2",
            "admin-pass",
            "sqlite_master",
            "information_schema",
        ] {
            assert!(!text.contains(leak), "{what} leaked {leak}: {body}");
        }
    } else {
        assert!((400..500).contains(&status), "{what}: {status} {body}");
    }
}

#[tokio::test]
async fn injection_through_list_arguments_is_refused_or_literal_and_changes_nothing() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let (evil, _) = seed(&app).await;
        let before = snapshot(&app.db);

        let fields = [
            json!(["name; DROP TABLE `tabUser`"]),
            json!(["name FROM `tabUser` --"]),
            json!(["(SELECT password FROM `__Auth`) AS x"]),
            json!(["name`, (SELECT password FROM `__Auth` LIMIT 1) AS `x"]),
            json!(["sleep(1)"]),
            json!(["count(*) FROM `tabUser`; --"]),
            json!(["`tabUser`.name"]),
            json!(["`__Auth`.password"]),
            json!(["name as `x`; DELETE FROM `tabConnected App`"]),
            json!("name; DELETE FROM `tabConnected App`"),
        ];
        let filters = [
            json!({"name; DELETE FROM `tabConnected App`; --": "x"}),
            json!([["provider_name", "= '' OR 1=1 --", "x"]]),
            json!([["provider_name", "=", "x' OR '1'='1"]]),
            json!([["provider_name", "like", "%' OR 1=1 --"]]),
            json!([["provider_name", "in", ["x') OR ('1'='1", "y"]]]),
            json!([["provider_name", "not in", ["x\") OR 1=1 --"]]]),
            json!([["tabUser", "name", "=", "Administrator"]]),
            json!([["Connected App", "provider_name) OR (1=1", "=", "x"]]),
            json!([[
                "creation",
                "between",
                ["2000-01-01' OR '1'='1", "2100-01-01"]
            ]]),
            json!({"provider_name": ["is", "set' OR 1=1 --"]}),
            json!([["provider_name", "=", "x\\' OR 1=1 -- "]]),
        ];
        let order_bys = [
            "name; DROP TABLE `tabUser`",
            "(SELECT 1)",
            "provider_name desc, (SELECT sleep(1))",
            "if(1=1,name,provider_name)",
            "name desc -- ",
            "`tabUser`.name",
            "provider_name asc; DELETE FROM `tabConnected App`",
        ];
        for path in [
            CA,
            "/api/v2/document/Connected%20App",
            "/api/method/frappe.client.get_list?doctype=Connected%20App&x=1",
        ] {
            let (path, sep) = match path.split_once('?') {
                Some((p, q)) => (p.to_string(), format!("?{q}&")),
                None => (path.to_string(), "?".to_string()),
            };
            let go = |key: &'static str, value: Value| {
                let url = match &value {
                    Value::String(s) => format!("{path}{sep}{key}={}", urlencode(s)),
                    other => format!("{path}{sep}{key}={}", urlencode(&other.to_string())),
                };
                let app = &app;
                async move { app.get(&app.admin, &url).await }
            };
            for f in &fields {
                let (status, v) = go("fields", f.clone()).await;
                refused_or_harmless(&format!("{path} fields={f}"), status, &v);
            }
            for f in &filters {
                for key in ["filters", "or_filters"] {
                    let (status, v) = go(key, f.clone()).await;
                    refused_or_harmless(&format!("{path} {key}={f}"), status, &v);
                    // A literal matches at most one row; `not in` a literal, or `creation`
                    // from a text that sorts before every date, rightly matches all.
                    let text = f.to_string();
                    if status == 200 && !text.contains("not in") && !text.contains("between") {
                        let rows = v["data"].as_array().or(v["message"].as_array()).unwrap();
                        assert!(
                            rows.len() <= 1,
                            "{key}={f} matched more than a literal would: {v}"
                        );
                    }
                }
            }
            for o in order_bys {
                let (status, v) = go("order_by", json!(o)).await;
                refused_or_harmless(&format!("{path} order_by={o}"), status, &v);
            }
            for l in ["1; DROP TABLE `tabUser`", "1 OR 1=1", "(SELECT 1)"] {
                for key in ["limit_start", "limit_page_length", "limit"] {
                    let (status, v) = go(key, json!(l)).await;
                    refused_or_harmless(&format!("{path} {key}={l}"), status, &v);
                }
            }
        }
        for key in ["filters", "or_filters"] {
            // Quotes in values are literals: the evil-named app is found by its exact name only.
            let (status, v) = list_with(&app, CA, key, &json!({"provider_name": EVIL_NAME})).await;
            assert_eq!(
                (status, v),
                (200, json!({"data": [{"name": evil}]})),
                "{key}"
            );
            let (status, v) =
                list_with(&app, CA, key, &json!({"provider_name": "x' OR '1'='1"})).await;
            assert_eq!((status, v), (200, json!({"data": []})), "{key}");
            let (status, v) =
                list_with(&app, CA, key, &json!({"client_id": "x\" OR \"1\"=\"1"})).await;
            assert_eq!(
                (status, v),
                (200, json!({"data": [{"name": evil}]})),
                "{key}"
            );
        }
        // get_count and get_value take the same arguments.
        let (status, v) = app
            .post(
                &app.admin,
                "/api/method/frappe.client.get_count",
                &json!({"doctype": "Connected App", "filters": {"provider_name": "x' OR '1'='1"}}),
            )
            .await;
        assert_eq!((status, v), (200, json!({"message": 0})));
        let (status, v) = app
            .post(&app.admin, "/api/method/frappe.client.get_value", &json!({"doctype": "Connected App", "fieldname": "(SELECT password FROM `__Auth`)", "filters": {}}))
            .await;
        refused_or_harmless("get_value fieldname", status, &v);

        assert_eq!(
            snapshot(&app.db),
            before,
            "{backend:?}: the database changed"
        );
    }
}

#[tokio::test]
async fn injection_through_document_names_finds_nothing_and_changes_nothing() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let (_, plain) = seed(&app).await;
        let before = snapshot(&app.db);
        let names = [
            "x' OR '1'='1",
            "x\" OR \"1\"=\"1",
            "' OR 1=1 --",
            &format!("{plain}' OR '1'='1"),
            &format!("{plain}'; DELETE FROM `tabConnected App`; --"),
            "%",
            "_%",
            "x`; DROP TABLE `tabUser`; --",
        ];
        for name in names {
            let enc = urlencode(name).replace('+', "%20");
            for base in [CA, TC, "/api/v2/document/Connected%20App"] {
                let path = format!("{base}/{enc}");
                let (status, v) = app.get(&app.admin, &path).await;
                assert_eq!(status, 404, "GET {path}: {v}");
                let (status, v) = app
                    .put(&app.admin, &path, &json!({"client_id": "pwned"}))
                    .await;
                assert_eq!(status, 404, "PUT {path}: {v}");
                let (status, v) = app.delete(&app.admin, &path).await;
                assert_eq!(status, 404, "DELETE {path}: {v}");
            }
            let m = |f: &str| format!("/api/method/frappe.client.{f}");
            for (f, body) in [
                ("get", json!({"doctype": "Connected App", "name": name})),
                (
                    "get_value",
                    json!({"doctype": "Connected App", "filters": name, "fieldname": "client_id"}),
                ),
                (
                    "set_value",
                    json!({"doctype": "Connected App", "name": name, "fieldname": "client_id", "value": "pwned"}),
                ),
                ("delete", json!({"doctype": "Connected App", "name": name})),
                (
                    "validate_link",
                    json!({"doctype": "Connected App", "docname": name}),
                ),
            ] {
                let (status, v) = app.post(&app.admin, &m(f), &body).await;
                assert!(
                    status == 404 || (status == 200 && (v["message"] == json!({}))),
                    "{f} {name}: {status} {v}"
                );
            }
            let (status, v) = app
                .post(&app.admin, "/api/method/run_doc_method", &json!({"dt": "Connected App", "dn": name, "method": "initiate_web_application_flow"}))
                .await;
            assert_eq!(status, 404, "run_doc_method {name}: {v}");
            let (status, v) = app
                .post(
                    &app.admin,
                    "/api/method/frappe.desk.form.save.savedocs",
                    &json!({"doc": json!({"doctype": "Connected App", "name": name, "provider_name": "pwned"}).to_string(), "action": "Save"}),
                )
                .await;
            assert_eq!(status, 404, "savedocs {name}: {v}");
        }
        assert_eq!(
            snapshot(&app.db),
            before,
            "{backend:?}: the database changed"
        );

        // A name in a POST body is ignored, whatever it holds.
        let (status, v) = app
            .post(
                &app.admin,
                CA,
                &json!({"name": "x'); DELETE FROM `tabConnected App`; --", "provider_name": "N"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert!(crate::rest::is_hash_name(
            v["data"]["name"].as_str().unwrap()
        ));
        let (_, n) = app
            .get(
                &app.admin,
                "/api/method/frappe.client.get_count?doctype=Connected%20App",
            )
            .await;
        assert_eq!(n["message"], 3);
    }
}
