//! Two service processes on one MariaDB database under a mixed load for a fixed time, against
//! a provider that rotates refresh tokens and issues access tokens that live 2 seconds: no
//! refresh ever meets `invalid_grant`, no token is lost, and every session works on both.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::*;
use crate::oauth_flow::{app_body, provider_config, USER1};
use crate::provider::TestProvider;

const LOAD_FOR: Duration = Duration::from_secs(6);
const USERS: [&str; 3] = [USER1, "load2@example.com", "load3@example.com"];

/// A `connected-apps serve` process, killed on drop.
struct Process {
    _child: tokio::process::Child,
    address: String,
}

fn port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn args(db: &TestDb, public_url: &str) -> Vec<String> {
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
        // The provider listens on loopback.
        "--outbound-allow".into(),
        LOOPBACK.into(),
    ]
}

async fn cli(db: &TestDb, public_url: &str, cmd: &[&str]) -> String {
    let out = tokio::process::Command::new(binary())
        .args(args(db, public_url))
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

async fn start(db: &TestDb, public_url: &str, port: u16) -> Process {
    let log = std::fs::File::create(db.dir.path().join(format!("serve-{port}.log"))).unwrap();
    let child = tokio::process::Command::new(binary())
        .args(args(db, public_url))
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
        .unwrap();
    let address = format!("http://127.0.0.1:{port}");
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("{address}/api/method/ping")).await {
            if r.status() == 200 {
                return Process {
                    _child: child,
                    address,
                };
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("serve on {port} did not start");
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    header: (&str, &str),
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = http.request(method, url).header(header.0, header.1);
    if let Some(b) = body {
        r = r.json(&b);
    }
    match r.send().await {
        Ok(r) => status_json(r).await,
        Err(e) => (0, json!(e.to_string())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_under_mixed_load_never_meet_invalid_grant_and_lose_no_token_or_session() {
    // Arrange: one MariaDB database, one site key, two processes, three connected users.
    let db = TestDb::new(Backend::Mysql);
    let key = connected_apps::secrets::generate_key();
    std::fs::write(
        db.dir.path().join("site_config.json"),
        json!({ "encryption_key": key }).to_string(),
    )
    .unwrap();
    std::fs::write(
        db.dir.path().join("settings.json"),
        json!({ "refresh_margin_secs": 1 }).to_string(),
    )
    .unwrap();
    let (pa, pb) = (port(), port());
    let public_url = format!("http://127.0.0.1:{pa}");
    cli(&db, &public_url, &["migrate"]).await;
    let admin = format!(
        "token {}",
        cli(&db, &public_url, &["user", "api-key", "Administrator"]).await
    );
    let mut keys = Vec::new();
    for u in USERS {
        cli(
            &db,
            &public_url,
            &["user", "add", u, "--password", "pass-word-1"],
        )
        .await;
        keys.push(format!(
            "token {}",
            cli(&db, &public_url, &["user", "api-key", u]).await
        ));
    }
    let a = start(&db, &public_url, pa).await;
    let b = start(&db, &public_url, pb).await;
    let bases = [a.address.clone(), b.address.clone()];
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (status, doc) = call(
        &http,
        reqwest::Method::POST,
        format!("{}/api/resource/Connected%20App", a.address),
        ("Authorization", &admin),
        Some(app_body()),
    )
    .await;
    assert_eq!(status, 200, "{doc}");
    let app = doc["data"]["name"].as_str().unwrap().to_string();
    let provider = TestProvider::start(provider_config(
        doc["data"]["redirect_uri"].as_str().unwrap(),
        json!({"rotateRefreshToken": true, "accessTokenTTL": 2}),
        json!({}),
    ))
    .await;
    let (status, v) = call(
        &http,
        reqwest::Method::PUT,
        format!("{}/api/resource/Connected%20App/{app}", b.address),
        ("Authorization", &admin),
        Some(json!({
            "authorization_uri": provider.authorization_endpoint(),
            "token_uri": provider.token_endpoint(),
            "revocation_uri": provider.revocation_endpoint(),
        })),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let mut sids = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let base = &bases[i % 2];
        let (status, v) = call(
            &http,
            reqwest::Method::POST,
            format!("{base}/api/method/run_doc_method"),
            ("Authorization", k),
            Some(json!({"dt": "Connected App", "dn": app, "method": "initiate_web_application_flow"})),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let back = provider.authorize(v["message"].as_str().unwrap()).await;
        let r = http
            .get(&back)
            .header("Authorization", k)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{}", r.text().await.unwrap_or_default());
        // A browser session on the other process.
        let r = http
            .post(format!("{}/api/method/login", bases[(i + 1) % 2]))
            .json(&json!({"usr": USERS[i], "pwd": "pass-word-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let sid = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|c| c.to_str().ok()?.strip_prefix("sid="))
            .map(|c| c.split(';').next().unwrap().to_string())
            .next()
            .unwrap();
        sids.push(format!("sid={sid}"));
    }
    provider.reset().await;

    // Act: for a fixed time, every user uses its token, asks has_token, lists, and reads its
    // session on both processes, while the admin keeps writing Connected Apps.
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let deadline = Instant::now() + LOAD_FOR;
    let mut tasks = Vec::new();
    for (i, user) in USERS.iter().enumerate() {
        for lane in 0..2 {
            let (http, bases, failures, app) =
                (http.clone(), bases.clone(), failures.clone(), app.clone());
            let (key, sid, user) = (keys[i].clone(), sids[i].clone(), user.to_string());
            tasks.push(tokio::spawn(async move {
                let mut n = 0usize;
                while Instant::now() < deadline {
                    n += 1;
                    let base = &bases[(n + lane) % 2];
                    let token = format!(
                        "{base}/api/method/connected_apps.get_access_token?connected_app={app}"
                    );
                    let checks = [
                        call(&http, reqwest::Method::GET, token.clone(), ("Authorization", &key), None).await,
                        call(&http, reqwest::Method::POST, token, ("Cookie", &sid), None).await,
                        call(
                            &http,
                            reqwest::Method::GET,
                            format!("{base}/api/method/frappe.integrations.doctype.connected_app.connected_app.has_token?connected_app={app}"),
                            ("Cookie", &sid),
                            None,
                        )
                        .await,
                        call(
                            &http,
                            reqwest::Method::GET,
                            format!("{base}/api/method/frappe.auth.get_logged_user"),
                            ("Cookie", &sid),
                            None,
                        )
                        .await,
                    ];
                    let ok = checks[0].0 == 200
                        && checks[0].1["message"]["access_token"].is_string()
                        && checks[1].0 == 200
                        && checks[1].1["message"]["access_token"].is_string()
                        && checks[2] == (200, json!({"message": true}))
                        && checks[3] == (200, json!({"message": user}));
                    if !ok {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{user} on {base}: {checks:?}"));
                    }
                }
            }));
        }
    }
    {
        let (http, bases, failures, admin) =
            (http.clone(), bases.clone(), failures.clone(), admin.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while Instant::now() < deadline {
                n += 1;
                let mut body = app_body();
                body["provider_name"] = json!(format!("Load {n}"));
                let (status, v) = call(
                    &http,
                    reqwest::Method::POST,
                    format!("{}/api/resource/Connected%20App", bases[n % 2]),
                    ("Authorization", &admin),
                    Some(body),
                )
                .await;
                if status != 200 {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("admin write: {status} {v}"));
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    // Assert
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    let stats = provider.stats().await;
    assert_eq!(stats["invalid_grant"], 0, "{stats}");
    assert!(
        stats["refresh_requests"].as_u64().unwrap_or(0) >= USERS.len() as u64,
        "the tokens were refreshed during the load: {stats}"
    );
    // Every user still holds a working token and session on both processes.
    for (i, user) in USERS.iter().enumerate() {
        for base in &bases {
            let (status, v) = call(
                &http,
                reqwest::Method::GET,
                format!("{base}/api/method/connected_apps.get_access_token?connected_app={app}"),
                ("Authorization", &keys[i]),
                None,
            )
            .await;
            assert_eq!(status, 200, "{user} on {base}: {v}");
            let (status, v) = call(
                &http,
                reqwest::Method::GET,
                format!("{base}/api/method/frappe.auth.get_logged_user"),
                ("Cookie", &sids[i]),
                None,
            )
            .await;
            assert_eq!((status, &v["message"]), (200, &json!(user)), "{base}");
        }
    }
}
