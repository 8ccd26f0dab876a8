//! Every token stays with its owner: a connection is found by its Connected App and its user
//! (the Token Cache's `connected_app` and `user` columns), never by the name `<app>-<user>`
//! alone. Users whose names end in one another (`jane@corp.example`, `mary-jane@corp.example`)
//! and app names that contain `-` (`<a>` and `<a>-mary`) make the same names; each path that
//! used to compose one is walked here: `has_token`, `get_access_token`, `get_auth_header`,
//! initiate, the callback and its redirect, `get_backend_app_token`, and saves of a Token Cache.

use serde_json::{json, Value};

use crate::helpers::*;
use crate::oauth_flow::{app_body, enc, param, point_at, redirect_of, CALLBACK_PATH, CLIENT_ID};
use crate::provider::TestProvider;
use crate::rest::{query_rows, snapshot};

const JANE: &str = "jane@corp.example";
const MARY_JANE: &str = "mary-jane@corp.example";
const HAS_TOKEN: &str =
    "/api/method/frappe.integrations.doctype.connected_app.connected_app.has_token";

/// A service with Connected App `a` (a random name) pointing at a running provider that accepts
/// any redirect URI under the service's callback path, and two plain users, jane and mary-jane.
struct Site {
    app: TestApp,
    provider: TestProvider,
    a: String,
    jane: String,
    mary_jane: String,
}

async fn site(backend: Backend) -> Site {
    // A short margin by default; tests that must see any use of a token set a long one.
    site_with(backend, 60, &[]).await
}

/// `margin`: refresh this many seconds before expiry. Tests that must see any use of a token
/// make the stored tokens expired (`expire_all`), so that a use refreshes and shows at the
/// provider.
async fn site_with(backend: Backend, margin: u64, jane_roles: &[&str]) -> Site {
    let app = spawn_app_with(backend, |s| {
        s.refresh_margin = std::time::Duration::from_secs(margin)
    })
    .await;
    let a = app.create_app(app_body()).await["name"]
        .as_str()
        .expect("app name")
        .to_string();
    let callback = app.url(CALLBACK_PATH);
    let provider = TestProvider::start(json!({
        "clients": [{
            "client_id": CLIENT_ID,
            "client_secret": crate::oauth_flow::CLIENT_SECRET,
            "redirect_uris": [format!("{callback}/{a}")],
            "redirect_uri_prefixes": [format!("{callback}/")],
        }]
    }))
    .await;
    point_at(&app, &a, &provider).await;
    let jane = app.user(JANE, jane_roles).await;
    let mary_jane = app.user(MARY_JANE, &[]).await;
    Site {
        app,
        provider,
        a,
        jane,
        mary_jane,
    }
}

impl Site {
    /// A second Connected App named `<a>-mary`: created over REST, then renamed in the
    /// database as a Frappe data import or script can name it (the service only makes random
    /// names), and pointed at the provider (which recomputes its redirect URI).
    async fn add_app_named(&self, new: &str) {
        let old = self.app.create_app(app_body()).await["name"]
            .as_str()
            .expect("app name")
            .to_string();
        for sql in [
            format!("UPDATE `tabConnected App` SET `name` = '{new}' WHERE `name` = '{old}'"),
            format!("UPDATE `tabOAuth Scope` SET `parent` = '{new}' WHERE `parent` = '{old}'"),
            format!(
                "UPDATE `tabQuery Parameters` SET `parent` = '{new}' WHERE `parent` = '{old}'"
            ),
            format!(
                "UPDATE `__Auth` SET `name` = '{new}' WHERE `doctype` = 'Connected App' AND `name` = '{old}'"
            ),
        ] {
            query_rows(&self.app.db, &sql);
        }
        point_at(&self.app, new, &self.provider).await;
        let (status, v) = self
            .app
            .get(
                &self.app.admin,
                &format!("/api/resource/Connected%20App/{new}"),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        assert!(
            v["data"]["redirect_uri"]
                .as_str()
                .is_some_and(|u| u.ends_with(&format!("/{new}"))),
            "{v}"
        );
    }

    async fn initiate(&self, auth: &str, app: &str) -> (u16, Value) {
        self.app
            .post(
                auth,
                "/api/method/run_doc_method",
                &json!({
                    "dt": "Connected App",
                    "dn": app,
                    "method": "initiate_web_application_flow",
                    "args": "{}",
                }),
            )
            .await
    }

    /// The whole flow for one user and app; returns the callback's Location.
    async fn connect(&self, auth: &str, app: &str) -> String {
        let (status, v) = self.initiate(auth, app).await;
        assert_eq!(status, 200, "initiate: {v}");
        let back = self
            .provider
            .authorize(v["message"].as_str().expect("authorization url"))
            .await;
        let r = self
            .app
            .client
            .get(&back)
            .header("Authorization", auth)
            .send()
            .await
            .unwrap();
        let (status, location) = redirect_of(&r);
        assert_eq!(
            status,
            302,
            "callback: {}",
            r.text().await.unwrap_or_default()
        );
        location
    }

    /// Makes every stored token expired long ago: any use of one refreshes it first.
    fn expire_all(&self) {
        use connected_apps::db::schema::ca_token_state;
        use diesel::prelude::*;
        let long_ago = chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("date");
        diesel::update(ca_token_state::table)
            .set(ca_token_state::received_at.eq(Some(long_ago)))
            .execute(&mut self.app.db.raw())
            .expect("expire tokens");
    }

    /// The decrypted access token stored for a Token Cache name.
    fn stored_access_token(&self, tc: &str) -> Option<String> {
        let rows = query_rows(
            &self.app.db,
            &format!(
                "SELECT `password` FROM `__Auth` WHERE `doctype` = 'Token Cache' AND `name` = '{tc}' AND `fieldname` = 'access_token'"
            ),
        );
        rows.first().map(|v| {
            use secrecy::ExposeSecret;
            self.app
                .state
                .keys
                .decrypt(v)
                .expect("decrypts")
                .expose_secret()
                .to_string()
        })
    }

    /// Token endpoint calls the provider has received so far.
    async fn token_calls(&self) -> usize {
        self.provider
            .requests()
            .await
            .iter()
            .filter(|r| r["path"] == "/token")
            .count()
    }

    /// Every way a user asks for a connection's token or state, for `app` (and `user`, which
    /// only a System Manager may name).
    async fn token_answers(
        &self,
        auth: &str,
        app: &str,
        user: Option<&str>,
    ) -> Vec<(String, u16, Value)> {
        let u = user.map_or(String::new(), |u| format!("&user={}", enc(u)));
        let cu = user.map_or(String::new(), |u| format!("&connected_user={}", enc(u)));
        let mut body = json!({ "connected_app": app });
        let mut has_body = json!({ "connected_app": app });
        if let Some(u) = user {
            body["user"] = json!(u);
            has_body["connected_user"] = json!(u);
        }
        let mut out = Vec::new();
        for path in [
            format!("/api/method/connected_apps.get_access_token?connected_app={app}{u}"),
            format!("/api/method/connected_apps.get_auth_header?connected_app={app}{u}"),
            format!("{HAS_TOKEN}?connected_app={app}{cu}"),
            format!("/api/v2/method/connected_apps.get_access_token?connected_app={app}{u}"),
        ] {
            let (s, v) = self.app.get(auth, &path).await;
            out.push((format!("GET {path}"), s, v));
        }
        for (path, b) in [
            ("/api/method/connected_apps.get_access_token", &body),
            ("/api/method/connected_apps.get_auth_header", &body),
            (HAS_TOKEN, &has_body),
        ] {
            let (s, v) = self.app.post(auth, path, b).await;
            out.push((format!("POST {path}"), s, v));
        }
        out
    }
}

fn is_has_token(what: &str) -> bool {
    what.contains("has_token")
}

#[tokio::test]
async fn asking_for_an_app_named_like_the_start_of_another_users_connection_is_a_404_and_never_that_users_token(
) {
    for backend in BACKENDS {
        // Arrange: mary-jane is connected to `a`; her Token Cache is `<a>-mary-jane@corp.example`,
        // which is also `<a>-mary` + `-` + `jane@corp.example`. Her token is made expired, so any
        // use of it would refresh it, so a use would show at the provider.
        let s = site_with(backend, 7200, &[]).await;
        s.connect(&s.mary_jane, &s.a).await;
        s.expire_all();
        let theirs = s
            .stored_access_token(&format!("{}-{MARY_JANE}", s.a))
            .expect("stored");
        let before = snapshot(&s.app.db);
        let calls = s.token_calls().await;

        // Act: jane asks for the connection of app `<a>-mary` (which does not exist) every way.
        let crafted = format!("{}-mary", s.a);
        let answers = s.token_answers(&s.jane, &crafted, None).await;

        // Assert: the app is resolved first, so every answer is Frappe's 404 for it.
        for (what, status, v) in answers {
            let what = format!("{backend:?} {what}");
            assert!(
                !v.to_string().contains(&theirs),
                "{what} leaked mary-jane's token: {v}"
            );
            assert_eq!(status, 404, "{what}: {v}");
            let text = v.to_string();
            assert!(
                text.contains("DoesNotExistError")
                    && text.contains(&format!("Connected App {crafted} not found")),
                "{what}: {v}"
            );
        }
        // Nothing was refreshed or written for her connection.
        assert_eq!(
            s.token_calls().await,
            calls,
            "{backend:?}: a refresh was triggered"
        );
        assert_eq!(
            snapshot(&s.app.db),
            before,
            "{backend:?}: the database changed"
        );
        // And mary-jane still uses her own connection (which refreshes it: it has expired).
        let (status, v) = s
            .app
            .get(
                &s.mary_jane,
                &format!(
                    "/api/method/connected_apps.get_access_token?connected_app={}",
                    s.a
                ),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {v}");
    }
}

#[tokio::test]
async fn after_connecting_a_user_whose_name_contains_a_dash_is_sent_to_the_apps_own_page() {
    for backend in BACKENDS {
        let s = site(backend).await;
        // No success_uri: the callback sends the user to the app's page, named by the app
        // itself, not by cutting `<a>-mary-jane@corp.example` at its last `-`.
        let location = s.connect(&s.mary_jane, &s.a).await;
        assert_eq!(
            location,
            format!("/app/connected-app/{}", s.a),
            "{backend:?}"
        );
        // The same for an app whose own name contains `-` (`<a>-mary-mary-jane@corp.example`).
        let dashed = format!("{}-mary", s.a);
        s.add_app_named(&dashed).await;
        let location = s.connect(&s.mary_jane, &dashed).await;
        assert_eq!(
            location,
            format!("/app/connected-app/{dashed}"),
            "{backend:?}"
        );
    }
}

#[tokio::test]
async fn with_apps_a_and_a_mary_jane_never_gets_or_overwrites_mary_janes_connection_of_the_same_name(
) {
    for backend in BACKENDS {
        // Arrange: apps `a` and `<a>-mary` both exist; mary-jane is connected to `a`, so the
        // Token Cache `<a>-mary-jane@corp.example` is hers (user mary-jane, app `a`).
        let s = site_with(backend, 7200, &[]).await;
        let dashed = format!("{}-mary", s.a);
        s.add_app_named(&dashed).await;
        s.connect(&s.mary_jane, &s.a).await;
        s.expire_all();
        let tc = format!("{}-{MARY_JANE}", s.a);
        let theirs = s.stored_access_token(&tc).expect("stored");
        let before = snapshot(&s.app.db);
        let calls = s.token_calls().await;

        // Act + Assert: jane's connection to `<a>-mary` would have that very name. She is not
        // connected: has_token is false, the token methods say so, nothing of mary-jane's
        // comes back and nothing is refreshed.
        let admin = s.app.admin.clone();
        let mut answers = s.token_answers(&s.jane, &dashed, None).await;
        // A System Manager asking about jane sees the same.
        answers.extend(s.token_answers(&admin, &dashed, Some(JANE)).await);
        for (what, status, v) in answers {
            let what = format!("{backend:?} {what}");
            assert!(
                !v.to_string().contains(&theirs),
                "{what} leaked mary-jane's token: {v}"
            );
            if is_has_token(&what) {
                assert_eq!((status, &v["message"]), (200, &json!(false)), "{what}: {v}");
            } else {
                assert_eq!(status, 417, "{what}: {v}");
                assert!(
                    v.to_string().contains("There is no connection"),
                    "{what}: {v}"
                );
            }
        }
        assert_eq!(
            s.token_calls().await,
            calls,
            "{backend:?}: a refresh was triggered"
        );

        // Starting jane's flow for `<a>-mary` is refused, and mary-jane's row is not touched
        // (no state planted in it, so no callback can write jane's tokens into it).
        let (status, v) = s.initiate(&s.jane, &dashed).await;
        assert_eq!(status, 409, "{backend:?} initiate: {v}");
        assert_eq!(v["exc_type"], "DuplicateEntryError", "{backend:?}: {v}");
        assert!(
            !v.to_string().contains(MARY_JANE),
            "{backend:?} names her: {v}"
        );
        // The same for a System Manager starting it for jane.
        let (status, v) = s
            .app
            .post(
                &admin,
                "/api/method/run_doc_method",
                &json!({"dt": "Connected App", "dn": dashed, "method": "initiate_web_application_flow",
                        "args": json!({"user": JANE}).to_string()}),
            )
            .await;
        assert_eq!(status, 409, "{backend:?} initiate for jane: {v}");
        assert_eq!(
            snapshot(&s.app.db),
            before,
            "{backend:?}: the database changed"
        );

        // mary-jane's connection is still hers and works.
        let (status, v) = s
            .app
            .post(&s.mary_jane, HAS_TOKEN, &json!({"connected_app": s.a}))
            .await;
        assert_eq!(
            (status, &v["message"]),
            (200, &json!(true)),
            "{backend:?}: {v}"
        );
    }
}

#[tokio::test]
async fn a_callback_for_app_a_mary_never_completes_mary_janes_pending_flow_for_app_a() {
    for backend in BACKENDS {
        // Arrange: apps `a` and `<a>-mary`; mary-jane has started connecting to `a`, so her
        // Token Cache `<a>-mary-jane@corp.example` holds a pending state (and PKCE verifier).
        let s = site(backend).await;
        let dashed = format!("{}-mary", s.a);
        s.add_app_named(&dashed).await;
        let (status, v) = s.initiate(&s.mary_jane, &s.a).await;
        assert_eq!(status, 200, "{v}");
        let url = v["message"].as_str().unwrap().to_string();
        // Her authorization request, sent back to `<a>-mary`'s callback instead (the provider
        // accepts both redirect URIs of this client). Whoever carries it there is jane.
        let mut crafted = reqwest::Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = crafted
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "redirect_uri" {
                    s.app.url(&format!("{CALLBACK_PATH}/{dashed}"))
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        crafted.query_pairs_mut().clear().extend_pairs(pairs);
        let back = s.provider.authorize(crafted.as_str()).await;
        assert!(back.contains(&format!("/{dashed}?")), "{back}");
        assert_eq!(param(&back, "state"), param(&url, "state"));
        let before = snapshot(&s.app.db);

        // Act: jane lands on `<a>-mary`'s callback with that code and mary-jane's state.
        let r = s
            .app
            .client
            .get(&back)
            .header("Authorization", &s.jane)
            .send()
            .await
            .unwrap();
        let (status, v) = status_json(r).await;

        // Assert: jane has no pending flow for `<a>-mary`; nothing is stored anywhere.
        assert_eq!(status, 417, "{backend:?}: {v}");
        assert!(
            v.to_string().contains("Invalid token state"),
            "{backend:?}: {v}"
        );
        assert_eq!(
            snapshot(&s.app.db),
            before,
            "{backend:?}: the database changed"
        );
        assert_eq!(s.stored_access_token(&format!("{}-{MARY_JANE}", s.a)), None);
    }
}

#[tokio::test]
async fn rows_whose_user_or_app_columns_do_not_match_their_name_are_nobodys_token_by_that_name() {
    for backend in BACKENDS {
        let s = site(backend).await;
        let admin = s.app.admin.clone();
        // Arrange: a Token Cache of mary-jane's for `a`, with a fresh token, then renamed in
        // the database (as a hand edit or a script on the Frappe site can leave it) to the name
        // jane's connection would have.
        let (status, v) = s
            .app
            .post(
                &admin,
                "/api/resource/Token%20Cache",
                &json!({"connected_app": s.a, "user": MARY_JANE, "access_token": "mary-janes-token",
                        "token_type": "Bearer", "expires_in": 3600}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let rename = |from: &str, to: &str| {
            for sql in [
                format!("UPDATE `tabToken Cache` SET `name` = '{to}' WHERE `name` = '{from}'"),
                format!("UPDATE `__Auth` SET `name` = '{to}' WHERE `doctype` = 'Token Cache' AND `name` = '{from}'"),
                format!("UPDATE `ca_token_state` SET `token_cache` = '{to}' WHERE `token_cache` = '{from}'"),
            ] {
                query_rows(&s.app.db, &sql);
            }
        };
        let hers = format!("{}-{MARY_JANE}", s.a);
        let janes = format!("{}-{JANE}", s.a);
        rename(&hers, &janes);

        // Act + Assert: to jane it is not a connection (its columns say mary-jane's).
        for (what, status, v) in s.token_answers(&s.jane, &s.a, None).await {
            let what = format!("{backend:?} {what}");
            assert!(!v.to_string().contains("mary-janes-token"), "{what}: {v}");
            if is_has_token(&what) {
                assert_eq!((status, &v["message"]), (200, &json!(false)), "{what}: {v}");
            } else {
                assert_eq!(status, 417, "{what}: {v}");
            }
        }

        // The app's own token (`<a>-`) is never a row whose user is a person: asked for it,
        // a System Manager gets the clash, not mary-jane's token, and the row stays as it was.
        let own = format!("{}-", s.a);
        rename(&janes, &own);
        let before = snapshot(&s.app.db);
        let calls = s.token_calls().await;
        let (status, v) = s
            .app
            .post(
                &admin,
                "/api/method/connected_apps.get_backend_app_token",
                &json!({"connected_app": s.a}),
            )
            .await;
        assert!(
            !v.to_string().contains("mary-janes-token"),
            "{backend:?}: {v}"
        );
        assert_eq!(status, 409, "{backend:?}: {v}");
        assert_eq!(v["exc_type"], "DuplicateEntryError", "{backend:?}: {v}");
        assert_eq!(
            snapshot(&s.app.db),
            before,
            "{backend:?}: the database changed"
        );
        assert_eq!(
            s.token_calls().await,
            calls,
            "{backend:?}: the provider was asked"
        );
    }
}

#[tokio::test]
async fn a_token_caches_user_and_connected_app_cannot_be_changed_to_make_it_someone_elses() {
    for backend in BACKENDS {
        let s = site(backend).await;
        let admin = s.app.admin.clone();
        s.connect(&s.jane, &s.a).await;
        let janes = format!("{}-{JANE}", s.a);
        let doc = format!("/api/resource/Token%20Cache/{}", enc(&janes));
        let dashed = format!("{}-mary", s.a);
        s.add_app_named(&dashed).await;
        let before = snapshot(&s.app.db);

        // Act: a System Manager re-points jane's row at mary-jane or at another app, through
        // every way a save happens.
        let tries: Vec<(&str, String, Value)> = vec![
            ("PUT", doc.clone(), json!({"user": MARY_JANE})),
            ("PUT", doc.clone(), json!({"connected_app": dashed})),
            ("PUT", doc.clone(), json!({"user": null})),
            (
                "PATCH",
                format!("/api/v2/document/Token%20Cache/{}", enc(&janes)),
                json!({"user": MARY_JANE}),
            ),
            (
                "POST",
                "/api/method/frappe.client.set_value".into(),
                json!({"doctype": "Token Cache", "name": janes, "fieldname": "user", "value": MARY_JANE}),
            ),
            (
                "POST",
                "/api/method/frappe.desk.form.save.savedocs".into(),
                json!({"doc": json!({"doctype": "Token Cache", "name": janes, "user": MARY_JANE}).to_string(), "action": "Save"}),
            ),
        ];
        for (method, path, body) in tries {
            let r = s
                .app
                .client
                .request(method.parse().unwrap(), s.app.url(&path))
                .header("Authorization", &admin)
                .json(&body)
                .send()
                .await
                .unwrap();
            let (status, v) = status_json(r).await;
            let what = format!("{backend:?} {method} {path} {body}");
            // Refused in Frappe's shape (v1 417 ValidationError; v2 its errors list).
            assert_eq!(status, 417, "{what}: {v}");
            assert!(v.to_string().contains("ValidationError"), "{what}: {v}");
            assert!(v.to_string().contains("cannot be changed"), "{what}: {v}");
        }
        assert_eq!(
            snapshot(&s.app.db),
            before,
            "{backend:?}: the database changed"
        );

        // Sending the stored values again (any case) is an ordinary save.
        let (status, v) = s
            .app
            .put(
                &admin,
                &doc,
                &json!({"user": JANE.to_uppercase(), "connected_app": s.a, "success_uri": "/x"}),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        assert_eq!(v["data"]["user"], JANE, "{backend:?}: {v}");
        // A plain user still cannot create a Token Cache for anyone (Frappe's permissions).
        let (status, v) = s
            .app
            .post(
                &s.jane,
                "/api/resource/Token%20Cache",
                &json!({"connected_app": dashed, "user": JANE, "access_token": "planted"}),
            )
            .await;
        assert_eq!(status, 403, "{backend:?}: {v}");
        // jane's connection still works for her.
        let (status, v) = s
            .app
            .get(
                &s.jane,
                &format!(
                    "/api/method/connected_apps.get_access_token?connected_app={}",
                    s.a
                ),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {v}");
    }
}

#[tokio::test]
async fn the_app_page_never_shows_or_disconnects_another_users_connection_that_has_the_same_name() {
    let chromium = std::path::Path::new("/usr/bin/chromium");
    let e2e = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e");
    assert!(
        chromium.is_file(),
        "/usr/bin/chromium is missing (./scripts/test installs it)"
    );
    assert!(
        e2e.join("node_modules/playwright-core").is_dir(),
        "tests/e2e/node_modules is missing: run `npm ci` there (./scripts/test does it)"
    );
    for backend in BACKENDS {
        // Arrange: jane is a System Manager (she may read every Token Cache); mary-jane is
        // connected to `a`, so `<a>-mary-jane@corp.example` is hers.
        let s = site_with(backend, 60, &["System Manager"]).await;
        let dashed = format!("{}-mary", s.a);
        s.add_app_named(&dashed).await;
        s.connect(&s.mary_jane, &s.a).await;

        // Act: jane opens `<a>-mary`'s page in the browser.
        let node = std::env::var_os("NODE").unwrap_or_else(|| "node".into());
        let out = tokio::process::Command::new(node)
            .arg("identity.mjs")
            .current_dir(&e2e)
            .env("SERVICE_URL", &s.app.address)
            .env("LOGIN_USER", JANE)
            .env("LOGIN_PASSWORD", "pass-word-1")
            .env("APP", &dashed)
            .kill_on_drop(true)
            .output()
            .await
            .expect("run node tests/e2e/identity.mjs");

        // Assert: the page says jane is not connected and offers no Disconnect of mary-jane's.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stdout.contains("step: all passed"),
            "{backend:?}: the browser test failed ({}):\n{stdout}\n{stderr}",
            out.status
        );
        // mary-jane's connection is untouched.
        let (status, v) = s
            .app
            .post(&s.mary_jane, HAS_TOKEN, &json!({"connected_app": s.a}))
            .await;
        assert_eq!(
            (status, &v["message"]),
            (200, &json!(true)),
            "{backend:?}: {v}"
        );
    }
}
