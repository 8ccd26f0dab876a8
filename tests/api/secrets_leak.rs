//! Nobody gets in where they don't belong, and secrets stay in: login throttling, cookie and
//! HTML security attributes, and no secret in any answer's body or headers.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::oauth_flow::*;

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

const LOCKED: &str =
    "Your account has been locked and will resume after some time. Please try again later.";

/// The recorded 401 body of a failed login, with only the last line of the traceback Frappe
/// puts in `exc`.
fn recorded_401() -> Value {
    let text = std::fs::read_to_string(reference("exchanges/156-login-bad-password.json"))
        .expect("the recorded exchange");
    let mut body = serde_json::from_str::<Value>(&text).unwrap()["response"]["body"].clone();
    body["exc"] = json!(json!([body["exception"]]).to_string());
    body
}

#[tokio::test]
async fn after_n_failures_a_user_or_an_address_is_locked_out_for_the_cooling_off_time() {
    for backend in BACKENDS {
        let app = spawn_app_with(backend, |s| {
            s.login_max_failures = 3;
            s.login_lockout = Duration::from_secs(2);
        })
        .await;
        for u in ["a@example.com", "b@example.com", "c@example.com"] {
            app.user(u, &[]).await;
        }
        let good = "pass-word-1";

        // Failures for one user, each from another address, are the recorded 401 until N.
        for i in 0..3 {
            let (status, v) = login(&app, "a@example.com", "wrong", &format!("10.0.0.{i}")).await;
            assert_eq!(
                (status, &v),
                (401, &recorded_401()),
                "{backend:?} attempt {i}"
            );
        }
        // Then the user is locked, even with the right password and from a fresh address.
        let (status, v) = login(&app, "a@example.com", good, "10.0.0.200").await;
        assert_eq!(status, 401, "{backend:?}: {v}");
        assert_eq!(v["message"], LOCKED, "{backend:?}: {v}");
        assert_eq!(v["exc_type"], "AuthenticationError");
        assert_eq!(v["exc"], r#"["frappe.exceptions.AuthenticationError"]"#);
        // Another user is not affected.
        assert_eq!(
            login(&app, "b@example.com", good, "10.0.0.201").await.0,
            200
        );

        // Failures from one address, each for another user, lock the address.
        for (i, u) in ["x1@example.com", "x2@example.com", "b@example.com"]
            .iter()
            .enumerate()
        {
            let (status, v) = login(&app, u, "wrong", "10.9.9.9").await;
            assert_eq!((status, &v), (401, &recorded_401()), "{backend:?} {u} {i}");
        }
        let (status, v) = login(&app, "c@example.com", good, "10.9.9.9").await;
        assert_eq!(
            (status, v["message"].as_str()),
            (401, Some(LOCKED)),
            "{backend:?}"
        );
        // A good login elsewhere does not unlock the guessing address.
        assert_eq!(login(&app, "c@example.com", good, "10.9.9.10").await.0, 200);
        let (status, _) = login(&app, "c@example.com", good, "10.9.9.9").await;
        assert_eq!(status, 401, "{backend:?}");

        // After the cooling-off time both may try again.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(
            login(&app, "a@example.com", good, "10.0.0.200").await.0,
            200
        );
        assert_eq!(login(&app, "c@example.com", good, "10.9.9.9").await.0, 200);
    }
}

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

#[tokio::test]
async fn cookies_are_same_site_lax_sid_is_http_only_and_all_are_secure_behind_an_https_url() {
    for (public, secure) in [(None, false), (Some("https://connected.example"), true)] {
        let app = spawn_app_with(Backend::Sqlite, |s| {
            if let Some(p) = public {
                s.public_url = p.into();
                s.public_url_explicit = true;
            }
        })
        .await;
        app.user("cookie@example.com", &[]).await;
        for (path, body) in [
            (
                "/api/method/login",
                json!({"usr": "cookie@example.com", "pwd": "pass-word-1"}),
            ),
            ("/api/method/logout", json!({})),
        ] {
            let r = app
                .client
                .post(app.url(path))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{path}");
            let cookies = set_cookies(&r);
            assert!(cookies.iter().any(|c| c.starts_with("sid=")), "{cookies:?}");
            for c in &cookies {
                assert!(c.contains("SameSite=Lax"), "{public:?} {path}: {c}");
                assert_eq!(c.contains("; Secure"), secure, "{public:?} {path}: {c}");
                if c.starts_with("sid=") {
                    assert!(c.contains("HttpOnly"), "{public:?} {path}: {c}");
                }
            }
        }
    }
}

#[tokio::test]
async fn html_pages_carry_the_usual_security_headers() {
    let app = spawn_app(Backend::Sqlite).await;
    let name = app.create_app(crate::rest::full_app("Headers")).await["name"]
        .as_str()
        .unwrap()
        .to_string();
    let mut seen = 0;
    for (auth, path) in [
        (None, "/login".to_string()),
        (None, "/app/connected-app".to_string()),
        (Some(&app.admin), "/app/connected-app".to_string()),
        (Some(&app.admin), format!("/app/connected-app/{name}")),
        (Some(&app.admin), "/app/connected-app/new".to_string()),
        (
            Some(&app.admin),
            "/app/connected-app/no-such-app".to_string(),
        ),
        (Some(&app.admin), "/app/token-cache".to_string()),
    ] {
        let mut r = app.client.get(app.url(&path));
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        let r = r.send().await.unwrap();
        let h = r.headers();
        let ct = h
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct.starts_with("text/html") {
            continue;
        }
        seen += 1;
        let get = |k: &str| {
            h.get(k)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(get("x-content-type-options"), "nosniff", "{path}");
        assert!(
            get("x-frame-options") == "DENY"
                || get("content-security-policy").contains("frame-ancestors 'none'"),
            "{path}: framing is allowed"
        );
        let csp = get("content-security-policy");
        assert!(csp.contains("default-src"), "{path}: CSP {csp:?}");
        assert!(!csp.contains("unsafe-eval"), "{path}: CSP {csp:?}");
        assert!(!get("referrer-policy").is_empty(), "{path}");
    }
    assert!(seen >= 3, "only {seen} HTML pages were checked");
}

/// Every secret the service holds after a full flow, by what it is.
struct Secrets(Vec<(&'static str, String)>);

impl Secrets {
    fn find_in(&self, text: &str) -> Option<&'static str> {
        self.0
            .iter()
            .find(|(_, s)| s.len() >= 6 && text.contains(s.as_str()))
            .map(|(what, _)| *what)
    }
}

#[tokio::test]
async fn no_secret_appears_in_any_answer_body_or_header() {
    for backend in BACKENDS {
        // Arrange: a connected admin and user, a session, API keys, an encrypted client secret.
        let o = oauth_default(backend).await;
        let admin = o.admin();
        let user1 = o.app.user(USER1, &[]).await;
        o.connect(&admin, json!({})).await;
        o.connect(&user1, json!({})).await;
        let r = o
            .app
            .client
            .post(o.app.url("/api/method/login"))
            .json(&json!({"usr": USER1, "pwd": "pass-word-1"}))
            .send()
            .await
            .unwrap();
        let sid = set_cookies(&r)
            .iter()
            .find_map(|c| {
                c.strip_prefix("sid=")
                    .map(|v| v.split(';').next().unwrap().to_string())
            })
            .expect("sid");
        let site: Value =
            serde_json::from_str(&std::fs::read_to_string(&o.app.site_config).unwrap()).unwrap();
        let mut secrets = vec![
            ("client secret", CLIENT_SECRET.to_string()),
            ("admin password", "admin-pass".to_string()),
            ("user password", "pass-word-1".to_string()),
            (
                "encryption key",
                site["encryption_key"].as_str().unwrap().to_string(),
            ),
            (
                "admin API secret",
                admin.rsplit(':').next().unwrap().to_string(),
            ),
            (
                "user API secret",
                user1.rsplit(':').next().unwrap().to_string(),
            ),
            ("session id", sid.clone()),
        ];
        for user in ["Administrator", USER1] {
            secrets.push((
                "access token",
                o.stored_secret(user, "access_token").unwrap(),
            ));
            secrets.push((
                "refresh token",
                o.stored_secret(user, "refresh_token").unwrap(),
            ));
        }
        for (_, stored, _) in o.auth_rows("Administrator") {
            secrets.push(("stored ciphertext", stored));
        }
        let secrets = Secrets(secrets);

        // Act: walk every GET route and the document and list endpoints, as everyone.
        let tc = enc(&o.tc_name("Administrator"));
        let tc1 = enc(&o.tc_name(USER1));
        let app = &o.name;
        let fields = crate::rest::urlencode(r#"["*"]"#);
        let paths: Vec<String> = vec![
            "/healthz".into(),
            "/readyz".into(),
            "/metrics".into(),
            "/api/method/ping".into(),
            "/api/method/frappe.auth.get_logged_user".into(),
            format!("/api/resource/Connected%20App?fields={fields}"),
            format!("/api/resource/Connected%20App/{app}"),
            format!("/api/resource/Token%20Cache?fields={fields}"),
            format!("/api/resource/Token%20Cache/{tc}"),
            format!("/api/resource/Token%20Cache/{tc1}"),
            format!("/api/v2/document/Connected%20App/{app}"),
            format!("/api/v2/document/Token%20Cache/{tc}"),
            format!("/api/v2/document/Token%20Cache?fields={fields}"),
            "/api/v2/doctype/Connected%20App/meta".into(),
            "/api/v2/doctype/Token%20Cache/meta".into(),
            format!("/api/method/frappe.client.get?doctype=Token%20Cache&name={tc}"),
            format!("/api/method/frappe.client.get_list?doctype=Token%20Cache&fields={fields}"),
            format!("/api/method/frappe.client.get_value?doctype=Token%20Cache&filters={tc}&fieldname=access_token"),
            format!("/api/method/frappe.client.get_value?doctype=Connected%20App&filters={app}&fieldname=client_secret"),
            format!("/api/method/frappe.desk.form.load.getdoc?doctype=Token%20Cache&name={tc}"),
            format!("/api/method/frappe.desk.form.load.getdoc?doctype=Connected%20App&name={app}"),
            format!("/api/method/frappe.desk.reportview.get?doctype=Token%20Cache&fields={fields}"),
            format!("/api/method/frappe.integrations.doctype.connected_app.connected_app.has_token?connected_app={app}"),
            format!("/api/method/connected_apps.app_settings?connected_app={app}"),
            "/login".into(),
            "/app/connected-app".into(),
            format!("/app/connected-app/{app}"),
            "/app/token-cache".into(),
            // Errors of every kind.
            "/api/resource/No%20Such%20Doctype/x".into(),
            "/api/resource/Token%20Cache/no-such".into(),
            "/api/method/no.such.method".into(),
            "/api/resource/Connected%20App?fields=%5B%22nope%22%5D".into(),
            "/api/resource/Connected%20App?filters=%7B".into(),
            format!("{CALLBACK_PATH}/{app}?code=x&state=y"),
        ];
        let cookie = format!("sid={sid}");
        let identities: [(&str, Option<(&str, &str)>); 4] = [
            ("Guest", None),
            ("System Manager", Some(("Authorization", admin.as_str()))),
            ("user1", Some(("Authorization", user1.as_str()))),
            ("user1 session", Some(("Cookie", cookie.as_str()))),
        ];
        for path in &paths {
            for (who, header) in identities {
                for method in [Method::GET, Method::POST] {
                    let mut r = o.app.client.request(method.clone(), o.app.url(path));
                    if let Some((k, v)) = header {
                        r = r.header(k, v);
                    }
                    let r = r.send().await.unwrap();
                    let status = r.status().as_u16();
                    let headers: Vec<String> = r
                        .headers()
                        .iter()
                        .filter(|(k, _)| k.as_str() != "set-cookie" || who != "user1 session")
                        .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
                        .collect();
                    let body = r.text().await.unwrap();
                    let what = format!("{backend:?} {who} {method} {path} → {status}");
                    assert!(status < 500, "{what}: {body}");
                    if let Some(s) = secrets.find_in(&body) {
                        panic!("{what}: the body carries the {s}: {body}");
                    }
                    if let Some(s) = secrets.find_in(&headers.join("\n")) {
                        panic!("{what}: a header carries the {s}: {headers:?}");
                    }
                    // The exc field never carries internals: only the exception's line.
                    if let Ok(v) = serde_json::from_str::<Value>(&body) {
                        if let Some(exc) = v.get("exc") {
                            assert_eq!(*exc, json!([v["exception"]]).to_string(), "{what}");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn secret_types_print_redacted_in_debug_output_and_panic_messages() {
    let secret = secrecy::SecretString::from("top-secret-token-value".to_string());
    assert!(!format!("{secret:?}").contains("top-secret"));
    let caught = std::panic::catch_unwind(|| {
        panic!("refresh failed for {:?}", secret);
    });
    let msg = caught
        .unwrap_err()
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(!msg.contains("top-secret"), "{msg}");
    // The database URL's password never reaches a message through the redacting helper.
    let url =
        connected_apps::db::DatabaseUrl::parse("mysql://ca:db-pass-123@db.example/site").unwrap();
    assert!(!url.redacted().contains("db-pass-123"));
    assert!(!format!("{url:?}").contains("db-pass-123"), "{url:?}");
}
