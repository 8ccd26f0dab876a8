//! Tokens after connecting, against the real test provider: `get_access_token` (refresh with
//! and without rotation, an omitted refresh token, invalid_grant, an unreachable provider),
//! `has_token`, client credentials, and revocation when a Token Cache is deleted.

use base64::Engine;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;
use crate::oauth_flow::*;

const HAS_TOKEN: &str =
    "/api/method/frappe.integrations.doctype.connected_app.connected_app.has_token";

/// A fixture for refreshing: tests make a token expire with `o.expire(user)` before a use
/// that must refresh it. (A refresh margin longer than the token's lifetime no longer makes
/// every use refresh: the margin is capped at half the lifetime.)
async fn always_refreshing(backend: Backend, top: Value) -> OAuthApp {
    oauth_app(backend, |_| {}, top, json!({})).await
}

async fn set_app(o: &OAuthApp, body: Value) {
    let (status, v) = o
        .app
        .put(
            &o.admin(),
            &format!("/api/resource/Connected%20App/{}", o.name),
            &body,
        )
        .await;
    assert_eq!(status, 200, "{v}");
}

async fn has_token(o: &OAuthApp, auth: &str, query: &str) -> (u16, Value) {
    o.app
        .get(
            auth,
            &format!("{HAS_TOKEN}?connected_app={}{query}", o.name),
        )
        .await
}

#[tokio::test]
async fn get_access_token_answers_the_callers_own_connection_by_get_and_post() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let admin = o.admin();
        let user1 = o.app.user(USER1, &[]).await;
        o.connect(&user1, json!({})).await;
        let stored = o.stored_secret(USER1, "access_token").unwrap();

        let (status, v) = o.get_access_token(&user1, "").await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        let m = &v["message"];
        let keys: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
        // Frappe's four, then the answer's other members (the provider's id_token): see
        // provider_quirks for an answer without extras.
        assert_eq!(
            keys,
            ["access_token", "token_type", "expires_in", "scope", "extra"]
        );
        assert!(m["extra"]["id_token"].is_string(), "{v}");
        assert_eq!(m["access_token"], stored.as_str());
        assert_eq!(m["token_type"], "Bearer");
        assert_eq!(m["scope"], "openid email profile");
        let left = m["expires_in"].as_i64().unwrap();
        assert!((3500..=3600).contains(&left), "{left}");

        let (status, v) = o
            .app
            .post(
                &user1,
                "/api/method/connected_apps.get_access_token",
                &json!({"connected_app": o.name}),
            )
            .await;
        assert_eq!(
            (status, &v["message"]["access_token"]),
            (200, &json!(stored))
        );

        // Another user's connection: only for a System Manager.
        let (status, v) = o.get_access_token(&user1, "&user=Administrator").await;
        assert_eq!(status, 403, "{v}");
        let (status, v) = o.get_access_token(&admin, &format!("&user={USER1}")).await;
        assert_eq!(
            (status, &v["message"]["access_token"]),
            (200, &json!(stored))
        );

        // Not connected: a clear 4xx.
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 417, "{v}");
        assert!(server_messages(&v)[0].contains("Connect"), "{v}");

        // A fresh token is not refreshed.
        assert_eq!(o.provider.stats().await["refresh_requests"], 0);
    }
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_and_the_rotated_refresh_token_is_stored() {
    for backend in BACKENDS {
        let o = always_refreshing(backend, json!({"rotateRefreshToken": true})).await;
        let user1 = o.app.user(USER1, &[]).await;
        o.connect(&user1, json!({})).await;
        let old_at = o.stored_secret(USER1, "access_token").unwrap();
        let old_rt = o.stored_secret(USER1, "refresh_token").unwrap();

        o.expire(USER1);
        let (status, v) = o.get_access_token(&user1, "").await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        let new_at = v["message"]["access_token"].as_str().unwrap().to_string();
        assert_ne!(new_at, old_at);
        assert_eq!(o.stored_secret(USER1, "access_token"), Some(new_at.clone()));

        let reqs = o.token_requests("refresh_token").await;
        assert_eq!(reqs.len(), 1, "one refresh per call: {reqs:?}");
        let req = &reqs[0];
        assert_eq!(req["status"], 200, "{req}");
        assert!(req["headers"].get("authorization").is_none(), "{req}");
        // Frappe's field set (console 403); the order is the oauth2 crate's.
        let mut names = field_names(req);
        names.sort();
        assert_eq!(
            names,
            [
                "client_id",
                "client_secret",
                "grant_type",
                "redirect_uri",
                "refresh_token",
                "scope"
            ]
        );
        assert_eq!(field(req, "grant_type").as_deref(), Some("refresh_token"));
        assert_eq!(field(req, "redirect_uri"), Some(o.redirect_uri.clone()));
        assert_eq!(field(req, "client_id").as_deref(), Some(CLIENT_ID));
        assert_eq!(field(req, "client_secret").as_deref(), Some(CLIENT_SECRET));
        assert_eq!(field(req, "scope").as_deref(), Some("openid email profile"));
        assert_eq!(field(req, "refresh_token"), Some(old_rt.clone()));

        let new_rt = o.stored_secret(USER1, "refresh_token").unwrap();
        assert_ne!(new_rt, old_rt, "the rotated refresh token is stored");
        assert_eq!(o.introspect(&new_rt).await["active"], true);
        assert_eq!(o.introspect(&old_rt).await["active"], false);

        // The next call refreshes with the new refresh token, and succeeds.
        o.expire(USER1);
        let (status, _) = o.get_access_token(&user1, "").await;
        assert_eq!(status, 200);
        let reqs = o.token_requests("refresh_token").await;
        assert_eq!(reqs.len(), 2);
        assert_eq!(field(&reqs[1], "refresh_token"), Some(new_rt));
        assert_eq!(o.provider.stats().await["invalid_grant"], 0);
    }
}

#[tokio::test]
async fn without_rotation_the_old_refresh_token_is_kept() {
    for backend in BACKENDS {
        let o = always_refreshing(backend, json!({"rotateRefreshToken": false})).await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        let rt = o.stored_secret("Administrator", "refresh_token").unwrap();
        for _ in 0..2 {
            o.expire("Administrator");
            let (status, v) = o.get_access_token(&admin, "").await;
            assert_eq!(status, 200, "{backend:?}: {v}");
            assert_eq!(
                o.stored_secret("Administrator", "refresh_token"),
                Some(rt.clone())
            );
        }
        let reqs = o.token_requests("refresh_token").await;
        assert_eq!(reqs.len(), 2);
        assert!(reqs
            .iter()
            .all(|r| field(r, "refresh_token").as_deref() == Some(rt.as_str())));
        assert!(reqs.iter().all(|r| r["status"] == 200));
    }
}

/// A token endpoint that answers every request with `body` (for a response the real provider
/// never gives: one without `refresh_token`). Returns its URL.
async fn fixed_token_endpoint(body: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = body.to_string();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then as many body bytes as Content-Length says.
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    format!("http://127.0.0.1:{port}/token")
}

#[tokio::test]
async fn a_refresh_response_without_a_refresh_token_keeps_the_old_one() {
    for backend in BACKENDS {
        let o = always_refreshing(backend, json!({})).await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        let rt = o.stored_secret("Administrator", "refresh_token").unwrap();
        let stub = fixed_token_endpoint(json!({
            "access_token": "at-from-a-provider-without-rotation",
            "token_type": "bearer",
            "expires_in": 3600,
            "scope": "openid email"
        }))
        .await;
        set_app(&o, json!({"token_uri": stub})).await;

        o.expire("Administrator");
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        assert_eq!(
            v["message"]["access_token"],
            "at-from-a-provider-without-rotation"
        );
        assert_eq!(v["message"]["scope"], "openid email");
        assert_eq!(o.stored_secret("Administrator", "refresh_token"), Some(rt));
    }
}

#[tokio::test]
async fn invalid_grant_on_refresh_asks_to_connect_again_and_has_token_turns_false() {
    for backend in BACKENDS {
        let o = always_refreshing(backend, json!({})).await;
        let user1 = o.app.user(USER1, &[]).await;
        o.connect(&user1, json!({})).await;
        let rt = o.stored_secret(USER1, "refresh_token").unwrap();
        // The grant is revoked at the provider (as when the user removes the app there).
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

        o.expire(USER1);
        let (status, v) = o.get_access_token(&user1, "").await;
        assert_eq!(status, 417, "{backend:?}: {v}");
        let msg = &server_messages(&v)[0];
        assert!(
            msg.contains("invalid_grant") && msg.contains("connect again"),
            "{msg}"
        );
        assert_eq!(o.provider.stats().await["invalid_grant"], 1);

        let (status, v) = has_token(&o, &user1, "").await;
        assert_eq!((status, &v["message"]), (200, &json!(false)));
        let (status, v) = o
            .app
            .post(&user1, HAS_TOKEN, &json!({"connected_app": o.name}))
            .await;
        assert_eq!((status, &v["message"]), (200, &json!(false)));

        // Asking again does not bother the provider.
        let (status, _) = o.get_access_token(&user1, "").await;
        assert_eq!(status, 417);
        assert_eq!(o.provider.stats().await["refresh_requests"], 1);

        // Connecting again heals it.
        o.connect(&user1, json!({})).await;
        let (status, v) = has_token(&o, &user1, "").await;
        assert_eq!((status, &v["message"]), (200, &json!(true)));
    }
}

#[tokio::test]
async fn an_unreachable_provider_during_refresh_is_a_503_and_keeps_the_tokens() {
    for backend in BACKENDS {
        let o = always_refreshing(backend, json!({})).await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        let at = o.stored_secret("Administrator", "access_token");
        let rt = o.stored_secret("Administrator", "refresh_token");
        set_app(&o, json!({"token_uri": "http://127.0.0.1:1/token"})).await;

        o.expire("Administrator");
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 503, "{backend:?}: {v}");
        assert!(
            server_messages(&v)[0].contains("could not be reached"),
            "{v}"
        );
        assert_eq!(o.stored_secret("Administrator", "access_token"), at);
        assert_eq!(o.stored_secret("Administrator", "refresh_token"), rt);
        let (_, v) = has_token(&o, &admin, "").await;
        assert_eq!(v["message"], true);
    }
}

#[tokio::test]
async fn has_token_answers_get_and_post_and_connected_user_is_for_a_system_manager() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let admin = o.admin();
        let user1 = o.app.user(USER1, &[]).await;
        let (_, v) = has_token(&o, &user1, "").await;
        assert_eq!(v["message"], false, "{backend:?}");
        o.connect(&user1, json!({})).await;
        let (status, v) = has_token(&o, &user1, "").await;
        assert_eq!((status, &v["message"]), (200, &json!(true)));
        let (status, v) = o
            .app
            .post(&user1, HAS_TOKEN, &json!({"connected_app": o.name}))
            .await;
        assert_eq!((status, &v["message"]), (200, &json!(true)));

        let (status, v) = has_token(&o, &admin, &format!("&connected_user={USER1}")).await;
        assert_eq!((status, &v["message"]), (200, &json!(true)));
        let (_, v) = has_token(&o, &admin, "").await;
        assert_eq!(v["message"], false);
        let (status, v) = has_token(&o, &user1, "&connected_user=Administrator").await;
        assert_eq!(status, 403, "{v}");
    }
}

#[tokio::test]
async fn the_backend_app_token_uses_client_credentials_once_and_is_cached() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let admin = o.admin();
        let user1 = o.app.user(USER1, &[]).await;
        let path = format!(
            "/api/method/connected_apps.get_backend_app_token?connected_app={}",
            o.name
        );
        let (status, v) = o.app.get(&user1, &path).await;
        assert_eq!(status, 403, "{backend:?}: {v}");
        assert!(o.provider.requests().await.is_empty());

        let (status, v) = o.app.get(&admin, &path).await;
        assert_eq!(status, 200, "{v}");
        let token = v["message"]["access_token"].as_str().unwrap().to_string();
        assert_eq!(v["message"]["token_type"], "Bearer");

        let reqs = o.provider.requests().await;
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
        assert_eq!(
            reqs[0]["headers"]["authorization"],
            format!("Basic {basic}")
        );
        assert_eq!(
            reqs[0]["form"],
            json!([
                ["grant_type", "client_credentials"],
                ["scope", "openid email profile"]
            ])
        );
        assert_eq!(reqs[0]["status"], 200, "{}", reqs[0]);

        let (status, tc) = o
            .app
            .get(&admin, &format!("/api/resource/Token%20Cache/{}-", o.name))
            .await;
        assert_eq!(status, 200, "{tc}");
        assert!(tc["data"].get("user").is_none(), "{tc}");
        assert_eq!(o.stored_secret("", "access_token"), Some(token.clone()));

        let (status, v) = o.app.get(&admin, &path).await;
        assert_eq!(
            (status, &v["message"]["access_token"]),
            (200, &json!(token))
        );
        assert_eq!(o.provider.stats().await["client_credentials_requests"], 1);
    }
}

#[tokio::test]
async fn deleting_a_token_cache_revokes_the_refresh_token_then_the_access_token() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let user1 = o.app.user(USER1, &[]).await;
        o.connect(&user1, json!({})).await;
        let at = o.stored_secret(USER1, "access_token").unwrap();
        let rt = o.stored_secret(USER1, "refresh_token").unwrap();
        o.provider.reset().await;

        let (status, v) = o
            .app
            .delete(
                &user1,
                &format!("/api/resource/Token%20Cache/{}", enc(&o.tc_name(USER1))),
            )
            .await;
        assert_eq!((status, v), (202, json!({"data": "ok"})), "{backend:?}");
        assert_eq!(o.token_cache(USER1).await.0, 404);
        assert!(o.auth_rows(USER1).is_empty(), "no secrets left behind");

        let reqs = o.provider.requests().await;
        let sent: Vec<(Option<String>, Option<String>)> = reqs
            .iter()
            .map(|r| (field(r, "token_type_hint"), field(r, "token")))
            .collect();
        assert_eq!(
            sent,
            [
                (Some("refresh_token".into()), Some(rt.clone())),
                (Some("access_token".into()), Some(at.clone()))
            ]
        );
        assert!(reqs
            .iter()
            .all(|r| r["path"] == "/token/revocation" && r["status"] == 200));
        assert_eq!(field(&reqs[0], "client_id").as_deref(), Some(CLIENT_ID));
        assert_eq!(o.introspect(&rt).await["active"], false);
        assert_eq!(o.introspect(&at).await["active"], false);
    }
}

#[tokio::test]
async fn a_failing_revocation_endpoint_does_not_block_the_delete() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        set_app(&o, json!({"revocation_uri": "http://127.0.0.1:1/revoke"})).await;
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
        assert_eq!(status, 202, "{backend:?}");
        assert_eq!(o.token_cache("Administrator").await.0, 404);

        // A revocation endpoint that answers an error does not block it either.
        o.connect(&admin, json!({})).await;
        set_app(
            &o,
            json!({"revocation_uri": o.provider.url("/no-such-endpoint")}),
        )
        .await;
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
        assert_eq!(o.token_cache("Administrator").await.0, 404);
    }
}
