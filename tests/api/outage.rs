//! A failing database: a MariaDB the test runs itself is killed in the middle of a write load.
//! While it is down every request fails fast with a Frappe-shaped 503; once it is back the
//! service recovers on its own, and every document written before the outage is whole.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use connected_apps::db::schema::auth;
use diesel::prelude::*;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::helpers::*;

/// A MariaDB server of the test's own: its own data directory and port, killed on drop.
struct OwnMariaDb {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<std::process::Child>,
}

impl OwnMariaDb {
    /// Initialises a data directory and starts the server on a free port.
    fn start() -> OwnMariaDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = std::process::Command::new("mariadb-install-db")
            .args([
                "--no-defaults",
                "--user=root",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", dir.path().join("data").display()))
            .output()
            .expect("mariadb-install-db is needed for the outage test");
        assert!(
            out.status.success(),
            "mariadb-install-db: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let mut db = OwnMariaDb {
            dir,
            port,
            child: None,
        };
        db.run();
        db
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }

    /// Starts `mariadbd` on the data directory and waits until it accepts connections.
    fn run(&mut self) {
        let log = std::fs::File::create(self.path("mariadbd.log")).expect("log");
        let child = std::process::Command::new("/usr/sbin/mariadbd")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.path("data").display()))
            .arg(format!("--port={}", self.port))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", self.path("sock").display()))
            .arg(format!("--pid-file={}", self.path("pid").display()))
            .args([
                "--user=root",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=32M",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("/usr/sbin/mariadbd is needed for the outage test");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while diesel::MysqlConnection::establish(&self.url()).is_err() {
            assert!(
                Instant::now() < deadline,
                "mariadbd did not start: {}",
                std::fs::read_to_string(self.path("mariadbd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no clean shutdown, as when the machine under it dies.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnMariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Frappe's 503: the v1 body, or API v2's `{"errors": [...]}`.
fn is_503_in_frappes_shape(status: u16, v: &Value) -> bool {
    let (exc_type, exception, message) = match v.get("errors") {
        Some(errors) => (
            errors[0]["type"].clone(),
            errors[0]["exception"].clone(),
            errors[0]["message"].as_str().map(str::to_string),
        ),
        None => (
            v["exc_type"].clone(),
            v["exception"].clone(),
            server_messages(v).first().cloned(),
        ),
    };
    status == 503
        && exc_type == "ServiceUnavailableError"
        && exception
            .as_str()
            .is_some_and(|e| e.starts_with("frappe.exceptions.ServiceUnavailableError"))
        && message.is_some_and(|m| m.contains("temporarily unavailable"))
}

async fn create(app: &TestApp, client: &reqwest::Client, i: usize) -> Option<(u16, Value)> {
    let body = json!({
        "provider_name": format!("outage-{i}"),
        "client_id": format!("client-{i}"),
        "client_secret": format!("secret-{i}"),
        "scopes": [{"scope": "openid"}, {"scope": format!("scope-{i}")}],
    });
    let r = client
        .post(app.url("/api/resource/Connected%20App"))
        .header("Authorization", &app.admin)
        .json(&body)
        .send()
        .await
        .ok()?;
    Some(status_json(r).await)
}

/// Every Connected App row with its child scopes and decrypted client secret.
fn stored_apps(url: &str, app: &TestApp) -> Vec<(String, String, Vec<String>, Option<String>)> {
    let mut conn = diesel::MysqlConnection::establish(url).expect("connect");
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        provider_name: Option<String>,
    }
    #[derive(QueryableByName)]
    struct Scope {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        scope: Option<String>,
    }
    let rows: Vec<Row> =
        diesel::sql_query("SELECT name, provider_name FROM `tabConnected App` ORDER BY name")
            .load(&mut conn)
            .expect("apps");
    let mut out = Vec::new();
    for r in rows {
        let scopes: Vec<Scope> =
            diesel::sql_query("SELECT scope FROM `tabOAuth Scope` WHERE parent = ? ORDER BY idx")
                .bind::<diesel::sql_types::Text, _>(&r.name)
                .load(&mut conn)
                .expect("scopes");
        let secret: Option<String> = auth::table
            .filter(auth::doctype.eq("Connected App"))
            .filter(auth::name.eq(&r.name))
            .filter(auth::fieldname.eq("client_secret"))
            .select(auth::password)
            .first(&mut conn)
            .optional()
            .expect("__Auth");
        let secret = secret.map(|s| {
            app.state
                .keys
                .decrypt(&s)
                .expect("a stored secret decrypts")
                .expose_secret()
                .to_string()
        });
        out.push((
            r.name,
            r.provider_name.unwrap_or_default(),
            scopes.into_iter().filter_map(|s| s.scope).collect(),
            secret,
        ));
    }
    out
}

fn log_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("mariadbd.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mariadb_killed_under_load_is_a_fast_503_then_recovers_by_itself_and_loses_no_row() {
    // Arrange: the service on a MariaDB of its own, and a write load against it.
    let mut mariadb = OwnMariaDb::start();
    let mut root = diesel::MysqlConnection::establish(&mariadb.url()).expect("root");
    diesel::connection::SimpleConnection::batch_execute(
        &mut root,
        "CREATE DATABASE ca CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
    )
    .expect("create database");
    drop(root);
    let db_url = format!("{}/ca", mariadb.url());
    // The TestDb only lends its directory for the site config.
    let scratch = TestDb::new(Backend::Sqlite);
    let mut settings = test_settings(&scratch);
    settings.database_url = db_url.clone();
    settings.db_timeout = Duration::from_secs(1);
    let db_timeout = settings.db_timeout;
    let app = Arc::new(spawn_on(scratch, settings).await);

    let stop = Arc::new(AtomicBool::new(false));
    let written: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
    let failures: Arc<Mutex<Vec<(u16, Value)>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (app, stop, written, failures, next) = (
            app.clone(),
            stop.clone(),
            written.clone(),
            failures.clone(),
            next.clone(),
        );
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                match create(&app, &client, i).await {
                    Some((200, v)) => written
                        .lock()
                        .unwrap()
                        .push((i, v["data"]["name"].as_str().unwrap().to_string())),
                    Some(other) => failures.lock().unwrap().push(other),
                    None => {}
                }
            }
        }));
    }
    while written.lock().unwrap().len() < 40 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let failures_before = failures.lock().unwrap().clone();
    assert!(
        failures_before.is_empty(),
        "failures before the outage: {failures_before:?}"
    );

    // Act: kill MariaDB in the middle of the load.
    mariadb.kill();
    let written_before_outage: Vec<(usize, String)> = written.lock().unwrap().clone();

    // Assert: while it is down, reads and writes fail with a 503, within the pool's wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for path in [
        "/api/resource/Connected%20App",
        "/api/method/frappe.client.get_count?doctype=Connected%20App",
        "/api/v2/document/Connected%20App",
    ] {
        let started = Instant::now();
        let (status, v) = app.get(&app.admin, path).await;
        let took = started.elapsed();
        assert!(
            is_503_in_frappes_shape(status, &v),
            "{path} while MariaDB is down: {status} {v}"
        );
        assert!(
            took < db_timeout + Duration::from_secs(2),
            "{path} took {took:?} to fail (pool wait {db_timeout:?})"
        );
    }
    let (status, v) = app
        .post(
            &app.admin,
            "/api/resource/Connected%20App",
            &json!({"provider_name": "while-down"}),
        )
        .await;
    assert!(is_503_in_frappes_shape(status, &v), "{status} {v}");
    // Liveness does not depend on the database; readiness does.
    assert_eq!(app.get("", "/healthz").await.0, 200);
    assert_eq!(app.get("", "/readyz").await.0, 503);

    // MariaDB comes back on the same data directory and port; the service recovers by itself.
    mariadb.run();
    let back = Instant::now();
    loop {
        let (status, v) = app
            .get(
                &app.admin,
                "/api/method/frappe.client.get_count?doctype=Connected%20App",
            )
            .await;
        if status == 200 {
            break;
        }
        assert!(is_503_in_frappes_shape(status, &v), "{status} {v}");
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "not recovered 5 s after MariaDB returned: {status} {v}\n{}",
            log_of(mariadb.dir.path())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }

    // Every failure of the load was a Frappe-shaped 503, never a 500.
    for (status, v) in failures.lock().unwrap().iter() {
        assert!(is_503_in_frappes_shape(*status, v), "{status} {v}");
    }
    // Every document acknowledged (before, during or after the outage) is whole: its row, its
    // two scopes and its secret. Nothing is half-written: every stored row is whole too.
    let stored = stored_apps(&db_url, &app);
    let written_all = written.lock().unwrap().clone();
    for (i, name) in &written_all {
        let row = stored
            .iter()
            .find(|r| &r.0 == name)
            .unwrap_or_else(|| panic!("acknowledged document {name} (outage-{i}) was lost"));
        assert_eq!(row.1, format!("outage-{i}"));
        assert_eq!(row.2, vec!["openid".to_string(), format!("scope-{i}")]);
        assert_eq!(row.3.as_deref(), Some(format!("secret-{i}").as_str()));
    }
    for (name, provider, scopes, secret) in &stored {
        let i = provider.trim_start_matches("outage-");
        assert_eq!(
            (scopes.clone(), secret.clone()),
            (
                vec!["openid".to_string(), format!("scope-{i}")],
                Some(format!("secret-{i}"))
            ),
            "{name} is half-written"
        );
    }
    assert!(
        written_all.len() > written_before_outage.len(),
        "the load resumed"
    );
}
