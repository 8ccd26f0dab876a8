//! The OAuth web-application flow against the real test provider (tests/provider): connecting
//! (PKCE), the callback and what it stores, its failures, and OpenID discovery. The Connected
//! App + provider fixture used by `oauth_tokens` and `oauth_concurrency` lives here too.

use std::time::Duration;

use base64::Engine;
use connected_apps::configuration::Settings;
use connected_apps::db::schema::auth;
use diesel::prelude::*;
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sha2::Digest;

use crate::helpers::*;
use crate::provider::TestProvider;

pub const CLIENT_ID: &str = "ca-client";
pub const CLIENT_SECRET: &str = "ca-secret-value";
pub const CALLBACK_PATH: &str =
    "/api/method/frappe.integrations.doctype.connected_app.connected_app.callback";
pub const USER1: &str = "user1@example.com";

/// A running service with one Connected App that points at a running provider which knows the
/// app's client and its redirect URI.
pub struct OAuthApp {
    pub app: TestApp,
    pub provider: TestProvider,
    pub name: String,
    pub redirect_uri: String,
}

/// The provider configuration for one client: `top` is merged into the top level (TTLs,
/// rotation), `client` into the client (pkce, auth_methods, grant_types).
pub fn provider_config(redirect_uri: &str, top: Value, client: Value) -> Value {
    let mut c = json!({
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [redirect_uri],
    });
    merge(&mut c, client);
    let mut cfg = json!({ "clients": [c] });
    merge(&mut cfg, top);
    cfg
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// The body of the Connected App every test uses (no endpoints yet: the provider's port is
/// known only once it runs, and it needs the app's redirect URI, which holds the app's name).
pub fn app_body() -> Value {
    json!({
        "provider_name": "Test Provider",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scopes": [{"scope": "openid"}, {"scope": "email"}, {"scope": "profile"}],
        "query_parameters": [
            {"key": "access_type", "value": "offline"},
            {"key": "prompt", "value": "consent"}
        ],
    })
}

/// Creates the Connected App on a running service, starts a provider for it and points the
/// app's endpoints at the provider.
pub async fn oauth_on(app: TestApp, top: Value, client: Value) -> OAuthApp {
    let doc = app.create_app(app_body()).await;
    let name = doc["name"].as_str().expect("app name").to_string();
    let redirect_uri = doc["redirect_uri"]
        .as_str()
        .expect("redirect_uri")
        .to_string();
    assert_eq!(
        redirect_uri,
        format!("{}{CALLBACK_PATH}/{name}", app.address)
    );
    let provider = TestProvider::start(provider_config(&redirect_uri, top, client)).await;
    point_at(&app, &name, &provider).await;
    OAuthApp {
        app,
        provider,
        name,
        redirect_uri,
    }
}

/// Sets the app's endpoints to the provider's.
pub async fn point_at(app: &TestApp, name: &str, provider: &TestProvider) {
    let (status, v) = app
        .put(
            &app.admin,
            &format!("/api/resource/Connected%20App/{name}"),
            &json!({
                "authorization_uri": provider.authorization_endpoint(),
                "token_uri": provider.token_endpoint(),
                "revocation_uri": provider.revocation_endpoint(),
                "userinfo_uri": provider.userinfo_endpoint(),
                "introspection_uri": provider.introspection_endpoint(),
            }),
        )
        .await;
    assert_eq!(status, 200, "point the app at the provider: {v}");
}

/// A service (settings changed by `change`) with a Connected App and its provider.
pub async fn oauth_app(
    backend: Backend,
    change: impl FnOnce(&mut Settings),
    top: Value,
    client: Value,
) -> OAuthApp {
    oauth_on(spawn_app_with(backend, change).await, top, client).await
}

/// The default fixture: default settings, default provider.
pub async fn oauth_default(backend: Backend) -> OAuthApp {
    oauth_app(backend, |_| {}, json!({}), json!({})).await
}

/// `@` and spaces percent-encoded, enough for document names in a path.
pub fn enc(s: &str) -> String {
    s.replace('%', "%25")
        .replace(' ', "%20")
        .replace('@', "%40")
}

/// The query pairs of a URL, in order.
pub fn query_pairs(url: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(url)
        .expect("url")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param(url: &str, key: &str) -> Option<String> {
    query_pairs(url)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// A form field of a request the provider recorded.
pub fn field(request: &Value, key: &str) -> Option<String> {
    request["form"]
        .as_array()?
        .iter()
        .find(|p| p[0] == key)
        .and_then(|p| p[1].as_str().map(str::to_string))
}

/// The form field names of a recorded request, in order.
pub fn field_names(request: &Value) -> Vec<String> {
    request["form"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p[0].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A redirect's status and Location.
pub fn redirect_of(r: &reqwest::Response) -> (u16, String) {
    (
        r.status().as_u16(),
        r.headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
    )
}

impl OAuthApp {
    pub fn admin(&self) -> String {
        self.app.admin.clone()
    }

    /// `initiate_web_application_flow` through `run_doc_method` (dt/dn); returns the URL.
    pub async fn initiate(&self, auth: &str, args: Value) -> String {
        let (status, v) = self
            .app
            .post(
                auth,
                "/api/method/run_doc_method",
                &json!({
                    "dt": "Connected App",
                    "dn": self.name,
                    "method": "initiate_web_application_flow",
                    "args": args.to_string(),
                }),
            )
            .await;
        assert_eq!(status, 200, "initiate: {v}");
        v["message"]
            .as_str()
            .expect("authorization url")
            .to_string()
    }

    /// GETs a callback URL (as the browser would after the provider's redirect).
    pub async fn callback(&self, auth: Option<&str>, url: &str) -> reqwest::Response {
        let mut r = self.app.client.get(url);
        if let Some(a) = auth {
            r = r.header("Authorization", a);
        }
        r.send().await.expect("callback request")
    }

    /// Connect → provider → callback; returns the callback's (status, Location).
    pub async fn connect(&self, auth: &str, args: Value) -> (u16, String) {
        let url = self.initiate(auth, args).await;
        let back = self.provider.authorize(&url).await;
        assert!(back.starts_with(&self.redirect_uri), "{back}");
        let r = self.callback(Some(auth), &back).await;
        let out = redirect_of(&r);
        if out.0 != 302 {
            let body = r.text().await.unwrap_or_default();
            panic!("callback answered {}: {body}", out.0);
        }
        out
    }

    pub fn tc_name(&self, user: &str) -> String {
        format!("{}-{user}", self.name)
    }

    /// Makes `user`'s stored access token expired, as if it had been received two hours ago
    /// (the provider's tokens live 3,600 s), so that its next use refreshes it.
    pub fn expire(&self, user: &str) {
        use connected_apps::db::schema::ca_token_state;
        let then = self.app.state.clock.now() - chrono::Duration::hours(2);
        let n = diesel::update(
            ca_token_state::table.filter(ca_token_state::token_cache.eq(self.tc_name(user))),
        )
        .set(ca_token_state::received_at.eq(Some(then)))
        .execute(&mut self.app.db.raw())
        .expect("expire the token");
        assert_eq!(n, 1, "{user} is connected");
    }

    /// The Token Cache as Administrator reads it over REST.
    pub async fn token_cache(&self, user: &str) -> (u16, Value) {
        self.app
            .get(
                &self.app.admin,
                &format!("/api/resource/Token%20Cache/{}", enc(&self.tc_name(user))),
            )
            .await
    }

    pub async fn get_access_token(&self, auth: &str, query: &str) -> (u16, Value) {
        self.app
            .get(
                auth,
                &format!(
                    "/api/method/connected_apps.get_access_token?connected_app={}{query}",
                    self.name
                ),
            )
            .await
    }

    /// The `__Auth` rows of a Token Cache: (fieldname, stored value, encrypted).
    pub fn auth_rows(&self, user: &str) -> Vec<(String, String, i32)> {
        let mut conn = self.app.db.raw();
        let mut rows: Vec<(String, String, i32)> = auth::table
            .filter(auth::doctype.eq("Token Cache"))
            .filter(auth::name.eq(self.tc_name(user)))
            .select((auth::fieldname, auth::password, auth::encrypted))
            .load(&mut conn)
            .expect("__Auth rows");
        rows.sort();
        rows
    }

    /// The decrypted `__Auth` value of a Token Cache field.
    pub fn stored_secret(&self, user: &str, fieldname: &str) -> Option<String> {
        self.auth_rows(user)
            .into_iter()
            .find(|(f, _, _)| f == fieldname)
            .map(|(_, v, enc)| {
                assert_eq!(enc, 1, "{fieldname} is stored encrypted");
                self.app
                    .state
                    .keys
                    .decrypt(&v)
                    .expect("decrypts with the site key")
                    .expose_secret()
                    .to_string()
            })
    }

    /// The provider's introspection of a token (`active` etc.).
    pub async fn introspect(&self, token: &str) -> Value {
        reqwest::Client::new()
            .post(self.provider.introspection_endpoint())
            .form(&[
                ("token", token),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ])
            .send()
            .await
            .expect("introspection")
            .json()
            .await
            .expect("introspection json")
    }

    /// The token-endpoint requests the provider received, with a given grant type.
    pub async fn token_requests(&self, grant_type: &str) -> Vec<Value> {
        self.provider
            .requests()
            .await
            .into_iter()
            .filter(|r| {
                r["path"] == "/token" && field(r, "grant_type").as_deref() == Some(grant_type)
            })
            .collect()
    }
}

fn is_state(s: &str) -> bool {
    s.len() == 30 && s.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Checks an authorization URL: provider endpoint, parameter order, state, PKCE, the app's
/// query parameters last. Returns the state.
fn check_authorization_url(o: &OAuthApp, url: &str, pkce: bool) -> String {
    assert!(
        url.starts_with(&format!("{}?", o.provider.authorization_endpoint())),
        "{url}"
    );
    let pairs = query_pairs(url);
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    let mut expected = vec![
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
    ];
    if pkce {
        expected.extend(["code_challenge", "code_challenge_method"]);
    }
    expected.extend(["access_type", "prompt"]);
    assert_eq!(keys, expected, "{url}");
    let get = |k: &str| param(url, k).unwrap_or_default();
    assert_eq!(get("response_type"), "code");
    assert_eq!(get("client_id"), CLIENT_ID);
    assert_eq!(get("redirect_uri"), o.redirect_uri);
    assert_eq!(get("scope"), "openid email profile");
    assert!(url.contains("scope=openid+email+profile"), "{url}");
    assert!(is_state(&get("state")), "{url}");
    if pkce {
        assert_eq!(get("code_challenge_method"), "S256");
        assert_eq!(get("code_challenge").len(), 43, "{url}");
    }
    assert_eq!(get("access_type"), "offline");
    assert_eq!(get("prompt"), "consent");
    get("state")
}

#[tokio::test]
async fn every_connect_route_returns_the_authorization_url_and_stores_the_state() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let admin = o.admin();
        let user1 = o.app.user(USER1, &[]).await;

        // run_doc_method with dt/dn.
        let url = o.initiate(&admin, json!({})).await;
        let state = check_authorization_url(&o, &url, true);
        let (status, tc) = o.token_cache("Administrator").await;
        assert_eq!(status, 200, "{backend:?}: {tc}");
        let tc = &tc["data"];
        assert_eq!(tc["name"], o.tc_name("Administrator"));
        assert_eq!(tc["user"], "Administrator");
        assert_eq!(tc["connected_app"], o.name.as_str());
        assert_eq!(tc["provider_name"], "Test Provider");
        assert_eq!(tc["state"], state.as_str());
        assert!(tc.get("success_uri").is_none(), "{tc}");

        // The desk's form: docs (the document as JSON) and args, form-encoded, as user1.
        let (_, doc) = o
            .app
            .get(&user1, &format!("/api/resource/Connected%20App/{}", o.name))
            .await;
        let r = o
            .app
            .client
            .post(o.app.url("/api/method/run_doc_method"))
            .header("Authorization", &user1)
            .form(&[
                ("docs", doc["data"].to_string()),
                ("method", "initiate_web_application_flow".into()),
                (
                    "args",
                    json!({"success_uri": "/app/after-connect"}).to_string(),
                ),
            ])
            .send()
            .await
            .unwrap();
        let (status, v) = status_json(r).await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        assert_eq!(v["docs"][0]["name"], o.name.as_str());
        let url = v["message"].as_str().unwrap();
        let user1_state = check_authorization_url(&o, url, true);
        let (_, tc) = o.token_cache(USER1).await;
        assert_eq!(tc["data"]["state"], user1_state.as_str());
        assert_eq!(tc["data"]["success_uri"], "/app/after-connect");
        assert_eq!(tc["data"]["owner"], USER1);

        // POST /api/resource/Connected App/{name} with run_method (needs write: admin).
        let (status, v) = o
            .app
            .post(
                &admin,
                &format!("/api/resource/Connected%20App/{}", o.name),
                &json!({"run_method": "initiate_web_application_flow"}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let again = check_authorization_url(&o, v["data"].as_str().unwrap(), true);
        assert_ne!(again, state, "every flow gets a new state");
        let (_, tc) = o.token_cache("Administrator").await;
        assert_eq!(tc["data"]["state"], again.as_str());

        // API v2 document method.
        let (status, v) = o
            .app
            .post(
                &admin,
                &format!(
                    "/api/v2/document/Connected%20App/{}/method/initiate_web_application_flow",
                    o.name
                ),
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let v2_state = check_authorization_url(&o, v["data"].as_str().unwrap(), true);
        let (_, tc) = o.token_cache("Administrator").await;
        assert_eq!(tc["data"]["state"], v2_state.as_str());
    }
}

#[tokio::test]
async fn only_a_system_manager_may_start_a_flow_for_another_user() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let user1 = o.app.user(USER1, &[]).await;
        o.app.user("user2@example.com", &[]).await;
        let body = |user: &str| {
            json!({
                "dt": "Connected App", "dn": o.name,
                "method": "initiate_web_application_flow",
                "args": json!({"user": user}).to_string(),
            })
        };
        let (status, v) = o
            .app
            .post(
                &user1,
                "/api/method/run_doc_method",
                &body("user2@example.com"),
            )
            .await;
        assert_eq!(status, 403, "{backend:?}: {v}");
        assert_eq!(v["exc_type"], "PermissionError");
        assert_eq!(o.token_cache("user2@example.com").await.0, 404);

        let (status, v) = o
            .app
            .post(
                &o.admin(),
                "/api/method/run_doc_method",
                &body("user2@example.com"),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        let (status, tc) = o.token_cache("user2@example.com").await;
        assert_eq!(status, 200);
        assert_eq!(tc["data"]["user"], "user2@example.com");
        assert_eq!(tc["data"]["owner"], "Administrator");
    }
}

#[tokio::test]
async fn the_full_flow_with_pkce_sends_the_exact_token_request_and_stores_encrypted_tokens() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let user1 = o.app.user(USER1, &[]).await;

        let url = o
            .initiate(&user1, json!({"success_uri": "/app/after-connect"}))
            .await;
        let challenge = param(&url, "code_challenge").unwrap();
        let back = o.provider.authorize(&url).await;
        let code = param(&back, "code").expect("a code");
        assert_eq!(param(&back, "state"), param(&url, "state"));
        let r = o.callback(Some(&user1), &back).await;
        assert_eq!(
            redirect_of(&r),
            (302, "/app/after-connect".to_string()),
            "{backend:?}"
        );

        // The token request, field by field.
        let reqs = o.provider.requests().await;
        assert_eq!(reqs.len(), 1, "{reqs:?}");
        let req = &reqs[0];
        assert_eq!(req["path"], "/token");
        assert_eq!(req["status"], 200, "{req}");
        assert!(req["headers"].get("authorization").is_none(), "{req}");
        let mut names = field_names(req);
        names.sort();
        assert_eq!(
            names,
            [
                "access_type",
                "client_id",
                "client_secret",
                "code",
                "code_verifier",
                "grant_type",
                "prompt",
                "redirect_uri"
            ]
        );
        assert_eq!(
            field(req, "grant_type").as_deref(),
            Some("authorization_code")
        );
        assert_eq!(field(req, "client_id").as_deref(), Some(CLIENT_ID));
        assert_eq!(field(req, "client_secret").as_deref(), Some(CLIENT_SECRET));
        assert_eq!(field(req, "code"), Some(code));
        assert_eq!(field(req, "redirect_uri"), Some(o.redirect_uri.clone()));
        assert_eq!(field(req, "access_type").as_deref(), Some("offline"));
        assert_eq!(field(req, "prompt").as_deref(), Some("consent"));
        let verifier = field(req, "code_verifier").unwrap();
        let s256 = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()));
        assert_eq!(s256, challenge, "the verifier matches the challenge");

        // What is stored: masked columns, encrypted __Auth rows, scopes, no state.
        let (_, tc) = o.token_cache(USER1).await;
        let tc = &tc["data"];
        let at = o
            .stored_secret(USER1, "access_token")
            .expect("access token");
        let rt = o
            .stored_secret(USER1, "refresh_token")
            .expect("refresh token");
        assert_eq!(tc["access_token"], "*".repeat(at.chars().count()));
        assert_eq!(tc["refresh_token"], "*".repeat(rt.chars().count()));
        for (field, stored, encrypted) in o.auth_rows(USER1) {
            assert_eq!(encrypted, 1, "{field}");
            assert!(stored.starts_with("gAAAAA"), "{field} is a Fernet token");
            assert!(!stored.contains(&at) && !stored.contains(&rt));
        }
        assert_eq!(tc["token_type"], "Bearer");
        assert_eq!(tc["expires_in"], 3600);
        assert!(tc.get("state").is_none(), "state is used up: {tc}");
        assert_eq!(tc["success_uri"], "/app/after-connect");
        let scopes: Vec<&str> = tc["scopes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["scope"].as_str().unwrap())
            .collect();
        assert_eq!(scopes, ["openid", "email", "profile"]);
        assert_eq!(o.introspect(&at).await["active"], true);

        let (status, v) = o
            .app
            .get(
                &user1,
                &format!(
                    "/api/method/frappe.integrations.doctype.connected_app.connected_app.has_token?connected_app={}",
                    o.name
                ),
            )
            .await;
        assert_eq!((status, &v["message"]), (200, &json!(true)));
    }
}

#[tokio::test]
async fn the_callback_redirects_only_to_relative_or_same_origin_success_uris() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let admin = o.admin();
        let app_page = format!("/app/connected-app/{}", o.name);
        let same_origin = o.app.url("/app/done?x=1");
        let cases = [
            (json!({}), app_page.clone()),
            (
                json!({"success_uri": "https://evil.example/x"}),
                app_page.clone(),
            ),
            (json!({"success_uri": "//evil.example/x"}), app_page.clone()),
            (json!({"success_uri": same_origin}), same_origin.clone()),
            (
                json!({"success_uri": "/app/after"}),
                "/app/after".to_string(),
            ),
        ];
        for (args, expected) in cases {
            let (status, location) = o.connect(&admin, args.clone()).await;
            assert_eq!((status, location), (302, expected), "{backend:?} {args}");
        }
    }
}

#[tokio::test]
async fn pkce_switched_off_for_an_app_sends_neither_challenge_nor_verifier() {
    for backend in BACKENDS {
        let o = oauth_app(backend, |_| {}, json!({}), json!({"pkce": false})).await;
        // There is no HTTP (or CLI) way to switch PKCE off: the store function is the only one.
        connected_apps::oauth::store::set_pkce(&mut o.app.db.raw(), &o.name, false)
            .expect("switch PKCE off");
        let url = o.initiate(&o.admin(), json!({})).await;
        check_authorization_url(&o, &url, false);
        let back = o.provider.authorize(&url).await;
        let r = o.callback(Some(&o.admin()), &back).await;
        assert_eq!(r.status(), 302, "{backend:?}");
        let reqs = o.token_requests("authorization_code").await;
        assert_eq!(reqs.len(), 1);
        assert_eq!(reqs[0]["status"], 200);
        assert!(field(&reqs[0], "code_verifier").is_none(), "{}", reqs[0]);
        assert!(o.stored_secret("Administrator", "access_token").is_some());
    }
}

#[tokio::test]
async fn a_guest_callback_is_sent_to_login_with_the_full_callback_url() {
    let o = oauth_default(Backend::Sqlite).await;
    let url = format!("{}?code=abc&state=xyz", o.redirect_uri);
    let r = o.callback(None, &url).await;
    let encoded: String = url::form_urlencoded::byte_serialize(url.as_bytes()).collect();
    assert_eq!(
        redirect_of(&r),
        (302, format!("/login?redirect-to={encoded}"))
    );
    assert!(o.provider.requests().await.is_empty());
}

#[tokio::test]
async fn callbacks_without_an_app_for_an_unknown_app_or_by_post_are_refused() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let admin = o.admin();

        let r = o
            .callback(
                Some(&admin),
                &o.app.url(&format!("{CALLBACK_PATH}?code=a&state=b")),
            )
            .await;
        let (status, v) = status_json(r).await;
        assert_eq!(status, 417, "{backend:?}: {v}");
        assert_eq!(v["exc_type"], "ValidationError");
        assert_eq!(server_messages(&v), ["Invalid Parameters."]);

        let r = o
            .callback(
                Some(&admin),
                &o.app
                    .url(&format!("{CALLBACK_PATH}/doesnotexist?code=a&state=b")),
            )
            .await;
        let (status, v) = status_json(r).await;
        assert_eq!(status, 404, "{v}");
        assert_eq!(
            server_messages(&v),
            ["Connected App doesnotexist not found"]
        );

        let url = o.initiate(&admin, json!({})).await;
        let back = o.provider.authorize(&url).await;
        let r = o
            .app
            .client
            .post(&back)
            .header("Authorization", &admin)
            .send()
            .await
            .unwrap();
        let (status, v) = status_json(r).await;
        assert_eq!(status, 403, "{v}");
        assert!(o.provider.requests().await.is_empty(), "no token request");
    }
}

#[tokio::test]
async fn a_wrong_or_replayed_state_is_rejected() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let admin = o.admin();
        let url = o.initiate(&admin, json!({})).await;
        let back = o.provider.authorize(&url).await;
        let code = param(&back, "code").unwrap();

        let wrong = format!("{}?code={code}&state={}", o.redirect_uri, "A".repeat(30));
        let (status, v) = status_json(o.callback(Some(&admin), &wrong).await).await;
        assert_eq!(status, 417, "{backend:?}: {v}");
        assert_eq!(
            server_messages(&v),
            ["Invalid token state! Check if the token has been created by the OAuth user."]
        );
        // Another user cannot use this user's state either.
        let user1 = o.app.user(USER1, &[]).await;
        let (status, _) = status_json(o.callback(Some(&user1), &back).await).await;
        assert_eq!(status, 417);
        assert!(
            o.provider.requests().await.is_empty(),
            "checked before the provider"
        );

        let r = o.callback(Some(&admin), &back).await;
        assert_eq!(r.status(), 302);
        let (status, v) = status_json(o.callback(Some(&admin), &back).await).await;
        assert_eq!(status, 417, "replay: {v}");
        assert!(server_messages(&v)[0].starts_with("Invalid token state!"));
        assert_eq!(o.token_requests("authorization_code").await.len(), 1);
    }
}

#[tokio::test]
async fn an_expired_state_is_rejected() {
    for backend in BACKENDS {
        let o = oauth_app(
            backend,
            |s| s.state_ttl = Duration::from_secs(1),
            json!({}),
            json!({}),
        )
        .await;
        let admin = o.admin();
        let url = o.initiate(&admin, json!({})).await;
        let back = o.provider.authorize(&url).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (status, v) = status_json(o.callback(Some(&admin), &back).await).await;
        assert_eq!(status, 417, "{backend:?}: {v}");
        assert!(
            server_messages(&v)[0].starts_with("Invalid token state!"),
            "{v}"
        );
        assert!(o.provider.requests().await.is_empty());
        assert!(o.stored_secret("Administrator", "access_token").is_none());
    }
}

#[tokio::test]
async fn an_invalid_code_names_invalid_grant_and_keeps_the_previous_connection() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        let before = o.stored_secret("Administrator", "access_token").unwrap();
        let refresh_before = o.stored_secret("Administrator", "refresh_token").unwrap();

        let url = o.initiate(&admin, json!({})).await;
        let state = param(&url, "state").unwrap();
        let bogus = format!("{}?code=not-a-code&state={state}", o.redirect_uri);
        let (status, v) = status_json(o.callback(Some(&admin), &bogus).await).await;
        assert_eq!(status, 417, "{backend:?}: {v}");
        assert_eq!(v["exc_type"], "OAuthProviderError");
        assert!(server_messages(&v)[0].contains("invalid_grant"), "{v}");
        let reqs = o.token_requests("authorization_code").await;
        assert_eq!(reqs.last().unwrap()["error"], "invalid_grant");

        assert_eq!(
            o.stored_secret("Administrator", "access_token"),
            Some(before.clone())
        );
        assert_eq!(
            o.stored_secret("Administrator", "refresh_token"),
            Some(refresh_before)
        );
        let (_, tc) = o.token_cache("Administrator").await;
        assert_eq!(
            tc["data"]["state"],
            state.as_str(),
            "the state stays after a failure"
        );
        let (status, v) = o.get_access_token(&admin, "").await;
        assert_eq!(
            (status, v["message"]["access_token"].as_str()),
            (200, Some(before.as_str()))
        );
    }
}

#[tokio::test]
async fn an_unreachable_provider_is_a_503_and_keeps_the_previous_connection() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let admin = o.admin();
        o.connect(&admin, json!({})).await;
        let before = o.stored_secret("Administrator", "access_token").unwrap();
        let url = o.initiate(&admin, json!({})).await;
        let back = o.provider.authorize(&url).await;
        // Nothing listens on port 1: the provider cannot be reached.
        let (status, _) = o
            .app
            .put(
                &admin,
                &format!("/api/resource/Connected%20App/{}", o.name),
                &json!({"token_uri": "http://127.0.0.1:1/token"}),
            )
            .await;
        assert_eq!(status, 200);
        let (status, v) = status_json(o.callback(Some(&admin), &back).await).await;
        assert_eq!(status, 503, "{backend:?}: {v}");
        assert_eq!(v["exc_type"], "ServiceUnavailableError");
        assert!(
            server_messages(&v)[0].contains("could not be reached"),
            "{v}"
        );
        assert_eq!(
            o.stored_secret("Administrator", "access_token"),
            Some(before)
        );
        let (_, tc) = o.token_cache("Administrator").await;
        assert_eq!(tc["data"]["state"], param(&back, "state").unwrap().as_str());
    }
}

#[tokio::test]
async fn get_openid_configuration_fills_the_endpoints_from_the_discovery_document() {
    for backend in BACKENDS {
        let o = oauth_default(backend).await;
        let admin = o.admin();
        let discovery = o.provider.discovery().await;
        let path = format!("/api/resource/Connected%20App/{}", o.name);
        let blank = json!({
            "openid_configuration": o.provider.url("/.well-known/openid-configuration"),
            "authorization_uri": "", "token_uri": "", "userinfo_uri": "",
            "introspection_uri": "", "revocation_uri": "",
        });
        let check = |doc: &Value| {
            for (field, key) in [
                ("authorization_uri", "authorization_endpoint"),
                ("token_uri", "token_endpoint"),
                ("userinfo_uri", "userinfo_endpoint"),
                ("introspection_uri", "introspection_endpoint"),
                ("revocation_uri", "revocation_endpoint"),
            ] {
                assert_eq!(doc[field], discovery[key], "{field}: {doc}");
                assert!(doc[field].as_str().is_some_and(|u| !u.is_empty()));
            }
        };

        assert_eq!(o.app.put(&admin, &path, &blank).await.0, 200);
        let (status, v) = o
            .app
            .post(
                &admin,
                "/api/method/run_doc_method",
                &json!({"dt": "Connected App", "dn": o.name, "method": "get_openid_configuration"}),
            )
            .await;
        assert_eq!(status, 200, "{backend:?}: {v}");
        check(&o.app.get(&admin, &path).await.1["data"]);

        assert_eq!(o.app.put(&admin, &path, &blank).await.0, 200);
        let (status, v) = o
            .app
            .post(
                &admin,
                &format!(
                    "/api/v2/document/Connected%20App/{}/method/get_openid_configuration",
                    o.name
                ),
                &json!({}),
            )
            .await;
        assert_eq!(status, 200, "{v}");
        check(&o.app.get(&admin, &path).await.1["data"]);

        // The discovered endpoints work: a full connection through them.
        let (status, _) = o.connect(&admin, json!({})).await;
        assert_eq!(status, 302);
    }
}
