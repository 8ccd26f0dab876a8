//! Connection health as scripts read it (issue 18): `connected_apps.connection_status` walks one
//! connection through every state against the real test provider — not connected, connected,
//! expired (renews on next use), refresh failing, connected again, needs reconnect — and
//! `/metrics` counts connections per state. Also the pages' ways through Frappe's
//! "linked Token Caches" refusal and Frappe's `/app/Form/…` links (issue 17).

use std::time::Duration;

use diesel::prelude::*;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::oauth_flow::*;

const STATUS: &str = "/api/method/connected_apps.connection_status";

async fn status(o: &OAuthApp, auth: &str, query: &str) -> (u16, Value) {
    o.app
        .get(auth, &format!("{STATUS}?connected_app={}{query}", o.name))
        .await
}

/// The connection's state, checked to never carry a token.
async fn state_of(o: &OAuthApp, auth: &str) -> Value {
    let (code, v) = status(o, auth, "").await;
    assert_eq!(code, 200, "{v}");
    let text = v.to_string();
    for field in ["access_token", "refresh_token"] {
        if let Some(secret) = o.stored_secret(USER1, field) {
            assert!(!text.contains(&secret), "no {field} in {text}");
        }
    }
    v["message"].clone()
}

async fn set_token_uri(o: &OAuthApp, uri: &str) {
    let (code, v) = o
        .app
        .put(
            &o.admin(),
            &format!("/api/resource/Connected%20App/{}", o.name),
            &json!({ "token_uri": uri }),
        )
        .await;
    assert_eq!(code, 200, "{v}");
}

/// `connected_app_connections{state="…"}` from `/metrics`.
async fn gauge(app: &TestApp, state: &str) -> i64 {
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("connected_app_connections{{state=\"{state}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{prefix} in {text}"))
        .trim()
        .parse()
        .unwrap()
}

async fn walk_every_state(backend: Backend) {
    // Tokens live 2 s, so they expire within the test.
    let o = oauth_app(backend, |_| {}, json!({"accessTokenTTL": 2}), json!({})).await;
    let user1 = o.app.user(USER1, &[]).await;

    let s = state_of(&o, &user1).await;
    assert_eq!(s["state"], "not_connected", "{backend:?} {s}");
    assert_eq!(s["token_cache"], Value::Null);
    assert_eq!(s["requested_scopes"], json!(["openid", "email", "profile"]));
    assert_eq!(s["time_zone"], o.app.state.clock.tz.name());
    assert_eq!(gauge(&o.app, "connected").await, 0);

    o.connect(&user1, json!({})).await;
    let s = state_of(&o, &user1).await;
    assert_eq!(s["state"], "connected", "{backend:?} {s}");
    assert_eq!(s["token_cache"], o.tc_name(USER1));
    assert_eq!(s["has_refresh_token"], true);
    assert_eq!(s["granted_scopes"], json!(["openid", "email", "profile"]));
    assert!(s["expires_at"].as_str().is_some(), "{s}");
    assert_eq!(
        (s["last_error"].clone(), s["failing_since"].clone()),
        (Value::Null, Value::Null)
    );
    assert_eq!(gauge(&o.app, "connected").await, 1);

    tokio::time::sleep(Duration::from_millis(3100)).await;
    let s = state_of(&o, &user1).await;
    assert_eq!(
        s["state"], "expired",
        "{backend:?}: renews on next use: {s}"
    );
    assert_eq!(gauge(&o.app, "expired").await, 1);

    // The provider cannot be reached: the refresh through the service fails.
    let token_uri = o.provider.token_endpoint();
    set_token_uri(&o, "http://127.0.0.1:1/token").await;
    let (code, _) = o.get_access_token(&user1, "").await;
    assert_eq!(code, 503, "{backend:?}");
    let s = state_of(&o, &user1).await;
    assert_eq!(s["state"], "refresh_failing", "{backend:?} {s}");
    assert!(
        s["last_error"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "{s}"
    );
    let since = s["failing_since"].as_str().unwrap().to_string();
    assert_eq!(gauge(&o.app, "refresh_failing").await, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (code, _) = o.get_access_token(&user1, "").await;
    assert_eq!(code, 503);
    let s = state_of(&o, &user1).await;
    assert_eq!(
        s["failing_since"],
        since.as_str(),
        "the first failure stays: {s}"
    );

    // The provider is back: the next use refreshes and the failure is over.
    set_token_uri(&o, &token_uri).await;
    let (code, v) = o.get_access_token(&user1, "").await;
    assert_eq!(code, 200, "{v}");
    let s = state_of(&o, &user1).await;
    assert_eq!(s["state"], "connected", "{backend:?} {s}");
    assert_eq!(s["last_error"], Value::Null);

    // The grant is revoked at the provider: the next refresh gets invalid_grant.
    let rt = o.stored_secret(USER1, "refresh_token").unwrap();
    let r = reqwest::Client::new()
        .post(o.provider.revocation_endpoint())
        .form(&[
            ("token", rt.as_str()),
            ("token_type_hint", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (code, _) = o.get_access_token(&user1, "").await;
    assert_eq!(code, 417, "{backend:?}");
    let s = state_of(&o, &user1).await;
    assert_eq!(s["state"], "needs_reconnect", "{backend:?} {s}");
    assert!(
        s["last_error"].as_str().unwrap().contains("invalid_grant"),
        "{s}"
    );
    assert_eq!(gauge(&o.app, "needs_reconnect").await, 1);
    assert_eq!(gauge(&o.app, "connected").await, 0);

    // Connected again, then the token expires with no refresh token (as an imported one can).
    o.connect(&user1, json!({})).await;
    assert_eq!(state_of(&o, &user1).await["state"], "connected");
    {
        use connected_apps::db::schema::auth;
        let mut conn = o.app.db.raw();
        diesel::delete(
            auth::table
                .filter(auth::doctype.eq("Token Cache"))
                .filter(auth::name.eq(o.tc_name(USER1)))
                .filter(auth::fieldname.eq("refresh_token")),
        )
        .execute(&mut conn)
        .unwrap();
    }
    let s = state_of(&o, &user1).await;
    assert_eq!(
        (s["state"].clone(), s["has_refresh_token"].clone()),
        (json!("connected"), json!(false))
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let s = state_of(&o, &user1).await;
    assert_eq!(s["state"], "needs_reconnect", "{backend:?} {s}");
    assert!(
        s["last_error"]
            .as_str()
            .unwrap()
            .contains("no refresh token"),
        "{s}"
    );
}

#[tokio::test]
async fn connection_status_walks_one_connection_through_every_state_on_sqlite() {
    walk_every_state(Backend::Sqlite).await;
}

#[tokio::test]
async fn connection_status_walks_one_connection_through_every_state_on_mariadb() {
    walk_every_state(Backend::Mysql).await;
}

#[tokio::test]
async fn connection_status_is_the_callers_own_unless_a_system_manager_names_a_user() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let user1 = o.app.user(USER1, &[]).await;
        o.connect(&user1, json!({})).await;
        let (code, v) = status(&o, &user1, "&user=Administrator").await;
        assert_eq!(code, 403, "{backend:?} {v}");
        let (code, v) = status(&o, &o.admin(), &format!("&user={USER1}")).await;
        assert_eq!(
            (code, &v["message"]["state"]),
            (200, &json!("connected")),
            "{v}"
        );
        assert_eq!(v["message"]["user"], USER1);
        // Administrator's own connection does not exist.
        let (_, v) = status(&o, &o.admin(), "").await;
        assert_eq!(v["message"]["state"], "not_connected", "{v}");
        // By POST, and under /api/v2 as `data`.
        let (code, v) = o
            .app
            .post(&user1, STATUS, &json!({"connected_app": o.name}))
            .await;
        assert_eq!((code, &v["message"]["state"]), (200, &json!("connected")));
        let (code, v) = o
            .app
            .get(
                &user1,
                &format!(
                    "/api/v2/method/connected_apps.connection_status?connected_app={}",
                    o.name
                ),
            )
            .await;
        assert_eq!(
            (code, &v["data"]["state"]),
            (200, &json!("connected")),
            "{v}"
        );
        // No such app: Frappe's 404; no app named: 400, as `has_token`; a Guest: not whitelisted.
        let (code, _) = o
            .app
            .get(&user1, &format!("{STATUS}?connected_app=no-such-app"))
            .await;
        assert_eq!(code, 404, "{backend:?}");
        let (code, _) = o.app.get(&user1, STATUS).await;
        assert_eq!(code, 400, "{backend:?}");
        let r = reqwest::get(o.app.url(&format!("{STATUS}?connected_app={}", o.name)))
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{backend:?}");
    }
}

#[tokio::test]
async fn an_app_with_connections_is_refused_as_frappe_does_and_deleted_once_they_are_gone() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let user1 = o.app.user(USER1, &[]).await;
        o.connect(&user1, json!({})).await;
        let path = format!("/api/resource/Connected%20App/{}", o.name);
        let (code, v) = o.app.delete(&o.admin(), &path).await;
        assert_eq!(code, 417, "{backend:?} {v}");
        assert_eq!(v["exc_type"], "LinkExistsError", "{v}");
        let msg = &server_messages(&v)[0];
        let tc = o.tc_name(USER1);
        assert!(
            msg.contains(&format!("/app/Form/Token Cache/{tc}")),
            "the message links the connection: {msg}"
        );
        // The way through the pages take: the linked connections first, then the app.
        let (code, v) = o
            .app
            .get(
                &o.admin(),
                &format!(
                    "/api/resource/Token%20Cache?filters={}&fields=[\"name\"]",
                    enc(&json!([["connected_app", "=", o.name]]).to_string())
                ),
            )
            .await;
        assert_eq!(code, 200, "{v}");
        assert_eq!(v["data"], json!([{"name": tc}]));
        let (code, v) = o
            .app
            .delete(
                &o.admin(),
                &format!("/api/resource/Token%20Cache/{}", enc(&tc)),
            )
            .await;
        assert_eq!(code, 202, "{v}");
        let (code, v) = o.app.delete(&o.admin(), &path).await;
        assert_eq!(code, 202, "{backend:?} {v}");
        let (code, _) = o.app.get(&o.admin(), &path).await;
        assert_eq!(code, 404);
    }
}

#[tokio::test]
async fn frappes_form_links_and_a_connections_page_open_pages() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let r = app
            .client
            .post(app.url("/api/method/login"))
            .form(&[("usr", "Administrator"), ("pwd", "admin-pass")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let cookie = format!("sid={}", sid_of(&r));
        let open = |path: &str| {
            app.client
                .get(app.url(path))
                .header("Accept", "text/html")
                .header("Cookie", &cookie)
                .send()
        };
        for (link, page) in [
            ("/app/Form/Connected%20App/abc", "/app/connected-app/abc"),
            (
                "/app/Form/Token%20Cache/abc-jane@example.com",
                "/app/token-cache/abc-jane@example.com",
            ),
        ] {
            let r = open(link).await.unwrap();
            assert_eq!(r.status(), 302, "{backend:?} {link}");
            assert_eq!(r.headers()["location"], page);
            let r = open(page).await.unwrap();
            assert_eq!(r.status(), 200, "{page}");
            assert!(r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"));
        }
        let r = open("/app/Form/User/Administrator").await.unwrap();
        assert_eq!(r.status(), 404);
        assert!(r.text().await.unwrap().contains("data-page=\"not-found\""));
        let r = open("/favicon.ico").await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/svg+xml");
    }
}

#[tokio::test]
async fn an_imported_token_past_its_expiry_is_expired_or_needs_reconnect_never_connected() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let user1 = o.app.user(USER1, &[]).await;
        o.connect(&user1, json!({})).await;
        assert_eq!(state_of(&o, &user1).await["state"], "connected");
        // As Frappe (or `import`) leaves it: no row of the service's own, expiry counted from
        // `modified`, which lies 2 hours back (the token lived 3600 s).
        let tc = o.tc_name(USER1);
        let then = o.app.state.clock.now() - chrono::Duration::hours(2);
        let mut conn = o.app.db.raw();
        diesel::sql_query("DELETE FROM `ca_token_state` WHERE `token_cache` = ?")
            .bind::<diesel::sql_types::Text, _>(&tc)
            .execute(&mut conn)
            .unwrap();
        diesel::sql_query("UPDATE `tabToken Cache` SET `modified` = ? WHERE `name` = ?")
            .bind::<diesel::sql_types::Text, _>(connected_apps::frappe::time::format(&then))
            .bind::<diesel::sql_types::Text, _>(&tc)
            .execute(&mut conn)
            .unwrap();
        let s = state_of(&o, &user1).await;
        assert_eq!(s["state"], "expired", "{backend:?} {s}");
        let expected =
            connected_apps::frappe::time::format(&(then + chrono::Duration::seconds(3600)));
        assert_eq!(
            s["expires_at"],
            expected.as_str(),
            "counted from `modified`"
        );
        assert_eq!(gauge(&o.app, "expired").await, 1);
        diesel::sql_query(
            "DELETE FROM `__Auth` WHERE `doctype` = 'Token Cache' AND `name` = ? AND `fieldname` = 'refresh_token'",
        )
        .bind::<diesel::sql_types::Text, _>(&tc)
        .execute(&mut conn)
        .unwrap();
        let s = state_of(&o, &user1).await;
        assert_eq!(s["state"], "needs_reconnect", "{backend:?} {s}");
        assert_eq!(gauge(&o.app, "needs_reconnect").await, 1);
        assert_eq!(gauge(&o.app, "connected").await, 0);
    }
}
