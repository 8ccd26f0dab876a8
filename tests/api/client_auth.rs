//! Client authentication at the token endpoint, per Connected App (`connected_apps.app_settings`
//! `client_auth`), against the real test provider made to accept only one method per grant:
//! unset (Frappe's wire), `client_secret_post`, `client_secret_basic`, `none` and `auto`.

use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::oauth_flow::*;

const SETTINGS: &str = "/api/method/connected_apps.app_settings";

/// Sets the app's client authentication as Administrator; returns the answer.
async fn set_client_auth(o: &OAuthApp, value: Value) -> (u16, Value) {
    o.app
        .post(
            &o.admin(),
            SETTINGS,
            &json!({"connected_app": o.name, "client_auth": value}),
        )
        .await
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

async fn backend_token(o: &OAuthApp) -> (u16, Value) {
    o.app
        .get(
            &o.admin(),
            &format!(
                "/api/method/connected_apps.get_backend_app_token?connected_app={}",
                o.name
            ),
        )
        .await
}

/// Connects Administrator, refreshes once and asks for the app's own token; every step must
/// succeed. Returns the token-endpoint requests the provider saw.
async fn every_grant(o: &OAuthApp) -> Vec<Value> {
    let admin = o.admin();
    o.connect(&admin, json!({})).await;
    o.expire("Administrator");
    let (status, v) = o.get_access_token(&admin, "").await;
    assert_eq!(status, 200, "refresh: {v}");
    let (status, v) = backend_token(o).await;
    assert_eq!(status, 200, "client credentials: {v}");
    let reqs: Vec<Value> = o
        .provider
        .requests()
        .await
        .into_iter()
        .filter(|r| r["path"] == "/token")
        .collect();
    let grants: Vec<String> = reqs.iter().filter_map(|r| field(r, "grant_type")).collect();
    assert_eq!(
        grants,
        ["authorization_code", "refresh_token", "client_credentials"]
    );
    assert!(reqs.iter().all(|r| r["status"] == 200), "{reqs:?}");
    reqs
}

fn all_methods(method: &str) -> Value {
    json!({"auth_methods": {
        "authorization_code": method, "refresh_token": method, "client_credentials": method
    }})
}

#[tokio::test]
async fn without_a_setting_the_wire_is_frappes_and_the_setting_is_checked() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let (status, v) = o
            .app
            .get(&o.admin(), &format!("{SETTINGS}?connected_app={}", o.name))
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["message"]["client_auth"], Value::Null, "{backend:?}");

        let user = o.app.user("plain@example.com", &[]).await;
        let (status, _) = o
            .app
            .post(
                &user,
                SETTINGS,
                &json!({"connected_app": o.name, "client_auth": "client_secret_post"}),
            )
            .await;
        assert_eq!(status, 403);
        let (status, v) = set_client_auth(&o, json!("client_secret_jwt")).await;
        assert_eq!(status, 417, "{v}");
        let (status, v) = set_client_auth(&o, json!("auto")).await;
        assert_eq!(status, 417, "auto needs a discovery URL: {v}");
        assert!(
            server_messages(&v)[0].contains("OpenID Configuration"),
            "{v}"
        );

        // Frappe's wire: form fields for the code and the refresh, plain Basic for the app's token.
        let reqs = every_grant(&o).await;
        for r in &reqs[..2] {
            assert!(r["headers"].get("authorization").is_none(), "{r}");
            assert_eq!(field(r, "client_secret").as_deref(), Some(CLIENT_SECRET));
        }
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
        assert_eq!(
            reqs[2]["headers"]["authorization"],
            format!("Basic {basic}")
        );
        assert_eq!(field(&reqs[2], "client_secret"), None);

        // Set, then unset with an empty value.
        let (status, v) = set_client_auth(&o, json!("client_secret_basic")).await;
        assert_eq!(
            (status, &v["message"]["client_auth"]),
            (200, &json!("client_secret_basic"))
        );
        let (status, v) = set_client_auth(&o, json!("")).await;
        assert_eq!((status, &v["message"]["client_auth"]), (200, &Value::Null));
        // Frappe's own JSON of the app has no such field.
        let (_, doc) = o
            .app
            .get(
                &o.admin(),
                &format!("/api/resource/Connected%20App/{}", o.name),
            )
            .await;
        assert!(doc["data"].get("client_auth").is_none(), "{doc}");
    }
}

#[tokio::test]
async fn client_secret_post_lets_a_provider_that_refuses_basic_issue_client_credentials() {
    for backend in BACKENDS {
        let o = oauth_app(
            backend,
            |_| {},
            json!({}),
            all_methods("client_secret_post"),
        )
        .await;
        // Frappe's way sends Basic for client credentials, which this provider refuses.
        let (status, v) = backend_token(&o).await;
        assert_ne!(status, 200, "{backend:?}: {v}");
        assert!(v.to_string().contains("invalid_client"), "{v}");
        o.provider.reset().await;

        let (status, v) = set_client_auth(&o, json!("client_secret_post")).await;
        assert_eq!(
            (status, &v["message"]["client_auth"]),
            (200, &json!("client_secret_post"))
        );
        let reqs = every_grant(&o).await;
        for r in &reqs {
            assert!(r["headers"].get("authorization").is_none(), "{r}");
            assert_eq!(field(r, "client_id").as_deref(), Some(CLIENT_ID));
            assert_eq!(field(r, "client_secret").as_deref(), Some(CLIENT_SECRET));
        }
    }
}

#[tokio::test]
async fn client_secret_basic_sends_the_form_urlencoded_id_and_secret_in_the_header() {
    // Reserved characters, which RFC 6749 §2.3.1 form-urlencodes before base64.
    let (id, secret) = ("ca client:1", "s3cr3t/+&= x");
    for backend in BACKENDS {
        let mut client = all_methods("client_secret_basic");
        client["client_id"] = json!(id);
        client["client_secret"] = json!(secret);
        let o = oauth_app(backend, |_| {}, json!({}), client).await;
        set_app(&o, json!({"client_id": id, "client_secret": secret})).await;
        let (status, _) = set_client_auth(&o, json!("client_secret_basic")).await;
        assert_eq!(status, 200);

        let reqs = every_grant(&o).await;
        let expected =
            base64::engine::general_purpose::STANDARD.encode("ca+client%3A1:s3cr3t%2F%2B%26%3D+x");
        for r in &reqs {
            assert_eq!(
                r["headers"]["authorization"],
                format!("Basic {expected}"),
                "{backend:?}: {r}"
            );
            assert_eq!(field(r, "client_secret"), None, "{r}");
            assert_eq!(field(r, "client_id"), None, "{r}");
        }
        // Revocation authenticates the same way.
        let (status, _) = o
            .app
            .delete(
                &o.admin(),
                &format!(
                    "/api/resource/Token%20Cache/{}",
                    enc(&o.tc_name("Administrator"))
                ),
            )
            .await;
        assert_eq!(status, 202);
        let revocations: Vec<Value> = o
            .provider
            .requests()
            .await
            .into_iter()
            .filter(|r| r["path"] == "/token/revocation")
            .collect();
        assert!(!revocations.is_empty());
        for r in &revocations {
            assert_eq!(
                r["headers"]["authorization"],
                format!("Basic {expected}"),
                "{r}"
            );
            assert_eq!(r["status"], 200, "{r}");
        }
    }
}

#[tokio::test]
async fn a_public_client_sends_only_its_client_id_and_proves_the_code_with_pkce() {
    for backend in BACKENDS {
        let client = json!({
            "grant_types": ["authorization_code", "refresh_token"],
            "auth_methods": {"authorization_code": "none", "refresh_token": "none"},
        });
        let o = oauth_app(backend, |_| {}, json!({}), client).await;
        let (status, _) = set_client_auth(&o, json!("none")).await;
        assert_eq!(status, 200);
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        o.expire("Administrator");
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        let reqs: Vec<Value> = o
            .provider
            .requests()
            .await
            .into_iter()
            .filter(|r| r["path"] == "/token")
            .collect();
        assert_eq!(reqs.len(), 2, "{reqs:?}");
        for r in &reqs {
            assert_eq!(r["status"], 200, "{r}");
            assert!(r["headers"].get("authorization").is_none(), "{r}");
            assert_eq!(field(r, "client_id").as_deref(), Some(CLIENT_ID));
            assert_eq!(field(r, "client_secret"), None, "{r}");
        }
        assert!(field(&reqs[0], "code_verifier").is_some());
    }
}

#[tokio::test]
async fn auto_uses_the_method_the_discovery_document_lists() {
    for backend in BACKENDS {
        let o = oauth_app(
            backend,
            |_| {},
            json!({"discoveryAuthMethods": ["private_key_jwt", "client_secret_post"]}),
            all_methods("client_secret_post"),
        )
        .await;
        set_app(
            &o,
            json!({"openid_configuration": o.provider.url("/.well-known/openid-configuration")}),
        )
        .await;
        let (status, v) = set_client_auth(&o, json!("auto")).await;
        assert_eq!(
            (status, &v["message"]["client_auth"]),
            (200, &json!("auto")),
            "{v}"
        );
        let reqs = every_grant(&o).await;
        for r in &reqs {
            assert!(
                r["headers"].get("authorization").is_none(),
                "{backend:?}: {r}"
            );
            assert_eq!(field(r, "client_secret").as_deref(), Some(CLIENT_SECRET));
        }
    }
}

#[tokio::test]
async fn auto_prefers_basic_when_the_provider_lists_it() {
    let o = oauth_app(
        Backend::Sqlite,
        |_| {},
        json!({}),
        all_methods("client_secret_basic"),
    )
    .await;
    let listed = o.provider.discovery().await["token_endpoint_auth_methods_supported"].clone();
    assert!(
        listed
            .as_array()
            .unwrap()
            .contains(&json!("client_secret_basic")),
        "{listed}"
    );
    set_app(
        &o,
        json!({"openid_configuration": o.provider.url("/.well-known/openid-configuration")}),
    )
    .await;
    let (status, _) = set_client_auth(&o, json!("auto")).await;
    assert_eq!(status, 200);
    let reqs = every_grant(&o).await;
    for r in &reqs {
        assert!(
            r["headers"]["authorization"]
                .as_str()
                .unwrap_or("")
                .starts_with("Basic "),
            "{r}"
        );
        assert_eq!(field(r, "client_secret"), None, "{r}");
    }
}
