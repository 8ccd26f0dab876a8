//! Cross-site request forgery: login CSRF, Frappe's CSRF token on the pages' sessions, writes
//! from other sites, `text/plain` bodies, document methods on navigations, and `redirect-to`.
//! Every request here is what a browser would send for another site's page (an `Origin`,
//! `Referer` or `Sec-Fetch-*` header) or what a script sends (none of them).

use connected_apps::commands::add_user;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

const EVIL: &str = "https://evil.example";
const PASSWORD: &str = "pass-word-1";

async fn add(app: &TestApp, email: &str, roles: &[&str]) {
    let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
    add_user(&app.state, email, None, &roles, Some(PASSWORD))
        .await
        .expect("add user");
}

/// `POST /api/method/login` as a form, with extra headers.
async fn login(app: &TestApp, email: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut rb = app
        .client
        .post(app.url("/api/method/login"))
        .form(&[("usr", email), ("pwd", PASSWORD)]);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    rb.send().await.expect("login")
}

fn sets_sid(r: &reqwest::Response) -> bool {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("sid=") && !c.starts_with("sid=Guest"))
}

/// A session made as `frappe-client` makes it (no page ever served): its `Cookie` header.
async fn api_session(app: &TestApp, email: &str) -> String {
    let r = login(app, email, &[]).await;
    assert_eq!(r.status(), 200, "login {email}");
    format!("sid={}", sid_of(&r))
}

/// Opens a page of the service as a browser does and returns the CSRF token it carries.
async fn open_page(app: &TestApp, cookie: &str, path: &str) -> Option<String> {
    let r = app
        .client
        .get(app.url(path))
        .header("Cookie", cookie)
        .header("Accept", "text/html")
        .send()
        .await
        .expect("page");
    assert_eq!(r.status(), 200, "{path}");
    let html = r.text().await.unwrap();
    let at = html.find("<meta name=\"csrf-token\" content=\"")?;
    let rest = &html[at + "<meta name=\"csrf-token\" content=\"".len()..];
    Some(rest[..rest.find('"')?].to_string())
}

/// A request with the session cookie and the given headers; a JSON body when given.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> (u16, Value) {
    let mut rb = app
        .client
        .request(method, app.url(path))
        .header("Cookie", cookie);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    status_json(rb.send().await.expect("request")).await
}

/// Frappe's CSRFTokenError: 400, `exc_type`, the message, and no traceback keys.
fn assert_csrf_error(status: u16, body: &Value, what: &str) {
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(body["exc_type"], "CSRFTokenError", "{what}: {body}");
    assert!(
        server_messages(body)
            .iter()
            .any(|m| m.starts_with("Invalid Request")),
        "{what}: {body}"
    );
    assert!(body.get("exc").is_none(), "{what}: {body}");
}

fn new_app_body(provider: &str) -> Value {
    json!({
        "provider_name": provider,
        "client_id": "cid",
        "client_secret": "secret",
        "authorization_uri": "https://provider.example/auth",
        "token_uri": "https://provider.example/token",
    })
}

async fn app_count(app: &TestApp) -> i64 {
    let (status, v) = app
        .get(
            &app.admin,
            "/api/method/frappe.client.get_count?doctype=Connected%20App",
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v["message"].as_i64().unwrap()
}

#[tokio::test]
async fn another_sites_page_cannot_log_the_browser_in() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        add(&app, "mallory@example.com", &[]).await;
        let referer = format!("{EVIL}/login.html");
        for headers in [
            vec![("Origin", EVIL)],
            vec![("Origin", "null")],
            vec![("Referer", referer.as_str())],
            vec![("Sec-Fetch-Site", "cross-site")],
            // The service's own host under another scheme or port is another site.
            vec![("Origin", "http://127.0.0.1")],
        ] {
            let r = login(&app, "mallory@example.com", &headers).await;
            assert!(!sets_sid(&r), "{backend:?} {headers:?}");
            let (status, body) = status_json(r).await;
            assert_csrf_error(status, &body, &format!("{backend:?} {headers:?}"));
        }
        // The same through `/api/v2/method/login`.
        let r = app
            .client
            .post(app.url("/api/v2/method/login"))
            .header("Origin", EVIL)
            .form(&[("usr", "mallory@example.com"), ("pwd", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert!(!sets_sid(&r), "{backend:?} v2");
        assert_eq!(r.status(), 400, "{backend:?} v2");

        // The service's own pages, and scripts (no origin at all), log in.
        let own = app.address.clone();
        let own_page = app.url("/login");
        for headers in [
            vec![],
            vec![("Origin", own.as_str())],
            vec![("Referer", own_page.as_str())],
            vec![("Sec-Fetch-Site", "same-origin"), ("Origin", own.as_str())],
        ] {
            let r = login(&app, "mallory@example.com", &headers).await;
            assert_eq!(r.status(), 200, "{backend:?} {headers:?}");
            assert!(sets_sid(&r), "{backend:?} {headers:?}");
        }
    }
}

#[tokio::test]
async fn the_request_host_and_allow_cors_origins_count_as_this_site_for_a_login() {
    for backend in BACKENDS {
        // Reached at its bind address while its public URL says otherwise (a local test
        // setup), and with one partner site allowed.
        let app = spawn_app_with(backend, |s| {
            s.public_url = "https://apps.example".into();
            s.public_url_explicit = true;
            s.allow_cors = vec!["https://partner.example".into()];
        })
        .await;
        add(&app, "pat@example.com", &[]).await;
        for origin in [
            app.address.as_str(),
            "https://apps.example",
            "https://partner.example",
        ] {
            let r = login(&app, "pat@example.com", &[("Origin", origin)]).await;
            assert_eq!(r.status(), 200, "{backend:?} {origin}");
            // Frappe's allow_cors headers for the allowed partner only.
            let acao = r
                .headers()
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap().to_string());
            if origin == "https://partner.example" {
                assert_eq!(acao.as_deref(), Some(origin), "{backend:?}");
                assert_eq!(r.headers()["access-control-allow-credentials"], "true");
            } else {
                assert_eq!(acao, None, "{backend:?} {origin}");
            }
        }
        for origin in [
            EVIL,
            "https://apps.example.evil.example",
            "http://apps.example",
        ] {
            let r = login(&app, "pat@example.com", &[("Origin", origin)]).await;
            assert_eq!(r.status(), 400, "{backend:?} {origin}");
            assert!(r.headers().get("access-control-allow-origin").is_none());
        }
        // A preflight from the partner is answered; one from anyone else is not.
        let r = app
            .client
            .request(Method::OPTIONS, app.url("/api/resource/Connected%20App"))
            .header("Origin", "https://partner.example")
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "content-type,x-frappe-csrf-token",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        assert_eq!(
            r.headers()["access-control-allow-origin"],
            "https://partner.example"
        );
        assert_eq!(r.headers()["access-control-allow-methods"], "POST");
        let r = app
            .client
            .request(Method::OPTIONS, app.url("/api/resource/Connected%20App"))
            .header("Origin", EVIL)
            .header("Access-Control-Request-Method", "POST")
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("access-control-allow-origin").is_none());
    }
}

#[tokio::test]
async fn a_password_is_never_accepted_in_a_url() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        add(&app, "pat@example.com", &[]).await;
        let q = format!("usr=pat%40example.com&pwd={PASSWORD}");
        for (method, path) in [
            (Method::GET, format!("/api/method/login?{q}")),
            (Method::GET, format!("/api/v2/method/login?{q}")),
            (Method::POST, format!("/api/method/login?{q}")),
        ] {
            let r = app
                .client
                .request(method.clone(), app.url(&path))
                .send()
                .await
                .unwrap();
            assert!(!sets_sid(&r), "{backend:?} {method} {path}");
            let (status, body) = status_json(r).await;
            assert_eq!(status, 403, "{backend:?} {method} {path}: {body}");
            // v1 or v2 error shape.
            let exc_type = body["exc_type"]
                .as_str()
                .or(body["errors"][0]["type"].as_str());
            assert_eq!(exc_type, Some("PermissionError"), "{body}");
            assert!(
                body.to_string().contains("never accepted in the URL"),
                "{body}"
            );
        }
    }
}

#[tokio::test]
async fn a_pages_session_needs_its_csrf_token_for_every_write_as_in_frappe() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        add(&app, "sam@example.com", &["System Manager"]).await;
        let cookie = api_session(&app, "sam@example.com").await;
        let create = "/api/resource/Connected%20App";

        // A session that never served a page (frappe-client's) writes without a token, as in
        // Frappe's recordings.
        let (status, v) = send(
            &app,
            Method::POST,
            create,
            &cookie,
            &[],
            Some(&new_app_body("Before any page")),
        )
        .await;
        assert_eq!(status, 200, "{backend:?} {v}");

        // The first page served to it makes the token, stored as Frappe stores it.
        let token = open_page(&app, &cookie, "/app/connected-app")
            .await
            .expect("the page carries a CSRF token");
        assert_eq!(token.len(), 56, "{token}");
        let again = open_page(&app, &cookie, "/app/connected-app/new").await;
        assert_eq!(again.as_deref(), Some(token.as_str()), "{backend:?}");
        let sid = cookie.trim_start_matches("sid=").to_string();
        let data = stored_session_data(&app, &sid);
        assert!(
            data.contains(&format!("'csrf_token': '{token}'")),
            "{backend:?}: {data}"
        );
        assert!(data.contains("'user': 'sam@example.com'"), "{data}");

        // Without the token, or with a wrong one, every unsafe method fails, nothing is written.
        let before = app_count(&app).await;
        let doc_path = format!(
            "/api/resource/Connected%20App/{}",
            v["data"]["name"].as_str().unwrap()
        );
        let wrong = "0".repeat(56);
        for headers in [vec![], vec![("X-Frappe-CSRF-Token", wrong.as_str())]] {
            for (method, path, body) in [
                (Method::POST, create, Some(new_app_body("Forged"))),
                (
                    Method::PUT,
                    doc_path.as_str(),
                    Some(json!({"client_id": "x"})),
                ),
                (Method::DELETE, doc_path.as_str(), None),
                (
                    Method::PATCH,
                    "/api/v2/document/Connected%20App/x",
                    Some(json!({})),
                ),
                (
                    Method::POST,
                    "/api/method/frappe.client.insert",
                    Some(json!({"doc": {"doctype": "Connected App", "provider_name": "F"}})),
                ),
                (Method::POST, "/api/method/logout", None),
            ] {
                let (status, body) =
                    send(&app, method.clone(), path, &cookie, &headers, body.as_ref()).await;
                assert_csrf_error(status, &body, &format!("{backend:?} {method} {path}"));
            }
        }
        assert_eq!(app_count(&app).await, before, "{backend:?}");
        let (status, doc) = app.get(&app.admin, &doc_path).await;
        assert_eq!(status, 200);
        assert_eq!(doc["data"]["client_id"], "cid", "{backend:?}");

        // Reads need no token; writes with the right one work.
        let (status, _) = send(&app, Method::GET, &doc_path, &cookie, &[], None).await;
        assert_eq!(status, 200, "{backend:?}");
        let with = [("X-Frappe-CSRF-Token", token.as_str())];
        let (status, body) = send(
            &app,
            Method::POST,
            create,
            &cookie,
            &with,
            Some(&new_app_body("With token")),
        )
        .await;
        assert_eq!(status, 200, "{backend:?} {body}");
        let (status, body) = send(
            &app,
            Method::PUT,
            &doc_path,
            &cookie,
            &with,
            Some(&json!({"client_id": "changed"})),
        )
        .await;
        assert_eq!(status, 200, "{backend:?} {body}");

        // API keys never need it, even for a user whose browser session has one.
        let (status, body) = app
            .post(&app.admin, create, &new_app_body("By API key"))
            .await;
        assert_eq!(status, 200, "{backend:?} {body}");

        // Logging in again makes a new session (Frappe checks the token after that), which
        // has no token until a page is served to it.
        let r = app
            .client
            .post(app.url("/api/method/login"))
            .header("Cookie", &cookie)
            .form(&[("usr", "sam@example.com"), ("pwd", PASSWORD)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        let fresh = format!("sid={}", sid_of(&r));
        let (status, body) = send(
            &app,
            Method::POST,
            create,
            &fresh,
            &[],
            Some(&new_app_body("Fresh API session")),
        )
        .await;
        assert_eq!(status, 200, "{backend:?} {body}");

        // Logging out with the token ends the page's session.
        let (status, _) = send(
            &app,
            Method::POST,
            "/api/method/logout",
            &cookie,
            &with,
            None,
        )
        .await;
        assert_eq!(status, 200, "{backend:?}");
    }
}

/// `tabSessions.sessiondata` of a session, read straight from the database.
fn stored_session_data(app: &TestApp, sid: &str) -> String {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
        sessiondata: Option<String>,
    }
    let q = diesel::sql_query("SELECT sessiondata FROM `tabSessions` WHERE sid = ?")
        .bind::<diesel::sql_types::Text, _>(sid);
    let rows: Vec<Row> = match app.db.raw() {
        connected_apps::db::DbConnection::Sqlite(mut c) => q.load(&mut c),
        connected_apps::db::DbConnection::Mysql(mut c) => q.load(&mut c),
    }
    .expect("read tabSessions");
    rows.into_iter()
        .next()
        .and_then(|r| r.sessiondata)
        .expect("session row")
}

#[tokio::test]
async fn cookie_writes_from_another_site_are_refused_unless_allow_cors_lists_it() {
    for backend in BACKENDS {
        // The partner is listed in the Frappe site config, as Frappe reads `allow_cors`.
        let db = TestDb::new(backend);
        let mut settings = test_settings(&db);
        std::fs::write(
            &settings.site_config,
            json!({
                "encryption_key": connected_apps::secrets::generate_key(),
                "allow_cors": ["https://partner.example"],
            })
            .to_string(),
        )
        .unwrap();
        settings.create_site_config = false;
        let app = spawn_on(db, settings).await;
        add(&app, "sam@example.com", &["System Manager"]).await;
        let cookie = api_session(&app, "sam@example.com").await;
        let create = "/api/resource/Connected%20App";
        let before = app_count(&app).await;
        let referer = format!("{EVIL}/form.html");
        for headers in [
            vec![("Origin", EVIL)],
            vec![("Origin", "null")],
            vec![("Referer", referer.as_str())],
            vec![("Sec-Fetch-Site", "cross-site")],
        ] {
            let (status, body) = send(
                &app,
                Method::POST,
                create,
                &cookie,
                &headers,
                Some(&new_app_body("Forged")),
            )
            .await;
            assert_csrf_error(status, &body, &format!("{backend:?} {headers:?}"));
        }
        assert_eq!(app_count(&app).await, before, "{backend:?}");
        // The listed partner, the service itself and scripts write.
        let own = app.address.clone();
        for headers in [
            vec![("Origin", "https://partner.example")],
            vec![("Origin", own.as_str())],
            vec![],
        ] {
            let (status, body) = send(
                &app,
                Method::POST,
                create,
                &cookie,
                &headers,
                Some(&new_app_body("Allowed")),
            )
            .await;
            assert_eq!(status, 200, "{backend:?} {headers:?}: {body}");
        }
        // API-key callers are not cookie-authenticated: no origin rule applies.
        let r = app
            .client
            .post(app.url(create))
            .header("Authorization", &app.admin)
            .header("Origin", EVIL)
            .json(&new_app_body("Key"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{backend:?}");
        assert_eq!(app_count(&app).await, before + 4, "{backend:?}");
    }
}

#[tokio::test]
async fn a_text_plain_body_is_never_read_as_json() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        add(&app, "sam@example.com", &["System Manager"]).await;
        // What `<form enctype="text/plain">` with one field named `{"usr":"…","pwd":"…","x":"` sends.
        let forged = format!("{{\"usr\":\"sam@example.com\",\"pwd\":\"{PASSWORD}\",\"x\":\"=\"}}");
        let r = app
            .client
            .post(app.url("/api/method/login"))
            .header("Content-Type", "text/plain")
            .body(forged)
            .send()
            .await
            .unwrap();
        assert!(!sets_sid(&r), "{backend:?}");
        let (status, body) = status_json(r).await;
        assert_eq!(status, 415, "{backend:?} {body}");
        assert_eq!(body["exc_type"], "ValidationError", "{body}");

        let cookie = api_session(&app, "sam@example.com").await;
        let before = app_count(&app).await;
        for ct in ["text/plain", "text/plain;charset=UTF-8"] {
            let r = app
                .client
                .post(app.url("/api/resource/Connected%20App"))
                .header("Cookie", &cookie)
                .header("Content-Type", ct)
                .body(new_app_body("Forged").to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 415, "{backend:?} {ct}");
        }
        assert_eq!(app_count(&app).await, before, "{backend:?}");
    }
}

#[tokio::test]
async fn document_methods_that_change_data_do_not_run_on_a_browser_navigation() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        // A System Manager, who may run both methods.
        add(&app, "sam@example.com", &["System Manager"]).await;
        let cookie = api_session(&app, "sam@example.com").await;
        let mut body = new_app_body("Navigated");
        body["openid_configuration"] = json!("https://provider.example/.well-known/openid");
        let created = app.create_app(body).await;
        let name = created["name"].as_str().unwrap().to_string();
        let modified = created["modified"].clone();
        let initiate = [
            format!("/api/resource/Connected%20App/{name}?run_method=initiate_web_application_flow"),
            format!("/api/v2/document/Connected%20App/{name}/method/initiate_web_application_flow"),
            format!("/api/method/run_doc_method?dt=Connected%20App&dn={name}&method=initiate_web_application_flow"),
        ];
        let discover = [
            format!("/api/resource/Connected%20App/{name}?run_method=get_openid_configuration"),
            format!("/api/v2/document/Connected%20App/{name}/method/get_openid_configuration"),
            format!("/api/v2/method/run_doc_method?dt=Connected%20App&dn={name}&method=get_openid_configuration"),
        ];
        let navigations: [&[(&str, &str)]; 4] = [
            &[
                ("Sec-Fetch-Mode", "navigate"),
                ("Sec-Fetch-Dest", "document"),
                ("Sec-Fetch-Site", "none"),
            ],
            &[
                ("Sec-Fetch-Mode", "navigate"),
                ("Sec-Fetch-Dest", "document"),
                ("Sec-Fetch-Site", "cross-site"),
            ],
            &[
                ("Sec-Fetch-Dest", "iframe"),
                ("Sec-Fetch-Site", "same-origin"),
            ],
            &[
                ("Sec-Fetch-Mode", "no-cors"),
                ("Sec-Fetch-Dest", "image"),
                ("Sec-Fetch-Site", "cross-site"),
            ],
        ];
        for path in initiate.iter().chain(discover.iter()) {
            for headers in navigations {
                let (status, body) = send(&app, Method::GET, path, &cookie, headers, None).await;
                assert_eq!(status, 403, "{backend:?} {path} {headers:?}: {body}");
                let text = format!("{body}");
                assert!(
                    text.contains("not by opening a link"),
                    "{backend:?} {path}: {body}"
                );
            }
        }
        // Nothing changed: no flow was started, the app was not rewritten.
        let tc = format!("/api/resource/Token%20Cache/{name}-sam%40example.com");
        let (status, _) = app.get(&app.admin, &tc).await;
        assert_eq!(status, 404, "{backend:?}: a navigation started a flow");
        let (_, doc) = app
            .get(&app.admin, &format!("/api/resource/Connected%20App/{name}"))
            .await;
        assert_eq!(doc["data"]["modified"], modified, "{backend:?}");

        // A script's GET (as Frappe's recordings 308 and 311 make it) still runs the method.
        for path in &initiate {
            let (status, body) = send(&app, Method::GET, path, &cookie, &[], None).await;
            assert_eq!(status, 200, "{backend:?} {path}: {body}");
        }
        let (status, _) = app.get(&app.admin, &tc).await;
        assert_eq!(status, 200, "{backend:?}");
        // Reading a document by opening it in the browser is still fine.
        let (status, _) = send(
            &app,
            Method::GET,
            &format!("/api/resource/Connected%20App/{name}"),
            &cookie,
            navigations[0],
            None,
        )
        .await;
        assert_eq!(status, 200, "{backend:?}");
    }
}

#[tokio::test]
async fn redirect_to_is_sent_on_as_the_parsed_url_and_never_with_a_backslash() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        add(&app, "sam@example.com", &["System Manager"]).await;
        let cookie = api_session(&app, "sam@example.com").await;
        let host = app.address.trim_start_matches("http://").to_string();
        let cases = [
            // `\` is `/` to a browser but user info to other clients: refused.
            (
                format!("http://{host}\\@evil.example/x"),
                "/app/connected-app".to_string(),
            ),
            (
                format!("http:\\\\{host}/app"),
                "/app/connected-app".to_string(),
            ),
            (
                "/app\\..\\..\\evil".to_string(),
                "/app/connected-app".to_string(),
            ),
            // Control characters never make it into a header.
            (
                "/app/connected-app\r\nSet-Cookie: x=1".to_string(),
                "/app/connected-app".to_string(),
            ),
            // What is sent on is the parsed URL, not the text that came in.
            (
                "/app/x/../token-cache".to_string(),
                "/app/token-cache".to_string(),
            ),
            (
                format!("HTTP://{host}/app/a b"),
                format!("http://{host}/app/a%20b"),
            ),
            (
                "/app/connected-app?q=a b#top".to_string(),
                "/app/connected-app?q=a%20b#top".to_string(),
            ),
        ];
        for (target, expected) in cases {
            let q: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
            let r = app
                .client
                .get(app.url(&format!("/login?redirect-to={q}")))
                .header("Cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 302, "{backend:?} {target:?}");
            let location = r.headers()["location"].to_str().unwrap();
            assert_eq!(location, expected, "{backend:?} {target:?}");
        }
    }
}
