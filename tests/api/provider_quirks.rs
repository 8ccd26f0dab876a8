//! Providers' quirks, each played by the real test provider (its per-client switches):
//! form-encoded token answers (GitHub), tokens without `expires_in`, refresh answers without a
//! refresh token and rotating ones, Slack's user token nested in `authed_user`, extra members
//! (Salesforce's `instance_url`, the `id_token`) and scopes separated by commas.

use connected_apps::db::schema::ca_token_extra;
use diesel::prelude::*;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::oauth_flow::*;

/// The keys of `get_access_token`'s answer, in order.
fn keys(v: &Value) -> Vec<String> {
    v["message"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn form_encoded_token_answers_are_read_and_json_is_asked_for() {
    for (backend, format) in [
        (Backend::Sqlite, "form"),
        (Backend::Mysql, "form_unless_json"),
    ] {
        let o = oauth_app(
            backend,
            |_| {},
            json!({}),
            json!({"response_format": format}),
        )
        .await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        assert_eq!(
            v["message"]["access_token"].as_str(),
            o.stored_secret("Administrator", "access_token").as_deref()
        );
        assert_eq!(v["message"]["token_type"], "Bearer");
        assert!(v["message"]["expires_in"].as_i64().unwrap() > 3500, "{v}");
        o.expire("Administrator");
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 200, "{v}");
        for r in o.token_requests("authorization_code").await {
            assert_eq!(r["headers"]["accept"], "application/json", "{r}");
        }
        assert_eq!(o.token_requests("refresh_token").await.len(), 1);
    }
}

#[tokio::test]
async fn a_token_without_expires_in_never_expires_and_is_never_refreshed() {
    for backend in BACKENDS {
        let o = oauth_app(backend, |_| {}, json!({}), json!({"omit_expires_in": true})).await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        // Frappe's column holds what Frappe would store: 0.
        let (_, tc) = o.token_cache("Administrator").await;
        assert_eq!(tc["data"]["expires_in"], 0, "{backend:?}: {tc}");
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["message"]["expires_in"], Value::Null, "{v}");
        let token = v["message"]["access_token"].clone();
        // Hours later it is still the same token, and the provider was never asked again.
        o.expire("Administrator");
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(
            (status, &v["message"]["access_token"]),
            (200, &token),
            "{v}"
        );
        assert!(o.token_requests("refresh_token").await.is_empty());
        let has = format!(
            "/api/method/frappe.integrations.doctype.connected_app.connected_app.has_token?connected_app={}",
            o.name
        );
        let (_, v) = o.app.get(&admin, &has).await;
        assert_eq!(v["message"], true);
        let status_path = format!(
            "/api/method/connected_apps.connection_status?connected_app={}",
            o.name
        );
        let (_, v) = o.app.get(&admin, &status_path).await;
        assert_eq!(v["message"]["state"], "connected", "{v}");
        let metrics = reqwest::get(o.app.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("connected_app_connections{state=\"connected\"} 1"),
            "{metrics}"
        );
        // A token with a lifetime set by hand expires again as Frappe's column says.
        let path = format!(
            "/api/resource/Token%20Cache/{}",
            enc(&o.tc_name("Administrator"))
        );
        let (status, _) = o.app.put(&admin, &path, &json!({"expires_in": 3600})).await;
        assert_eq!(status, 200);
        let (_, v) = o.get_access_token(&admin, "").await;
        assert!(v["message"]["expires_in"].as_i64().unwrap() > 3500, "{v}");
    }
}

#[tokio::test]
async fn a_refresh_answer_without_a_refresh_token_keeps_the_old_one() {
    for backend in BACKENDS {
        let o = oauth_app(
            backend,
            |_| {},
            json!({"rotateRefreshToken": false}),
            json!({"omit_refresh_token_on_refresh": true}),
        )
        .await;
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
        for r in &reqs {
            assert_eq!(field(r, "refresh_token").as_deref(), Some(rt.as_str()));
            assert_eq!(r["status"], 200, "{r}");
        }
    }
}

#[tokio::test]
async fn a_rotated_refresh_token_is_stored_and_used_next() {
    for backend in BACKENDS {
        let o = oauth_app(
            backend,
            |_| {},
            json!({"rotateRefreshToken": true}),
            json!({}),
        )
        .await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        let mut seen = vec![o.stored_secret("Administrator", "refresh_token").unwrap()];
        for _ in 0..2 {
            o.expire("Administrator");
            let (status, v) = o.get_access_token(&admin, "").await;
            assert_eq!(status, 200, "{backend:?}: {v}");
            let now = o.stored_secret("Administrator", "refresh_token").unwrap();
            assert!(!seen.contains(&now), "a new refresh token is stored");
            seen.push(now);
        }
        let used: Vec<String> = o
            .token_requests("refresh_token")
            .await
            .iter()
            .filter_map(|r| field(r, "refresh_token"))
            .collect();
        assert_eq!(used, seen[..2]);
    }
}

#[tokio::test]
async fn slacks_user_token_nested_in_authed_user_is_the_connections_token() {
    for backend in BACKENDS {
        let o = oauth_app(
            backend,
            |_| {},
            json!({}),
            json!({"nest_authed_user": true, "scope_separator": ","}),
        )
        .await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        let m = &v["message"];
        assert_eq!(
            m["access_token"].as_str(),
            o.stored_secret("Administrator", "access_token").as_deref()
        );
        assert_eq!(m["token_type"], "Bearer");
        // Slack's commas became Frappe's separate scopes.
        assert_eq!(m["scope"], "openid email profile", "{v}");
        let (_, tc) = o.token_cache("Administrator").await;
        assert_eq!(tc["data"]["scopes"].as_array().unwrap().len(), 3, "{tc}");
        assert!(o.stored_secret("Administrator", "refresh_token").is_some());
        // The rest of Slack's answer is kept as extras, without the user's token again.
        assert_eq!(m["extra"]["team"]["id"], "T0TEST", "{v}");
        assert_eq!(m["extra"]["app_id"], "A0TEST");
        assert_eq!(m["extra"]["authed_user"]["id"], "U0TEST");
        assert!(
            m["extra"]["authed_user"].get("access_token").is_none(),
            "{v}"
        );
        assert!(m["extra"].get("ok").is_none(), "{v}");
        // The refresh (answered the usual way) still works with the nested refresh token.
        o.expire("Administrator");
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["message"]["extra"]["team"]["id"], "T0TEST",
            "extras stay: {v}"
        );
    }
}

#[tokio::test]
async fn extra_members_are_kept_apart_from_frappes_columns_and_returned_as_extra() {
    for backend in BACKENDS {
        let o = oauth_app(
            backend,
            |_| {},
            json!({}),
            json!({"extra_fields": {"instance_url": "https://na1.example.com"}}),
        )
        .await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        assert_eq!(
            keys(&v),
            ["access_token", "token_type", "expires_in", "scope", "extra"]
        );
        assert_eq!(
            v["message"]["extra"]["instance_url"],
            "https://na1.example.com"
        );
        let id_token = v["message"]["extra"]["id_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(id_token.split('.').count(), 3, "a JWT: {id_token}");
        // Not in Frappe's document, and sealed in the service's own table.
        let (_, tc) = o.token_cache("Administrator").await;
        let doc = tc.to_string();
        assert!(
            !doc.contains("instance_url") && !doc.contains(&id_token),
            "{tc}"
        );
        let stored: Option<String> = ca_token_extra::table
            .filter(ca_token_extra::token_cache.eq(o.tc_name("Administrator")))
            .select(ca_token_extra::extra)
            .first(&mut o.app.db.raw())
            .expect("a row of extras");
        let stored = stored.expect("extras");
        assert!(!stored.contains("instance_url") && !stored.contains(&id_token));
        // get_auth_header is unchanged.
        let (_, h) = o
            .app
            .get(
                &admin,
                &format!(
                    "/api/method/connected_apps.get_auth_header?connected_app={}",
                    o.name
                ),
            )
            .await;
        assert_eq!(h["message"].as_object().unwrap().len(), 1, "{h}");
        // rotate-key re-encrypts them with the secrets (checked with the vault's own pass).
        let config: Value =
            serde_json::from_str(&std::fs::read_to_string(&o.app.site_config).unwrap()).unwrap();
        let old = config["encryption_key"].as_str().unwrap().to_string();
        let new = connected_apps::secrets::generate_key();
        let ring =
            connected_apps::secrets::KeyRing::with_fallbacks(&new, std::slice::from_ref(&old))
                .unwrap();
        connected_apps::secrets::vault::rekey_all(&mut o.app.db.raw(), &ring).unwrap();
        let rekeyed: Option<String> = ca_token_extra::table
            .select(ca_token_extra::extra)
            .first(&mut o.app.db.raw())
            .unwrap();
        let rekeyed = rekeyed.expect("extras kept");
        let only = |k: &str| connected_apps::secrets::KeyRing::with_fallbacks(k, &[]).unwrap();
        let clear = only(&new)
            .decrypt(&rekeyed)
            .expect("the new key reads them");
        assert!(clear.expose_secret().contains("na1.example.com"));
        assert!(only(&old).decrypt(&rekeyed).is_err());
        // Deleting the connection deletes its extras.
        let path = format!(
            "/api/resource/Token%20Cache/{}",
            enc(&o.tc_name("Administrator"))
        );
        let (status, _) = o.app.delete(&admin, &path).await;
        assert_eq!(status, 202);
        let left: i64 = ca_token_extra::table
            .count()
            .get_result(&mut o.app.db.raw())
            .unwrap();
        assert_eq!(left, 0);
    }
}

#[tokio::test]
async fn without_extra_members_the_answer_has_frappes_keys_only() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        // Without the openid scope there is no id_token.
        let (status, _) = o
            .app
            .put(
                &o.admin(),
                &format!("/api/resource/Connected%20App/{}", o.name),
                &json!({"scopes": [{"scope": "email"}, {"scope": "profile"}]}),
            )
            .await;
        assert_eq!(status, 200);
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        assert_eq!(
            keys(&v),
            ["access_token", "token_type", "expires_in", "scope"],
            "{v}"
        );
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
        assert_eq!(
            keys(&v),
            ["access_token", "token_type", "expires_in", "scope"],
            "{v}"
        );
    }
}
