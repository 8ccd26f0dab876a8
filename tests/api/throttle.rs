//! Login throttling and credential guessing: one counter per user whatever name it is given,
//! addresses parsed (IPv6 by its /64), an atomic lockout that a concurrent burst cannot
//! outrun, a password hash for every attempt, old counters purged, a flood of failed logins
//! that leaves other users' requests alone, and failed API-key secrets throttled too.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::helpers::*;

const LOCKED: &str =
    "Your account has been locked and will resume after some time. Please try again later.";
const INVALID: &str = "Invalid login credentials";
const GOOD: &str = "pass-word-1";

async fn login(app: &TestApp, usr: &str, pwd: &str, from: &str) -> (u16, Value) {
    let r = app
        .client
        .post(app.url("/api/method/login"))
        .header("X-Forwarded-For", from)
        .json(&json!({"usr": usr, "pwd": pwd}))
        .send()
        .await
        .unwrap();
    status_json(r).await
}

/// The top-level message of a login answer, or the status when it has none.
async fn outcome(app: &TestApp, usr: &str, pwd: &str, from: &str) -> String {
    let (status, v) = login(app, usr, pwd, from).await;
    match v["message"].as_str() {
        Some(m) => format!("{status} {m}"),
        None => format!("{status} {v}"),
    }
}

fn locked() -> String {
    format!("401 {LOCKED}")
}

fn invalid() -> String {
    format!("401 {INVALID}")
}

fn exec(app: &TestApp, sql: &str) {
    app.db.raw().batch_execute(sql).expect(sql);
}

diesel::table! {
    ca_login_attempts (attempt_key) {
        attempt_key -> Text,
    }
}

fn counter_keys(app: &TestApp) -> Vec<String> {
    let mut keys: Vec<String> = ca_login_attempts::table
        .select(ca_login_attempts::attempt_key)
        .load(&mut app.db.raw())
        .expect("read counters");
    keys.sort();
    keys
}

#[tokio::test]
async fn every_name_of_one_user_shares_its_counter_and_so_do_spellings_of_an_unknown_login() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |s| {
            s.login_max_failures = 3;
            s.login_lockout = Duration::from_secs(60);
        })
        .await;
        app.user("other@example.com", &[]).await;
        // As on a Frappe site, Administrator's email differs from its name.
        exec(
            &app,
            "UPDATE `tabUser` SET email = 'admin@example.com' WHERE name = 'Administrator'",
        );

        // Failures under three names of one user, each from its own address...
        assert_eq!(
            outcome(&app, "Administrator", "wrong", "10.1.0.1").await,
            invalid()
        );
        assert_eq!(
            outcome(&app, "ADMINISTRATOR", "wrong", "10.1.0.2").await,
            invalid()
        );
        assert_eq!(
            outcome(&app, "admin@example.com", "wrong", "10.1.0.3").await,
            invalid()
        );
        // ...lock that user under every name, even with the right password.
        for name in ["admin@example.com", "Admin@Example.COM", "Administrator"] {
            assert_eq!(
                outcome(&app, name, "admin-pass", "10.1.0.9").await,
                locked(),
                "{backend:?} {name}"
            );
        }
        // Another user is not affected.
        assert_eq!(
            login(&app, "other@example.com", GOOD, "10.1.0.10").await.0,
            200
        );

        // An unknown login is counted as one whatever its case.
        for (i, name) in [
            "Ghost@Example.com",
            "ghost@example.com",
            "GHOST@EXAMPLE.COM",
        ]
        .iter()
        .enumerate()
        {
            let from = format!("10.2.0.{i}");
            assert_eq!(
                outcome(&app, name, "x", &from).await,
                invalid(),
                "{backend:?}"
            );
        }
        assert_eq!(
            outcome(&app, "gHoSt@example.com", "x", "10.2.0.9").await,
            locked(),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |s| {
            s.login_max_failures = 3;
            s.login_lockout = Duration::from_secs(60);
        })
        .await;
        app.user("v6@example.com", &[]).await;

        // Three hosts of one /64, written three ways, each guessing another login.
        for (i, from) in [
            "2001:db8:1:2::a",
            "2001:db8:1:2::b",
            "[2001:db8:1:2:ffff::c]:443",
        ]
        .iter()
        .enumerate()
        {
            let usr = format!("guess{i}@example.com");
            assert_eq!(
                outcome(&app, &usr, "x", from).await,
                invalid(),
                "{backend:?} {from}"
            );
        }
        // The /64 is locked, for a real user with the right password too.
        assert_eq!(
            outcome(&app, "v6@example.com", GOOD, "2001:db8:1:2:1234::1").await,
            locked(),
            "{backend:?}"
        );
        // The neighbouring /64 and other IPv6 networks are not.
        for from in ["2001:db8:1:3::a", "2001:db9::1"] {
            assert_eq!(
                login(&app, "v6@example.com", GOOD, from).await.0,
                200,
                "{backend:?} {from}"
            );
        }

        // An IPv4-mapped IPv6 address is the IPv4 address.
        for (i, from) in ["10.3.0.1", "::ffff:10.3.0.1", "10.3.0.1:5555"]
            .iter()
            .enumerate()
        {
            let usr = format!("v4guess{i}@example.com");
            assert_eq!(
                outcome(&app, &usr, "x", from).await,
                invalid(),
                "{backend:?} {from}"
            );
        }
        assert_eq!(
            outcome(&app, "v6@example.com", GOOD, "10.3.0.1").await,
            locked(),
            "{backend:?}"
        );
        assert_eq!(login(&app, "v6@example.com", GOOD, "10.3.0.2").await.0, 200);
    }
}

/// Sends `n` wrong logins at once; returns the outcomes, sorted.
async fn burst(
    app: &TestApp,
    n: usize,
    usr: impl Fn(usize) -> String,
    from: impl Fn(usize) -> String,
) -> Vec<String> {
    burst_to(&[(app.client.clone(), app.address.clone())], n, usr, from).await
}

/// Sends `n` wrong logins at once, taking the services (client, base URL) in turn; returns
/// the outcomes, sorted.
pub async fn burst_to(
    services: &[(reqwest::Client, String)],
    n: usize,
    usr: impl Fn(usize) -> String,
    from: impl Fn(usize) -> String,
) -> Vec<String> {
    let mut tasks = Vec::new();
    for i in 0..n {
        let (client, base) = services[i % services.len()].clone();
        let url = format!("{base}/api/method/login");
        let (usr, from) = (usr(i), from(i));
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .header("X-Forwarded-For", from)
                .json(&json!({"usr": usr, "pwd": "wrong"}))
                .send()
                .await
                .unwrap();
            let (status, v) = status_json(r).await;
            format!(
                "{status} {}",
                v["message"].as_str().unwrap_or(&v.to_string())
            )
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out.sort();
    out
}

fn count(outcomes: &[String], what: &str) -> usize {
    outcomes.iter().filter(|o| *o == what).count()
}

#[tokio::test]
async fn a_concurrent_burst_of_wrong_logins_gets_exactly_the_allowed_guesses() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |s| {
            s.login_max_failures = 3;
            s.login_lockout = Duration::from_secs(60);
        })
        .await;
        app.user("burst@example.com", &[]).await;
        let checks = app.state.login.checks();

        // One user from 24 addresses at once: three guesses are checked, the rest refused.
        let out = burst(
            &app,
            24,
            |_| "burst@example.com".into(),
            |i| format!("10.4.0.{i}"),
        )
        .await;
        assert_eq!(count(&out, &invalid()), 3, "{backend:?}: {out:?}");
        assert_eq!(count(&out, &locked()), 21, "{backend:?}: {out:?}");
        assert_eq!(app.state.login.checks() - checks, 3, "{backend:?}");

        // One address for 24 users at once: the same.
        let out = burst(
            &app,
            24,
            |i| format!("u{i}@example.com"),
            |_| "10.5.0.1".into(),
        )
        .await;
        assert_eq!(count(&out, &invalid()), 3, "{backend:?}: {out:?}");
        assert_eq!(count(&out, &locked()), 21, "{backend:?}: {out:?}");
        assert_eq!(app.state.login.checks() - checks, 6, "{backend:?}");
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The time of one failed login attempt.
async fn timed(app: &TestApp, usr: &str, pwd: &str, from: &str) -> Duration {
    let t = Instant::now();
    let (status, v) = login(app, usr, pwd, from).await;
    let took = t.elapsed();
    assert_eq!(
        (status, v["message"].as_str()),
        (401, Some(INVALID)),
        "{usr}"
    );
    took
}

#[tokio::test]
async fn a_disabled_or_unknown_user_costs_a_password_check_like_an_enabled_one() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |s| s.login_max_failures = 1000).await;
        app.user("on@example.com", &[]).await;
        app.user("off@example.com", &[]).await;
        exec(
            &app,
            "UPDATE `tabUser` SET enabled = 0 WHERE name = 'off@example.com'",
        );

        // Each kind of attempt runs exactly one password check...
        for (usr, pwd) in [
            ("on@example.com", "wrong"),
            ("off@example.com", GOOD),
            ("off@example.com", "wrong"),
            ("nobody@example.com", "wrong"),
        ] {
            let before = app.state.login.checks();
            timed(&app, usr, pwd, "10.6.0.1").await;
            assert_eq!(app.state.login.checks() - before, 1, "{backend:?} {usr}");
        }
        // ...and takes about as long: a disabled or unknown user is not told apart by timing.
        // The fastest of several attempts each (a loaded machine only adds time); the margin
        // is wide, since skipping the hash made a disabled user's attempt some 300 times faster.
        let (mut on, mut off, mut unknown) = (vec![], vec![], vec![]);
        for i in 0..5 {
            let from = format!("10.6.1.{i}");
            on.push(timed(&app, "on@example.com", "wrong", &from).await);
            off.push(timed(&app, "off@example.com", GOOD, &from).await);
            unknown.push(timed(&app, "nobody@example.com", "wrong", &from).await);
        }
        let fastest = |v: Vec<Duration>| v.into_iter().min().unwrap();
        let (on, off, unknown) = (fastest(on), fastest(off), fastest(unknown));
        eprintln!("{backend:?}: fastest failed login: enabled {on:?}, disabled {off:?}, unknown {unknown:?}");
        assert!(
            off * 5 > on && unknown * 5 > on,
            "{backend:?}: enabled {on:?}, disabled {off:?}, unknown {unknown:?}"
        );
    }
}

#[tokio::test]
async fn counters_whose_time_is_over_are_purged() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |s| {
            s.login_max_failures = 3;
            s.login_lockout = Duration::from_secs(1);
        })
        .await;
        // One counter that locked and one that did not.
        for _ in 0..3 {
            login(&app, "old@example.com", "x", "10.7.0.1").await;
        }
        login(&app, "older@example.com", "x", "10.7.0.2").await;
        assert_eq!(counter_keys(&app).len(), 4, "{backend:?}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // The next failure removes them and leaves its own.
        login(&app, "new@example.com", "x", "10.7.0.3").await;
        assert_eq!(
            counter_keys(&app),
            vec![
                "ip:10.7.0.3".to_string(),
                "user:new@example.com".to_string()
            ],
            "{backend:?}"
        );
    }
}

async fn logged_user(app: &TestApp, auth: &str, from: &str) -> (u16, Value) {
    let r = app
        .client
        .get(app.url("/api/method/frappe.auth.get_logged_user"))
        .header("Authorization", auth)
        .header("X-Forwarded-For", from)
        .send()
        .await
        .unwrap();
    status_json(r).await
}

/// `token key:secret` with another secret.
fn wrong_secret(auth: &str) -> String {
    let (key, _) = auth.rsplit_once(':').unwrap();
    format!("{key}:not-the-secret")
}

#[tokio::test]
async fn failed_api_key_secrets_are_throttled_per_key_and_per_address() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |s| {
            s.login_max_failures = 3;
            s.login_lockout = Duration::from_secs(2);
        })
        .await;
        let one = app.user("k1@example.com", &[]).await;
        let two = app.user("k2@example.com", &[]).await;

        // Wrong secrets for one key, each from another address: 401 until the limit...
        for i in 0..3 {
            let (status, v) = logged_user(&app, &wrong_secret(&one), &format!("10.8.0.{i}")).await;
            assert_eq!(
                (status, v["exc_type"].as_str()),
                (401, Some("AuthenticationError")),
                "{v}"
            );
        }
        // ...then the key is refused for the cooling-off time, the right secret too.
        let (status, v) = logged_user(&app, &one, "10.8.0.100").await;
        assert_eq!(status, 429, "{backend:?}: {v}");
        assert_eq!(v["exc_type"], "TooManyRequestsError", "{backend:?}: {v}");
        assert!(!v.to_string().contains("not-the-secret"));

        // Wrong secrets for made-up keys from one address lock that address for API keys...
        for i in 0..3 {
            let (status, _) =
                logged_user(&app, &format!("token made-up-{i}:secret"), "10.9.0.1").await;
            assert_eq!(status, 401, "{backend:?}");
        }
        let (status, v) = logged_user(&app, &two, "10.9.0.1").await;
        assert_eq!(
            (status, v["exc_type"].as_str()),
            (429, Some("TooManyRequestsError")),
            "{backend:?}"
        );
        // ...but not another address, nor that address's logins.
        let (status, v) = logged_user(&app, &two, "10.9.0.2").await;
        assert_eq!(
            (status, &v["message"]),
            (200, &json!("k2@example.com")),
            "{backend:?}"
        );
        assert_eq!(login(&app, "k2@example.com", GOOD, "10.9.0.1").await.0, 200);

        // After the cooling-off time the key works again.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let (status, v) = logged_user(&app, &one, "10.8.0.100").await;
        assert_eq!(
            (status, &v["message"]),
            (200, &json!("k1@example.com")),
            "{backend:?}"
        );
    }
}

/// Another user's work, timed: a list page (a read) and a change to a document (a write).
async fn work_time(app: &TestApp, auth: &str, name: &str, i: usize) -> Duration {
    let t = Instant::now();
    let (status, v) = app
        .get(auth, "/api/resource/Connected%20App?limit=20")
        .await;
    assert_eq!(status, 200, "{v}");
    let path = format!("/api/resource/Connected%20App/{name}");
    let (status, v) = app
        .put(auth, &path, &json!({"client_id": format!("c{i}")}))
        .await;
    assert_eq!(status, 200, "{v}");
    t.elapsed()
}

#[tokio::test]
async fn a_flood_of_failed_logins_leaves_other_users_requests_fast() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let user = app.user("busy@example.com", &["System Manager"]).await;
        let mut name = String::new();
        for i in 0..5 {
            let doc = app
                .create_app(crate::rest::full_app(&format!("Flood {i}")))
                .await;
            name = doc["name"].as_str().unwrap().to_string();
        }
        let mut before = Vec::new();
        for i in 0..15 {
            before.push(work_time(&app, &user, &name, i).await);
        }
        let before = median(before);

        // 100 failed logins at once, each for another login from another address, so none is
        // refused by a counter: every one asks for a password check.
        let statuses = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut flood = tokio::task::JoinSet::new();
        for i in 0..100 {
            let (client, url) = (app.client.clone(), app.url("/api/method/login"));
            let statuses = statuses.clone();
            flood.spawn(async move {
                let r = client
                    .post(url)
                    .header("X-Forwarded-For", format!("10.10.{i}.1"))
                    .json(&json!({"usr": format!("flood{i}@example.com"), "pwd": "x"}))
                    .send()
                    .await
                    .unwrap();
                statuses.lock().unwrap().push(r.status().as_u16());
            });
        }
        // Let the flood arrive, then time the other user's requests while it lasts.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut during = Vec::new();
        for i in 0..15 {
            during.push(work_time(&app, &user, &name, i).await);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let during = median(during);
        eprintln!("{backend:?}: another user's list and save: median {before:?} before, {during:?} during the flood");
        let answered = statuses.lock().unwrap().clone();
        assert!(
            answered.len() < 100,
            "{backend:?}: the flood ended before the measurement did"
        );
        // The rest of the flood is not needed: the clients hang up.
        flood.shutdown().await;
        assert!(
            answered.iter().all(|s| *s == 401 || *s == 429),
            "{backend:?}: {answered:?}"
        );
        // Password checks never ran on more than their permits.
        assert!(app.state.login.peak() <= app.state.login.permits());
        // Generous: a loaded 2-core machine is slow, but a starved request waits for seconds.
        assert!(
            during < before * 10 + Duration::from_millis(250),
            "{backend:?}: another user's list and save took {during:?} during the flood, {before:?} before"
        );
    }
}
