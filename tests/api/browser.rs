//! The web pages in a real browser: headless Debian chromium, driven by `tests/e2e/connect.mjs`
//! (playwright-core), logs in, creates an app pointing at the test OAuth provider, fills its
//! endpoints with "Get OpenID Configuration", connects through the provider's own login and
//! consent pages, sees "Connected" and disconnects.
//!
//! `SCREENSHOT=docs/screenshots/connected-app.png cargo nextest run --test api browser` also
//! saves the README's screenshot of the app page after connecting.

use std::path::{Path, PathBuf};

use connected_apps::commands::add_user;
use serde_json::json;

use crate::helpers::*;
use crate::provider::TestProvider;

const CHROMIUM: &str = "/usr/bin/chromium";
const CALLBACK: &str =
    "/api/method/frappe.integrations.doctype.connected_app.connected_app.callback/";

fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

/// Runs the browser script against a fresh service on `backend`; panics with its output on failure.
async fn connect_in_the_browser(backend: Backend, screenshot: Option<PathBuf>) {
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: apt-get install chromium (./scripts/test does it)"
    );
    assert!(
        e2e_dir().join("node_modules/playwright-core").is_dir(),
        "tests/e2e/node_modules is missing: run `npm ci` there (./scripts/test does it)"
    );
    let app = spawn_app(backend).await;
    let email = "pat@example.com";
    add_user(
        &app.state,
        email,
        None,
        &["System Manager".to_string()],
        Some("pat-pass-word"),
    )
    .await
    .expect("add user");
    // The app's name, and so its exact redirect URI, is made in the browser: the provider
    // accepts any redirect URI under this service's callback path.
    let callback = app.url(CALLBACK);
    let provider = TestProvider::start(json!({
        "autoApprove": false,
        "clients": [{
            "client_id": "browser-client",
            "client_secret": "browser-secret",
            "redirect_uris": [format!("{callback}unused")],
            "redirect_uri_prefixes": [callback],
        }]
    }))
    .await;

    let node = std::env::var_os("NODE").unwrap_or_else(|| "node".into());
    let mut cmd = tokio::process::Command::new(node);
    cmd.arg("connect.mjs")
        .current_dir(e2e_dir())
        .env("SERVICE_URL", &app.address)
        .env("LOGIN_USER", email)
        .env("LOGIN_PASSWORD", "pat-pass-word")
        .env("PROVIDER_URL", provider.base_url())
        .env("CLIENT_ID", "browser-client")
        .env("CLIENT_SECRET", "browser-secret")
        .env_remove("SCREENSHOT")
        .kill_on_drop(true);
    if let Some(path) = screenshot {
        cmd.env("SCREENSHOT", path);
    }
    let out = cmd.output().await.expect("run node tests/e2e/connect.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{backend:?}: the browser test failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("step: all passed"),
        "{backend:?}:\n{stdout}"
    );
}

#[tokio::test]
async fn a_person_connects_and_disconnects_an_app_in_the_browser() {
    // A relative SCREENSHOT is taken from the crate root, where the README looks for it.
    let screenshot = std::env::var_os("SCREENSHOT")
        .filter(|s| !s.is_empty())
        .map(|s| Path::new(env!("CARGO_MANIFEST_DIR")).join(s));
    for backend in BACKENDS {
        let shot = (backend == Backend::Sqlite)
            .then(|| screenshot.clone())
            .flatten();
        connect_in_the_browser(backend, shot).await;
    }
}

/// Logs `email` in through the API and returns the `Cookie` header of its session.
async fn session(app: &TestApp, email: &str, roles: &[&str]) -> String {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    add_user(&app.state, email, None, &roles, Some("pass-word-1"))
        .await
        .expect("add user");
    let r = app
        .client
        .post(app.url("/api/method/login"))
        .form(&[("usr", email), ("pwd", "pass-word-1")])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 200, "login {email}");
    let sid = sid_of(&r);
    format!("sid={sid}")
}

/// GET as a browser would (asking for HTML first), with an optional session cookie.
async fn open(app: &TestApp, cookie: Option<&str>, path: &str) -> reqwest::Response {
    let mut rb = app
        .client
        .get(app.url(path))
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8");
    if let Some(c) = cookie {
        rb = rb.header("Cookie", c);
    }
    rb.send().await.expect("request")
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn assert_secured(r: &reqwest::Response, what: &str) {
    let h = |k: &str| {
        r.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let csp = h("content-security-policy");
    assert!(csp.contains("script-src 'self'"), "{what}: {csp}");
    assert!(csp.contains("style-src 'self'"), "{what}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert_eq!(h("x-frame-options"), "DENY", "{what}");
    assert_eq!(h("x-content-type-options"), "nosniff", "{what}");
    assert!(!h("referrer-policy").is_empty(), "{what}");
}

#[tokio::test]
async fn a_guest_opening_an_app_page_is_sent_to_login_and_brought_back() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        for (path, back) in [
            ("/app/connected-app", "%2Fapp%2Fconnected-app"),
            ("/app/connected-app/new", "%2Fapp%2Fconnected-app%2Fnew"),
            (
                "/app/connected-app/abc?x=1",
                "%2Fapp%2Fconnected-app%2Fabc%3Fx%3D1",
            ),
            ("/app/token-cache", "%2Fapp%2Ftoken-cache"),
        ] {
            let r = open(&app, None, path).await;
            assert_eq!(r.status(), 302, "{backend:?} {path}");
            assert_eq!(
                location(&r),
                format!("/login?redirect-to={back}"),
                "{backend:?}"
            );
        }
        let cookie = session(&app, "sam@example.com", &["System Manager"]).await;
        let r = open(&app, Some(&cookie), "/app/connected-app/abc").await;
        assert_eq!(r.status(), 200, "{backend:?}");
        assert_secured(&r, "app page");
        let html = r.text().await.unwrap();
        assert!(html.contains("data-name=\"abc\""), "{html}");
    }
}

#[tokio::test]
async fn login_sends_people_on_only_to_pages_of_this_service() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let cookie = session(&app, "sam@example.com", &["System Manager"]).await;
        let own = app.url("/app/token-cache");
        let cases = [
            (
                "/app/token-cache".to_string(),
                "/app/token-cache".to_string(),
            ),
            (own.clone(), own.clone()),
            ("//evil.example/x".into(), "/app/connected-app".into()),
            ("/\\evil.example/x".into(), "/app/connected-app".into()),
            ("https://evil.example/x".into(), "/app/connected-app".into()),
            ("javascript:alert(1)".into(), "/app/connected-app".into()),
        ];
        for (target, expected) in cases {
            let q: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
            let path = format!("/login?redirect-to={q}");
            // Logged in: sent straight on.
            let r = open(&app, Some(&cookie), &path).await;
            assert_eq!(
                (r.status().as_u16(), location(&r)),
                (302, expected.clone()),
                "{backend:?} {target}"
            );
            // A Guest gets the login page, which goes to the same place afterwards.
            let r = open(&app, None, &path).await;
            assert_eq!(r.status(), 200, "{backend:?} {target}");
            assert_secured(&r, "login page");
            let html = r.text().await.unwrap();
            let attr = format!(
                "data-next=\"{}\"",
                connected_apps::error::html_escape(&expected)
            );
            assert!(html.contains(&attr), "{backend:?} {target}: {html}");
        }
    }
}

#[tokio::test]
async fn the_token_cache_page_lists_everyone_for_a_system_manager_and_a_plain_users_own() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let sam = session(&app, "sam@example.com", &["System Manager"]).await;
        let ursula = session(&app, "ursula@example.com", &[]).await;
        let r = open(&app, Some(&sam), "/app/token-cache").await;
        assert_eq!(r.status(), 200, "{backend:?}");
        let html = r.text().await.unwrap();
        assert!(html.contains("data-page=\"token-cache\""), "{html}");
        assert!(html.contains(">Token Cache</a>"), "{html}");
        // A plain user gets the page of their own connections (the list API shows them only
        // the Token Caches they own), linked as such.
        let r = open(&app, Some(&ursula), "/app/token-cache").await;
        assert_eq!(r.status(), 200, "{backend:?}");
        let html = r.text().await.unwrap();
        assert!(html.contains("data-page=\"token-cache\""), "{html}");
        assert!(html.contains("<title>My connections"), "{html}");
        let r = open(&app, Some(&ursula), "/app/connected-app").await;
        let html = r.text().await.unwrap();
        assert!(
            html.contains("<a href=\"/app/token-cache\">My connections</a>"),
            "{html}"
        );
    }
}

#[tokio::test]
async fn the_pages_script_and_style_come_from_the_service_itself() {
    let app = spawn_app(Backend::Sqlite).await;
    for (path, kind) in [
        ("/assets/connected-apps/app.js", "text/javascript"),
        ("/assets/connected-apps/app.css", "text/css"),
    ] {
        let r = open(&app, None, path).await;
        assert_eq!(r.status(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(kind), "{path}: {ct}");
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert!(!r.text().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn a_provider_refusal_at_the_callback_is_a_page_in_plain_words_for_a_browser() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let cookie = session(&app, "sam@example.com", &["System Manager"]).await;
        let created = app
            .create_app(json!({
                "provider_name": "Refusing Provider",
                "client_id": "cid",
                "client_secret": "secret",
                "authorization_uri": "https://provider.example/auth",
                "token_uri": "https://provider.example/token",
            }))
            .await;
        let name = created["name"].as_str().unwrap().to_string();
        let r = app
            .client
            .post(app.url("/api/method/run_doc_method"))
            .header("Cookie", &cookie)
            .form(&[
                ("dt", "Connected App"),
                ("dn", name.as_str()),
                ("method", "initiate_web_application_flow"),
            ])
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(r).await;
        assert_eq!(status, 200, "{backend:?} {body}");
        let auth_url = url::Url::parse(body["message"].as_str().unwrap()).unwrap();
        let state = auth_url
            .query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        let back = format!(
            "{CALLBACK}{name}?error=access_denied&error_description=The+person+said+no&state={state}"
        );

        let r = open(&app, Some(&cookie), &back).await;
        assert_eq!(r.status(), 417, "{backend:?}");
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert_secured(&r, "callback error page");
        let html = r.text().await.unwrap();
        assert!(
            html.contains(
                "The OAuth provider refused the authorization: (access_denied) The person said no"
            ),
            "{backend:?}: {html}"
        );
        assert!(html.contains(&format!("data-name=\"{name}\"")), "{html}");

        // Scripts still get Frappe's error body.
        let r = app
            .client
            .get(app.url(&back))
            .header("Cookie", &cookie)
            .send()
            .await
            .unwrap();
        let (status, body) = status_json(r).await;
        assert_eq!(status, 417, "{backend:?}");
        assert_eq!(body["exc_type"], "OAuthProviderError", "{body}");
    }
}

/// The first hour (issue 17) in Chromium, on the service binary started on a fresh directory
/// (embedded SQLite) with the real test OpenID provider: `tests/e2e/first_hour.mjs` at 1280 px
/// and at 360 px. `SCREENSHOTS=docs/screenshots cargo nextest run --test api first_hour_in`
/// saves the screenshots the README shows.
#[tokio::test]
async fn the_first_hour_in_chromium_at_1280_and_360_px_on_a_fresh_directory() {
    use crate::cli::{cli_api_key, command, free_port, Served};
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: apt-get install chromium (./scripts/test does it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let served = Served::start(
        command(dir.path()),
        port,
        &[
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--outbound-allow",
            "127.0.0.0/8",
        ],
    )
    .await;
    // The password the first start printed, as a new user reads it.
    let out = served.stdout().join("\n");
    let password = out
        .split("as Administrator with the password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the first start prints a password: {out}"))
        .to_string();
    let auth = cli_api_key(command(dir.path()), "Administrator").await;
    crate::cli::run_ok(
        command(dir.path()),
        &[
            "user",
            "add",
            "plain@example.com",
            "--password",
            "plain-pass-word",
        ],
    )
    .await;
    let callback = served.url(CALLBACK);
    let provider = TestProvider::start(json!({
        "autoApprove": false,
        "clients": [{
            "client_id": "first-hour-client",
            "client_secret": "first-hour-secret",
            "redirect_uris": [format!("{callback}unused")],
            "redirect_uri_prefixes": [callback],
        }]
    }))
    .await;
    let shots = std::env::var_os("SCREENSHOTS")
        .filter(|s| !s.is_empty())
        .map(|s| Path::new(env!("CARGO_MANIFEST_DIR")).join(s));
    for width in ["1280", "360"] {
        let node = std::env::var_os("NODE").unwrap_or_else(|| "node".into());
        let mut cmd = tokio::process::Command::new(node);
        cmd.arg("first_hour.mjs")
            .current_dir(e2e_dir())
            .env("SERVICE_URL", &served.address)
            .env("ADMIN_PASSWORD", &password)
            .env("PROVIDER_URL", provider.base_url())
            .env("CLIENT_ID", "first-hour-client")
            .env("CLIENT_SECRET", "first-hour-secret")
            .env("CONNECTED_APPS_AUTH", &auth)
            .env("PLAIN_USER", "plain@example.com")
            .env("PLAIN_PASSWORD", "plain-pass-word")
            .env("WIDTH", width)
            .env_remove("SCREENSHOTS")
            .kill_on_drop(true);
        if let Some(d) = &shots {
            cmd.env("SCREENSHOTS", d);
        }
        let out = cmd
            .output()
            .await
            .expect("run node tests/e2e/first_hour.mjs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("all passed"),
            "{width}px: the first hour failed ({}):\n{stdout}\n{stderr}\nservice: {:?}",
            out.status,
            served.stderr()
        );
    }
}
