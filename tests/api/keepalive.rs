//! The background keep-alive job against the real test provider: idle connections refreshed
//! and fresh ones not, keep-warm refresh-ahead, one instance at a time across two instances on
//! one database, the per-endpoint concurrency bound, 10,000 due connections, the health record
//! of a failed refresh, and the refresh margin capped at half a token's lifetime.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use connected_apps::configuration::Settings;
use connected_apps::db::schema::ca_token_state;
use connected_apps::oauth::health_store;
use connected_apps::startup::Application;
use connected_apps::state::AppState;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::oauth_flow::*;

const DAY: i64 = 24 * 3600;

/// The job every 200 ms, for connections idle longer than one day.
fn fast_job(s: &mut Settings) {
    s.keepalive.enabled = true;
    s.keepalive.interval = Duration::from_millis(200);
    s.keepalive.idle_age = Duration::from_secs(DAY as u64);
}

/// Moves a connection's last received tokens `secs` into the past.
fn age(o: &OAuthApp, token_cache: &str, secs: i64) {
    let then = o.app.state.clock.now() - chrono::Duration::seconds(secs);
    let n =
        diesel::update(ca_token_state::table.filter(ca_token_state::token_cache.eq(token_cache)))
            .set(ca_token_state::received_at.eq(Some(then)))
            .execute(&mut o.app.db.raw())
            .expect("age the connection");
    assert_eq!(n, 1, "{token_cache} has a token state");
}

async fn refreshes(o: &OAuthApp) -> u64 {
    o.provider.stats().await["refresh_requests"]
        .as_u64()
        .unwrap_or(0)
}

/// Waits (up to `secs`) until `done` holds; panics with `what` otherwise.
async fn wait_for<F, Fut>(secs: u64, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !done().await {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Lets the job run several more times.
async fn a_few_more_runs() {
    tokio::time::sleep(Duration::from_millis(1200)).await;
}

/// `n` connections of users `seed<i>@example.com` to the app, each with a real refresh token
/// minted at the provider, last refreshed `idle_days` ago (seeded by SQL for speed).
async fn seed(o: &OAuthApp, n: usize, idle_days: i64) -> Vec<String> {
    let r = reqwest::Client::new()
        .post(o.provider.url("/__test/refresh_tokens"))
        .json(&json!({"client_id": CLIENT_ID, "count": n}))
        .send()
        .await
        .expect("mint refresh tokens");
    let v: Value = r.json().await.expect("minted tokens");
    let tokens: Vec<String> = v["refresh_tokens"]
        .as_array()
        .expect("refresh_tokens")
        .iter()
        .map(|t| t.as_str().expect("token").to_string())
        .collect();
    assert_eq!(tokens.len(), n);
    let then = o.app.state.clock.now() - chrono::Duration::days(idle_days);
    let ts = then.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    let mut conn = o.app.db.raw();
    for (chunk_no, chunk) in tokens.chunks(500).enumerate() {
        let mut docs = Vec::new();
        let mut auths = Vec::new();
        for (i, rt) in chunk.iter().enumerate() {
            let user = format!("seed{}@example.com", chunk_no * 500 + i);
            let name = format!("{}-{user}", o.name);
            docs.push(format!(
                "('{name}', '{ts}', '{ts}', 'Administrator', 'Administrator', 0, 0, '{user}', '{}', \
                 'Test Provider', '*****', '*****', 3600, 'Bearer')",
                o.name
            ));
            auths.push(format!(
                "('Token Cache', '{name}', 'refresh_token', '{}', 1)",
                o.app.state.keys.encrypt(rt).expect("encrypt")
            ));
        }
        conn.batch_execute(&format!(
            "INSERT INTO `tabToken Cache` (name, creation, modified, modified_by, owner, docstatus, \
             idx, user, connected_app, provider_name, access_token, refresh_token, expires_in, \
             token_type) VALUES {}; \
             INSERT INTO `__Auth` (doctype, name, fieldname, password, encrypted) VALUES {};",
            docs.join(","),
            auths.join(",")
        ))
        .expect("seed connections");
    }
    tokens
}

/// The refresh tokens the provider was asked to refresh with, each at most once.
async fn refreshed_tokens(o: &OAuthApp) -> HashSet<String> {
    let reqs = o.token_requests("refresh_token").await;
    let tokens: Vec<String> = reqs
        .iter()
        .filter_map(|r| field(r, "refresh_token"))
        .collect();
    let set: HashSet<String> = tokens.iter().cloned().collect();
    assert_eq!(set.len(), tokens.len(), "a refresh token was used twice");
    set
}

fn job(state: &AppState) -> (u64, u64, u64) {
    let s = &state.oauth.keepalive;
    (
        s.runs.load(Ordering::Relaxed),
        s.refreshed.load(Ordering::Relaxed),
        s.failed.load(Ordering::Relaxed),
    )
}

#[tokio::test]
async fn the_job_refreshes_connections_idle_longer_than_the_idle_age_and_leaves_fresh_ones() {
    for backend in BACKENDS {
        let o = oauth_app(backend, fast_job, json!({}), json!({})).await;
        let idle = o.app.user(USER1, &[]).await;
        let fresh = o.app.user("fresh@example.com", &[]).await;
        o.connect(&idle, json!({})).await;
        o.connect(&fresh, json!({})).await;
        let idle_at = o.stored_secret(USER1, "access_token");
        let fresh_at = o.stored_secret("fresh@example.com", "access_token");
        age(&o, &o.tc_name(USER1), 40 * DAY);

        wait_for(30, "the idle connection is refreshed", || async {
            refreshes(&o).await >= 1
        })
        .await;
        a_few_more_runs().await;
        assert_eq!(
            refreshes(&o).await,
            1,
            "{backend:?}: only the idle one, once"
        );
        assert_ne!(o.stored_secret(USER1, "access_token"), idle_at);
        assert_eq!(
            o.stored_secret("fresh@example.com", "access_token"),
            fresh_at
        );
        let (runs, refreshed, failed) = job(&o.app.state);
        assert!(runs >= 2, "{backend:?}: {runs}");
        assert_eq!((refreshed, failed), (1, 0), "{backend:?}");
        // The user's token is the new one, without another refresh.
        let (status, v) = o.get_access_token(&idle, "").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["message"]["access_token"].as_str(),
            o.stored_secret(USER1, "access_token").as_deref()
        );
        assert_eq!(refreshes(&o).await, 1);
    }
}

#[tokio::test]
async fn apps_marked_keep_warm_are_refreshed_ahead_of_expiry_and_other_apps_are_not() {
    for backend in BACKENDS {
        let o = oauth_app(backend, fast_job, json!({}), json!({})).await;
        let user = o.app.user(USER1, &[]).await;
        o.connect(&user, json!({})).await;
        // 3,590 s of a 3,600 s token are gone: near expiry, but far from idle.
        age(&o, &o.tc_name(USER1), 3590);
        a_few_more_runs().await;
        assert_eq!(refreshes(&o).await, 0, "{backend:?}: not keep warm yet");

        let path = "/api/method/connected_apps.app_settings";
        let (status, v) = o
            .app
            .post(
                &o.admin(),
                path,
                &json!({"connected_app": o.name, "keep_warm": 1}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["message"]["keep_warm"], true);
        // A plain user may not change it.
        let (status, _) = o
            .app
            .post(
                &user,
                path,
                &json!({"connected_app": o.name, "keep_warm": 0}),
            )
            .await;
        assert_eq!(status, 403, "{backend:?}");

        wait_for(30, "the keep-warm connection is refreshed", || async {
            refreshes(&o).await >= 1
        })
        .await;
        a_few_more_runs().await;
        assert_eq!(
            refreshes(&o).await,
            1,
            "{backend:?}: refreshed once, then fresh"
        );
        let (status, v) = o
            .app
            .get(&user, &format!("{path}?connected_app={}", o.name))
            .await;
        assert_eq!((status, &v["message"]["keep_warm"]), (200, &json!(true)));
    }
}

/// A second instance on the first one's database, with the same settings.
async fn second_instance(
    o: &OAuthApp,
    change: impl Fn(&mut Settings),
) -> actix_web::web::Data<AppState> {
    let mut settings = test_settings(&o.app.db);
    settings.admin_password = None;
    change(&mut settings);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    settings.bind = format!("127.0.0.1:{port}");
    settings.public_url = format!("http://127.0.0.1:{port}");
    settings.public_url_explicit = true;
    let other = Application::build(settings).await.expect("second instance");
    let state = other.state.clone();
    tokio::spawn(other.run_until_stopped());
    state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_run_the_job_one_at_a_time_and_refresh_each_due_connection_once(
) {
    for backend in BACKENDS {
        let o = oauth_app(backend, fast_job, json!({}), json!({})).await;
        let b = second_instance(&o, fast_job).await;
        let seeded: HashSet<String> = seed(&o, 40, 60).await.into_iter().collect();

        wait_for(120, "every seeded connection is refreshed", || async {
            job(&o.app.state).1 + job(&b).1 >= 40
        })
        .await;
        a_few_more_runs().await;
        assert_eq!(refreshes(&o).await, 40, "{backend:?}");
        assert_eq!(refreshed_tokens(&o).await, seeded, "{backend:?}");
        let (a_runs, a_refreshed, a_failed) = job(&o.app.state);
        let (b_runs, b_refreshed, b_failed) = job(&b);
        assert_eq!((a_failed, b_failed), (0, 0), "{backend:?}");
        assert_eq!(a_refreshed + b_refreshed, 40, "{backend:?}");
        // The lease holder keeps the job: the other instance never ran it.
        assert!(
            (a_runs == 0) != (b_runs == 0),
            "{backend:?}: runs {a_runs} and {b_runs}"
        );
        assert_eq!(o.provider.stats().await["invalid_grant"], 0);
    }
}

#[tokio::test]
async fn the_job_keeps_at_most_the_configured_number_of_refreshes_in_flight_per_token_endpoint() {
    for backend in BACKENDS {
        let o = oauth_app(
            backend,
            |s| {
                fast_job(s);
                s.keepalive.concurrency = 3;
            },
            json!({"tokenDelayMs": 150, "rotateRefreshToken": false}),
            json!({}),
        )
        .await;
        seed(&o, 30, 60).await;
        wait_for(120, "every seeded connection is refreshed", || async {
            job(&o.app.state).1 >= 30
        })
        .await;
        let stats = o.provider.stats().await;
        let max = stats["max_token_in_flight"].as_u64().unwrap();
        assert!((2..=3).contains(&max), "{backend:?}: {stats}");
        assert_eq!(job(&o.app.state).1, 30, "{backend:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_due_connections_on_mariadb_are_each_refreshed_exactly_once() {
    let o = oauth_app(
        Backend::Mysql,
        |s| {
            fast_job(s);
            s.keepalive.interval = Duration::from_secs(1);
        },
        json!({"rotateRefreshToken": false}),
        json!({}),
    )
    .await;
    let seeded: HashSet<String> = seed(&o, 10_000, 60).await.into_iter().collect();
    wait_for(900, "10,000 connections are refreshed", || async {
        job(&o.app.state).1 >= 10_000
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stats = o.provider.stats().await;
    assert_eq!(stats["refresh_requests"], 10_000, "{stats}");
    assert_eq!(stats["invalid_grant"], 0, "{stats}");
    assert!(
        stats["max_token_in_flight"].as_u64().unwrap() <= 4,
        "{stats}"
    );
    assert_eq!(refreshed_tokens(&o).await, seeded);
    let (_, refreshed, failed) = job(&o.app.state);
    assert_eq!((refreshed, failed), (10_000, 0));
}

#[tokio::test]
async fn a_refresh_failing_in_the_job_is_recorded_without_secrets_and_a_success_clears_it() {
    for backend in BACKENDS {
        let o = oauth_app(backend, fast_job, json!({}), json!({})).await;
        let user = o.app.user(USER1, &[]).await;
        o.connect(&user, json!({})).await;
        let rt = o.stored_secret(USER1, "refresh_token").unwrap();
        let name = o.tc_name(USER1);
        let app_path = format!("/api/resource/Connected%20App/{}", o.name);
        let wrong_secret = "wrong-secret-value-1234";
        let (status, _) = o
            .app
            .put(
                &o.admin(),
                &app_path,
                &json!({"client_secret": wrong_secret}),
            )
            .await;
        assert_eq!(status, 200);
        age(&o, &name, 40 * DAY);

        wait_for(30, "the failure is recorded", || async {
            health_store::refresh_failure(&mut o.app.db.raw(), &name)
                .unwrap()
                .is_some()
        })
        .await;
        let (error, since) = health_store::refresh_failure(&mut o.app.db.raw(), &name)
            .unwrap()
            .unwrap();
        assert_eq!(
            error, "the provider answered HTTP 401 (invalid_client)",
            "{backend:?}"
        );
        for secret in [wrong_secret, CLIENT_SECRET, rt.as_str()] {
            assert!(!error.contains(secret));
        }
        // Later failures keep the time of the first one.
        wait_for(30, "another failed run", || async {
            job(&o.app.state).2 >= 2
        })
        .await;
        let (_, since2) = health_store::refresh_failure(&mut o.app.db.raw(), &name)
            .unwrap()
            .unwrap();
        assert_eq!(since2, since);

        let (status, _) = o
            .app
            .put(
                &o.admin(),
                &app_path,
                &json!({"client_secret": CLIENT_SECRET}),
            )
            .await;
        assert_eq!(status, 200);
        wait_for(30, "a successful refresh clears the failure", || async {
            health_store::refresh_failure(&mut o.app.db.raw(), &name)
                .unwrap()
                .is_none()
        })
        .await;
        assert_ne!(
            o.stored_secret(USER1, "refresh_token").as_deref(),
            Some(rt.as_str())
        );
    }
}

#[tokio::test]
async fn a_token_living_shorter_than_the_refresh_margin_is_refreshed_only_once_half_its_life_is_gone(
) {
    for backend in BACKENDS {
        let o = oauth_app(
            backend,
            |s| {
                s.keepalive.enabled = false;
                s.refresh_margin = Duration::from_secs(7200);
            },
            json!({"accessTokenTTL": 60}),
            json!({}),
        )
        .await;
        let user = o.app.user(USER1, &[]).await;
        o.connect(&user, json!({})).await;
        for _ in 0..3 {
            let (status, v) = o.get_access_token(&user, "").await;
            assert_eq!(status, 200, "{v}");
        }
        assert_eq!(
            refreshes(&o).await,
            0,
            "{backend:?}: a fresh token is used as it is"
        );

        // 40 of its 60 seconds are gone: less than half is left, so it is refreshed, once.
        age(&o, &o.tc_name(USER1), 40);
        let (status, v) = o.get_access_token(&user, "").await;
        assert_eq!(status, 200, "{v}");
        let (status, _) = o.get_access_token(&user, "").await;
        assert_eq!(status, 200);
        assert_eq!(refreshes(&o).await, 1, "{backend:?}");
    }
}

#[tokio::test]
async fn a_user_request_for_a_connection_the_job_is_refreshing_waits_and_no_one_refreshes_twice() {
    for backend in BACKENDS {
        let o = oauth_app(backend, fast_job, json!({"tokenDelayMs": 700}), json!({})).await;
        let user = o.app.user(USER1, &[]).await;
        o.connect(&user, json!({})).await;
        // Idle and expired: both the job and the user's request want to refresh it.
        age(&o, &o.tc_name(USER1), 40 * DAY);
        wait_for(30, "the job's refresh reaches the provider", || async {
            o.provider.stats().await["token_in_flight"]
                .as_u64()
                .unwrap_or(0)
                >= 1
        })
        .await;
        let (status, v) = o.get_access_token(&user, "").await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        a_few_more_runs().await;
        assert_eq!(refreshes(&o).await, 1, "{backend:?}");
        assert_eq!(
            v["message"]["access_token"].as_str(),
            o.stored_secret(USER1, "access_token").as_deref()
        );
    }
}
