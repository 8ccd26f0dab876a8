//! Test harness: `spawn_app` on either backend, users with API keys, an HTTP client.

#![allow(dead_code)]

use std::path::PathBuf;

use connected_apps::commands::{add_user, generate_api_key};
use connected_apps::configuration::Settings;
use connected_apps::startup::Application;
use connected_apps::state::AppState;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::Value;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Mysql,
}

pub const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Mysql];

/// The MariaDB server tests use (`TEST_MYSQL_URL`, default root on 127.0.0.1:3306).
pub fn mysql_server_url() -> String {
    std::env::var("TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// A database made for one test and dropped with it.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: tempfile::TempDir,
    mysql_name: Option<String>,
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("test.sqlite").display());
                TestDb {
                    backend,
                    url,
                    dir,
                    mysql_name: None,
                }
            }
            Backend::Mysql => {
                let name = format!("ca_test_{}", uuid::Uuid::new_v4().simple());
                let server = mysql_server_url();
                let mut conn = diesel::MysqlConnection::establish(&server)
                    .unwrap_or_else(|e| panic!("MariaDB at {server} is needed for this test: {e}"));
                conn.batch_execute(&format!(
                    "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                ))
                .expect("create test database");
                TestDb {
                    backend,
                    url: format!("{server}/{name}"),
                    dir,
                    mysql_name: Some(name),
                }
            }
        }
    }

    /// A raw connection for checks that must not go through the service.
    pub fn raw(&self) -> connected_apps::db::DbConnection {
        match self.backend {
            Backend::Sqlite => connected_apps::db::DbConnection::Sqlite(
                diesel::SqliteConnection::establish(self.url.trim_start_matches("sqlite://"))
                    .expect("open sqlite"),
            ),
            Backend::Mysql => connected_apps::db::DbConnection::Mysql(
                diesel::MysqlConnection::establish(&self.url).expect("open mariadb"),
            ),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = &self.mysql_name {
            if let Ok(mut conn) = diesel::MysqlConnection::establish(&mysql_server_url()) {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS `{name}`"));
            }
        }
    }
}

/// A running service and the credentials of its users.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub db: TestDb,
    pub state: actix_web::web::Data<AppState>,
    pub client: reqwest::Client,
    pub admin: String,
    pub site_config: PathBuf,
}

/// The `outbound_allow` of tests: the providers they start listen on loopback.
pub const LOOPBACK: &str = "127.0.0.0/8,::1";

/// Settings for a test: the given database, a new site config, port 0.
pub fn test_settings(db: &TestDb) -> Settings {
    Settings {
        database_url: db.url.clone(),
        site_config: db.dir.path().join("site_config.json"),
        create_site_config: true,
        bind: "127.0.0.1:0".into(),
        admin_password: Some("admin-pass".into()),
        workers: 2,
        db_pool_size: 8,
        time_zone: Some("Asia/Kolkata".into()),
        // The test provider and the fake endpoints listen on loopback.
        outbound_allow: LOOPBACK.parse().expect("outbound_allow"),
        ..Settings::default()
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Spawns the app after letting the test change its settings.
pub async fn spawn_app_with(backend: Backend, change: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::new(backend);
    let mut settings = test_settings(&db);
    change(&mut settings);
    spawn_on(db, settings).await
}

/// Spawns the app on an existing test database with these settings.
pub async fn spawn_on(db: TestDb, mut settings: Settings) -> TestApp {
    // The public URL must be the real address, which is known only after binding: bind first.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    settings.bind = format!("127.0.0.1:{port}");
    if !settings.public_url_explicit {
        settings.public_url = format!("http://127.0.0.1:{port}");
        settings.public_url_explicit = true;
    }
    let site_config = settings.site_config.clone();
    let app = Application::build(settings).await.expect("build app");
    let port = app.port();
    let state = app.state.clone();
    tokio::spawn(app.run_until_stopped());
    let (key, secret) = generate_api_key(&state, "Administrator")
        .await
        .expect("admin key");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        db,
        state,
        client,
        admin: format!("token {key}:{secret}"),
        site_config,
    }
}

impl TestApp {
    /// Creates a user and returns its `Authorization` header value.
    pub async fn user(&self, email: &str, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        add_user(&self.state, email, None, &roles, Some("pass-word-1"))
            .await
            .expect("add user");
        let (key, secret) = generate_api_key(&self.state, email).await.expect("api key");
        format!("token {key}:{secret}")
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

    pub async fn put(&self, auth: &str, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .client
            .put(self.url(path))
            .header("Authorization", auth)
            .json(body)
            .send()
            .await
            .expect("request");
        status_json(r).await
    }

    pub async fn delete(&self, auth: &str, path: &str) -> (u16, Value) {
        let r = self
            .client
            .delete(self.url(path))
            .header("Authorization", auth)
            .send()
            .await
            .expect("request");
        status_json(r).await
    }

    /// Creates a Connected App as Administrator and returns its document.
    pub async fn create_app(&self, body: Value) -> Value {
        let (status, v) = self
            .post(&self.admin, "/api/resource/Connected%20App", &body)
            .await;
        assert_eq!(status, 200, "create app: {v}");
        v["data"].clone()
    }
}

pub async fn status_json(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, v)
}

/// `_server_messages` decoded to their texts.
pub fn server_messages(body: &Value) -> Vec<String> {
    let Some(raw) = body["_server_messages"].as_str() else {
        return vec![];
    };
    let list: Vec<String> = serde_json::from_str(raw).unwrap_or_default();
    list.iter()
        .filter_map(|m| serde_json::from_str::<Value>(m).ok())
        .filter_map(|m| m["message"].as_str().map(str::to_string))
        .collect()
}

/// Path of the built binary (for tests that run it as a process).
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_connected-apps"))
}

/// The Frappe v15 reference recordings kept in the repository (`tests/fixtures/frappe-reference`).
pub fn reference(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/frappe-reference")
        .join(path)
}

/// The `sid` a login response sets.
pub fn sid_of(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("sid="))
        .and_then(|c| c.split(';').next())
        .expect("sid cookie")
        .to_string()
}
