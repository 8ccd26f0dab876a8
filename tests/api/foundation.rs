//! The foundation: ping, logins of every kind, and their failures, on both backends.

use crate::helpers::*;
use base64::Engine;
use serde_json::json;

#[tokio::test]
async fn ping_answers_pong_on_both_backends() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let (status, body) = app.get("", "/api/method/ping").await;
        assert_eq!(
            (status, body),
            (200, json!({"message": "pong"})),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn api_key_token_and_basic_headers_authenticate_and_a_bad_secret_is_rejected() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let auth = app.user("someone@example.com", &[]).await;
        let (status, body) = app
            .get(&auth, "/api/method/frappe.auth.get_logged_user")
            .await;
        assert_eq!(
            (status, body["message"].as_str()),
            (200, Some("someone@example.com")),
            "{backend:?}"
        );

        let pair = auth.trim_start_matches("token ");
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        );
        let (status, body) = app
            .get(&basic, "/api/method/frappe.auth.get_logged_user")
            .await;
        assert_eq!(
            (status, body["message"].as_str()),
            (200, Some("someone@example.com"))
        );

        let key = pair.split(':').next().unwrap();
        let (status, body) = app
            .get(
                &format!("token {key}:wrong"),
                "/api/method/frappe.auth.get_logged_user",
            )
            .await;
        assert_eq!(status, 401);
        assert_eq!(body["exc_type"], "AuthenticationError");
        assert!(body.get("_server_messages").is_none());
    }
}

#[tokio::test]
async fn no_credentials_run_as_guest_and_guests_are_refused_documents() {
    let app = spawn_app(Backend::Sqlite).await;
    let r = app
        .client
        .get(app.url("/api/resource/Connected%20App"))
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(r).await;
    assert_eq!(status, 403);
    assert_eq!(body["_error_message"], "No permission for Connected App");
}

#[tokio::test]
async fn login_sets_an_http_only_session_cookie_that_logout_ends() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        app.user("sess@example.com", &[]).await;
        let r = app
            .client
            .post(app.url("/api/method/login"))
            .json(&json!({"usr": "sess@example.com", "pwd": "pass-word-1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .find(|c| c.starts_with("sid="))
            .expect("sid cookie");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{cookie}"
        );
        assert!(
            !cookie.contains("Secure"),
            "plain-http public URL: no Secure flag"
        );
        let sid = cookie
            .trim_start_matches("sid=")
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(
            body,
            json!({"message": "No App", "home_page": "/me", "full_name": "sess"})
        );

        let who = |sid: String| {
            let c = app
                .client
                .get(app.url("/api/method/frappe.auth.get_logged_user"))
                .header("Cookie", format!("sid={sid}"));
            async move { status_json(c.send().await.unwrap()).await }
        };
        assert_eq!(who(sid.clone()).await.1["message"], "sess@example.com");

        let r = app
            .client
            .post(app.url("/api/method/logout"))
            .header("Cookie", format!("sid={sid}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // The old sid no longer authenticates: the request runs as Guest.
        let (status, _) = who(sid).await;
        assert_eq!(status, 403);
    }
}

#[tokio::test]
async fn a_wrong_password_is_a_401_with_frappes_message() {
    let app = spawn_app(Backend::Sqlite).await;
    app.user("pw@example.com", &[]).await;
    let r = app
        .client
        .post(app.url("/api/method/login"))
        .form(&[("usr", "pw@example.com"), ("pwd", "nope")])
        .send()
        .await
        .unwrap();
    let (status, body) = status_json(r).await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "Invalid login credentials");
    assert_eq!(body["exc_type"], "AuthenticationError");
}

#[tokio::test]
async fn with_inline_reads_off_reads_answer_exactly_as_with_them_on() {
    for backend in BACKENDS {
        let mut answers = Vec::new();
        for inline in [true, false] {
            let app = spawn_app_with(backend, |s| s.inline_reads = inline).await;
            let doc = app
                .create_app(json!({"provider_name": "P", "client_id": "c", "scopes": [{"scope": "openid"}]}))
                .await;
            let name = doc["name"].as_str().unwrap();
            let mut got = Vec::new();
            for path in [
                format!("/api/resource/Connected%20App/{name}"),
                "/api/resource/Connected%20App?fields=[\"provider_name\",\"client_id\"]".to_string(),
                "/api/method/frappe.client.get_count?doctype=Connected%20App".to_string(),
                format!("/api/method/frappe.integrations.doctype.connected_app.connected_app.has_token?connected_app={name}"),
            ] {
                let (status, v) = app.get(&app.admin, &path).await;
                assert_eq!(status, 200, "{backend:?} inline={inline} {path}: {v}");
                let mut v = v;
                // Names and timestamps differ between the two apps; the rest must not.
                for key in ["name", "creation", "modified", "redirect_uri"] {
                    if let Some(o) = v.get_mut("data").and_then(|d| d.as_object_mut()) {
                        o.remove(key);
                    }
                }
                if let Some(scopes) = v.pointer_mut("/data/scopes").and_then(|s| s.as_array_mut()) {
                    for s in scopes {
                        for key in ["name", "creation", "modified", "parent"] {
                            s.as_object_mut().unwrap().remove(key);
                        }
                    }
                }
                got.push(v);
            }
            answers.push(got);
        }
        assert_eq!(answers[0], answers[1], "{backend:?}");
    }
}
