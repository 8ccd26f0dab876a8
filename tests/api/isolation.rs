//! Nobody uses another user's connection: a plain user walks every route against another
//! user's Token Cache and can neither read, refresh, revoke, change nor use it.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::oauth_flow::*;
use crate::rest::snapshot;

const USER2: &str = "user2@example.com";

/// One request of the walk: method, path, JSON body (None: no body).
type Step = (Method, String, Option<Value>);

fn steps(app: &str, tc: &str, at: &str) -> Vec<Step> {
    let e = enc(tc);
    let mut s: Vec<Step> = Vec::new();
    for base in [
        "/api/resource/Token%20Cache",
        "/api/v1/resource/Token%20Cache",
        "/api/v2/document/Token%20Cache",
    ] {
        let doc = format!("{base}/{e}");
        s.push((Method::GET, doc.clone(), None));
        s.push((
            Method::PUT,
            doc.clone(),
            Some(json!({"access_token": "stolen", "user": USER2})),
        ));
        s.push((Method::DELETE, doc.clone(), None));
        s.push((
            Method::POST,
            doc.clone(),
            Some(json!({"run_method": "get_auth_header"})),
        ));
    }
    let v2 = format!("/api/v2/document/Token%20Cache/{e}");
    s.push((
        Method::PATCH,
        v2.clone(),
        Some(json!({"access_token": "stolen"})),
    ));
    for m in ["get_auth_header", "refresh", "revoke", "get_password"] {
        s.push((Method::GET, format!("{v2}/method/{m}"), None));
        s.push((Method::POST, format!("{v2}/method/{m}"), Some(json!({}))));
    }
    let client = |f: &str| format!("/api/method/frappe.client.{f}");
    let tc_doc = json!({"doctype": "Token Cache", "name": tc});
    s.extend([
        (Method::POST, client("get"), Some(tc_doc.clone())),
        (
            Method::POST,
            client("get_value"),
            Some(
                json!({"doctype": "Token Cache", "filters": {"name": tc}, "fieldname": ["name", "access_token", "refresh_token", "state"]}),
            ),
        ),
        (
            Method::POST,
            client("get_password"),
            Some(json!({"doctype": "Token Cache", "name": tc, "fieldname": "access_token"})),
        ),
        (
            Method::POST,
            client("get_password"),
            Some(json!({"doctype": "Token Cache", "name": tc, "fieldname": "refresh_token"})),
        ),
        (
            Method::POST,
            client("set_value"),
            Some(
                json!({"doctype": "Token Cache", "name": tc, "fieldname": "access_token", "value": "stolen"}),
            ),
        ),
        (
            Method::POST,
            client("set_value"),
            Some(
                json!({"doctype": "Token Cache", "name": tc, "fieldname": "user", "value": USER2}),
            ),
        ),
        (Method::POST, client("delete"), Some(tc_doc.clone())),
        (
            Method::POST,
            client("insert"),
            Some(
                json!({"doc": {"doctype": "Token Cache", "connected_app": app, "user": USER1, "access_token": "planted"}}),
            ),
        ),
        (
            Method::POST,
            "/api/method/frappe.desk.form.load.getdoc".into(),
            Some(json!({"doctype": "Token Cache", "name": tc})),
        ),
        (
            Method::POST,
            "/api/method/frappe.desk.form.save.savedocs".into(),
            Some(
                json!({"doc": json!({"doctype": "Token Cache", "name": tc, "access_token": "stolen", "user": USER2}).to_string(), "action": "Save"}),
            ),
        ),
        (
            Method::POST,
            "/api/method/run_doc_method".into(),
            Some(json!({"dt": "Token Cache", "dn": tc, "method": "get_auth_header"})),
        ),
        (
            Method::POST,
            "/api/method/runserverobj".into(),
            Some(json!({"docs": json!({"doctype": "Token Cache", "name": tc}).to_string(), "method": "get_auth_header"})),
        ),
        (
            Method::POST,
            "/api/method/run_doc_method".into(),
            Some(
                json!({"dt": "Connected App", "dn": app, "method": "initiate_web_application_flow", "args": json!({"user": USER1}).to_string()}),
            ),
        ),
        (
            Method::GET,
            format!(
                "/api/method/frappe.integrations.doctype.connected_app.connected_app.has_token?connected_app={app}&connected_user={}",
                enc(USER1)
            ),
            None,
        ),
        (
            Method::POST,
            "/api/method/Connected App/has_token".into(),
            Some(json!({"connected_app": app, "connected_user": USER1})),
        ),
        (
            Method::GET,
            format!(
                "/api/method/connected_apps.get_access_token?connected_app={app}&user={}",
                enc(USER1)
            ),
            None,
        ),
        (
            Method::POST,
            "/api/v2/method/connected_apps.get_access_token".into(),
            Some(json!({"connected_app": app, "user": USER1.to_uppercase()})),
        ),
        (
            Method::POST,
            "/api/method/connected_apps.get_auth_header".into(),
            Some(json!({"connected_app": app, "user": USER1})),
        ),
        (
            Method::POST,
            "/api/method/connected_apps.get_backend_app_token".into(),
            Some(json!({"connected_app": app})),
        ),
        (
            Method::GET,
            format!("{}?access_token={at}", "/api/method/frappe.auth.get_logged_user"),
            None,
        ),
    ]);
    s
}

/// List-shaped requests: they answer 200 but must not show the other user's row.
fn lists(tc: &str) -> Vec<Step> {
    let filters = json!([["Token Cache", "user", "=", USER1]]).to_string();
    let f = crate::rest::urlencode(&filters);
    let fields = crate::rest::urlencode(r#"["*"]"#);
    vec![
        (
            Method::GET,
            format!("/api/resource/Token%20Cache?fields={fields}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/resource/Token%20Cache?fields={fields}&filters={f}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v2/document/Token%20Cache?fields={fields}"),
            None,
        ),
        (
            Method::GET,
            format!("/api/v2/doctype/Token%20Cache/count?filters={f}"),
            None,
        ),
        (
            Method::POST,
            "/api/method/frappe.client.get_list".into(),
            Some(json!({"doctype": "Token Cache", "fields": ["*"], "filters": {"name": tc}})),
        ),
        (
            Method::POST,
            "/api/method/frappe.client.get_count".into(),
            Some(json!({"doctype": "Token Cache", "filters": {"user": USER1}})),
        ),
        (
            Method::POST,
            "/api/method/frappe.desk.reportview.get".into(),
            Some(json!({"doctype": "Token Cache", "fields": ["*"]})),
        ),
        (
            Method::POST,
            "/api/method/frappe.desk.reportview.get_count".into(),
            Some(json!({"doctype": "Token Cache", "filters": {"user": USER1}})),
        ),
    ]
}

async fn send(app: &TestApp, auth: &str, (method, path, body): &Step) -> (u16, Value) {
    let mut r = app
        .client
        .request(method.clone(), app.url(path))
        .header("Authorization", auth);
    if let Some(b) = body {
        r = r.json(b);
    }
    status_json(r.send().await.expect("request")).await
}

#[tokio::test]
async fn a_plain_user_can_never_read_refresh_revoke_change_or_use_another_users_token_cache() {
    for backend in BACKENDS {
        // Arrange: user1 is connected and has a pending authorization; user2 is a plain user.
        let o = oauth_app(backend, |_| {}, json!({}), json!({})).await;
        let user1 = o.app.user(USER1, &[]).await;
        let user2 = o.app.user(USER2, &[]).await;
        o.connect(&user1, json!({})).await;
        // Any use of user1's token would refresh it: a refresh would show in the provider.
        o.expire(USER1);
        let pending = o
            .provider
            .authorize(&o.initiate(&user1, json!({})).await)
            .await;
        let tc = o.tc_name(USER1);
        let at = o.stored_secret(USER1, "access_token").unwrap();
        let rt = o.stored_secret(USER1, "refresh_token").unwrap();
        // The walk's paths are right: user1 reads the same document through them.
        for base in [
            "/api/resource/Token%20Cache",
            "/api/v2/document/Token%20Cache",
        ] {
            let (status, v) = o.app.get(&user1, &format!("{base}/{}", enc(&tc))).await;
            assert_eq!(status, 200, "{backend:?} {base}: {v}");
        }
        let before = snapshot(&o.app.db);
        let provider_before = o.provider.requests().await.len();
        let secrets = [
            at.clone(),
            rt.clone(),
            CLIENT_SECRET.to_string(),
            crate::oauth_flow::param(&pending, "state").unwrap(),
            crate::oauth_flow::param(&pending, "code").unwrap(),
        ];

        // Act + Assert: every route refuses, and nothing of user1's comes back.
        for step in steps(&o.name, &tc, &at) {
            let (status, v) = send(&o.app, &user2, &step).await;
            let what = format!("{backend:?} {} {}", step.0, step.1);
            // A refusal, or (get_value, as in Frappe) an empty answer.
            let empty = [json!({}), json!([]), Value::Null].contains(&v["message"]);
            assert!(
                (400..500).contains(&status)
                    || (status == 200 && (empty || step.1.contains("get_logged_user"))),
                "{what}: {status} {v}"
            );
            if step.1.contains("get_logged_user") {
                assert_eq!(v["message"], USER2, "{what}: an access token is no login");
            }
            let text = v.to_string();
            for s in &secrets {
                assert!(!text.contains(s.as_str()), "{what} leaked {s}: {v}");
            }
        }
        for step in lists(&tc) {
            let (status, v) = send(&o.app, &user2, &step).await;
            let what = format!("{backend:?} {} {}", step.0, step.1);
            assert!(status == 200 || status == 403, "{what}: {status} {v}");
            let text = v.to_string();
            assert!(!text.contains(&tc), "{what} shows {tc}: {v}");
            assert!(!text.contains(USER1), "{what} shows {USER1}: {v}");
            if status == 200 && (v["message"].is_number() || v["data"].is_number()) {
                assert_eq!(
                    v["message"].as_i64().or(v["data"].as_i64()),
                    Some(0),
                    "{what}: counts user1's row: {v}"
                );
            }
        }
        // user1's own authorization, replayed by user2 at the callback, connects nobody.
        let r = o.callback(Some(&user2), &pending).await;
        let (status, v) = status_json(r).await;
        assert!(
            (400..500).contains(&status),
            "{backend:?} callback: {status} {v}"
        );

        // Nothing changed, nothing was refreshed or revoked at the provider.
        assert_eq!(
            snapshot(&o.app.db),
            before,
            "{backend:?}: the database changed"
        );
        let calls: Vec<Value> = o.provider.requests().await[provider_before..].to_vec();
        assert!(
            calls
                .iter()
                .all(|r| r["path"] != "/token" && r["path"] != "/token/revocation"),
            "{backend:?}: the provider was called for user1's connection: {calls:?}"
        );
        assert_eq!(
            o.stored_secret(USER1, "access_token").as_deref(),
            Some(at.as_str())
        );
        assert_eq!(
            o.stored_secret(USER1, "refresh_token").as_deref(),
            Some(rt.as_str())
        );
        // And user1 still uses the connection.
        let (status, v) = o.get_access_token(&user1, "").await;
        assert_eq!(status, 200, "{backend:?}: {v}");
    }
}
