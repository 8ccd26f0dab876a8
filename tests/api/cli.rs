//! The `connected-apps` binary as an operator runs it: first start in an empty directory, the
//! options every command takes, `user add`, `user api-key` and `rotate-key`.

use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use connected_apps::db::schema::{auth, has_role};
use diesel::prelude::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::*;

/// The environment variables the binary reads; tests clear them so the runner's own
/// environment cannot change what a command does.
const ENV_VARS: [&str; 11] = [
    "DATABASE_URL",
    "CONNECTED_APPS_CONFIG",
    "CONNECTED_APPS_SITE_CONFIG",
    "CONNECTED_APPS_PUBLIC_URL",
    "CONNECTED_APPS_BIND",
    "CONNECTED_APPS_ADMIN_PASSWORD",
    "CONNECTED_APPS_TIME_ZONE",
    "CONNECTED_APPS_USER_PASSWORD",
    "CONNECTED_APPS_WORKERS",
    "CONNECTED_APPS_LOG_JSON",
    "RUST_LOG",
];

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// The binary with a clean environment, run in `dir`, killed when dropped.
pub fn command(dir: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(binary());
    c.current_dir(dir);
    for v in ENV_VARS {
        c.env_remove(v);
    }
    c.env("RUST_LOG", "warn")
        .env("CONNECTED_APPS_WORKERS", "2")
        .kill_on_drop(true);
    c
}

/// The binary pointed at a test database and site config by flags.
pub fn command_on(db: &TestDb, site_config: &Path) -> tokio::process::Command {
    let mut c = command(db.dir.path());
    c.arg("--database-url")
        .arg(&db.url)
        .arg("--site-config")
        .arg(site_config);
    c
}

/// Runs a command to its end.
pub async fn run(mut cmd: tokio::process::Command, args: &[&str]) -> Output {
    cmd.args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run the binary")
}

/// Runs a command that must succeed and returns its stdout.
pub async fn run_ok(cmd: tokio::process::Command, args: &[&str]) -> String {
    let out = run(cmd, args).await;
    assert!(
        out.status.success(),
        "connected-apps {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

/// `user api-key EMAIL`: its single output line, as an `Authorization` header value.
pub async fn cli_api_key(cmd: tokio::process::Command, email: &str) -> String {
    let out = run_ok(cmd, &["user", "api-key", email]).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line expected: {out:?}");
    assert!(out.ends_with('\n'), "{out:?}");
    let (key, secret) = lines[0].split_once(':').expect("key:secret");
    assert!(
        !key.is_empty() && !secret.is_empty() && !secret.contains(':'),
        "{out:?}"
    );
    format!("token {}", lines[0])
}

/// A `serve` process, killed when dropped.
pub struct Served {
    /// Held so that dropping `Served` kills the process (`kill_on_drop`).
    _child: tokio::process::Child,
    pub address: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    pub client: reqwest::Client,
}

fn collect(pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    tokio::spawn(async move {
        let mut reader = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl Served {
    /// Starts `serve` (the command must make it listen on `port`) and waits until it answers
    /// `ping` and has printed how to log in.
    pub async fn start(mut cmd: tokio::process::Command, port: u16, args: &[&str]) -> Served {
        cmd.arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn serve");
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let served = Served {
            _child: child,
            address: format!("http://127.0.0.1:{port}"),
            stdout,
            stderr,
            client,
        };
        served.wait_until_ready().await;
        served
    }

    async fn wait_until_ready(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let pong = match self.client.get(self.url("/api/method/ping")).send().await {
                Ok(r) => r.status() == 200,
                Err(_) => false,
            };
            if pong && self.stdout().iter().any(|l| l.contains("Log in")) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "serve did not come up.\nstdout: {:?}\nstderr: {:?}",
                self.stdout(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stdout(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, auth: &str, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.url(path))
            .header("Authorization", auth)
            .send()
            .await
            .expect("request");
        status_json(r).await
    }

    pub async fn post(&self, auth: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .post(self.url(path))
            .header("Authorization", auth)
            .json(body)
            .send()
            .await
            .expect("request");
        status_json(r).await
    }

    /// `POST /api/method/login`: the status and the body.
    pub async fn login(&self, usr: &str, pwd: &str) -> (u16, Value) {
        let r = self
            .client
            .post(self.url("/api/method/login"))
            .json(&json!({"usr": usr, "pwd": pwd}))
            .send()
            .await
            .expect("login");
        status_json(r).await
    }

    /// Who an `Authorization` header logs in as (`None` when it is refused).
    pub async fn logged_user(&self, auth: &str) -> Option<String> {
        let (status, body) = self
            .get(auth, "/api/method/frappe.auth.get_logged_user")
            .await;
        (status == 200).then(|| body["message"].as_str().unwrap_or_default().to_string())
    }
}

/// Writes a Frappe site config holding `key` plus keys the service does not use.
pub fn write_site_config(path: &Path, key: &str) {
    let body = json!({
        "db_name": "_0123456789abcdef",
        "db_password": "not-ours",
        "encryption_key": key,
        "developer_mode": 0,
    });
    std::fs::write(path, serde_json::to_string_pretty(&body).unwrap()).expect("site config");
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

/// Fernet through Python's `cryptography`, as Frappe does it: `encrypt` or `decrypt` `data` with `key`.
/// `Err` carries Python's error (for example a wrong key).
pub fn python_fernet(op: &str, key: &str, data: &str) -> Result<String, String> {
    let script = r#"
import sys
try:
    from cryptography.fernet import Fernet
except ImportError:
    print("MISSING: python3 package 'cryptography' is needed (pip install cryptography)", file=sys.stderr)
    sys.exit(3)
op, key, data = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
f = Fernet(key)
out = f.encrypt(data) if op == "encrypt" else f.decrypt(data)
sys.stdout.write(out.decode())
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, op, key, data])
        .output()
        .expect("python3 is needed for the Fernet compatibility tests");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_ne!(out.status.code(), Some(3), "{stderr}");
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).expect("utf-8"))
    } else {
        Err(stderr)
    }
}

/// Every encrypted `__Auth` row: (doctype, name, fieldname, stored token).
pub fn encrypted_auth_rows(db: &TestDb) -> Vec<(String, String, String, String)> {
    let mut conn = db.raw();
    auth::table
        .filter(auth::encrypted.eq(1))
        .select((auth::doctype, auth::name, auth::fieldname, auth::password))
        .order((auth::doctype, auth::name, auth::fieldname))
        .load(&mut conn)
        .expect("read __Auth")
}

fn roles_in_db(db: &TestDb, user: &str) -> Vec<String> {
    let mut conn = db.raw();
    let mut roles: Vec<String> = has_role::table
        .filter(has_role::parent.eq(user))
        .filter(has_role::parenttype.eq("User"))
        .select(has_role::role)
        .load::<Option<String>>(&mut conn)
        .expect("read tabHas Role")
        .into_iter()
        .flatten()
        .collect();
    roles.sort();
    roles
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// The Administrator password printed on a first start.
fn printed_password(stdout: &[String]) -> Option<String> {
    stdout.iter().find_map(|l| {
        let (_, rest) = l.split_once("with the password ")?;
        Some(rest.split_whitespace().next()?.to_string())
    })
}

#[tokio::test]
async fn serve_in_an_empty_directory_creates_its_store_and_prints_a_one_time_admin_password() {
    // Arrange: an empty directory, only the bind address set so parallel tests do not collide.
    let dir = tempdir();
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");

    // Act
    let mut cmd = command(dir.path());
    cmd.env("CONNECTED_APPS_BIND", &bind);
    let served = Served::start(cmd, port, &[]).await;

    // Assert: it says where it listens and how to log in (the public URL follows the bind
    // address when none is set).
    let out = served.stdout();
    assert!(
        out.iter().any(|l| l.contains(&format!("http://{bind}"))
            && l.contains(&format!("public URL http://{bind}"))),
        "{out:?}"
    );
    let password = printed_password(&out).unwrap_or_else(|| panic!("no password in {out:?}"));
    assert!(
        out.iter()
            .any(|l| l.contains(&format!("http://{bind}/login")) && l.contains("Administrator")),
        "{out:?}"
    );
    let (status, body) = served.login("Administrator", &password).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = served.login("Administrator", "not-the-password").await;
    assert_eq!(status, 401);

    // The default store: an SQLite file and a private site config with a Fernet key in ./data.
    let store = dir.path().join("data/connected-apps.sqlite");
    assert!(store.is_file());
    let mut conn = diesel::SqliteConnection::establish(store.to_str().unwrap()).unwrap();
    let mut users: Vec<String> = connected_apps::db::schema::user::table
        .select(connected_apps::db::schema::user::name)
        .load(&mut conn)
        .unwrap();
    users.sort();
    assert_eq!(users, ["Administrator", "Guest"]);
    let admin_roles: Vec<Option<String>> = has_role::table
        .filter(has_role::parent.eq("Administrator"))
        .select(has_role::role)
        .load(&mut conn)
        .unwrap();
    assert!(
        admin_roles.contains(&Some("System Manager".into())),
        "{admin_roles:?}"
    );
    drop(conn);
    let site_config = dir.path().join("data/site_config.json");
    let key = read_json(&site_config)["encryption_key"]
        .as_str()
        .expect("encryption_key")
        .to_string();
    let token = python_fernet("encrypt", &key, "probe").expect("a valid Fernet key");
    assert_eq!(python_fernet("decrypt", &key, &token).unwrap(), "probe");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&site_config)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "site_config.json mode {mode:o}");
    }
    drop(served);

    // A second start keeps the key and Administrator, and prints no new password.
    let port = free_port();
    let mut cmd = command(dir.path());
    cmd.env("CONNECTED_APPS_BIND", format!("127.0.0.1:{port}"));
    let served = Served::start(cmd, port, &[]).await;
    let out = served.stdout();
    assert_eq!(printed_password(&out), None, "{out:?}");
    assert!(!out.iter().any(|l| l.contains(&password)), "{out:?}");
    let (status, _) = served.login("Administrator", &password).await;
    assert_eq!(status, 200);
    assert_eq!(read_json(&site_config)["encryption_key"], key);
}

#[tokio::test]
async fn migrate_with_no_options_uses_an_sqlite_file_under_data() {
    let dir = tempdir();
    let help = run_ok(command(dir.path()), &["--help"]).await;
    assert!(
        help.contains("sqlite://data/connected-apps.sqlite"),
        "{help}"
    );

    let out = run(command(dir.path()), &["migrate"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("data/connected-apps.sqlite").is_file());
    assert!(dir.path().join("data/site_config.json").is_file());
    // Administrator is created by whichever command meets the empty database first.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Administrator"), "{stderr}");

    // Running it again is harmless and creates nothing new.
    let out = run(command(dir.path()), &["migrate"]).await;
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("password"));
}

#[tokio::test]
async fn the_first_admin_password_can_be_chosen_through_the_environment() {
    let dir = tempdir();
    let port = free_port();
    let mut cmd = command(dir.path());
    cmd.env("CONNECTED_APPS_BIND", format!("127.0.0.1:{port}"))
        .env("CONNECTED_APPS_ADMIN_PASSWORD", "env-admin-1");
    let served = Served::start(cmd, port, &[]).await;
    let out = served.stdout();
    assert_eq!(printed_password(&out), None, "{out:?}");
    assert!(!out.iter().any(|l| l.contains("env-admin-1")), "{out:?}");
    assert_eq!(served.login("Administrator", "env-admin-1").await.0, 200);
}

#[tokio::test]
async fn every_command_takes_its_options_as_flags_or_environment_variables() {
    for backend in BACKENDS {
        let db = TestDb::new(backend);
        let site_config = db.dir.path().join("elsewhere/site.json");
        std::fs::create_dir_all(site_config.parent().unwrap()).unwrap();
        write_site_config(&site_config, &connected_apps::secrets::generate_key());

        // Flags.
        let port = free_port();
        let public = format!("http://localhost:{port}");
        let mut cmd = command(db.dir.path());
        cmd.args(["--database-url", &db.url])
            .arg("--site-config")
            .arg(&site_config)
            .args(["--public-url", &public])
            .args(["--bind", &format!("127.0.0.1:{port}")]);
        let served = Served::start(cmd, port, &["--admin-password", "flag-admin-1"]).await;
        let out = served.stdout();
        assert!(
            out.iter().any(|l| l.contains(&format!("127.0.0.1:{port}"))
                && l.contains(&format!("public URL {public}"))),
            "{backend:?} {out:?}"
        );
        assert_eq!(printed_password(&out), None, "{out:?}");
        assert_eq!(
            served.login("Administrator", "flag-admin-1").await.0,
            200,
            "{backend:?}"
        );
        drop(served);

        // Environment variables, for `user` and `serve` alike.
        let env = |cmd: &mut tokio::process::Command, port: u16| {
            cmd.env("DATABASE_URL", &db.url)
                .env("CONNECTED_APPS_SITE_CONFIG", &site_config)
                .env(
                    "CONNECTED_APPS_PUBLIC_URL",
                    format!("http://localhost:{port}"),
                )
                .env("CONNECTED_APPS_BIND", format!("127.0.0.1:{port}"));
        };
        let port = free_port();
        let mut cmd = command(db.dir.path());
        env(&mut cmd, port);
        let admin = cli_api_key(cmd, "Administrator").await;
        let mut cmd = command(db.dir.path());
        env(&mut cmd, port);
        let served = Served::start(cmd, port, &[]).await;
        assert_eq!(
            served.logged_user(&admin).await.as_deref(),
            Some("Administrator"),
            "{backend:?}"
        );
        let (status, body) = served
            .post(
                &admin,
                "/api/resource/Connected%20App",
                &json!({"provider_name": "Env", "client_id": "c"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let name = body["data"]["name"].as_str().unwrap();
        assert_eq!(
            body["data"]["redirect_uri"],
            format!(
                "http://localhost:{port}/api/method/frappe.integrations.doctype.connected_app.connected_app.callback/{name}"
            ),
            "{backend:?}: the public URL comes from CONNECTED_APPS_PUBLIC_URL"
        );
        // Nothing was written to the default location.
        assert!(!db.dir.path().join("data").exists(), "{backend:?}");
    }
}

#[tokio::test]
async fn user_add_creates_a_user_with_all_plus_its_roles_who_logs_in_and_acts_by_role() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let cli = || command_on(&app.db, &app.site_config);

        run_ok(
            cli(),
            &[
                "user",
                "add",
                "boss@example.com",
                "--first-name",
                "Big Boss",
                "--role",
                "System Manager",
                "--role",
                "Blogger",
                "--password",
                "boss-pass-1",
            ],
        )
        .await;
        run_ok(
            cli(),
            &[
                "user",
                "add",
                "plain@example.com",
                "--password",
                "plain-pass-1",
            ],
        )
        .await;

        assert_eq!(
            roles_in_db(&app.db, "boss@example.com"),
            ["All", "Blogger", "System Manager"],
            "{backend:?}"
        );
        assert_eq!(
            roles_in_db(&app.db, "plain@example.com"),
            ["All"],
            "{backend:?}"
        );

        // The password logs in.
        let r = app
            .client
            .post(app.url("/api/method/login"))
            .json(&json!({"usr": "boss@example.com", "pwd": "boss-pass-1"}))
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(r).await;
        assert_eq!(status, 200, "{backend:?} {body}");
        assert_eq!(body["full_name"], "Big Boss");

        // Roles decide what each may do.
        let boss = cli_api_key(cli(), "boss@example.com").await;
        let plain = cli_api_key(cli(), "plain@example.com").await;
        let new_app = json!({"provider_name": "By role", "client_id": "x"});
        let (status, body) = app
            .post(&boss, "/api/resource/Connected%20App", &new_app)
            .await;
        assert_eq!(status, 200, "{backend:?} {body}");
        let (status, _) = app
            .post(&plain, "/api/resource/Connected%20App", &new_app)
            .await;
        assert_eq!(status, 403, "{backend:?}");

        // Adding an existing user fails and changes nothing.
        let out = run(
            cli(),
            &["user", "add", "boss@example.com", "--password", "other"],
        )
        .await;
        assert!(!out.status.success(), "{backend:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("already exists"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r = app
            .client
            .post(app.url("/api/method/login"))
            .json(&json!({"usr": "boss@example.com", "pwd": "boss-pass-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
    }
}

#[tokio::test]
async fn user_api_key_prints_one_key_secret_line_and_a_new_key_replaces_the_old_one() {
    for backend in BACKENDS {
        // A key changed by another process reaches a running server after the API key cache
        // expires; with no cache the change is immediate.
        let app = spawn_app_with(backend, |s| s.api_key_cache_ttl = Duration::ZERO).await;
        let cli = || command_on(&app.db, &app.site_config);
        run_ok(cli(), &["user", "add", "keyed@example.com"]).await;

        let first = cli_api_key(cli(), "keyed@example.com").await;
        let (status, body) = app
            .get(&first, "/api/method/frappe.auth.get_logged_user")
            .await;
        assert_eq!(
            (status, body["message"].as_str()),
            (200, Some("keyed@example.com")),
            "{backend:?}"
        );

        let second = cli_api_key(cli(), "keyed@example.com").await;
        assert_ne!(first, second);
        let (status, body) = app
            .get(&second, "/api/method/frappe.auth.get_logged_user")
            .await;
        assert_eq!(
            (status, body["message"].as_str()),
            (200, Some("keyed@example.com")),
            "{backend:?}"
        );
        let (status, _) = app
            .get(&first, "/api/method/frappe.auth.get_logged_user")
            .await;
        assert_eq!(status, 401, "{backend:?}: the old key must stop working");

        // An unknown user gets no key.
        let out = run(cli(), &["user", "api-key", "nobody@example.com"]).await;
        assert!(!out.status.success(), "{backend:?}");
        assert!(out.stdout.is_empty());
    }
}

#[tokio::test]
async fn rotate_key_re_encrypts_every_secret_under_a_new_key_and_keeps_the_site_config() {
    for backend in BACKENDS {
        // Arrange: secrets of every kind, and a site config with keys of its own.
        let app = spawn_app_with(backend, |s| s.api_key_cache_ttl = Duration::ZERO).await;
        let mut config = read_json(&app.site_config);
        let old_key = config["encryption_key"].as_str().unwrap().to_string();
        config["db_name"] = json!("_site_db");
        config["host_name"] = json!(app.address);
        std::fs::write(&app.site_config, config.to_string()).unwrap();
        let created = app
            .create_app(json!({"provider_name": "Rotated", "client_id": "r", "client_secret": "rotate-me-1"}))
            .await;
        assert_eq!(created["client_secret"], "***********");
        let user = app.user("rot@example.com", &[]).await;
        let before = encrypted_auth_rows(&app.db);
        assert!(before.len() >= 3, "{backend:?} {before:?}");

        // Act
        let out = run_ok(command_on(&app.db, &app.site_config), &["rotate-key"]).await;

        // Assert: a new key, the other keys kept, no fallback left behind.
        let after_config = read_json(&app.site_config);
        let new_key = after_config["encryption_key"].as_str().unwrap().to_string();
        assert_ne!(new_key, old_key, "{backend:?} {out}");
        let mut expected = config.clone();
        expected["encryption_key"] = json!(new_key);
        assert_eq!(after_config, expected, "{backend:?}");

        // Every row decrypts with the new key to what it held, and no longer with the old one.
        let after = encrypted_auth_rows(&app.db);
        assert_eq!(after.len(), before.len(), "{backend:?}");
        let mut clear_texts = Vec::new();
        for ((d, n, f, old_token), (d2, n2, f2, new_token)) in before.iter().zip(&after) {
            assert_eq!((d, n, f), (d2, n2, f2));
            assert_ne!(old_token, new_token, "{d} {n} {f} was not re-encrypted");
            let clear = python_fernet("decrypt", &old_key, old_token).unwrap();
            clear_texts.push(clear.clone());
            assert_eq!(
                python_fernet("decrypt", &new_key, new_token).as_deref(),
                Ok(clear.as_str()),
                "{backend:?} {d} {n} {f}"
            );
            assert!(
                python_fernet("decrypt", &old_key, new_token).is_err(),
                "{backend:?} {d} {n} {f} still decrypts with the old key"
            );
        }

        assert!(
            clear_texts.iter().any(|c| c == "rotate-me-1"),
            "{clear_texts:?}"
        );

        // A fresh server on the rotated store: keys and secrets still work.
        let port = free_port();
        let mut cmd = command_on(&app.db, &app.site_config);
        cmd.args(["--bind", &format!("127.0.0.1:{port}")]);
        let served = Served::start(cmd, port, &[]).await;
        assert_eq!(
            served.logged_user(&user).await.as_deref(),
            Some("rot@example.com"),
            "{backend:?}"
        );
        assert_eq!(
            served.logged_user(&app.admin).await.as_deref(),
            Some("Administrator")
        );
        // The server that was running before the rotation picks up the new key too (its API
        // key cache is off, so it decrypts the stored secret again).
        assert_eq!(
            app.get(&user, "/api/method/frappe.auth.get_logged_user")
                .await
                .0,
            200,
            "{backend:?}"
        );
    }
}
