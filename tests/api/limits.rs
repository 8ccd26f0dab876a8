//! Resources a caller cannot exhaust: the caps on list arguments (filters, `in` values,
//! fields, `order_by` terms, placeholders of one statement) answer a Frappe-shaped 417 at
//! once, counts leave no memory behind in the service process, and `/metrics` keeps a fixed
//! set of method labels.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;
use crate::hostile::frappe_error_shaped;
use crate::rest::{urlencode, CA};

const GET_COUNT: &str = "/api/method/frappe.client.get_count";
const GET_LIST: &str = "/api/method/frappe.client.get_list";

/// Asserts a Frappe `ValidationError` (417, error shape, no traceback) whose message says
/// what was too many.
fn assert_refused(what: &str, status: u16, v: &Value, words: &str) {
    assert_eq!(status, 417, "{what}: {v}");
    assert!(frappe_error_shaped(v), "{what}: {v}");
    assert_eq!(v["exc_type"], "ValidationError", "{what}: {v}");
    let messages = server_messages(v);
    assert!(
        messages.iter().any(|m| m.contains(words)),
        "{what}: {messages:?}"
    );
}

/// The two requests of the review: a 70,000-value `in` list answered 500, 30,000 filters
/// took half a second each. Both are refused, quickly, through every list entry point.
#[tokio::test]
async fn seventy_thousand_in_values_and_thirty_thousand_filters_are_a_quick_frappe_417() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let user = app.user("plain@example.com", &[]).await;
        app.create_app(json!({"provider_name": "Alpha"})).await;
        let values: Vec<String> = (0..70_000).map(|i| format!("v{i}")).collect();
        let many_values = json!([["name", "in", values]]);
        let many_filters: Vec<Value> = (0..30_000)
            .map(|i| json!(["name", "!=", format!("x{i}")]))
            .collect();
        let many_filters = json!(many_filters);
        for (what, filters, words) in [
            (
                "70,000 in values",
                &many_values,
                "Too many values in an 'in' filter",
            ),
            ("30,000 filters", &many_filters, "Too many filters"),
        ] {
            for (path, key) in [
                (GET_COUNT, "filters"),
                (GET_LIST, "filters"),
                (GET_LIST, "or_filters"),
                ("/api/method/frappe.desk.reportview.get_count", "filters"),
            ] {
                let body = json!({"doctype": "Connected App", key: filters});
                let started = Instant::now();
                let (status, v) = app.post(&user, path, &body).await;
                let took = started.elapsed();
                let what = format!("{backend:?} {what} as {key} to {path}");
                println!("{what}: {status} in {took:?}");
                assert_refused(&what, status, &v, words);
                // Refused before any filter is parsed: the time is the body's transfer and
                // JSON decoding (0.2-0.6 s in a debug build on a machine loaded 10 times over
                // its cores); the bound leaves room for a busier one.
                assert!(took < Duration::from_secs(3), "{what} took {took:?}");
            }
            // Filters given as a JSON string are decoded, then counted.
            let body = json!({"doctype": "Connected App", "filters": filters.to_string()});
            let (status, v) = app.post(&user, GET_COUNT, &body).await;
            assert_refused(&format!("{what} as a string"), status, &v, words);
        }
        // The service still answers normally afterwards.
        let (status, v) = app
            .post(&user, GET_COUNT, &json!({"doctype": "Connected App"}))
            .await;
        assert_eq!((status, v["message"].clone()), (200, json!(1)), "{v}");
    }
}

/// Caps generous for real use: at the cap every argument still works (and stays inside
/// SQLite's and MariaDB's bind-parameter limits); one more is a 417 that names the cap.
#[tokio::test]
async fn list_arguments_work_up_to_their_caps_and_one_more_is_a_417() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let user = app.user("plain@example.com", &[]).await;
        let mut names = vec![];
        for p in ["Alpha", "Beta", "Gamma"] {
            let doc = app
                .create_app(json!({"provider_name": p, "client_id": p.to_lowercase()}))
                .await;
            names.push(doc["name"].as_str().unwrap().to_string());
        }
        let count = |filters: Value| json!({"doctype": "Connected App", "filters": filters});

        // 5,000 values in one `in` list, two of them real.
        let mut values: Vec<String> = (0..4_998).map(|i| format!("none-{i}")).collect();
        values.extend([names[0].clone(), names[2].clone()]);
        let (status, v) = app
            .post(&user, GET_COUNT, &count(json!([["name", "in", values]])))
            .await;
        assert_eq!((status, v["message"].clone()), (200, json!(2)), "{v}");
        values.push("one-more".into());
        let (status, v) = app
            .post(&user, GET_COUNT, &count(json!([["name", "in", values]])))
            .await;
        assert_refused("5,001 in values", status, &v, "at most 5000");
        // A comma-separated string counts the same way.
        let (status, v) = app
            .post(
                &user,
                GET_COUNT,
                &count(json!([["name", "in", values.join(",")]])),
            )
            .await;
        assert_refused("5,001 in values as text", status, &v, "at most 5000");

        // 500 filters (and or_filters together), all true for Beta only.
        let mut filters: Vec<Value> = (0..499)
            .map(|i| json!(["client_id", "!=", format!("x{i}")]))
            .collect();
        filters.push(json!(["provider_name", "=", "Beta"]));
        let (status, v) = app.post(&user, GET_COUNT, &count(json!(filters))).await;
        assert_eq!((status, v["message"].clone()), (200, json!(1)), "{v}");
        let (status, v) = app
            .post(
                &user,
                GET_COUNT,
                &json!({"doctype": "Connected App", "filters": filters,
                        "or_filters": [["name", "=", names[1]]]}),
            )
            .await;
        assert_refused("500 filters and 1 or_filter", status, &v, "at most 500");
        let as_dict: serde_json::Map<String, Value> =
            (0..501).map(|i| (format!("f{i}"), json!("x"))).collect();
        let (status, v) = app
            .post(&user, GET_COUNT, &count(Value::Object(as_dict)))
            .await;
        assert_refused("501 filters as an object", status, &v, "at most 500");

        // Placeholders of one statement: three lists of 4,000 values are under the per-list
        // cap but 12,000 placeholders together.
        let list = |p: &str| -> Vec<String> { (0..4_000).map(|i| format!("{p}{i}")).collect() };
        let three = json!([
            ["name", "not in", list("a")],
            ["client_id", "not in", list("b")],
            ["provider_name", "not in", list("c")],
        ]);
        let (status, v) = app.post(&user, GET_COUNT, &count(three)).await;
        assert_refused("12,000 placeholders", status, &v, "at most 10000");
        let two = json!([
            ["name", "not in", list("a")],
            ["client_id", "not in", list("b")],
        ]);
        let (status, v) = app.post(&user, GET_COUNT, &count(two)).await;
        assert_eq!((status, v["message"].clone()), (200, json!(3)), "{v}");

        // Fields and order_by terms, through the REST list (query string).
        let fields: Vec<&str> = (0..500).map(|i| ["name", "provider_name"][i % 2]).collect();
        let order: Vec<&str> = (0..100)
            .map(|i| ["provider_name asc", "name desc"][i % 2])
            .collect();
        let path = |fields: &[&str], order: &[&str]| {
            format!(
                "{CA}?fields={}&order_by={}&limit_page_length=1",
                urlencode(&json!(fields).to_string()),
                urlencode(&order.join(","))
            )
        };
        let (status, v) = app.get(&user, &path(&fields, &order)).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["data"][0]["provider_name"], "Alpha", "{v}");
        let mut more_fields = fields.clone();
        more_fields.push("name");
        let (status, v) = app.get(&user, &path(&more_fields, &order)).await;
        assert_refused("501 fields", status, &v, "Too many fields");
        let body = json!({"doctype": "Connected App", "fields": more_fields.join(",")});
        let (status, v) = app.post(&user, GET_LIST, &body).await;
        assert_refused("501 fields as text", status, &v, "Too many fields");
        let mut more_order = order.clone();
        more_order.push("name");
        let (status, v) = app.get(&user, &path(&fields, &more_order)).await;
        assert_refused("101 order_by terms", status, &v, "Too many order_by terms");

        // API v2 answers in its own error shape.
        let many: Vec<Value> = (0..501).map(|i| json!(["name", "!=", i])).collect();
        let (status, v) = app
            .get(
                &user,
                &format!(
                    "/api/v2/document/Connected%20App?filters={}",
                    urlencode(&json!(many).to_string())
                ),
            )
            .await;
        assert_eq!(status, 417, "{v}");
        assert!(frappe_error_shaped(&v), "{v}");
    }
}

/// A `connected-apps serve` process (killed on drop) and a plain user's API key.
struct Served {
    child: tokio::process::Child,
    address: String,
    key: String,
}

async fn cli(db: &TestDb, cmd: &[&str]) -> String {
    let out = tokio::process::Command::new(binary())
        .args(["--database-url", &db.url, "--site-config"])
        .arg(db.dir.path().join("site_config.json"))
        .args(cmd)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn serve(db: &TestDb) -> Served {
    std::fs::write(
        db.dir.path().join("site_config.json"),
        json!({ "encryption_key": connected_apps::secrets::generate_key() }).to_string(),
    )
    .unwrap();
    cli(db, &["migrate"]).await;
    cli(
        db,
        &["user", "add", "plain@example.com", "--password", "pw-1"],
    )
    .await;
    let key = format!(
        "token {}",
        cli(db, &["user", "api-key", "plain@example.com"]).await
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let log = std::fs::File::create(db.dir.path().join("serve.log")).unwrap();
    let child = tokio::process::Command::new(binary())
        .args(["--database-url", &db.url, "--site-config"])
        .arg(db.dir.path().join("site_config.json"))
        .args(["--bind", &format!("127.0.0.1:{port}"), "serve"])
        .args(["--workers", "2"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let address = format!("http://127.0.0.1:{port}");
    for _ in 0..300 {
        if let Ok(r) = reqwest::get(format!("{address}/api/method/ping")).await {
            if r.status() == 200 {
                return Served {
                    child,
                    address,
                    key,
                };
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("serve did not start");
}

/// Resident memory of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024.0
}

/// 80 counts with distinct 4,000-value `in` lists (800 KB each, inside the caps) by a plain
/// user: before, each left over a megabyte behind (the count coalescer kept the SQL plus a
/// dump of every value as its key), so the process grew by about 250 MiB over 160 counts and
/// kept it. Now the service holds nothing once a count is answered: its resident memory grows
/// by less than 40 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_distinct_counts_leave_no_memory_behind_in_the_service_process() {
    for backend in BACKENDS {
        let db = TestDb::new(backend);
        let served = serve(&db).await;
        let pid = served.child.id().unwrap();
        let http = reqwest::Client::new();
        let count = |i: usize| {
            let values: Vec<String> = (0..4_000)
                .map(|j| format!("{i:06}-{j:06}-{}", "x".repeat(186)))
                .collect();
            let body = json!({"doctype": "Connected App", "filters": [["name", "in", values]]});
            let (http, url, key) = (
                http.clone(),
                format!("{}{GET_COUNT}", served.address),
                served.key.clone(),
            );
            async move {
                let r = http
                    .post(url)
                    .header("Authorization", key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                status_json(r).await
            }
        };
        // Warm up: connections, prepared statements, allocator pages.
        for i in 0..10 {
            let (status, v) = count(i).await;
            assert_eq!((status, v["message"].clone()), (200, json!(0)), "{v}");
        }
        let before = rss_mib(pid);
        for i in 10..90 {
            let (status, v) = count(i).await;
            assert_eq!((status, v["message"].clone()), (200, json!(0)), "{v}");
        }
        let after = rss_mib(pid);
        println!("{backend:?}: RSS {before:.1} MiB -> {after:.1} MiB after 80 large counts");
        assert!(
            after - before < 40.0,
            "{backend:?}: RSS grew from {before:.1} to {after:.1} MiB over 80 answered counts"
        );
    }
}

/// 200 requests with distinct 8,000-character methods made `/metrics` 28 MB. Methods are
/// labelled from a fixed set, anything else `other`.
#[tokio::test]
async fn metrics_label_unknown_http_methods_as_other() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        for i in 0..50 {
            let method = format!("X{i:04}{}", "Y".repeat(8_000));
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let r = app
                .client
                .request(method, app.url("/api/method/ping"))
                .send()
                .await
                .unwrap();
            assert!(r.status().as_u16() < 500, "{}", r.status());
        }
        for m in ["GET", "PATCH", "OPTIONS", "HEAD"] {
            let method = reqwest::Method::from_bytes(m.as_bytes()).unwrap();
            app.client
                .request(method, app.url("/api/method/ping"))
                .send()
                .await
                .unwrap();
        }
        let text = app
            .client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.len() < 64 * 1024,
            "/metrics is {} bytes after 50 odd methods",
            text.len()
        );
        let mut methods: Vec<&str> = text
            .split("method=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .collect();
        methods.sort_unstable();
        methods.dedup();
        for m in &methods {
            assert!(
                ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "other"].contains(m),
                "method label {:?}…",
                &m[..m.len().min(20)]
            );
        }
        for m in ["other", "PATCH", "OPTIONS", "HEAD", "GET"] {
            assert!(methods.contains(&m), "{m} missing from {methods:?}");
        }
    }
}

/// A list with a child-table field and no page limit binds its rows' names to read their
/// child rows: 66,000 rows used to exceed MariaDB's 65,535 placeholders (a 500) and matched
/// child rows to parents in quadratic time. The names are now bound in chunks and the
/// children grouped by parent.
#[tokio::test]
async fn an_unlimited_list_with_a_child_field_over_66000_rows_is_answered_whole() {
    const ROWS: usize = 66_000;
    for backend in [Backend::Mysql, Backend::Sqlite] {
        let app = spawn_app(backend).await;
        let user = app.user("plain@example.com", &[]).await;
        let mut conn = app.db.raw();
        let stamp = "2026-01-01 00:00:00.000000";
        for start in (0..ROWS).step_by(2_000) {
            let range = start..(start + 2_000).min(ROWS);
            let apps: Vec<String> = range
                .clone()
                .map(|i| {
                    format!(
                        "('bulk-{i:06}', '{stamp}', '{stamp}', 'Administrator', \
                         'Administrator', 'P{i}')"
                    )
                })
                .collect();
            let scopes: Vec<String> = range
                .map(|i| {
                    format!(
                        "('sc-{i:06}', '{stamp}', '{stamp}', 's{i}', 'bulk-{i:06}', 'scopes', \
                         'Connected App', 1)"
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO `tabConnected App` (`name`, `creation`, `modified`, `owner`, \
                 `modified_by`, `provider_name`) VALUES {};
                 INSERT INTO `tabOAuth Scope` (`name`, `creation`, `modified`, `scope`, \
                 `parent`, `parentfield`, `parenttype`, `idx`) VALUES {};",
                apps.join(", "),
                scopes.join(", ")
            );
            diesel::connection::SimpleConnection::batch_execute(&mut conn, &sql).unwrap();
        }
        let body = json!({
            "doctype": "Connected App",
            "fields": ["name", "`tabOAuth Scope`.scope"],
            "order_by": "name asc",
            "limit_page_length": 0,
        });
        let (status, v) = app.post(&user, GET_LIST, &body).await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        let rows = v["message"].as_array().unwrap();
        assert_eq!(rows.len(), ROWS, "{backend:?}");
        for (i, row) in rows.iter().enumerate() {
            assert_eq!(row["name"], format!("bulk-{i:06}"), "{backend:?}");
            assert_eq!(row["scope"], format!("s{i}"), "{backend:?}");
        }
    }
}
