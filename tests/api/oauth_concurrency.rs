//! The single-flight proof: two service processes on one MariaDB database refresh an expired
//! token exactly once, however many concurrent requests ask for it, against a provider that
//! rotates refresh tokens (a second refresh with the old one would be an invalid_grant).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::oauth_flow::*;
use crate::provider::TestProvider;

/// One `connected-apps serve` process, killed on drop.
struct Served {
    _child: tokio::process::Child,
    address: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The global flags every command of this test shares.
fn common_args(db: &TestDb, public_url: &str) -> Vec<String> {
    let dir = db.dir.path();
    vec![
        "--database-url".into(),
        db.url.clone(),
        "--site-config".into(),
        dir.join("site_config.json").display().to_string(),
        "--config".into(),
        dir.join("settings.json").display().to_string(),
        "--public-url".into(),
        public_url.into(),
    ]
}

/// Runs a CLI command to completion and returns its stdout.
async fn run_cli(db: &TestDb, public_url: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(binary())
        .args(common_args(db, public_url))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .expect("run the binary");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn serve(db: &TestDb, public_url: &str, port: u16, log: &Path) -> Served {
    let log = std::fs::File::create(log).expect("log file");
    let child = tokio::process::Command::new(binary())
        .args(common_args(db, public_url))
        .args([
            "--bind",
            &format!("127.0.0.1:{port}"),
            "serve",
            "--workers",
            "2",
        ])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .kill_on_drop(true)
        .spawn()
        .expect("spawn serve");
    let address = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if let Ok(r) = client
            .get(format!("{address}/api/method/ping"))
            .send()
            .await
        {
            if r.status() == 200 {
                return Served {
                    _child: child,
                    address,
                };
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("serve on port {port} did not answer ping");
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    auth: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = client.request(method, url).header("Authorization", auth);
    if let Some(b) = body {
        r = r.json(&b);
    }
    status_json(r.send().await.expect("request")).await
}

#[tokio::test]
async fn fifty_concurrent_requests_on_two_processes_refresh_an_expired_token_exactly_once() {
    // Arrange: one fresh MariaDB database, one site key, two processes behind one public URL.
    let db = TestDb::new(Backend::Mysql);
    let key = connected_apps::secrets::generate_key();
    std::fs::write(
        db.dir.path().join("site_config.json"),
        json!({ "encryption_key": key }).to_string(),
    )
    .unwrap();
    std::fs::write(
        db.dir.path().join("settings.json"),
        // The provider listens on loopback (the config-file spelling of outbound_allow).
        json!({ "outbound_allow": LOOPBACK }).to_string(),
    )
    .unwrap();
    let (port_a, port_b) = (free_port(), free_port());
    let public_url = format!("http://127.0.0.1:{port_a}");
    run_cli(&db, &public_url, &["migrate"]).await;
    run_cli(
        &db,
        &public_url,
        &["user", "add", USER1, "--password", "pass-word-1"],
    )
    .await;
    let admin = format!(
        "token {}",
        run_cli(&db, &public_url, &["user", "api-key", "Administrator"]).await
    );
    let user1 = format!(
        "token {}",
        run_cli(&db, &public_url, &["user", "api-key", USER1]).await
    );
    let a = serve(&db, &public_url, port_a, &db.dir.path().join("a.log")).await;
    let b = serve(&db, &public_url, port_b, &db.dir.path().join("b.log")).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let (status, doc) = send(
        &http,
        reqwest::Method::POST,
        format!("{}/api/resource/Connected%20App", a.address),
        &admin,
        Some(app_body()),
    )
    .await;
    assert_eq!(status, 200, "{doc}");
    let name = doc["data"]["name"].as_str().unwrap().to_string();
    let redirect_uri = doc["data"]["redirect_uri"].as_str().unwrap().to_string();
    let provider = TestProvider::start(provider_config(
        &redirect_uri,
        json!({"rotateRefreshToken": true}),
        json!({}),
    ))
    .await;
    let (status, v) = send(
        &http,
        reqwest::Method::PUT,
        format!("{}/api/resource/Connected%20App/{name}", b.address),
        &admin,
        Some(json!({
            "authorization_uri": provider.authorization_endpoint(),
            "token_uri": provider.token_endpoint(),
            "revocation_uri": provider.revocation_endpoint(),
        })),
    )
    .await;
    assert_eq!(status, 200, "{v}");

    // Connect user1 once (through process A).
    let (status, v) = send(
        &http,
        reqwest::Method::POST,
        format!("{}/api/method/run_doc_method", a.address),
        &user1,
        Some(json!({"dt": "Connected App", "dn": name, "method": "initiate_web_application_flow"})),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let back = provider.authorize(v["message"].as_str().unwrap()).await;
    let r = http
        .get(&back)
        .header("Authorization", &user1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let token_path = format!("/api/method/connected_apps.get_access_token?connected_app={name}");
    let (status, v) = send(
        &http,
        reqwest::Method::GET,
        format!("{}{token_path}", b.address),
        &user1,
        None,
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let first = v["message"]["access_token"].as_str().unwrap().to_string();
    provider.reset().await;

    // Let it expire: received long ago (the provider's tokens live an hour), so the new token,
    // received now, stays valid however long the burst takes on a loaded machine.
    {
        use connected_apps::db::schema::ca_token_state;
        use diesel::prelude::*;
        let then = chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a date");
        let n = diesel::update(
            ca_token_state::table.filter(ca_token_state::token_cache.eq(format!("{name}-{USER1}"))),
        )
        .set(ca_token_state::received_at.eq(Some(then)))
        .execute(&mut db.raw())
        .expect("expire the token");
        assert_eq!(n, 1, "user1 is connected");
    }

    // Act: 60 concurrent requests, half on each process.
    let calls = (0..60).map(|i| {
        let base = if i % 2 == 0 { &a.address } else { &b.address };
        send(
            &http,
            if i % 3 == 0 {
                reqwest::Method::POST
            } else {
                reqwest::Method::GET
            },
            format!("{base}{token_path}"),
            &user1,
            None,
        )
    });
    let results = futures_util::future::join_all(calls).await;

    // Assert: every one succeeded with the same, new token; one refresh, no invalid_grant.
    let tokens: Vec<String> = results
        .iter()
        .map(|(status, v)| {
            assert_eq!(*status, 200, "{v}");
            v["message"]["access_token"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
    assert_ne!(tokens[0], first, "the token was refreshed");
    let stats = provider.stats().await;
    assert_eq!(stats["refresh_requests"], 1, "{stats}");
    assert_eq!(stats["invalid_grant"], 0, "{stats}");
}
