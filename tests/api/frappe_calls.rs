//! The calls Frappe's client libraries make that go beyond `/api/method/<name>` and
//! `/api/resource`: `cmd` requests to `/`, a trailing part after the method name,
//! `frappe.client.delete` by DELETE, `rename_doc`, `bulk_update`, `get_single_value`,
//! `group_by` with aggregates, query strings typed with raw `[`, `]` and `"`, and the
//! one-line `exc` that `frappe-client` raises with.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

const CA: &str = "/api/resource/Connected%20App";
const TC: &str = "/api/resource/Token%20Cache";

async fn form(
    app: &TestApp,
    auth: Option<&str>,
    path: &str,
    pairs: &[(&str, &str)],
) -> (u16, Value) {
    let mut r = app.client.post(app.url(path)).form(pairs);
    if let Some(auth) = auth {
        r = r.header("Authorization", auth);
    }
    status_json(r.send().await.expect("request")).await
}

async fn get_q(
    app: &TestApp,
    auth: Option<&str>,
    path: &str,
    query: &[(&str, &str)],
) -> (u16, Value) {
    let mut r = app.client.get(app.url(path)).query(query);
    if let Some(auth) = auth {
        r = r.header("Authorization", auth);
    }
    status_json(r.send().await.expect("request")).await
}

/// `exc` as `frappe-client` reads it: a JSON list whose one line is the `exception`.
fn exc_lines(v: &Value) -> Vec<String> {
    let raw = v["exc"].as_str().unwrap_or_else(|| panic!("no exc: {v}"));
    serde_json::from_str(raw).unwrap_or_else(|_| panic!("exc is not a JSON list: {v}"))
}

async fn provider_of(app: &TestApp, name: &str) -> (u16, Value) {
    app.get(&app.admin, &format!("{CA}/{name}")).await
}

#[tokio::test]
async fn cmd_requests_to_the_root_run_the_method_under_the_same_rules() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let user1 = app.user("user1@example.com", &[]).await;
        let doc = app
            .create_app(json!({"provider_name": "Root", "client_id": "id-1"}))
            .await;
        let name = doc["name"].as_str().unwrap();

        // frappe-client's login: a form posted to `/`.
        let r = app
            .client
            .post(app.url("/"))
            .form(&[
                ("cmd", "login"),
                ("usr", "Administrator"),
                ("pwd", "admin-pass"),
            ])
            .send()
            .await
            .unwrap();
        let sid = sid_of(&r);
        let (status, v) = status_json(r).await;
        assert_eq!(
            (status, &v["message"]),
            (200, &json!("Logged In")),
            "{backend:?} {v}"
        );
        let cookie = format!("sid={sid}");
        let (status, v) = status_json(
            app.client
                .get(app.url("/?cmd=frappe.auth.get_logged_user"))
                .header("Cookie", &cookie)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, v), (200, json!({"message": "Administrator"})));

        // get_value as frappe-client sends it (`filters` is `json.dumps(None)` when absent).
        for filters in ["null", &json!({"name": name}).to_string()] {
            let (status, v) = get_q(
                &app,
                Some(&app.admin),
                "/",
                &[
                    ("cmd", "frappe.client.get_value"),
                    ("doctype", "Connected App"),
                    ("fieldname", "provider_name"),
                    ("filters", filters),
                ],
            )
            .await;
            assert_eq!(
                (status, v),
                (200, json!({"message": {"provider_name": "Root"}}))
            );
        }
        // set_value posted to `/` changes the document.
        let (status, v) = form(
            &app,
            Some(&app.admin),
            "/",
            &[
                ("cmd", "frappe.client.set_value"),
                ("doctype", "Connected App"),
                ("name", name),
                ("fieldname", "client_id"),
                ("value", "id-2"),
            ],
        )
        .await;
        assert_eq!(
            (status, &v["message"]["client_id"]),
            (200, &json!("id-2")),
            "{v}"
        );
        assert_eq!(provider_of(&app, name).await.1["data"]["client_id"], "id-2");
        // A JSON body with `cmd` works too, and so does `cmd` on another path.
        let (status, v) = app
            .post(
                &app.admin,
                "/",
                &json!({"cmd": "frappe.client.get_count", "doctype": "Connected App"}),
            )
            .await;
        assert_eq!((status, v), (200, json!({"message": 1})));
        let (status, v) = app.get(&app.admin, "/app/connected-app?cmd=ping").await;
        assert_eq!((status, v), (200, json!({"message": "pong"})));

        // The same rules as /api/method: a plain user's write is refused and changes nothing …
        let (status, v) = form(
            &app,
            Some(&user1),
            "/",
            &[
                ("cmd", "frappe.client.set_value"),
                ("doctype", "Connected App"),
                ("name", name),
                ("fieldname", "client_id"),
                ("value", "hijacked"),
            ],
        )
        .await;
        assert_eq!(
            (status, &v["exc_type"]),
            (403, &json!("PermissionError")),
            "{v}"
        );
        assert_eq!(exc_lines(&v).len(), 1, "{v}");
        assert_eq!(provider_of(&app, name).await.1["data"]["client_id"], "id-2");
        // … a Guest gets "not whitelisted", a write by GET "Not permitted" …
        let (status, v) = get_q(
            &app,
            None,
            "/",
            &[
                ("cmd", "frappe.client.get_list"),
                ("doctype", "Connected App"),
            ],
        )
        .await;
        assert_eq!(status, 403, "{v}");
        assert!(
            server_messages(&v)[0].contains("frappe.client.get_list</strong> is not whitelisted")
        );
        let (status, v) = get_q(
            &app,
            Some(&app.admin),
            "/",
            &[
                ("cmd", "frappe.client.delete"),
                ("doctype", "Connected App"),
                ("name", name),
            ],
        )
        .await;
        assert_eq!(
            (status, server_messages(&v)),
            (403, vec!["Not permitted".to_string()])
        );
        assert_eq!(provider_of(&app, name).await.0, 200);
        // … and a failed login is the login's 401.
        let (status, v) = form(
            &app,
            None,
            "/",
            &[("cmd", "login"), ("usr", "Administrator"), ("pwd", "wrong")],
        )
        .await;
        assert_eq!(
            (status, &v["message"]),
            (401, &json!("Invalid login credentials"))
        );

        // frappe-client's logout: GET /?cmd=logout ends the session.
        let (status, v) = status_json(
            app.client
                .get(app.url("/?cmd=logout"))
                .header("Cookie", &cookie)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((status, &v["home_page"]), (200, &json!("/login")), "{v}");
        let (status, _) = status_json(
            app.client
                .get(app.url("/?cmd=frappe.auth.get_logged_user"))
                .header("Cookie", &cookie)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_ne!(status, 200, "{backend:?}: the session ended");

        // frappe-client's delete: a form posted to `/`.
        let (status, v) = form(
            &app,
            Some(&app.admin),
            "/",
            &[
                ("cmd", "frappe.client.delete"),
                ("doctype", "Connected App"),
                ("name", name),
            ],
        )
        .await;
        assert_eq!((status, v), (200, json!({})));
        assert_eq!(provider_of(&app, name).await.0, 404);
    }
}

#[tokio::test]
async fn anything_after_the_method_name_is_ignored_as_frappe_does() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let doc = app
            .create_app(json!({"provider_name": "Tail", "client_id": "id"}))
            .await;
        let name = doc["name"].as_str().unwrap();
        for (plain, tail) in [
            (
                "/api/method/frappe.auth.get_logged_user",
                "/api/method/frappe.auth.get_logged_user/",
            ),
            (
                "/api/method/frappe.client.get_count?doctype=Connected%20App",
                "/api/method/frappe.client.get_count/?doctype=Connected%20App",
            ),
            (
                "/api/method/frappe.client.get_count?doctype=Connected%20App",
                "/api/method/frappe.client.get_count/more/parts?doctype=Connected%20App",
            ),
            ("/api/method/ping", "/api/method/ping/"),
        ] {
            let expected = app.get(&app.admin, plain).await;
            assert_eq!(expected.0, 200, "{plain}: {:?}", expected.1);
            assert_eq!(
                app.get(&app.admin, tail).await,
                expected,
                "{backend:?} {tail}"
            );
        }
        // run_doc_method/ as frappe-client's post_api sends it (arguments in the query).
        let query = format!("?dt=Connected%20App&dn={name}&method=get_openid_configuration");
        let expected = app
            .post(
                &app.admin,
                &format!("/api/method/run_doc_method{query}"),
                &json!({}),
            )
            .await;
        assert_eq!(
            app.post(
                &app.admin,
                &format!("/api/method/run_doc_method/{query}"),
                &json!({})
            )
            .await,
            expected,
            "{backend:?}"
        );
        // The OAuth callback keeps the app after its name.
        let r = app
            .client
            .get(app.url(&format!(
                "/api/method/frappe.integrations.doctype.connected_app.connected_app.callback/{name}?code=c&state=s"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{backend:?}: a Guest is sent to log in");
    }
}

#[tokio::test]
async fn frappe_client_delete_answers_http_delete_as_well_as_post() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let name = app
            .create_app(json!({"provider_name": "Del", "client_id": "id"}))
            .await["name"]
            .as_str()
            .unwrap()
            .to_string();
        let path = format!("/api/method/frappe.client.delete?doctype=Connected%20App&name={name}");
        // PUT and GET are not among delete's methods: refused, nothing deleted.
        let (status, v) = app.put(&app.admin, &path, &json!({})).await;
        assert_eq!(
            (status, server_messages(&v)),
            (403, vec!["Not permitted".to_string()])
        );
        assert_eq!(app.get(&app.admin, &path).await.0, 403);
        assert_eq!(provider_of(&app, &name).await.0, 200);
        let (status, v) = app.delete(&app.admin, &path).await;
        assert_eq!((status, v), (200, json!({})), "{backend:?}");
        assert_eq!(provider_of(&app, &name).await.0, 404);
        let (status, v) = app.delete(&app.admin, &path).await;
        assert_eq!((status, v), (404, json!({"exc_type": "DoesNotExistError"})));
    }
}

#[tokio::test]
async fn rename_doc_refuses_with_frappes_messages_and_changes_nothing() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let user1 = app.user("user1@example.com", &[]).await;
        let a = app
            .create_app(json!({"provider_name": "A", "client_id": "a"}))
            .await["name"]
            .as_str()
            .unwrap()
            .to_string();
        let b = app
            .create_app(json!({"provider_name": "B", "client_id": "b"}))
            .await["name"]
            .as_str()
            .unwrap()
            .to_string();
        let rename = |auth: String, doctype: &'static str, old: String, new: String| {
            let app = &app;
            async move {
                form(
                    app,
                    Some(&auth),
                    "/",
                    &[
                        ("cmd", "frappe.client.rename_doc"),
                        ("doctype", doctype),
                        ("old_name", &old),
                        ("new_name", &new),
                    ],
                )
                .await
            }
        };
        let admin = app.admin.clone();
        let (status, v) = rename(admin.clone(), "Connected App", "nope".into(), "x".into()).await;
        assert_eq!(
            (status, server_messages(&v)),
            (404, vec!["Connected App nope not found".to_string()])
        );
        for (auth, new, message) in [
            (
                admin.clone(),
                a.clone(),
                "No changes made because old and new name are the same.".to_string(),
            ),
            (
                admin.clone(),
                b.clone(),
                format!("Another Connected App with name {b} exists, select another name"),
            ),
            (
                user1.clone(),
                "renamed".to_string(),
                format!("You need write permission on Connected App {a} to rename"),
            ),
            (
                admin.clone(),
                "renamed".to_string(),
                "Connected App not allowed to be renamed".to_string(),
            ),
        ] {
            let (status, v) = rename(auth, "Connected App", a.clone(), new).await;
            assert_eq!(
                (status, server_messages(&v)),
                (417, vec![message.clone()]),
                "{v}"
            );
            assert_eq!(
                exc_lines(&v),
                vec![format!("frappe.exceptions.ValidationError: {message}")]
            );
        }
        // Token Cache does not allow renaming either (JSON body, as frappe-js-sdk sends it).
        let (status, v) = app
            .post(
                &app.admin,
                TC,
                &json!({"connected_app": a, "user": "Administrator"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let tc = v["data"]["name"].as_str().unwrap().to_string();
        let (status, v) = app
            .post(
                &app.admin,
                "/api/method/frappe.client.rename_doc",
                &json!({"doctype": "Token Cache", "old_name": tc, "new_name": "other", "merge": false}),
            )
            .await;
        assert_eq!(
            (status, server_messages(&v)),
            (
                417,
                vec!["Token Cache not allowed to be renamed".to_string()]
            )
        );
        // Only POST and PUT.
        let (status, _) = app
            .get(
                &app.admin,
                &format!("/api/method/frappe.client.rename_doc?doctype=Connected%20App&old_name={a}&new_name=r"),
            )
            .await;
        assert_eq!(status, 403);
        // Nothing moved.
        assert_eq!(provider_of(&app, &a).await.1["data"]["provider_name"], "A");
        assert_eq!(provider_of(&app, "renamed").await.0, 404);
        assert_eq!(app.get(&app.admin, &format!("{TC}/{tc}")).await.0, 200);
    }
}

#[tokio::test]
async fn bulk_update_saves_each_document_and_returns_the_failed_ones() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let user1 = app.user("user1@example.com", &[]).await;
        let a = app
            .create_app(json!({"provider_name": "A", "client_id": "a"}))
            .await["name"]
            .as_str()
            .unwrap()
            .to_string();
        let b = app
            .create_app(json!({"provider_name": "B", "client_id": "b"}))
            .await["name"]
            .as_str()
            .unwrap()
            .to_string();
        // frappe-client: `docs` as a JSON string in a form posted to `/`.
        let docs = json!([
            {"doctype": "Connected App", "docname": a, "client_id": "a-2", "flags": {"x": 1}},
            {"doctype": "Connected App", "docname": "missing", "client_id": "m"},
            {"docname": b, "client_id": "no doctype"},
            {"doctype": "Connected App", "docname": b, "provider_name": ""},
        ]);
        let (status, v) = form(
            &app,
            Some(&app.admin),
            "/",
            &[
                ("cmd", "frappe.client.bulk_update"),
                ("docs", &docs.to_string()),
            ],
        )
        .await;
        assert_eq!(status, 200, "{backend:?} {v}");
        let failed = v["message"]["failed_docs"].as_array().unwrap();
        let pairs: Vec<(Value, String)> = failed
            .iter()
            .map(|f| (f["doc"].clone(), f["exc"].as_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                (
                    json!({"doctype": "Connected App", "docname": "missing", "client_id": "m"}),
                    "frappe.exceptions.DoesNotExistError: Connected App missing not found"
                        .to_string()
                ),
                (
                    json!({"docname": b, "client_id": "no doctype"}),
                    "KeyError: 'doctype'".to_string()
                ),
                (
                    json!({"doctype": "Connected App", "docname": b, "provider_name": ""}),
                    format!(
                        "frappe.exceptions.MandatoryError: [Connected App, {b}]: provider_name"
                    )
                ),
            ],
            "{backend:?}"
        );
        assert_eq!(provider_of(&app, &a).await.1["data"]["client_id"], "a-2");
        let bdoc = provider_of(&app, &b).await.1;
        assert_eq!(
            (&bdoc["data"]["client_id"], &bdoc["data"]["provider_name"]),
            (&json!("b"), &json!("B"))
        );

        // A plain user's changes all fail and change nothing (JSON body, `docs` as a list).
        let (status, v) = app
            .post(
                &user1,
                "/api/method/frappe.client.bulk_update",
                &json!({"docs": [{"doctype": "Connected App", "docname": a, "client_id": "hijacked"}]}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let failed = v["message"]["failed_docs"].as_array().unwrap();
        assert_eq!(failed.len(), 1, "{v}");
        assert!(
            failed[0]["exc"]
                .as_str()
                .unwrap()
                .starts_with("frappe.exceptions.PermissionError"),
            "{v}"
        );
        assert_eq!(provider_of(&app, &a).await.1["data"]["client_id"], "a-2");

        // Not a list; GET.
        let (status, v) = app
            .post(
                &app.admin,
                "/api/method/frappe.client.bulk_update",
                &json!({"docs": "{}"}),
            )
            .await;
        assert!((400..500).contains(&status), "{v}");
        assert_eq!(
            app.get(
                &app.admin,
                "/api/method/frappe.client.bulk_update?docs=%5B%5D"
            )
            .await
            .0,
            403
        );
    }
}

#[tokio::test]
async fn get_single_value_answers_as_frappe_does_for_doctypes_that_are_not_single() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let user1 = app.user("user1@example.com", &[]).await;
        app.create_app(json!({"provider_name": "S", "client_id": "s"}))
            .await;
        let path = |dt: &str, field: &str| {
            format!("/api/method/frappe.client.get_single_value?doctype={dt}&field={field}")
        };
        for (auth, dt, field, expected) in [
            (
                &app.admin,
                "Connected%20App",
                "provider_name",
                json!({"message": ""}),
            ),
            (
                &user1,
                "Connected%20App",
                "client_id",
                json!({"message": ""}),
            ),
            (
                &app.admin,
                "Token%20Cache",
                "expires_in",
                json!({"message": 0}),
            ),
            (&app.admin, "Connected%20App", "client_secret", json!({})),
            (&app.admin, "Connected%20App", "scopes", json!({})),
        ] {
            assert_eq!(
                app.get(auth, &path(dt, field)).await,
                (200, expected),
                "{backend:?} {dt} {field}"
            );
        }
        let (status, v) = app.get(&app.admin, &path("Connected%20App", "nope")).await;
        assert_eq!(
            (status, server_messages(&v)),
            (
                404,
                vec!["Field nope does not exist on Connected App".to_string()]
            )
        );
        let (status, v) = get_q(&app, None, &path("Connected%20App", "provider_name"), &[]).await;
        assert_eq!(status, 403, "a Guest: {v}");
        let (status, _) = app.get(&app.admin, &path("Nope", "x")).await;
        assert_eq!(status, 404);
    }
}

#[tokio::test]
async fn lists_group_by_any_field_with_aggregates_as_get_doc_list_sends_them() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let user1 = app.user("user1@example.com", &[]).await;
        let mut apps = Vec::new();
        for (p, c) in [("P1", "a"), ("P1", "b"), ("P2", "c")] {
            let d = app
                .create_app(json!({"provider_name": p, "client_id": c}))
                .await;
            apps.push(d["name"].as_str().unwrap().to_string());
        }
        // frappe-js-sdk's getDocList({fields, groupBy}): `order_by=` empty, `as_dict=true`.
        let (status, v) = get_q(
            &app,
            Some(&app.admin),
            CA,
            &[
                ("fields", r#"["provider_name","count(name) as count"]"#),
                ("group_by", "provider_name"),
                ("order_by", ""),
                ("as_dict", "true"),
                ("limit", "20"),
            ],
        )
        .await;
        assert_eq!(
            (status, v),
            (
                200,
                json!({"data": [{"provider_name": "P1", "count": 2}, {"provider_name": "P2", "count": 1}]})
            ),
            "{backend:?}"
        );
        let (status, v) = get_q(
            &app,
            Some(&app.admin),
            "/api/method/frappe.client.get_list",
            &[
                ("doctype", "Connected App"),
                (
                    "fields",
                    r#"["provider_name","count(name) as n","max(client_id) as last"]"#,
                ),
                ("group_by", "provider_name"),
                ("order_by", "n asc"),
                ("as_dict", "0"),
            ],
        )
        .await;
        assert_eq!(
            (status, v),
            (200, json!({"message": [["P2", 1, "c"], ["P1", 2, "b"]]}))
        );

        // Sums and averages of an Int field, beside counts; a plain user counts only its own.
        for (app_name, user, expires) in [
            (&apps[0], "Administrator", 3600),
            (&apps[1], "Administrator", 1800),
            (&apps[2], "user1@example.com", 600),
        ] {
            let (status, v) = app
                .post(
                    &app.admin,
                    TC,
                    &json!({"connected_app": app_name, "user": user, "expires_in": expires}),
                )
                .await;
            assert_eq!(status, 200, "{v}");
        }
        let q = [
            (
                "fields",
                r#"["user","sum(expires_in) as total","avg(expires_in) as mean","min(expires_in) as least","count(name) as count"]"#,
            ),
            ("group_by", "user"),
            ("order_by", "total desc"),
        ];
        let (status, v) = get_q(&app, Some(&app.admin), TC, &q).await;
        assert_eq!(
            (status, v),
            (
                200,
                json!({"data": [
                    {"user": "Administrator", "total": 5400.0, "mean": 2700.0, "least": 1800, "count": 2},
                    {"user": "user1@example.com", "total": 600.0, "mean": 600.0, "least": 600, "count": 1},
                ]})
            ),
            "{backend:?}"
        );
        // user1 owns none of them (Administrator created them all).
        let (status, v) = get_q(&app, Some(&user1), TC, &q).await;
        assert_eq!((status, v), (200, json!({"data": []})));
        let (status, v) = get_q(
            &app,
            Some(&app.admin),
            TC,
            &[(
                "fields",
                r#"["sum(expires_in) as total","count(name) as n"]"#,
            )],
        )
        .await;
        assert_eq!(
            (status, v),
            (200, json!({"data": [{"total": 6000.0, "n": 3}]}))
        );

        // Unknown fields and functions are Frappe's 417s.
        for (fields, group_by) in [
            (r#"["nope","count(name) as c"]"#, "nope"),
            (r#"["provider_name"]"#, "nope"),
            (r#"["sum(provider_name)"]"#, ""),
            (r#"["sleep(1)"]"#, "provider_name"),
        ] {
            let (status, v) = get_q(
                &app,
                Some(&app.admin),
                CA,
                &[("fields", fields), ("group_by", group_by)],
            )
            .await;
            assert_eq!(status, 417, "{fields} {group_by}: {v}");
            assert!(["DataError", "ValidationError"].contains(&v["exc_type"].as_str().unwrap()));
        }
    }
}

/// Sends a request line exactly as given (reqwest would percent-encode it) and returns the
/// status and the body.
async fn raw_get(app: &TestApp, target: &str, auth: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn query_strings_typed_with_raw_brackets_and_quotes_are_read() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let name = app
            .create_app(json!({"provider_name": "Raw", "client_id": "r"}))
            .await["name"]
            .as_str()
            .unwrap()
            .to_string();
        app.create_app(json!({"provider_name": "Other", "client_id": "o"}))
            .await;
        // What `curl -g '…?fields=["name","provider_name"]&filters={"provider_name":"Raw"}'` sends.
        let (status, body) = raw_get(
            &app,
            r#"/api/resource/Connected%20App?fields=["name","provider_name"]&filters={"provider_name":"Raw"}"#,
            &app.admin,
        )
        .await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v, json!({"data": [{"name": name, "provider_name": "Raw"}]}));
        let (status, body) = raw_get(
            &app,
            r#"/api/method/frappe.client.get_list?doctype=Connected%20App&fields=["provider_name"]&filters=[["provider_name","like","<R%>"]]"#,
            &app.admin,
        )
        .await;
        assert_eq!((status, body.as_str()), (200, r#"{"message":[]}"#));
        // Every 4xx the framework itself answers carries Frappe's error body.
        for target in ["/no/such/route", "/api/resource/Connected%20App/%FF"] {
            let (status, body) = raw_get(&app, target, &app.admin).await;
            assert!((400..500).contains(&status), "{target}: {status}");
            let v: Value = serde_json::from_str(&body)
                .unwrap_or_else(|_| panic!("{target}: not JSON: {body:?}"));
            assert!(v["exc_type"].is_string(), "{target}: {v}");
        }
    }
}

#[tokio::test]
async fn errors_carry_the_one_line_summary_a_python_caller_reads() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let user1 = app.user("user1@example.com", &[]).await;
        // A refused write: `exc` names the class and the message, like Frappe's last traceback line.
        let (status, v) = app.post(&user1, CA, &json!({"provider_name": "x"})).await;
        assert_eq!(status, 403);
        assert_eq!(
            exc_lines(&v),
            vec![v["exception"].as_str().unwrap().to_string()]
        );
        let (status, v) = app.post(&app.admin, CA, &json!({"client_id": "x"})).await;
        assert_eq!(status, 417);
        let lines = exc_lines(&v);
        assert!(
            lines.len() == 1
                && lines[0].starts_with("frappe.exceptions.MandatoryError: [Connected App, ")
                && !lines[0].contains('\n'),
            "{backend:?} {v}"
        );
        // A 404 has no `exc`, as in Frappe.
        let (status, v) = app.get(&app.admin, &format!("{CA}/nope")).await;
        assert_eq!(status, 404);
        assert!(v.get("exc").is_none(), "{v}");
    }
}
