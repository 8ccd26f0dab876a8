//! Several writers on a real 3-node MariaDB Galera cluster on loopback (`scripts/galera`):
//! two service instances, each writing through a different node. Conflicts are retried and
//! never answered 5xx, no update is lost, one refresh per expiry, a document written through
//! one node is read through another at once, start-up migrations take turns, and an instance
//! survives its node being killed.
//!
//! These tests share the cluster and one of them kills a node, so they run one at a time
//! (`.config/nextest.toml`, test group `galera`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use connected_apps::configuration::Settings;
use connected_apps::startup::Application;
use connected_apps::state::AppState;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::oauth_flow::{app_body, provider_config, USER1};
use crate::provider::TestProvider;

const NODES: [u16; 3] = [3311, 3312, 3313];

fn galera_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/galera")
}

/// Runs `scripts/galera <args>` to completion (it starts the cluster when it is not running).
fn galera(args: &[&str]) {
    let out = Command::new(galera_script())
        .args(args)
        .output()
        .expect("run scripts/galera");
    assert!(
        out.status.success(),
        "scripts/galera {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn node_url(port: u16) -> String {
    format!("mysql://root@127.0.0.1:{port}")
}

/// A database made on the cluster for one test, dropped with it.
struct ClusterDb {
    name: String,
    dir: tempfile::TempDir,
}

impl ClusterDb {
    fn new() -> ClusterDb {
        galera(&["up"]);
        let name = format!("ca_galera_{}", uuid::Uuid::new_v4().simple());
        let mut conn = diesel::MysqlConnection::establish(&node_url(NODES[0])).expect("node 1");
        conn.batch_execute(&format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        ))
        .expect("create database");
        let dir = tempfile::tempdir().expect("temp dir");
        // One site key for every instance.
        std::fs::write(
            dir.path().join("site_config.json"),
            json!({ "encryption_key": connected_apps::secrets::generate_key() }).to_string(),
        )
        .expect("site config");
        ClusterDb { name, dir }
    }

    fn url(&self, node: usize) -> String {
        format!("{}/{}", node_url(NODES[node]), self.name)
    }

    /// Settings for an instance that writes through `node` (0-based).
    fn settings(&self, node: usize) -> Settings {
        let db = TestDb::new(Backend::Sqlite); // only for the shared defaults of test_settings
        let mut s = test_settings(&db);
        s.database_url = self.url(node);
        s.site_config = self.dir.path().join("site_config.json");
        s.create_site_config = false;
        s.db_pool_size = 8;
        s
    }

    fn raw(&self, node: usize) -> diesel::MysqlConnection {
        diesel::MysqlConnection::establish(&self.url(node)).expect("connect to node")
    }
}

impl Drop for ClusterDb {
    fn drop(&mut self) {
        for port in NODES {
            if let Ok(mut c) = diesel::MysqlConnection::establish(&node_url(port)) {
                if c.batch_execute(&format!("DROP DATABASE IF EXISTS `{}`", self.name))
                    .is_ok()
                {
                    return;
                }
            }
        }
    }
}

/// One service instance on the cluster.
struct Instance {
    address: String,
    state: actix_web::web::Data<AppState>,
    client: reqwest::Client,
}

async fn start(mut settings: Settings, public_url: Option<&str>) -> Instance {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    settings.bind = format!("127.0.0.1:{port}");
    settings.public_url = public_url
        .map(str::to_string)
        .unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
    settings.public_url_explicit = true;
    let app = Application::build(settings).await.expect("build app");
    let state = app.state.clone();
    tokio::spawn(app.run_until_stopped());
    Instance {
        address: format!("http://127.0.0.1:{port}"),
        state,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
    }
}

impl Instance {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        auth: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut r = self
            .client
            .request(method, format!("{}{path}", self.address))
            .header("Authorization", auth);
        if let Some(b) = body {
            r = r.json(b);
        }
        match r.send().await {
            Ok(r) => status_json(r).await,
            Err(e) => (0, json!({ "transport_error": format!("{e:?}") })),
        }
    }

    async fn get(&self, path: &str, auth: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, auth, None).await
    }

    async fn admin(&self) -> String {
        let (key, secret) =
            connected_apps::commands::generate_api_key(&self.state, "Administrator")
                .await
                .expect("admin key");
        format!("token {key}:{secret}")
    }
}

/// Two instances on one new cluster database: A writes through node 1, B through node 2.
async fn two_instances(change: impl Fn(&mut Settings)) -> (ClusterDb, Instance, Instance) {
    // The service's warnings and errors appear in a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("warn")
        .try_init();
    let db = ClusterDb::new();
    let mut sa = db.settings(0);
    change(&mut sa);
    let a = start(sa, None).await;
    let mut sb = db.settings(1);
    change(&mut sb);
    let b = start(sb, Some(&a.address)).await;
    (db, a, b)
}

const APP: &str = "/api/resource/Connected%20App";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_through_two_nodes_never_answer_5xx_and_lose_no_update() {
    let (_db, a, b) = two_instances(|_| {}).await;
    let admin = a.admin().await;
    let (status, doc) = a
        .send(reqwest::Method::POST, APP, &admin, Some(&app_body()))
        .await;
    assert_eq!(status, 200, "{doc}");
    let name = doc["data"]["name"].as_str().unwrap().to_string();
    let path = format!("{APP}/{name}");
    let first_modified = doc["data"]["modified"].as_str().unwrap().to_string();

    // 2 instances x 8 clients x 200 PUTs of the same document, each based on the version the
    // client read just before (Frappe's `modified` check).
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let mut clients = Vec::new();
    for k in 0..16 {
        let inst = if k % 2 == 0 { a.clone() } else { b.clone() };
        let (admin, path) = (admin.clone(), path.clone());
        clients.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for i in 0..200 {
                let (status, v) = inst.get(&path, &admin).await;
                assert_eq!(status, 200, "GET: {v}");
                let read = v["data"]["modified"].as_str().unwrap().to_string();
                let value = format!("client {k} put {i}");
                let body = json!({ "provider_name": value, "modified": read });
                let (status, v) = inst
                    .send(reqwest::Method::PUT, &path, &admin, Some(&body))
                    .await;
                seen.push((status, read, value, v));
            }
            seen
        }));
    }
    let mut successes = Vec::new();
    let mut mismatches = 0;
    for c in clients {
        for (status, read, value, v) in c.await.unwrap() {
            match status {
                200 => {
                    assert_eq!(v["data"]["provider_name"], value.as_str(), "{v}");
                    let written = v["data"]["modified"].as_str().unwrap().to_string();
                    successes.push((read, written, value));
                }
                417 => {
                    assert_eq!(v["exc_type"], "TimestampMismatchError", "{v}");
                    mismatches += 1;
                }
                other => panic!("PUT answered {other}: {v}"),
            }
        }
    }
    // Every success was based on the version the previous success wrote: one chain from the
    // first version to the stored one, no two successes based on the same version.
    successes.sort_by(|x, y| x.1.cmp(&y.1));
    assert!(
        successes.len() >= 20,
        "only {} of 3200 PUTs succeeded",
        successes.len()
    );
    let mut expected_base = first_modified;
    for (read, written, value) in &successes {
        assert_eq!(
            read, &expected_base,
            "the update to {value:?} (written {written}) was based on {read}, not on the last stored version {expected_base}: an update was lost"
        );
        expected_base = written.clone();
    }
    let (_, stored) = b.get(&path, &admin).await;
    let last = successes.last().unwrap();
    assert_eq!(stored["data"]["modified"], last.1.as_str());
    assert_eq!(stored["data"]["provider_name"], last.2.as_str());
    assert_eq!(successes.len() + mismatches, 3200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_document_created_through_one_node_is_read_through_another_at_once() {
    let (_db, a, b) = two_instances(|_| {}).await;
    let admin = a.admin().await;
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let mut workers = Vec::new();
    for w in 0..4 {
        let (a, b, admin) = (a.clone(), b.clone(), admin.clone());
        workers.push(tokio::spawn(async move {
            let mut missing = Vec::new();
            for i in 0..250 {
                let mut body = app_body();
                body["provider_name"] = json!(format!("P {w}-{i}"));
                let (status, doc) = a
                    .send(reqwest::Method::POST, APP, &admin, Some(&body))
                    .await;
                assert_eq!(status, 200, "{doc}");
                let name = doc["data"]["name"].as_str().unwrap().to_string();
                let (status, v) = b.get(&format!("{APP}/{name}"), &admin).await;
                if status != 200 {
                    missing.push((name, status, v));
                }
            }
            missing
        }));
    }
    let mut missing = Vec::new();
    for w in workers {
        missing.extend(w.await.unwrap());
    }
    assert!(
        missing.is_empty(),
        "{} of 1000 documents were not found through the other node at once: {:?}",
        missing.len(),
        missing.first()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_callers_on_two_nodes_refresh_an_expired_token_exactly_once() {
    let (db, a, b) = two_instances(|s| s.refresh_margin = Duration::from_secs(1)).await;
    let admin = a.admin().await;
    let (status, doc) = a
        .send(reqwest::Method::POST, APP, &admin, Some(&app_body()))
        .await;
    assert_eq!(status, 200, "{doc}");
    let name = doc["data"]["name"].as_str().unwrap().to_string();
    let redirect_uri = doc["data"]["redirect_uri"].as_str().unwrap().to_string();
    let provider = TestProvider::start(provider_config(
        &redirect_uri,
        json!({"rotateRefreshToken": true, "accessTokenTTL": 3}),
        json!({}),
    ))
    .await;
    let (status, v) = b
        .send(
            reqwest::Method::PUT,
            &format!("{APP}/{name}"),
            &admin,
            Some(&json!({
                "authorization_uri": provider.authorization_endpoint(),
                "token_uri": provider.token_endpoint(),
            })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    connected_apps::commands::add_user(&a.state, USER1, None, &[], Some("pass-word-1"))
        .await
        .expect("user");
    let (key, secret) = connected_apps::commands::generate_api_key(&a.state, USER1)
        .await
        .expect("key");
    let user1 = format!("token {key}:{secret}");

    // Connect through A, the callback through B.
    let (status, v) = a
        .send(
            reqwest::Method::POST,
            "/api/method/run_doc_method",
            &user1,
            Some(&json!({"dt": "Connected App", "dn": name, "method": "initiate_web_application_flow"})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let back = provider.authorize(v["message"].as_str().unwrap()).await;
    let back = back.replacen(&a.address, &b.address, 1);
    let r = b
        .client
        .get(&back)
        .header("Authorization", &user1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{:?}", r.text().await);
    let token_path = format!("/api/method/connected_apps.get_access_token?connected_app={name}");
    let (status, v) = a.get(&token_path, &user1).await;
    assert_eq!(status, 200, "{v}");
    let first = v["message"]["access_token"].as_str().unwrap().to_string();
    provider.reset().await;
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let calls = (0..50).map(|i| {
        let inst = if i % 2 == 0 { a.clone() } else { b.clone() };
        let (user1, token_path) = (user1.clone(), token_path.clone());
        tokio::spawn(async move { inst.get(&token_path, &user1).await })
    });
    let results = futures_util::future::join_all(calls).await;
    let tokens: Vec<String> = results
        .into_iter()
        .map(|r| {
            let (status, v) = r.unwrap();
            assert_eq!(status, 200, "{v}");
            v["message"]["access_token"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
    assert_ne!(tokens[0], first, "the token was refreshed");
    let stats = provider.stats().await;
    assert_eq!(stats["refresh_requests"], 1, "{stats}");
    assert_eq!(stats["invalid_grant"], 0, "{stats}");
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_starting_together_through_two_nodes_migrate_an_empty_database_once() {
    let db = ClusterDb::new();
    let (ra, rb) = tokio::join!(
        Application::build(db.settings(0)),
        Application::build(db.settings(1))
    );
    let (a, b) = (
        ra.expect("instance A starts"),
        rb.expect("instance B starts"),
    );
    drop((a, b));
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    use diesel::RunQueryDsl;
    let applied: Vec<N> = diesel::sql_query("SELECT COUNT(*) AS n FROM __diesel_schema_migrations")
        .load(&mut db.raw(2))
        .expect("migrations table");
    let dirs = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/mysql"))
        .unwrap()
        .count() as i64;
    assert_eq!(applied[0].n, dirs, "each migration is recorded once");
    let locks: Vec<N> = diesel::sql_query("SELECT COUNT(*) AS n FROM ca_migration_lock")
        .load(&mut db.raw(0))
        .expect("lock table");
    assert_eq!(locks[0].n, 0, "the migration lock was given back");
}

/// Starts node `n` (1-based) again when the test ends, even when it failed.
struct Revive(&'static str);

impl Drop for Revive {
    fn drop(&mut self) {
        let _ = Command::new(galera_script())
            .args(["start", self.0])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_whose_node_is_killed_answers_503_fast_and_recovers_and_loses_nothing() {
    // A writes through node 2 (the one killed), B through node 1.
    let db = ClusterDb::new();
    let mut sa = db.settings(1);
    sa.db_timeout = Duration::from_secs(1);
    let a = start(sa, None).await;
    let b = start(db.settings(0), Some(&a.address)).await;
    let admin = b.admin().await;

    // Written before the kill, through both instances.
    let mut written = Vec::new();
    for i in 0..40 {
        let inst = if i % 2 == 0 { &a } else { &b };
        let mut body = app_body();
        body["provider_name"] = json!(format!("before {i}"));
        let (status, doc) = inst
            .send(reqwest::Method::POST, APP, &admin, Some(&body))
            .await;
        assert_eq!(status, 200, "{doc}");
        written.push(doc["data"]["name"].as_str().unwrap().to_string());
    }

    // Load on A while its node dies: writes and reads, each timed.
    let a = std::sync::Arc::new(a);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (a, admin, stop) = (a.clone(), admin.clone(), stop.clone());
        tokio::spawn(async move {
            let mut answers = Vec::new();
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut body = app_body();
                body["provider_name"] = json!(format!("during {i}"));
                i += 1;
                let t = Instant::now();
                let (status, _) = a
                    .send(reqwest::Method::POST, APP, &admin, Some(&body))
                    .await;
                answers.push((Instant::now(), status, t.elapsed()));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _revive = Revive("2");
    galera(&["kill", "2"]);
    let killed = Instant::now();

    // B keeps serving (after the survivors notice the loss, a few seconds at most).
    let mut b_ok_at = None;
    while killed.elapsed() < Duration::from_secs(30) {
        let (status, _) = b.get(&format!("{APP}/{}", written[1]), &admin).await;
        let mut body = app_body();
        body["provider_name"] = json!("through B during the outage");
        let (wstatus, _) = b
            .send(reqwest::Method::POST, APP, &admin, Some(&body))
            .await;
        if status == 200 && wstatus == 200 {
            b_ok_at = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        b_ok_at.is_some(),
        "B did not serve reads and writes within 30 s of the kill"
    );

    // A answers quickly while its node is gone.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t = Instant::now();
    let (status, v) = a.get(&format!("{APP}/{}", written[0]), &admin).await;
    let (wstatus, wv) = a
        .send(reqwest::Method::POST, APP, &admin, Some(&app_body()))
        .await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(wstatus, 503, "{wv}");
    assert_eq!(wv["exc_type"], "ServiceUnavailableError", "{wv}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "two requests to A took {:?} while its node was down",
        t.elapsed()
    );

    // Node 2 rejoins; A serves again within 10 s of that.
    galera(&["start", "2"]);
    let rejoined = Instant::now();
    let mut recovered = None;
    while rejoined.elapsed() < Duration::from_secs(20) {
        let (status, _) = a.get(&format!("{APP}/{}", written[0]), &admin).await;
        let (wstatus, _) = a
            .send(reqwest::Method::POST, APP, &admin, Some(&app_body()))
            .await;
        if status == 200 && wstatus == 200 {
            recovered = Some(rejoined.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = load.await.unwrap();
    let recovered = recovered.expect("A did not recover within 20 s of node 2 rejoining");
    assert!(
        recovered <= Duration::from_secs(10),
        "A recovered {recovered:?} after node 2 rejoined"
    );
    // Under load, every answer was a 200 or a 503, none hung past the timeouts.
    for (_, status, took) in &answers {
        assert!(
            *status == 200 || *status == 503,
            "a request during the outage answered {status}"
        );
        assert!(
            *took < Duration::from_secs(10),
            "a request during the outage took {took:?}"
        );
    }
    assert!(answers.iter().any(|(_, s, _)| *s == 503));

    // Nothing written before the kill is lost, through either node.
    for name in &written {
        for inst in [&*a, &b] {
            let (status, v) = inst.get(&format!("{APP}/{name}"), &admin).await;
            assert_eq!(status, 200, "{name}: {v}");
        }
    }
}

/// Wrong logins at once, alternating between the two instances; the outcomes, sorted.
async fn login_burst(
    a: &Instance,
    b: &Instance,
    n: usize,
    usr: impl Fn(usize) -> String,
    from: impl Fn(usize) -> String,
) -> Vec<String> {
    let services = [
        (a.client.clone(), a.address.clone()),
        (b.client.clone(), b.address.clone()),
    ];
    crate::throttle::burst_to(&services, n, usr, from).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_wrong_logins_through_two_nodes_gets_exactly_the_allowed_guesses() {
    let (_db, a, b) = two_instances(|s| {
        s.login_max_failures = 3;
        s.login_lockout = Duration::from_secs(60);
    })
    .await;
    connected_apps::commands::add_user(&a.state, "g@example.com", None, &[], Some("pass-word-1"))
        .await
        .expect("add user");
    let invalid = "401 Invalid login credentials";
    let locked =
        "401 Your account has been locked and will resume after some time. Please try again later.";
    let count = |out: &[String], what: &str| out.iter().filter(|o| *o == what).count();

    // One user, 24 addresses, through both nodes at once: three guesses in all.
    let out = login_burst(
        &a,
        &b,
        24,
        |_| "g@example.com".into(),
        |i| format!("10.4.0.{i}"),
    )
    .await;
    assert_eq!(count(&out, invalid), 3, "{out:?}");
    assert_eq!(count(&out, locked), 21, "{out:?}");
    // One address, 24 logins: the same.
    let out = login_burst(
        &a,
        &b,
        24,
        |i| format!("u{i}@example.com"),
        |_| "10.5.0.1".into(),
    )
    .await;
    assert_eq!(count(&out, invalid), 3, "{out:?}");
    assert_eq!(count(&out, locked), 21, "{out:?}");
    assert_eq!(
        a.state.login.checks() + b.state.login.checks(),
        6,
        "password checks on both instances"
    );
}
