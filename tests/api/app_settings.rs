//! The service's own per-app settings (PKCE switch) and `get_auth_header`.

use serde_json::{json, Value};

use crate::helpers::*;

#[tokio::test]
async fn a_system_manager_can_switch_pkce_off_for_an_app_and_plain_users_cannot() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let user = app.user("plain@example.com", &[]).await;
        let doc = app
            .create_app(json!({"provider_name": "P", "client_id": "c", "authorization_uri": "https://p.example/auth",
                                "token_uri": "https://p.example/token", "scopes": [{"scope": "openid"}]}))
            .await;
        let name = doc["name"].as_str().unwrap();
        let path = "/api/method/connected_apps.app_settings";
        let (status, body) = app
            .get(&user, &format!("{path}?connected_app={name}"))
            .await;
        assert_eq!(
            (status, body["message"]["pkce"].clone()),
            (200, json!(true)),
            "{backend:?}"
        );
        let (status, _) = app
            .post(&user, path, &json!({"connected_app": name, "pkce": 0}))
            .await;
        assert_eq!(status, 403);

        let initiate =
            json!({"dt": "Connected App", "dn": name, "method": "initiate_web_application_flow"});
        let (_, body) = app
            .post(&app.admin, "/api/method/run_doc_method", &initiate)
            .await;
        assert!(body["message"]
            .as_str()
            .unwrap()
            .contains("code_challenge_method=S256"));

        let (status, body) = app
            .post(&app.admin, path, &json!({"connected_app": name, "pkce": 0}))
            .await;
        assert_eq!(
            (status, body["message"]["pkce"].clone()),
            (200, json!(false))
        );
        let (_, body) = app
            .post(&app.admin, "/api/method/run_doc_method", &initiate)
            .await;
        let url = body["message"].as_str().unwrap();
        assert!(!url.contains("code_challenge"), "{url}");
        // Frappe's own JSON of the app is unchanged by the setting.
        let (_, body) = app
            .get(&app.admin, &format!("/api/resource/Connected%20App/{name}"))
            .await;
        assert!(body["data"].get("pkce").is_none());
    }
}

#[tokio::test]
async fn get_auth_header_needs_a_connection() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = app
        .create_app(json!({"provider_name": "P", "client_id": "c"}))
        .await;
    let (status, body) = app
        .get(
            &app.admin,
            &format!(
                "/api/method/connected_apps.get_auth_header?connected_app={}",
                doc["name"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(status, 417, "{body}");
    assert!(
        server_messages(&body)[0].contains("Connect the account first"),
        "{body}"
    );
}

#[tokio::test]
async fn editing_other_fields_of_a_token_cache_never_extends_its_lifetime() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let name = &app_with_admin_token(&app, json!({})).await;
        let token = format!("/api/method/connected_apps.get_access_token?connected_app={name}");
        let (_, before) = app.get(&app.admin, &token).await;
        let left_before = before["message"]["expires_in"].as_i64().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let path = format!("/api/resource/Token%20Cache/{name}-Administrator");
        let (status, _) = app
            .put(&app.admin, &path, &json!({"success_uri": "/elsewhere"}))
            .await;
        assert_eq!(status, 200);
        let (_, after) = app.get(&app.admin, &token).await;
        let left_after = after["message"]["expires_in"].as_i64().unwrap();
        assert!(
            left_after <= left_before - 2,
            "{backend:?}: {left_before} -> {left_after}"
        );
        // Setting the token itself starts a new lifetime.
        let (status, _) = app
            .put(
                &app.admin,
                &path,
                &json!({"access_token": "at-2", "expires_in": 3600}),
            )
            .await;
        assert_eq!(status, 200);
        let (_, renewed) = app.get(&app.admin, &token).await;
        assert_eq!(renewed["message"]["access_token"], "at-2");
        assert!(renewed["message"]["expires_in"].as_i64().unwrap() >= 3598);
    }
}

#[tokio::test]
async fn get_access_token_follows_every_edit_and_the_delete_of_a_token_cache() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let name = &app_with_admin_token(&app, json!({"scopes": [{"scope": "openid"}]})).await;
        let token = format!("/api/method/connected_apps.get_access_token?connected_app={name}");
        let has = format!(
            "/api/method/frappe.integrations.doctype.connected_app.connected_app.has_token?connected_app={name}"
        );
        let (_, v) = app.get(&app.admin, &token).await;
        assert_eq!(v["message"]["scope"], "openid", "{backend:?}: {v}");
        assert_eq!(v["message"]["token_type"], "Bearer");
        // Read twice so a cached copy exists, then edit the document behind it.
        let (_, again) = app.get(&app.admin, &token).await;
        assert_eq!(again["message"]["access_token"], "at-1");
        let path = format!("/api/resource/Token%20Cache/{name}-Administrator");
        let (status, _) = app
            .put(
                &app.admin,
                &path,
                &json!({"token_type": "MAC", "scopes": [{"scope": "openid"}, {"scope": "email"}]}),
            )
            .await;
        assert_eq!(status, 200);
        let (_, v) = app.get(&app.admin, &token).await;
        assert_eq!(v["message"]["scope"], "openid email", "{backend:?}: {v}");
        assert_eq!(v["message"]["token_type"], "MAC");
        assert_eq!(v["message"]["access_token"], "at-1");
        let (_, v) = app.get(&app.admin, &has).await;
        assert_eq!(v["message"], true);

        let (status, _) = app.delete(&app.admin, &path).await;
        assert_eq!(status, 202);
        let (status, v) = app.get(&app.admin, &token).await;
        assert_eq!(status, 417, "{backend:?}: {v}");
        let (_, v) = app.get(&app.admin, &has).await;
        assert_eq!(v["message"], false);
    }
}

/// A new Connected App with a Token Cache for Administrator (access token `at-1`, Bearer,
/// one hour) plus `extra` fields; returns the app's name.
async fn app_with_admin_token(app: &TestApp, extra: Value) -> String {
    let doc = app
        .create_app(json!({"provider_name": "P", "client_id": "c"}))
        .await;
    let name = doc["name"].as_str().unwrap().to_string();
    let mut body = json!({
        "connected_app": name, "user": "Administrator", "access_token": "at-1",
        "token_type": "Bearer", "expires_in": 3600,
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, body) = app
        .post(&app.admin, "/api/resource/Token%20Cache", &body)
        .await;
    assert_eq!(status, 200, "{body}");
    name
}
