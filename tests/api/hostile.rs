//! Hostile input: a fuzz run (proptest) of list arguments and document bodies over HTTP, an
//! injection corpus against every route as Guest, plain user and System Manager, bodies over
//! the limit, and header injection through `success_uri`. No answer is a 5xx, every refusal
//! is in Frappe's error shape, and the database is unchanged afterwards.
//!
//! The fuzz run is short here; `PROPTEST_CASES=5000 cargo nextest run --test api hostile`
//! runs a longer one (docs/security.md, "Fuzzing").

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use reqwest::Method;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::rest::{full_app, snapshot, urlencode};

/// Whether a body is Frappe's error shape: v1 (`exc_type`, and `exc` a JSON list holding only
/// the one-line `exception`, never a traceback) or v2 (`errors: [{type, ...}]`).
pub fn frappe_error_shaped(v: &Value) -> bool {
    match v.get("errors") {
        Some(errors) => errors[0]["type"].is_string(),
        None => {
            v["exc_type"].is_string()
                && v.get("exc").map_or(true, |e| exc_is_exception_line(e, v))
                && v.get("exc_type").is_some()
        }
    }
}

/// `exc` is the JSON text of a list holding exactly the body's `exception`.
pub fn exc_is_exception_line(exc: &Value, body: &Value) -> bool {
    exc.as_str()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .is_some_and(|list| list == json!([body["exception"]]))
}

/// Text an answer must never carry: tracebacks, SQL errors, stored secrets and hashes.
const NEVER: &[&str] = &[
    "Traceback",
    "SQL syntax",
    "sqlite_master",
    "information_schema",
    "diesel",
    "panicked",
    "gAAAAA",
    "pbkdf2",
    "admin-pass",
    "s3cr3t-value",
];

fn check_answer(what: &str, status: u16, v: &Value) -> Result<(), String> {
    if status >= 500 {
        return Err(format!("{what}: {status} {v}"));
    }
    if status >= 400 && !frappe_error_shaped(v) {
        return Err(format!("{what}: {status} is not Frappe-shaped: {v}"));
    }
    let text = v.to_string();
    if let Some(leak) = NEVER.iter().find(|n| text.contains(*n)) {
        return Err(format!("{what}: the answer carries {leak:?}: {v}"));
    }
    Ok(())
}

async fn send(
    app: &TestApp,
    auth: Option<&str>,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Option<Vec<u8>>,
) -> (u16, Value) {
    let mut r = app.client.request(method, app.url(path));
    if let Some(a) = auth {
        r = r.header("Authorization", a);
    }
    if let Some(ct) = content_type {
        r = r.header("Content-Type", ct);
    }
    if let Some(b) = body {
        r = r.body(b);
    }
    status_json(r.send().await.expect("request")).await
}

// ---------------------------------------------------------------------------------------------
// Fuzzing over HTTP

const FIELDS: &[&str] = &[
    "name",
    "doctype",
    "provider_name",
    "client_id",
    "client_secret",
    "scopes",
    "scope",
    "query_parameters",
    "key",
    "value",
    "token_uri",
    "redirect_uri",
    "openid_configuration",
    "modified",
    "creation",
    "owner",
    "docstatus",
    "idx",
    "parent",
    "user",
    "connected_app",
    "access_token",
    "refresh_token",
    "expires_in",
    "state",
    "success_uri",
    "*",
    "count(name)",
    "`tabUser`.name",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(FIELDS).prop_map(str::to_string),
        ".{0,24}",
        prop::sample::select(vec![
            "' OR '1'='1",
            "\"; DROP TABLE `tabUser`; --",
            "../../etc/passwd",
            "like",
            "in",
            "between",
            "is",
            "set",
            "not set",
            "desc",
            "asc",
            "=",
            "!=",
            "\u{0}",
            "\u{202e}",
            "9999999999999999999999",
            "-1",
        ])
        .prop_map(str::to_string),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A list argument: JSON text of any value, or a raw string.
fn list_arg() -> impl Strategy<Value = String> {
    prop_oneof![json_value().prop_map(|v| v.to_string()), text()]
}

/// What one fuzz case sends.
#[derive(Debug, Clone)]
enum Case {
    List(usize, Vec<(&'static str, String)>),
    Body(usize, Value),
}

const LIST_PATHS: &[&str] = &[
    "/api/resource/Connected%20App",
    "/api/resource/Token%20Cache",
    "/api/v2/document/Connected%20App",
    "/api/method/frappe.client.get_list?doctype=Connected%20App",
    "/api/method/frappe.client.get_count?doctype=Token%20Cache",
    "/api/method/frappe.desk.reportview.get?doctype=Connected%20App",
    "/api/v2/doctype/Connected%20App/count",
];

const BODY_TARGETS: usize = 8;

fn case() -> impl Strategy<Value = Case> {
    let list_keys = prop::sample::select(vec![
        "fields",
        "filters",
        "or_filters",
        "order_by",
        "limit_start",
        "limit_page_length",
        "limit",
        "start",
        "page_length",
        "group_by",
        "as_dict",
        "debug",
    ]);
    prop_oneof![
        (
            0..LIST_PATHS.len(),
            prop::collection::vec((list_keys, list_arg()), 1..5)
        )
            .prop_map(|(p, args)| Case::List(p, args)),
        (0..BODY_TARGETS, json_value()).prop_map(|(t, v)| Case::Body(t, v)),
    ]
}

async fn run_case(app: &TestApp, existing: &str, case: &Case) -> Result<(), String> {
    match case {
        Case::List(p, args) => {
            let base = LIST_PATHS[*p];
            let sep = if base.contains('?') { '&' } else { '?' };
            let query: Vec<String> = args
                .iter()
                .map(|(k, v)| format!("{k}={}", urlencode(v)))
                .collect();
            let path = format!("{base}{sep}{}", query.join("&"));
            let (status, v) = app.get(&app.admin, &path).await;
            check_answer(&format!("GET {path}"), status, &v)
        }
        Case::Body(t, body) => {
            let doc = format!("/api/resource/Connected%20App/{existing}");
            let v2doc = format!("/api/v2/document/Connected%20App/{existing}");
            let (method, path, sent) = match t {
                0 => (
                    Method::POST,
                    "/api/resource/Connected%20App".into(),
                    body.clone(),
                ),
                1 => (
                    Method::POST,
                    "/api/resource/Token%20Cache".into(),
                    body.clone(),
                ),
                2 => (Method::PUT, doc, body.clone()),
                3 => (
                    Method::POST,
                    "/api/v2/document/Connected%20App".into(),
                    body.clone(),
                ),
                4 => (Method::PATCH, v2doc, body.clone()),
                5 => (
                    Method::POST,
                    "/api/method/frappe.client.insert".into(),
                    json!({ "doc": body }),
                ),
                6 => (
                    Method::POST,
                    "/api/method/frappe.desk.form.save.savedocs".into(),
                    json!({ "doc": body.to_string(), "action": "Save" }),
                ),
                _ => (
                    Method::POST,
                    "/api/method/frappe.client.set_value".into(),
                    json!({"doctype": "Connected App", "name": existing, "fieldname": body}),
                ),
            };
            let bytes = serde_json::to_vec(&sent).unwrap();
            let (status, v) = send(
                app,
                Some(&app.admin),
                method.clone(),
                &path,
                Some("application/json"),
                Some(bytes),
            )
            .await;
            check_answer(&format!("{method} {path} {sent}"), status, &v)
        }
    }
}

#[test]
fn fuzzed_list_arguments_and_document_bodies_never_get_a_5xx_or_a_bare_error() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(96);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for backend in BACKENDS {
        let app = rt.block_on(spawn_app(backend));
        let existing = rt.block_on(app.create_app(full_app("Fuzzed")))["name"]
            .as_str()
            .unwrap()
            .to_string();
        let mut runner = TestRunner::new(ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        let result = runner.run(&case(), |c| {
            rt.block_on(run_case(&app, &existing, &c))
                .map_err(TestCaseError::fail)
        });
        if let Err(e) = result {
            panic!("{backend:?}: {e}");
        }
        // The service is still up and answering.
        let (status, _) = rt.block_on(app.get(&app.admin, "/api/resource/Connected%20App"));
        assert_eq!(status, 200, "{backend:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// The injection corpus

const PAYLOADS: &[&str] = &[
    "' OR '1'='1",
    "x'); DROP TABLE `tabUser`; --",
    "\" OR \"\"=\"",
    "name`; DELETE FROM `__Auth`; --",
    "../../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/api/../../secret",
    "%00",
    "<script>alert(1)</script>",
    "x\r\nX-Injected: 1",
];

/// The query and body parameter names any route might read.
const PARAMS: &[&str] = &[
    "doctype",
    "name",
    "dt",
    "dn",
    "docname",
    "fieldname",
    "value",
    "filters",
    "or_filters",
    "fields",
    "order_by",
    "limit_start",
    "limit_page_length",
    "doc",
    "docs",
    "method",
    "args",
    "connected_app",
    "user",
    "connected_user",
    "success_uri",
    "state",
    "code",
    "usr",
    "pwd",
    "pkce",
    "run_method",
    "action",
];

/// Every concrete `(method, path)` the router serves, with `payload` in each path parameter.
fn targets(payload: &str) -> Vec<(Method, String)> {
    let enc = urlencode(payload).replace('+', "%20");
    let mut out = Vec::new();
    for (method, pattern) in connected_apps::routes::route_list() {
        let paths: Vec<String> = if pattern == "/api/method/{method}" {
            connected_apps::routes::METHODS
                .iter()
                .map(|m| format!("/api/method/{}", m.replace(' ', "%20")))
                .chain([format!("/api/method/{enc}")])
                .collect()
        } else {
            let mut p = String::new();
            let mut rest = pattern.as_str();
            while let Some(open) = rest.find('{') {
                p.push_str(&rest[..open]);
                let close = rest[open..].find('}').unwrap() + open;
                p.push_str(&enc);
                rest = &rest[close + 1..];
            }
            p.push_str(rest);
            vec![p]
        };
        let methods = match method {
            "GET" => vec![Method::GET],
            "POST" => vec![Method::POST],
            "PUT" => vec![Method::PUT],
            "PATCH" => vec![Method::PATCH],
            "DELETE" => vec![Method::DELETE],
            _ => vec![Method::GET, Method::POST],
        };
        for p in paths {
            for m in &methods {
                out.push((m.clone(), p.clone()));
            }
        }
    }
    out
}

/// The query string: every parameter set to the payload, and `fields` twice.
fn hostile_query(payload: &str) -> String {
    let enc = urlencode(payload);
    let mut q: Vec<String> = PARAMS.iter().map(|p| format!("{p}={enc}")).collect();
    q.push("fields=%5B%22%2A%22%5D".into());
    q.push(format!("{enc}={enc}"));
    q.join("&")
}

fn hostile_body(payload: &str) -> Value {
    let mut m: Map<String, Value> = PARAMS
        .iter()
        .map(|p| (p.to_string(), Value::String(payload.into())))
        .collect();
    m.insert(payload.into(), Value::String(payload.into()));
    Value::Object(m)
}

/// The snapshot, without the login attempt counters (failed logins are recorded by design).
fn stored(db: &TestDb) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut s = snapshot(db);
    s.remove("ca_login_attempts");
    s
}

/// Whether a path must be refused whatever the identity: it names a document, a doctype or
/// a method by the payload.
fn names_by_payload(path: &str, payload: &str) -> bool {
    path.contains(&urlencode(payload).replace('+', "%20"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_injection_corpus_on_every_route_and_identity_is_refused_in_frappes_shape_and_changes_nothing(
) {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let plain = app.user("plain@example.com", &[]).await;
        app.create_app(full_app("Existing")).await;
        let before = stored(&app.db);
        let identities: [(&str, Option<&str>); 3] = [
            ("Guest", None),
            ("plain user", Some(&plain)),
            ("System Manager", Some(&app.admin)),
        ];
        let mut failures = Vec::new();
        for payload in PAYLOADS {
            let query = hostile_query(payload);
            let body = serde_json::to_vec(&hostile_body(payload)).unwrap();
            for (method, path) in targets(payload) {
                let sep = if path.contains('?') { '&' } else { '?' };
                let full = format!("{path}{sep}{query}");
                for (who, auth) in identities {
                    let sent = (method != Method::GET).then(|| body.clone());
                    let ct = sent.as_ref().map(|_| "application/json");
                    let (status, v) = send(&app, auth, method.clone(), &full, ct, sent).await;
                    let what = format!("{backend:?} {who} {method} {path} [{payload}]");
                    let refused_needed =
                        path.starts_with("/api") && names_by_payload(&path, payload);
                    // The desk pages answer in HTML; Guests are sent to log in.
                    let html = !path.starts_with("/api") && v.is_string();
                    let to_login = status == 302 && path.contains("connected_app.callback");
                    if html && status < 500 {
                        continue;
                    }
                    if let Err(e) = check_answer(&what, status, &v) {
                        failures.push(e);
                    } else if refused_needed && !(400..500).contains(&status) && !to_login {
                        failures.push(format!("{what}: not refused: {status} {v}"));
                    }
                }
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures, first ones:\n{}",
            failures.len(),
            failures[..failures.len().min(15)].join("\n")
        );
        assert_eq!(stored(&app.db), before, "{backend:?}: the database changed");
    }
}

#[tokio::test]
async fn malformed_bodies_encodings_and_content_types_are_frappe_shaped_4xx() {
    let mut deep = String::new();
    for _ in 0..100_000 {
        deep.push('[');
    }
    for _ in 0..100_000 {
        deep.push(']');
    }
    let deep_object = format!("{}1{}", "{\"a\":".repeat(5000), "}".repeat(5000));
    let bodies: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "deeply nested array",
            "application/json",
            deep.clone().into_bytes(),
        ),
        (
            "deeply nested object",
            "application/json",
            deep_object.clone().into_bytes(),
        ),
        (
            "deep doc",
            "application/json",
            format!("{{\"doc\": {deep}}}").into_bytes(),
        ),
        (
            "invalid UTF-8",
            "application/json",
            b"{\"provider_name\": \"\xff\xfe\xc3\x28\"}".to_vec(),
        ),
        (
            "invalid UTF-8 form",
            "application/x-www-form-urlencoded",
            b"provider_name=%ff%fe&doc=\xff".to_vec(),
        ),
        (
            "truncated JSON",
            "application/json",
            b"{\"provider_name\": \"x".to_vec(),
        ),
        (
            "JSON as XML",
            "application/xml",
            b"<doc><provider_name>x</provider_name></doc>".to_vec(),
        ),
        (
            "JSON as text",
            "text/plain",
            b"{\"provider_name\": \"x\"}".to_vec(),
        ),
        (
            "broken multipart",
            "multipart/form-data; boundary=zz",
            b"--zz\r\nContent-Disposition: form-data; name=\"doc\"\r\n\r\n{\"a\"".to_vec(),
        ),
        ("no boundary", "multipart/form-data", b"garbage".to_vec()),
        (
            "bad charset",
            "application/json; charset=ebcdic",
            b"{}".to_vec(),
        ),
        ("JSON scalar", "application/json", b"42".to_vec()),
        ("JSON list", "application/json", b"[1, 2]".to_vec()),
        ("JSON null", "application/json", b"null".to_vec()),
        (
            "duplicate keys",
            "application/json",
            b"{\"provider_name\": \"a\", \"provider_name\": {\"$gt\": 1}}".to_vec(),
        ),
        (
            "NUL in JSON",
            "application/json",
            b"{\"provider_name\": \"a\\u0000b\"}".to_vec(),
        ),
        (
            "lone surrogate",
            "application/json",
            b"{\"provider_name\": \"\\ud800\"}".to_vec(),
        ),
    ];
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let existing = app.create_app(full_app("Existing")).await["name"]
            .as_str()
            .unwrap()
            .to_string();
        let targets = [
            (Method::POST, "/api/resource/Connected%20App".to_string()),
            (
                Method::PUT,
                format!("/api/resource/Connected%20App/{existing}"),
            ),
            (Method::POST, "/api/v2/document/Connected%20App".to_string()),
            (
                Method::PATCH,
                format!("/api/v2/document/Connected%20App/{existing}"),
            ),
            (Method::POST, "/api/method/frappe.client.insert".to_string()),
            (
                Method::POST,
                "/api/method/frappe.client.get_list".to_string(),
            ),
            (
                Method::POST,
                "/api/method/frappe.desk.form.save.savedocs".to_string(),
            ),
            (Method::POST, "/api/method/run_doc_method".to_string()),
            (Method::POST, "/api/method/login".to_string()),
        ];
        let mut failures = Vec::new();
        for (what, ct, body) in &bodies {
            for (method, path) in &targets {
                let (status, v) = send(
                    &app,
                    Some(&app.admin),
                    method.clone(),
                    path,
                    Some(ct),
                    Some(body.clone()),
                )
                .await;
                let label = format!("{backend:?} {method} {path} with {what}");
                if let Err(e) = check_answer(&label, status, &v) {
                    failures.push(e);
                }
            }
        }
        // Invalid UTF-8 and nesting in the URL, and duplicate parameters.
        for path in [
            "/api/resource/Connected%20App/%FF%FE".to_string(),
            "/api/resource/%FF/%C3%28".to_string(),
            "/api/resource/Connected%20App?filters=%FF%FE".to_string(),
            "/api/resource/Connected%20App?fields=%5B%22name%22%5D&fields=%5B%22%2A%22%5D&fields=x".to_string(),
            "/api/resource/Connected%20App?limit_page_length=1&limit_page_length=-5&limit_page_length=a".to_string(),
            format!("/api/resource/Connected%20App?filters={}", urlencode(&deep[..20_000])),
            format!(
                "/api/resource/Connected%20App?filters={}",
                urlencode(&format!("{}{}", "[".repeat(200), "]".repeat(200)))
            ),
            "/api/method/frappe.client.get?doctype=Connected%20App&name=%00".to_string(),
            "/api/v2/document/Connected%20App/%2e%2e%2f%2e%2e%2fetc%2fpasswd".to_string(),
            "/api/resource/..%2F..%2Fetc%2Fpasswd".to_string(),
        ] {
            let (status, v) = app.get(&app.admin, &path).await;
            if let Err(e) = check_answer(&format!("{backend:?} GET {path}"), status, &v) {
                failures.push(e);
            } else if status == 200 && path.contains("%FF") {
                failures.push(format!("{backend:?} GET {path}: invalid UTF-8 accepted: {v}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} failures:\n{}",
            failures.len(),
            failures.join("\n")
        );
        // Still serving.
        assert_eq!(
            app.get(&app.admin, "/api/resource/Connected%20App").await.0,
            200
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Body limit

/// Sends a request head announcing `announced` body bytes and only `sent` of them, then reads
/// the answer without sending more. Returns the status line and the body.
async fn partial_upload(
    app: &TestApp,
    path: &str,
    headers: &str,
    first_bytes: &[u8],
) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\nContent-Type: application/json\r\n{headers}\r\n",
        app.admin
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // The peer may answer and close before every byte is written: that is the point.
    let _ = s.write_all(first_bytes).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 8192];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no answer while the rest of the body was still owed"
    );
    let text = String::from_utf8_lossy(&buf).to_string();
    let status_line = text.lines().next().unwrap_or_default().to_string();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status_line, body)
}

#[tokio::test]
async fn bodies_over_the_limit_are_a_413_before_they_are_read_in_full() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |s| s.body_limit = 64 * 1024).await;
        for path in [
            "/api/resource/Connected%20App",
            "/api/v2/document/Connected%20App",
            "/api/method/frappe.client.insert",
            "/api/method/login",
        ] {
            // Announced with Content-Length: 10 MiB announced, 16 KiB sent.
            let (status, body) = partial_upload(
                &app,
                path,
                &format!("Content-Length: {}\r\n", 10 * 1024 * 1024),
                &[b' '; 16 * 1024],
            )
            .await;
            assert!(
                status.contains(" 413 "),
                "{backend:?} {path}: {status} {body}"
            );
            let v: Value = serde_json::from_str(&body).expect("a JSON body");
            assert!(frappe_error_shaped(&v), "{v}");

            // Chunked, with no length: refused once the limit is passed, the rest never sent.
            let mut chunks = Vec::new();
            for _ in 0..80 {
                chunks.extend_from_slice(format!("{:x}\r\n", 1024).as_bytes());
                chunks.extend_from_slice(&[b' '; 1024]);
                chunks.extend_from_slice(b"\r\n");
            }
            let (status, body) =
                partial_upload(&app, path, "Transfer-Encoding: chunked\r\n", &chunks).await;
            assert!(
                status.contains(" 413 "),
                "{backend:?} {path} chunked: {status} {body}"
            );
        }
        // Under the limit is read as usual.
        let mut doc = full_app("Big but allowed");
        doc["client_id"] = json!("c".repeat(60 * 1024 - 400));
        let (status, v) = app
            .post(&app.admin, "/api/resource/Connected%20App", &doc)
            .await;
        assert_ne!(status, 413, "{v}");
        assert!(status < 500, "{v}");
    }
    // The default limit is 1 MiB.
    assert_eq!(
        connected_apps::configuration::Settings::default().body_limit,
        1024 * 1024
    );
}

// ---------------------------------------------------------------------------------------------
// Header injection through success_uri

#[tokio::test]
async fn a_success_uri_cannot_inject_headers_into_the_callbacks_redirect() {
    use crate::oauth_flow::*;
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let admin = o.admin();
        for hostile in [
            "/ok\r\nSet-Cookie: sid=stolen",
            "/ok\nLocation: https://evil.example",
            "/ok%0d%0aSet-Cookie:%20sid=stolen",
            "/ok\u{2028}X-Injected: 1",
            "https://evil.example/\r\nX-Injected: 1",
        ] {
            let (status, v) = o
                .app
                .post(
                    &admin,
                    "/api/method/run_doc_method",
                    &json!({
                        "dt": "Connected App", "dn": o.name,
                        "method": "initiate_web_application_flow",
                        "args": json!({"success_uri": hostile}).to_string(),
                    }),
                )
                .await;
            assert!(status < 500, "{backend:?} {hostile:?}: {status} {v}");
            if status != 200 {
                assert!(frappe_error_shaped(&v), "{v}");
                continue;
            }
            let url = v["message"].as_str().unwrap();
            let back = o.provider.authorize(url).await;
            let r = o.callback(Some(&admin), &back).await;
            let what = format!("{backend:?} {hostile:?}");
            assert!(r.status().as_u16() < 500, "{what}: {}", r.status());
            assert!(r.headers().get("x-injected").is_none(), "{what}");
            for c in r.headers().get_all("set-cookie") {
                assert!(
                    !c.to_str().unwrap_or("").contains("stolen"),
                    "{what}: {c:?}"
                );
            }
            if let Some(loc) = r.headers().get("location") {
                let bytes = loc.as_bytes();
                let text = String::from_utf8_lossy(bytes);
                assert!(
                    !bytes.contains(&b'\r')
                        && !bytes.contains(&b'\n')
                        && !text.contains("evil.example"),
                    "{what}: Location {text:?}"
                );
            }
        }
    }
}
