//! Operating the service: `/metrics` (requests, latency, pool, OAuth outcomes), request ids,
//! liveness and readiness, graceful shutdown on SIGTERM, and no secret in any log line.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connected_apps::db::schema::auth;
use connected_apps::secrets::KeyRing;
use diesel::prelude::*;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::cli::{cli_api_key, command_on, free_port, write_site_config};
use crate::helpers::*;
use crate::oauth_flow::*;
use crate::provider::TestProvider;

/// The value of one sample line of a Prometheus text exposition (`name{labels}`).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics(app: &TestApp) -> String {
    let r = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.expect("metrics text")
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_and_status_never_by_raw_path() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let (status, _) = app
            .get(&app.admin, "/api/resource/Connected%20App/no-such-app-xyz")
            .await;
        assert_eq!(status, 404);
        let (status, _) = app.get(&app.admin, "/api/resource/Connected%20App").await;
        assert_eq!(status, 200);
        let (status, _) = app.get(&app.admin, "/no/such/route").await;
        assert_eq!(status, 404);

        let text = metrics(&app).await;
        let series = |s: &str| sample(&text, s);
        assert_eq!(
            series(
                r#"http_requests_total{method="GET",route="/api/resource/{doctype}/{name}",status="404"}"#
            ),
            Some(1.0),
            "{backend:?}:\n{text}"
        );
        assert_eq!(
            series(
                r#"http_requests_total{method="GET",route="/api/resource/{doctype}",status="200"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            series(r#"http_requests_total{method="GET",route="unmatched",status="404"}"#),
            Some(1.0)
        );
        assert_eq!(
            series(
                r#"http_request_duration_seconds_count{method="GET",route="/api/resource/{doctype}"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            series(
                r#"http_request_duration_seconds_bucket{method="GET",route="/api/resource/{doctype}",le="+Inf"}"#
            ),
            Some(1.0)
        );
        assert!(!text.contains("no-such-app-xyz") && !text.contains("/no/such"));
        assert_eq!(series("db_pool_max_connections"), Some(8.0));
        assert!(series("db_pool_connections").unwrap() >= 1.0, "{text}");
        assert!(series("db_pool_idle_connections").is_some());
    }
}

#[tokio::test]
async fn metrics_count_oauth_code_exchanges_refreshes_by_failure_reason_and_revocations() {
    for backend in BACKENDS {
        let o = oauth_app(backend, |_| {}, json!({}), json!({})).await;
        let admin = o.admin();
        // A code exchange and a refresh that work.
        o.connect(&admin, json!({})).await;
        o.expire("Administrator");
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 200, "{v}");
        // A refresh against an unreachable provider (transient).
        let path = format!("/api/resource/Connected%20App/{}", o.name);
        let (status, _) = o
            .app
            .put(
                &admin,
                &path,
                &json!({"token_uri": "http://127.0.0.1:1/token"}),
            )
            .await;
        assert_eq!(status, 200);
        o.expire("Administrator");
        let (status, _) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 503);
        point_at(&o.app, &o.name, &o.provider).await;
        // A refresh the provider refuses (the grant was revoked there).
        let rt = o.stored_secret("Administrator", "refresh_token").unwrap();
        let r = reqwest::Client::new()
            .post(o.provider.revocation_endpoint())
            .form(&[
                ("token", rt.as_str()),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let (status, _) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 417);
        // A code the provider does not know.
        let url = o.initiate(&admin, json!({})).await;
        let state = param(&url, "state").unwrap();
        let r = o
            .callback(
                Some(&admin),
                &format!("{}?code=not-a-code&state={state}", o.redirect_uri),
            )
            .await;
        assert!(r.status().is_client_error(), "{}", r.status());
        // Client credentials, and revocation when the connection is deleted.
        let (status, v) = o
            .app
            .get(
                &admin,
                &format!(
                    "/api/method/connected_apps.get_backend_app_token?connected_app={}",
                    o.name
                ),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let (status, _) = o
            .app
            .delete(
                &admin,
                &format!(
                    "/api/resource/Token%20Cache/{}",
                    enc(&o.tc_name("Administrator"))
                ),
            )
            .await;
        assert_eq!(status, 202);

        let text = metrics(&o.app).await;
        let series = |s: &str| sample(&text, s).unwrap_or(0.0);
        assert_eq!(
            series(r#"oauth_code_exchanges_total{outcome="ok"}"#),
            1.0,
            "{backend:?}:\n{text}"
        );
        assert_eq!(
            series(r#"oauth_code_exchanges_total{outcome="failed"}"#),
            1.0
        );
        assert_eq!(
            series(r#"oauth_refreshes_total{outcome="ok",reason=""}"#),
            1.0
        );
        assert_eq!(
            series(r#"oauth_refreshes_total{outcome="failed",reason="transient"}"#),
            1.0
        );
        assert_eq!(
            series(r#"oauth_refreshes_total{outcome="failed",reason="invalid_grant"}"#),
            1.0
        );
        assert_eq!(
            series(r#"oauth_client_credentials_total{outcome="ok"}"#),
            1.0
        );
        assert!(
            series(r#"oauth_revocations_total{outcome="ok"}"#) >= 1.0,
            "{text}"
        );
        assert_eq!(series(r#"oauth_revocations_total{outcome="failed"}"#), 0.0);
    }
}

#[tokio::test]
async fn every_answer_carries_a_request_id_taken_from_a_plain_client_id_or_generated() {
    // Only headers are under test, nothing is stored: one backend is enough.
    let app = spawn_app(Backend::Sqlite).await;
    let id_of = |r: &reqwest::Response| {
        r.headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_string())
    };
    let ping = app.url("/api/method/ping");

    let r = app
        .client
        .get(&ping)
        .header("X-Request-Id", "lb-42_Ab")
        .send()
        .await
        .unwrap();
    assert_eq!(id_of(&r).as_deref(), Some("lb-42_Ab"));

    let first = id_of(&app.client.get(&ping).send().await.unwrap()).unwrap();
    let second = id_of(&app.client.get(&ping).send().await.unwrap()).unwrap();
    assert!(uuid::Uuid::parse_str(&first).is_ok(), "{first}");
    assert_ne!(first, second);

    for bad in ["has space", "semi;colon", &"x".repeat(65)] {
        let r = app
            .client
            .get(&ping)
            .header("X-Request-Id", bad)
            .send()
            .await
            .unwrap();
        let id = id_of(&r).unwrap();
        assert!(
            uuid::Uuid::parse_str(&id).is_ok(),
            "{bad:?} was kept as {id:?}"
        );
    }
    // Errors carry one too.
    let r = app
        .client
        .get(app.url("/api/resource/Nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(id_of(&r).is_some());
}

#[tokio::test]
async fn healthz_and_readyz_answer_when_the_database_does() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let (status, v) = app.get("", "/healthz").await;
        assert_eq!((status, v), (200, json!({"message": "ok"})));
        let (status, v) = app.get("", "/readyz").await;
        assert_eq!(
            (status, v),
            (200, json!({"message": "ready"})),
            "{backend:?}"
        );
    }
}

/// `mysql://user:password@host:port/db` for another user on the test server.
fn mysql_url_as(db_url: &str, user: &str, password: &str) -> String {
    let mut u = reqwest::Url::parse(db_url).expect("mysql url");
    u.set_username(user).unwrap();
    u.set_password(Some(password)).unwrap();
    u.to_string()
}

#[tokio::test]
async fn readyz_is_a_503_in_frappes_shape_when_the_database_stops_answering() {
    // Taking the database away means taking a MariaDB account away: MariaDB only.
    let db = TestDb::new(Backend::Mysql);
    let user = format!(
        "ca_ready_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let db_name = db.url.rsplit('/').next().unwrap().to_string();
    let mut root = diesel::MysqlConnection::establish(&mysql_server_url()).expect("root");
    diesel::connection::SimpleConnection::batch_execute(
        &mut root,
        &format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-1'; \
             GRANT ALL PRIVILEGES ON `{db_name}`.* TO '{user}'@'%'; \
             CREATE USER '{user}'@'localhost' IDENTIFIED BY 'pw-1'; \
             GRANT ALL PRIVILEGES ON `{db_name}`.* TO '{user}'@'localhost';"
        ),
    )
    .expect("create the service's account");
    let mut settings = test_settings(&db);
    settings.database_url = mysql_url_as(&db.url, &user, "pw-1");
    settings.db_timeout = Duration::from_secs(1);
    let app = spawn_on(db, settings).await;
    assert_eq!(app.get("", "/readyz").await.0, 200);

    // The account goes away and its connections are killed.
    diesel::connection::SimpleConnection::batch_execute(
        &mut root,
        &format!("DROP USER '{user}'@'%'; DROP USER '{user}'@'localhost';"),
    )
    .expect("drop the account");
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Unsigned<diesel::sql_types::BigInt>)]
        id: u64,
    }
    let ids: Vec<Id> = diesel::sql_query(format!(
        "SELECT id FROM information_schema.processlist WHERE user = '{user}'"
    ))
    .load(&mut root)
    .expect("processlist");
    for Id { id } in ids {
        let _ =
            diesel::connection::SimpleConnection::batch_execute(&mut root, &format!("KILL {id}"));
    }

    let (status, v) = app.get("", "/readyz").await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["exc_type"], "ServiceUnavailableError", "{v}");
    assert!(
        server_messages(&v)[0].contains("temporarily unavailable"),
        "{v}"
    );
    // Liveness does not depend on the database.
    assert_eq!(app.get("", "/healthz").await.0, 200);
}

/// The binary serving a test database, its stdout and stderr collected line by line.
struct Running {
    child: tokio::process::Child,
    address: String,
    output: Arc<Mutex<Vec<String>>>,
    client: reqwest::Client,
}

fn collect_into(
    pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
}

impl Running {
    async fn start(db: &TestDb, site_config: &Path, log: &str, extra: &[&str]) -> Running {
        let port = free_port();
        let address = format!("http://127.0.0.1:{port}");
        let mut cmd = command_on(db, site_config);
        cmd.env("RUST_LOG", log)
            .args([
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--public-url",
                &address,
                // The test provider listens on loopback.
                "--outbound-allow",
                LOOPBACK,
            ])
            .args(extra)
            .args(["serve", "--admin-password", ADMIN_PASSWORD])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn serve");
        let output = Arc::new(Mutex::new(Vec::new()));
        collect_into(child.stdout.take().unwrap(), output.clone());
        collect_into(child.stderr.take().unwrap(), output.clone());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let running = Running {
            child,
            address,
            output,
            client,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(r) = running.client.get(running.url("/readyz")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "serve did not come up: {:?}",
                running.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        running
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    fn output(&self) -> Vec<String> {
        self.output.lock().unwrap().clone()
    }

    fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    async fn send(
        &self,
        auth: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut r = self
            .client
            .request(method, self.url(path))
            .header("Authorization", auth);
        if let Some(b) = body {
            r = r.json(b);
        }
        status_json(r.send().await.expect("request")).await
    }
}

const ADMIN_PASSWORD: &str = "Adm1n-pass-word-not-in-logs";

/// A new site config with a fresh key; returns its path and the key.
fn site_config(db: &TestDb) -> (PathBuf, String) {
    let path = db.dir.path().join("site_config.json");
    let key = connected_apps::secrets::generate_key();
    write_site_config(&path, &key);
    (path, key)
}

fn sigterm(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_and_exits_0() {
    for backend in BACKENDS {
        let db = TestDb::new(backend);
        let (sc, _) = site_config(&db);
        let mut served = Running::start(&db, &sc, "info", &[]).await;
        let admin = cli_api_key(command_on(&db, &sc), "Administrator").await;
        // A token endpoint that answers only when the test says so.
        let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let token_uri = format!("http://{}/token", slow.local_addr().unwrap());
        let mut body = app_body();
        body["token_uri"] = json!(token_uri);
        let (status, v) = served
            .send(
                &admin,
                reqwest::Method::POST,
                "/api/resource/Connected%20App",
                Some(&body),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let name = v["data"]["name"].as_str().unwrap().to_string();

        let path = format!("/api/method/connected_apps.get_backend_app_token?connected_app={name}");
        let request = {
            let client = served.client.clone();
            let url = served.url(&path);
            let admin = admin.clone();
            tokio::spawn(async move {
                let r = client.get(url).header("Authorization", admin).send().await;
                status_json(r.expect("the in-flight request is answered")).await
            })
        };
        let (mut provider_side, _) = slow.accept().await.unwrap();
        let mut buf = vec![0u8; 8192];
        let _ = provider_side.read(&mut buf).await.unwrap();

        sigterm(served.pid());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !served.output().iter().any(|l| l.contains("SIGTERM")) {
            assert!(
                std::time::Instant::now() < deadline,
                "{:?}",
                served.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let reply =
            r#"{"access_token":"cc-token-after-sigterm","token_type":"Bearer","expires_in":3600}"#;
        provider_side
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                )
                .as_bytes(),
            )
            .await
            .unwrap();

        let (status, v) = request.await.unwrap();
        assert_eq!(status, 200, "{backend:?}: {v}");
        assert_eq!(v["message"]["access_token"], "cc-token-after-sigterm");
        let exit = tokio::time::timeout(Duration::from_secs(30), served.child.wait())
            .await
            .expect("the process exits after draining")
            .unwrap();
        assert_eq!(exit.code(), Some(0), "{:?}", served.output());
    }
}

/// Every encrypted value in `__Auth`, decrypted: client secrets, tokens, API secrets.
fn stored_secrets(db: &TestDb, key: &str) -> Vec<String> {
    let ring = KeyRing::with_fallbacks(key, &[]).unwrap();
    let mut conn = db.raw();
    let rows: Vec<String> = auth::table
        .filter(auth::encrypted.eq(1))
        .select(auth::password)
        .load(&mut conn)
        .unwrap();
    rows.iter()
        .map(|v| ring.decrypt(v).unwrap().expose_secret().to_string())
        .collect()
}

#[tokio::test]
async fn the_full_oauth_flow_logged_at_trace_level_never_logs_a_secret() {
    for backend in BACKENDS {
        let db = TestDb::new(backend);
        let (sc, key) = site_config(&db);
        // SQLite logs JSON lines, MariaDB human-readable text: both formats are searched.
        let mut flags = vec![];
        if backend == Backend::Sqlite {
            flags.push("--log-json");
        }
        let served = Running::start(&db, &sc, "trace", &flags).await;
        let admin = cli_api_key(command_on(&db, &sc), "Administrator").await;
        let mut secrets: Vec<String> = vec![
            ADMIN_PASSWORD.into(),
            CLIENT_SECRET.into(),
            key.clone(),
            admin.rsplit(':').next().unwrap().to_string(),
        ];
        // A session login.
        let r = served
            .client
            .post(served.url("/api/method/login"))
            .json(&json!({"usr": "Administrator", "pwd": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let sid = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.strip_prefix("sid="))
            .map(|v| v.split(';').next().unwrap_or_default().to_string())
            .next()
            .expect("sid cookie");
        secrets.push(sid.clone());
        let r = served
            .client
            .get(served.url("/api/method/frappe.auth.get_logged_user"))
            .header("Cookie", format!("sid={sid}"))
            .send()
            .await
            .unwrap();
        assert_eq!(status_json(r).await.1["message"], "Administrator");

        // Connect: the app, the provider, the authorization and the callback.
        let (status, v) = served
            .send(
                &admin,
                reqwest::Method::POST,
                "/api/resource/Connected%20App",
                Some(&app_body()),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let name = v["data"]["name"].as_str().unwrap().to_string();
        let redirect_uri = v["data"]["redirect_uri"].as_str().unwrap().to_string();
        let provider =
            TestProvider::start(provider_config(&redirect_uri, json!({}), json!({}))).await;
        let (status, v) = served
            .send(
                &admin,
                reqwest::Method::PUT,
                &format!("/api/resource/Connected%20App/{name}"),
                Some(&json!({
                    "authorization_uri": provider.authorization_endpoint(),
                    "token_uri": provider.token_endpoint(),
                    "revocation_uri": provider.revocation_endpoint(),
                })),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let (status, v) = served
            .send(
                &admin,
                reqwest::Method::POST,
                "/api/method/run_doc_method",
                Some(&json!({"dt": "Connected App", "dn": name, "method": "initiate_web_application_flow"})),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let url = v["message"].as_str().unwrap().to_string();
        secrets.push(param(&url, "state").unwrap());
        let back = provider.authorize(&url).await;
        secrets.push(param(&back, "code").unwrap());
        let r = served
            .client
            .get(&back)
            .header("Cookie", format!("sid={sid}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{:?}", r.text().await);
        secrets.extend(stored_secrets(&db, &key));

        // Refresh (the token is made to have expired long ago), client credentials, revocation.
        {
            use connected_apps::db::schema::ca_token_state;
            let long_ago = chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .unwrap();
            diesel::update(ca_token_state::table)
                .set(ca_token_state::received_at.eq(Some(long_ago)))
                .execute(&mut db.raw())
                .unwrap();
        }
        let (status, v) = served
            .send(
                &admin,
                reqwest::Method::GET,
                &format!("/api/method/connected_apps.get_access_token?connected_app={name}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        secrets.extend(stored_secrets(&db, &key));
        let (status, v) = served
            .send(
                &admin,
                reqwest::Method::GET,
                &format!("/api/method/connected_apps.get_backend_app_token?connected_app={name}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        secrets.extend(stored_secrets(&db, &key));
        let (status, v) = served
            .send(
                &admin,
                reqwest::Method::DELETE,
                &format!("/api/resource/Token%20Cache/{name}-Administrator"),
                None,
            )
            .await;
        assert_eq!(status, 202, "{v}");
        for r in provider.requests().await {
            for f in ["code_verifier", "refresh_token", "token", "code"] {
                secrets.extend(field(&r, f));
            }
        }
        assert!(
            provider
                .requests()
                .await
                .iter()
                .any(|r| r["path"].as_str().unwrap_or("").contains("revo")),
            "the tokens were revoked"
        );

        let output = served.output();
        assert!(
            output
                .iter()
                .any(|l| l.contains("request_id") && l.contains("TRACE")),
            "trace logging was on: {output:?}"
        );
        secrets.retain(|s| s.len() >= 8);
        secrets.sort();
        secrets.dedup();
        assert!(secrets.len() >= 12, "{secrets:?}");
        for secret in &secrets {
            let leaks: Vec<&String> = output
                .iter()
                .filter(|l| l.contains(secret.as_str()))
                .collect();
            assert!(
                leaks.is_empty(),
                "{backend:?}: a secret was logged: {leaks:#?}"
            );
        }
        provider.stop().await;
    }
}
