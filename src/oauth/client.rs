//! Outbound OAuth 2.0 client for Connected Apps: the shared HTTP client, Frappe's authorization URL, the token requests (authorization code, refresh, client credentials), RFC 7009 revocation and OpenID discovery, with Frappe v15 (oauthlib / requests-oauthlib) wire format and error semantics.
//!
//! What goes over the wire, and who builds it:
//! - the authorization URL is built by hand: Frappe's parameter order and Python `urlencode`
//!   escaping (oauth2 orders `state` before `redirect_uri` and escapes `*`/`~` differently);
//! - the authorization-code exchange and the refresh (with a refresh token) go through the
//!   `oauth2` crate with `AuthType::RequestBody`, over a small `AsyncHttpClient` wrapper that enforces the size cap;
//! - client credentials, revocation, the refresh without a refresh token and discovery are built
//!   with reqwest directly (the reason is given at each function).
//!
//! Token responses are always interpreted here, the way oauthlib + Frappe's `TokenCache.update_data`
//! do, from the raw response (oauth2's own parser is stricter: it requires HTTP 200, a JSON
//! Content-Type and a `token_type`).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use oauth2::basic::BasicClient;
use oauth2::{
    AsyncHttpClient, AuthType, AuthorizationCode, ClientId, ClientSecret, HttpRequest,
    HttpResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, TokenUrl,
};
use rand::Rng as _;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use url::Url;

use super::outbound::{self, GuardedResolver, OutboundAllow};

/// The Content-Type that requests-oauthlib sends with token requests.
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded;charset=UTF-8";
/// Longest provider-supplied text (error code / description) kept in an [`OAuthError`].
const MAX_PROVIDER_TEXT: usize = 300;
/// Query Parameters rows that would collide with the authorization URL's own parameters.
/// In Frappe they are passed as Python keyword arguments, so a collision raises a TypeError
/// instead of sending a duplicate; we leave them out.
const RESERVED_AUTHORIZE_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];
/// Query Parameters rows that would collide with the code-exchange fields (see above).
const RESERVED_TOKEN_PARAMS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "code_verifier",
];

/// Everything that can go wrong talking to a provider.
///
/// Display and Debug never contain a token, a client secret, an authorization code, a PKCE
/// verifier or a URL query: endpoints are shown as `scheme://host[:port]/path`, and the text a
/// provider sends back has those values masked.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// A field the flow needs is empty on the Connected App (the field name).
    #[error("{0} is not set for this Connected App")]
    NotConfigured(&'static str),
    /// A URL field is not an absolute http(s) URL (the field name).
    #[error("{0} is not a valid http or https URL")]
    InvalidUrl(&'static str),
    /// The request could not be sent or the response could not be read.
    #[error("could not reach {endpoint}: {reason}")]
    Unreachable {
        /// `scheme://host[:port]/path` of the request.
        endpoint: String,
        /// The transport error (without the URL).
        reason: String,
    },
    /// The connect or total timeout of the shared client elapsed.
    #[error("{endpoint} did not answer in time")]
    Timeout {
        /// `scheme://host[:port]/path` of the request.
        endpoint: String,
    },
    /// The destination is not public and `outbound_allow` does not list it: nothing was sent
    /// and no connection was opened. Told apart from [`OAuthError::Unreachable`] only in logs
    /// and metrics; a client sees the same answer for both (see `flow::provider_error`).
    #[error(
        "{endpoint} is not a public address and not listed in outbound_allow; it was not contacted"
    )]
    Refused {
        /// `scheme://host[:port]/path` of the request.
        endpoint: String,
    },
    /// The response body is larger than [`ClientLimits::max_response_bytes`].
    #[error("the response from {endpoint} is larger than {limit} bytes")]
    TooLarge {
        /// `scheme://host[:port]/path` of the request.
        endpoint: String,
        /// The configured cap.
        limit: usize,
    },
    /// The provider answered with an OAuth error (`{"error": …, "error_description": …}`);
    /// shown as oauthlib does: `(invalid_grant) bad code`.
    #[error("({error}) {}", description.as_deref().unwrap_or(""))]
    Provider {
        /// The `error` code.
        error: String,
        /// The `error_description`, if any.
        description: Option<String>,
        /// The HTTP status of the response.
        status: u16,
    },
    /// A token response without `access_token` (also a non-JSON body, and any non-2xx answer
    /// that is not an OAuth error: oauthlib reports all of these this way).
    #[error("(missing_token) Missing access token parameter.")]
    MissingToken {
        /// The HTTP status of the response.
        status: u16,
    },
    /// `token_type` is neither `bearer` nor `mac` (case-insensitive), as Frappe's Token Cache checks.
    #[error("Received an invalid token type.")]
    InvalidTokenType,
    /// A non-2xx answer from the revocation or discovery endpoint.
    #[error("{endpoint} answered with HTTP status {status}")]
    Status {
        /// `scheme://host[:port]/path` of the request.
        endpoint: String,
        /// The HTTP status.
        status: u16,
    },
    /// A discovery document that is not a JSON object.
    #[error("invalid response from {endpoint}: {reason}")]
    InvalidResponse {
        /// `scheme://host[:port]/path` of the request.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client or the request could not be built.
    #[error("could not build the HTTP request: {0}")]
    Request(String),
}

impl OAuthError {
    /// True for the provider's `invalid_grant` (bad/expired code or refresh token).
    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, OAuthError::Provider { error, .. } if error == "invalid_grant")
    }

    /// True when retrying later may help: network failures, timeouts and HTTP 5xx answers.
    pub fn is_transient(&self) -> bool {
        match self {
            OAuthError::Unreachable { .. } | OAuthError::Timeout { .. } => true,
            OAuthError::Provider { status, .. }
            | OAuthError::MissingToken { status }
            | OAuthError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// Limits applied to every provider response.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimits {
    /// Largest response body accepted; bigger bodies fail with [`OAuthError::TooLarge`]
    /// (checked on Content-Length and again while streaming).
    pub max_response_bytes: usize,
}

impl Default for ClientLimits {
    fn default() -> Self {
        ClientLimits {
            max_response_bytes: 1024 * 1024,
        }
    }
}

/// The one shared HTTP client for provider requests: redirects are never followed, connect and
/// total timeouts are set, only plain http/https is used (every call also checks the URL
/// scheme), no proxy is used, and only destinations `outbound_allow` permits are connected to
/// (see [`super::outbound`]).
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    allow: Arc<OutboundAllow>,
}

/// Builds the shared [`HttpClient`].
///
/// Environment proxies (`HTTP_PROXY`, …) are ignored: a proxy would resolve and connect to the
/// provider's host itself, past the address check.
pub fn build_http_client(
    connect_timeout: Duration,
    timeout: Duration,
    allow: &OutboundAllow,
) -> Result<HttpClient, OAuthError> {
    let inner = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver::new(allow.clone())))
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .user_agent(concat!("connected-apps/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| OAuthError::Request(error_chain(&e.without_url())))?;
    Ok(HttpClient {
        inner,
        allow: Arc::new(allow.clone()),
    })
}

/// What the flows need from a Connected App (filled from the database by the caller).
#[derive(Debug, Clone)]
pub struct AppEndpoints {
    /// `client_id`.
    pub client_id: String,
    /// The decrypted `client_secret`, if one is set.
    pub client_secret: Option<SecretString>,
    /// `authorization_uri`.
    pub authorization_uri: Option<String>,
    /// `token_uri`.
    pub token_uri: Option<String>,
    /// `revocation_uri`.
    pub revocation_uri: Option<String>,
    /// `redirect_uri` (Frappe's callback URL for this app).
    pub redirect_uri: String,
    /// The OAuth Scope rows, in idx order.
    pub scopes: Vec<String>,
    /// The Query Parameters rows `(key, value)`, in idx order.
    pub query_params: Vec<(String, String)>,
}

/// A PKCE pair (method S256).
#[derive(Debug)]
pub struct Pkce {
    /// The `code_verifier` (43 characters, base64url), sent with the code exchange.
    pub verifier: SecretString,
    /// `BASE64URL(SHA256(verifier))`, sent in the authorization URL.
    pub challenge: String,
}

impl Pkce {
    /// A fresh random S256 pair (32 random bytes).
    pub fn generate() -> Pkce {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        Pkce {
            verifier: SecretString::from(verifier.secret().to_owned()),
            challenge: challenge.as_str().to_owned(),
        }
    }
}

/// A new `state`: 30 characters from `[A-Za-z0-9]`, like oauthlib's `generate_token()`.
pub fn generate_state() -> String {
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(30)
        .map(char::from)
        .collect()
}

/// Frappe's authorization URL: `authorization_uri` + `response_type=code, client_id,
/// redirect_uri, scope (space-joined), state`, then (with PKCE) `code_challenge,
/// code_challenge_method=S256`, then the Query Parameters rows, escaped exactly like Python's
/// `urlencode` (`quote_plus`).
///
/// As in oauthlib, a query already present in `authorization_uri` is parsed and re-encoded in
/// front of the new parameters, and the fragment is kept. As with Python keyword arguments,
/// Query Parameters with an empty value are left out, a repeated key keeps its first position
/// and its last value, and keys that clash with the parameters above are left out.
pub fn authorization_url(
    app: &AppEndpoints,
    state: &str,
    pkce_challenge: Option<&str>,
) -> Result<String, OAuthError> {
    let base = required(app.authorization_uri.as_deref(), "authorization_uri")?;
    parse_http_url(base, "authorization_uri")?;
    if app.client_id.is_empty() {
        return Err(OAuthError::NotConfigured("client_id"));
    }

    // urllib.parse.urlparse: the fragment first, then the query.
    let (rest, fragment) = match base.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (base, None),
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, q),
        None => (rest, ""),
    };

    let mut pairs: Vec<(Cow<'_, str>, Cow<'_, str>)> =
        url::form_urlencoded::parse(query.as_bytes()).collect();
    pairs.push(("response_type".into(), "code".into()));
    pairs.push(("client_id".into(), app.client_id.as_str().into()));
    if !app.redirect_uri.is_empty() {
        pairs.push(("redirect_uri".into(), app.redirect_uri.as_str().into()));
    }
    if !app.scopes.is_empty() {
        pairs.push(("scope".into(), app.scopes.join(" ").into()));
    }
    if !state.is_empty() {
        pairs.push(("state".into(), state.into()));
    }
    if let Some(challenge) = pkce_challenge {
        pairs.push(("code_challenge".into(), challenge.into()));
        pairs.push(("code_challenge_method".into(), "S256".into()));
    }
    for (k, v) in effective_query_params(&app.query_params, RESERVED_AUTHORIZE_PARAMS) {
        pairs.push((k.into(), v.into()));
    }

    let mut out = String::with_capacity(base.len() + 256);
    out.push_str(path);
    out.push('?');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        quote_plus(k, &mut out);
        out.push('=');
        quote_plus(v, &mut out);
    }
    if let Some(f) = fragment.filter(|f| !f.is_empty()) {
        out.push('#');
        out.push_str(f);
    }
    Ok(out)
}

/// A successful token response, normalised as Frappe's `TokenCache.update_data` does.
#[derive(Debug)]
pub struct TokenSet {
    /// `access_token`.
    pub access_token: SecretString,
    /// `refresh_token`; `None` when the provider left it out (on refresh Frappe then keeps the old one).
    pub refresh_token: Option<SecretString>,
    /// `"Bearer"` or `"MAC"`.
    pub token_type: String,
    /// `expires_in` in seconds (a number or numeric string); `None` when absent (Frappe stores 0).
    pub expires_in: Option<i64>,
    /// `scope` as sent (a JSON list is joined with spaces); `None` when absent (Frappe then
    /// keeps the Token Cache's scopes). Frappe splits it on spaces.
    pub scope: Option<String>,
}

/// Authorization-code exchange, sent by the `oauth2` crate (client_secret_post):
/// `grant_type=authorization_code, code, [code_verifier], client_id, client_secret, redirect_uri`,
/// then the Query Parameters rows (Frappe appends them to the token request too). No
/// Authorization header; `Accept: application/json`. Same field set as Frappe (exchange 323)
/// plus `code_verifier` when PKCE is used; only the order differs.
pub async fn exchange_code(
    http: &HttpClient,
    limits: &ClientLimits,
    app: &AppEndpoints,
    code: &str,
    verifier: Option<&SecretString>,
) -> Result<TokenSet, OAuthError> {
    let token_url = token_url(app)?;
    let mut client = oauth_client(app)?.set_token_uri(token_url);
    if !app.redirect_uri.is_empty() {
        let redirect = RedirectUrl::new(app.redirect_uri.clone())
            .map_err(|_| OAuthError::InvalidUrl("redirect_uri"))?;
        client = client.set_redirect_uri(redirect);
    }
    let mut request = client.exchange_code(AuthorizationCode::new(code.to_owned()));
    for (k, v) in effective_query_params(&app.query_params, RESERVED_TOKEN_PARAMS) {
        request = request.add_extra_param(k, v);
    }
    if let Some(v) = verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(v.expose_secret().to_owned()));
    }
    let transport = Transport::new(http, limits);
    let outcome = request.request_async(&transport).await;
    let raw = transport.finish(outcome)?;
    let mut sensitive = vec![code];
    if let Some(v) = verifier {
        sensitive.push(v.expose_secret());
    }
    parse_token_response(&raw, &with_secret(app, &sensitive))
}

/// Refresh grant, as Frappe's `get_active_token` sends it (console 403): `redirect_uri,
/// grant_type=refresh_token, client_id, client_secret, scope (the app's scopes), refresh_token`;
/// no Authorization header and no Query Parameters.
///
/// With a refresh token the `oauth2` crate sends it (`redirect_uri` added as an extra
/// parameter, since oauth2 leaves it out of refresh requests). `None` reproduces Frappe's quirk
/// of "refreshing" a Token Cache that has no tokens yet (console 411): the same body without
/// `refresh_token`, which oauth2 cannot send, so that request is built with reqwest directly.
pub async fn refresh(
    http: &HttpClient,
    limits: &ClientLimits,
    app: &AppEndpoints,
    refresh_token: Option<&SecretString>,
) -> Result<TokenSet, OAuthError> {
    let token_url = token_url(app)?;
    if app.client_id.is_empty() {
        return Err(OAuthError::NotConfigured("client_id"));
    }
    let Some(refresh_token) = refresh_token else {
        let scope = app.scopes.join(" ");
        let mut form: Vec<(&str, &str)> = Vec::with_capacity(5);
        if !app.redirect_uri.is_empty() {
            form.push(("redirect_uri", &app.redirect_uri));
        }
        form.push(("grant_type", "refresh_token"));
        form.push(("client_id", &app.client_id));
        if let Some(secret) = &app.client_secret {
            form.push(("client_secret", secret.expose_secret()));
        }
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        let request = http
            .inner
            .post(token_url.url().clone())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, FORM_CONTENT_TYPE)
            .body(encode_form(&form));
        let raw = send_built(http, limits, request).await?;
        return parse_token_response(&raw, &with_secret(app, &[]));
    };

    let client = oauth_client(app)?.set_token_uri(token_url);
    let oauth_refresh = RefreshToken::new(refresh_token.expose_secret().to_owned());
    let mut request = client
        .exchange_refresh_token(&oauth_refresh)
        .add_scopes(app.scopes.iter().map(|s| Scope::new(s.clone())));
    if !app.redirect_uri.is_empty() {
        request = request.add_extra_param("redirect_uri", app.redirect_uri.as_str());
    }
    let transport = Transport::new(http, limits);
    let outcome = request.request_async(&transport).await;
    let raw = transport.finish(outcome)?;
    parse_token_response(&raw, &with_secret(app, &[refresh_token.expose_secret()]))
}

/// Client-credentials grant, as Frappe's `get_backend_app_token` sends it (console 413):
/// `Authorization: Basic base64(client_id:client_secret)` and the body
/// `grant_type=client_credentials&scope=…`.
///
/// Built with reqwest directly: requests-oauthlib puts the *plain* `client_id:client_secret`
/// in the Basic header, while oauth2 form-urlencodes each part first (RFC 6749 §2.3.1), which
/// differs as soon as either contains a reserved character. A missing secret is sent as `""`,
/// as requests-oauthlib does.
pub async fn client_credentials(
    http: &HttpClient,
    limits: &ClientLimits,
    app: &AppEndpoints,
) -> Result<TokenSet, OAuthError> {
    let token_url = token_url(app)?;
    if app.client_id.is_empty() {
        return Err(OAuthError::NotConfigured("client_id"));
    }
    let secret = app
        .client_secret
        .as_ref()
        .map(|s| s.expose_secret())
        .unwrap_or("");
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", app.client_id, secret));
    let mut authorization = HeaderValue::from_str(&format!("Basic {credentials}"))
        .map_err(|_| OAuthError::Request("invalid Authorization header".to_owned()))?;
    authorization.set_sensitive(true);

    let scope = app.scopes.join(" ");
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    let request = http
        .inner
        .post(token_url.url().clone())
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, FORM_CONTENT_TYPE)
        .header(AUTHORIZATION, authorization)
        .body(encode_form(&form));
    let raw = send_built(http, limits, request).await?;
    parse_token_response(&raw, &with_secret(app, &[]))
}

/// Which token [`revoke`] revokes (its `token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `access_token`.
    AccessToken,
    /// `refresh_token`.
    RefreshToken,
}

impl TokenKind {
    /// The RFC 7009 `token_type_hint` value.
    pub fn hint(self) -> &'static str {
        match self {
            TokenKind::AccessToken => "access_token",
            TokenKind::RefreshToken => "refresh_token",
        }
    }
}

/// RFC 7009 revocation: `POST revocation_uri` with `token, token_type_hint, client_id,
/// client_secret` in the body. Any 2xx is success.
///
/// Built with reqwest directly: oauth2 5 refuses revocation URLs that are not https
/// (`ConfigurationError::InsecureUrl`), and development providers (like the recorded one on
/// `http://127.0.0.1:9100`) use http.
pub async fn revoke(
    http: &HttpClient,
    limits: &ClientLimits,
    app: &AppEndpoints,
    token: &SecretString,
    kind: TokenKind,
) -> Result<(), OAuthError> {
    let uri = required(app.revocation_uri.as_deref(), "revocation_uri")?;
    let url = parse_http_url(uri, "revocation_uri")?;
    if app.client_id.is_empty() {
        return Err(OAuthError::NotConfigured("client_id"));
    }
    let mut form: Vec<(&str, &str)> = vec![
        ("token", token.expose_secret()),
        ("token_type_hint", kind.hint()),
        ("client_id", &app.client_id),
    ];
    if let Some(secret) = &app.client_secret {
        form.push(("client_secret", secret.expose_secret()));
    }
    let endpoint = redacted_endpoint(&url);
    let request = http
        .inner
        .post(url)
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, FORM_CONTENT_TYPE)
        .body(encode_form(&form));
    let raw = send_built(http, limits, request).await?;
    if (200..300).contains(&raw.status) {
        return Ok(());
    }
    if let Some(err) = provider_error(&raw, &with_secret(app, &[token.expose_secret()])) {
        return Err(err);
    }
    Err(OAuthError::Status {
        endpoint,
        status: raw.status,
    })
}

/// The endpoints of an OpenID Provider Configuration document; a missing or non-string
/// member is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// `authorization_endpoint`.
    pub authorization_endpoint: Option<String>,
    /// `token_endpoint`.
    pub token_endpoint: Option<String>,
    /// `userinfo_endpoint`.
    pub userinfo_endpoint: Option<String>,
    /// `introspection_endpoint`.
    pub introspection_endpoint: Option<String>,
    /// `revocation_endpoint`.
    pub revocation_endpoint: Option<String>,
}

/// Fetches an OpenID configuration (`GET url`, Accept: application/json). Built with reqwest
/// directly: oauth2 has no discovery support.
pub async fn discover(
    http: &HttpClient,
    limits: &ClientLimits,
    url: &str,
) -> Result<Discovery, OAuthError> {
    let parsed = parse_http_url(url, "openid_configuration")?;
    let endpoint = redacted_endpoint(&parsed);
    let request = http.inner.get(parsed).header(ACCEPT, "application/json");
    let raw = send_built(http, limits, request).await?;
    if !(200..300).contains(&raw.status) {
        return Err(OAuthError::Status {
            endpoint,
            status: raw.status,
        });
    }
    let doc = match serde_json::from_slice::<Value>(&raw.body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(OAuthError::InvalidResponse {
                endpoint,
                reason: "the OpenID configuration is not a JSON object".to_owned(),
            })
        }
        Err(_) => {
            return Err(OAuthError::InvalidResponse {
                endpoint,
                reason: "the OpenID configuration is not valid JSON".to_owned(),
            })
        }
    };
    let field = |name: &str| doc.get(name).and_then(Value::as_str).map(str::to_owned);
    Ok(Discovery {
        authorization_endpoint: field("authorization_endpoint"),
        token_endpoint: field("token_endpoint"),
        userinfo_endpoint: field("userinfo_endpoint"),
        introspection_endpoint: field("introspection_endpoint"),
        revocation_endpoint: field("revocation_endpoint"),
    })
}

// ---------------------------------------------------------------------------------------------
// Transport

/// A provider response, read within the size cap.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    body: Vec<u8>,
}

/// The `oauth2` HTTP client: sends through the shared reqwest client with [`send`] (scheme
/// check, size cap, secret-free errors) and keeps the raw response, which this module then
/// interprets with Frappe's rules whatever oauth2 made of it.
///
/// It owns a clone of the client (a reference count) rather than borrowing it: a borrowed
/// lifetime on the `AsyncHttpClient` impl makes the flows' futures fail rustc's `Send` check.
struct Transport {
    http: HttpClient,
    limits: ClientLimits,
    last: Mutex<Option<RawResponse>>,
}

impl Transport {
    fn new(http: &HttpClient, limits: &ClientLimits) -> Self {
        Transport {
            http: http.clone(),
            limits: *limits,
            last: Mutex::new(None),
        }
    }

    /// The raw response of the request oauth2 just made, or the transport error it got.
    fn finish<T, TE>(
        self,
        outcome: Result<T, RequestTokenError<OAuthError, TE>>,
    ) -> Result<RawResponse, OAuthError>
    where
        TE: oauth2::ErrorResponse,
    {
        if let Err(RequestTokenError::Request(err)) = outcome {
            return Err(err);
        }
        let last = match self.last.into_inner() {
            Ok(last) => last,
            Err(poisoned) => poisoned.into_inner(),
        };
        // No response and no transport error: oauth2 failed to prepare the request.
        last.ok_or_else(|| OAuthError::Request("the token request could not be prepared".into()))
    }
}

impl<'c> AsyncHttpClient<'c> for Transport {
    type Error = OAuthError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, OAuthError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|_| OAuthError::Request("invalid token request".to_owned()))?;
            let raw = send(&self.http, &self.limits, request).await?;
            let response = oauth2::http::Response::builder()
                .status(raw.status)
                .body(raw.body.clone())
                .map_err(|_| OAuthError::Request("invalid response status".to_owned()))?;
            match self.last.lock() {
                Ok(mut last) => *last = Some(raw),
                Err(poisoned) => *poisoned.into_inner() = Some(raw),
            }
            Ok(response)
        })
    }
}

/// Builds a reqwest request and sends it with [`send`].
async fn send_built(
    http: &HttpClient,
    limits: &ClientLimits,
    builder: reqwest::RequestBuilder,
) -> Result<RawResponse, OAuthError> {
    let request = builder
        .build()
        .map_err(|e| OAuthError::Request(error_chain(&e.without_url())))?;
    send(http, limits, request).await
}

/// Sends one request (http/https only, redirects are not followed by the shared client) and
/// reads the body, failing as soon as it is known to exceed the cap.
async fn send(
    http: &HttpClient,
    limits: &ClientLimits,
    request: reqwest::Request,
) -> Result<RawResponse, OAuthError> {
    let endpoint = redacted_endpoint(request.url());
    if !matches!(request.url().scheme(), "http" | "https") {
        return Err(OAuthError::InvalidUrl("url"));
    }
    // A literal IP host is connected to without asking the resolver: check it here.
    if outbound::check_url(request.url(), &http.allow).is_err() {
        return Err(OAuthError::Refused { endpoint });
    }
    let mut response = http
        .inner
        .execute(request)
        .await
        .map_err(|e| transport_error(&endpoint, e))?;
    let status = response.status().as_u16();
    let limit = limits.max_response_bytes;
    let too_large = || OAuthError::TooLarge {
        endpoint: endpoint.clone(),
        limit,
    };
    if response
        .content_length()
        .is_some_and(|len| len > limit as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(&endpoint, e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(RawResponse { status, body })
}

/// A reqwest error as [`OAuthError::Refused`] (the resolver kept no address),
/// [`OAuthError::Timeout`] or [`OAuthError::Unreachable`], without its URL.
fn transport_error(endpoint: &str, err: reqwest::Error) -> OAuthError {
    if outbound::is_refused(&err) {
        OAuthError::Refused {
            endpoint: endpoint.to_owned(),
        }
    } else if err.is_timeout() {
        OAuthError::Timeout {
            endpoint: endpoint.to_owned(),
        }
    } else {
        OAuthError::Unreachable {
            endpoint: endpoint.to_owned(),
            reason: error_chain(&err.without_url()),
        }
    }
}

/// An error and its sources, joined with `: `.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let _ = write!(out, ": {s}");
        source = s.source();
    }
    out
}

/// `scheme://host[:port]/path`: no user info, query or fragment.
fn redacted_endpoint(url: &Url) -> String {
    let mut out = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        let _ = write!(out, ":{port}");
    }
    out.push_str(url.path());
    out
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn required<'a>(value: Option<&'a str>, field: &'static str) -> Result<&'a str, OAuthError> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(OAuthError::NotConfigured(field)),
    }
}

fn parse_http_url(value: &str, field: &'static str) -> Result<Url, OAuthError> {
    match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Ok(url),
        _ => Err(OAuthError::InvalidUrl(field)),
    }
}

fn token_url(app: &AppEndpoints) -> Result<TokenUrl, OAuthError> {
    let uri = required(app.token_uri.as_deref(), "token_uri")?;
    parse_http_url(uri, "token_uri")?;
    TokenUrl::new(uri.to_owned()).map_err(|_| OAuthError::InvalidUrl("token_uri"))
}

/// The oauth2 client for an app: client_secret_post (credentials in the body).
fn oauth_client(app: &AppEndpoints) -> Result<BasicClient, OAuthError> {
    if app.client_id.is_empty() {
        return Err(OAuthError::NotConfigured("client_id"));
    }
    let mut client =
        BasicClient::new(ClientId::new(app.client_id.clone())).set_auth_type(AuthType::RequestBody);
    if let Some(secret) = &app.client_secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
    }
    Ok(client)
}

/// The values to mask in provider text: the given ones plus the client secret.
fn with_secret<'a>(app: &'a AppEndpoints, values: &[&'a str]) -> Vec<&'a str> {
    let mut out = values.to_vec();
    if let Some(secret) = &app.client_secret {
        out.push(secret.expose_secret());
    }
    out
}

/// The Query Parameters as Frappe passes them (a dict turned into Python keyword arguments):
/// a repeated key keeps its first position and its last value, empty values are dropped
/// (oauthlib skips falsy kwargs), and `reserved` keys are dropped.
fn effective_query_params<'a>(
    rows: &'a [(String, String)],
    reserved: &[&str],
) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(rows.len());
    for (k, v) in rows {
        match out.iter_mut().find(|(existing, _)| *existing == k.as_str()) {
            Some(slot) => slot.1 = v.as_str(),
            None => out.push((k.as_str(), v.as_str())),
        }
    }
    out.retain(|(k, v)| !v.is_empty() && !reserved.contains(k));
    out
}

/// An `application/x-www-form-urlencoded` body (the same encoder oauth2 uses).
fn encode_form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Python's `urllib.parse.quote_plus` (safe = `A-Za-z0-9_.-~`, space as `+`, UTF-8, upper-case hex).
fn quote_plus(value: &str, out: &mut String) {
    for &b in value.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
}

/// Python `str()` of a JSON value, as Frappe's `cstr` / oauthlib's formatting see it.
fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "None".to_owned(),
        other => other.to_string(),
    }
}

/// Provider text made safe for an error: known secrets masked, length capped.
fn clean_provider_text(text: &str, sensitive: &[&str]) -> String {
    let mut text = text.to_owned();
    for s in sensitive.iter().filter(|s| s.len() >= 3) {
        text = text.replace(s, "****");
    }
    if text.chars().count() > MAX_PROVIDER_TEXT {
        text = text.chars().take(MAX_PROVIDER_TEXT).collect::<String>() + "…";
    }
    text
}

/// The body as oauthlib's `parse_token_response` reads it: a JSON object, else (a body that is
/// not JSON) `dict(parse_qsl(body))` for old form-encoded providers; JSON that is not an object
/// has no parameters.
fn token_params(body: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => Map::new(),
        Err(_) => url::form_urlencoded::parse(body)
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect(),
    }
}

/// An OAuth error body (`error` present), as oauthlib's `raise_from_error` reports it.
fn provider_error(raw: &RawResponse, sensitive: &[&str]) -> Option<OAuthError> {
    let params = token_params(&raw.body);
    let error = params.get("error")?;
    Some(OAuthError::Provider {
        error: clean_provider_text(&py_str(error), sensitive),
        description: params
            .get("error_description")
            .filter(|d| !d.is_null())
            .map(|d| clean_provider_text(&py_str(d), sensitive)),
        status: raw.status,
    })
}

/// A token response, checked as oauthlib's `validate_token_parameters` and Frappe's
/// `TokenCache.update_data` do: an `error` member → [`OAuthError::Provider`] (whatever the
/// status); no `access_token` → [`OAuthError::MissingToken`]; a token type other than
/// bearer/mac → [`OAuthError::InvalidTokenType`]. Unlike oauthlib, a non-2xx answer is never
/// accepted as a token, it is [`OAuthError::MissingToken`] with its status.
fn parse_token_response(raw: &RawResponse, sensitive: &[&str]) -> Result<TokenSet, OAuthError> {
    if let Some(err) = provider_error(raw, sensitive) {
        return Err(err);
    }
    let missing = OAuthError::MissingToken { status: raw.status };
    if !(200..300).contains(&raw.status) {
        return Err(missing);
    }
    let params = token_params(&raw.body);
    let access_token = match params.get("access_token") {
        Some(Value::String(s)) => s.clone(),
        Some(v @ Value::Number(_)) => v.to_string(),
        _ => return Err(missing),
    };
    let token_type = match params.get("token_type") {
        Some(Value::String(s)) => s.to_lowercase(),
        _ => String::new(),
    };
    let token_type = match token_type.as_str() {
        "bearer" => "Bearer",
        "mac" => "MAC",
        _ => return Err(OAuthError::InvalidTokenType),
    };
    let refresh_token = match params.get("refresh_token") {
        Some(Value::String(s)) => Some(SecretString::from(s.clone())),
        _ => None,
    };
    let expires_in = match params.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let scope = match params.get("scope") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(items)) => Some(items.iter().map(py_str).collect::<Vec<_>>().join(" ")),
        _ => None,
    };
    Ok(TokenSet {
        access_token: SecretString::from(access_token),
        refresh_token,
        token_type: token_type.to_owned(),
        expires_in,
        scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Exchange 301's recorded authorization URL (state `KNoRQpCPeN44h1J1hhJYKbv0XH1zYn`).
    const RECORDED_URL: &str = "http://127.0.0.1:9100/authorize?response_type=code&client_id=client-abc&redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2Fapi%2Fmethod%2Ffrappe.integrations.doctype.connected_app.connected_app.callback%2F90c7bdi80h&scope=openid+email+profile&state=KNoRQpCPeN44h1J1hhJYKbv0XH1zYn&access_type=offline&prompt=consent";
    const RECORDED_STATE: &str = "KNoRQpCPeN44h1J1hhJYKbv0XH1zYn";
    const REDIRECT: &str = "http://127.0.0.1:8000/api/method/frappe.integrations.doctype.connected_app.connected_app.callback/90c7bdi80h";
    const TOKEN_OK: &str = r#"{"access_token":"at-1","refresh_token":"rt-1","token_type":"bearer","expires_in":3600,"scope":"openid email"}"#;

    /// One canned answer of the test provider.
    #[derive(Clone)]
    enum Canned {
        /// Raw HTTP response bytes, then close.
        Raw(Vec<u8>),
        /// Read the request and never answer.
        Hang,
    }

    /// A request the test provider received.
    #[derive(Debug, Clone)]
    struct Captured {
        head: String,
        body: String,
    }

    impl Captured {
        fn request_line(&self) -> &str {
            self.head.lines().next().unwrap_or("")
        }
        fn header(&self, name: &str) -> Option<String> {
            self.head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        }
        fn form(&self) -> Vec<(String, String)> {
            url::form_urlencoded::parse(self.body.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        }
        fn sorted_form(&self) -> Vec<(String, String)> {
            let mut f = self.form();
            f.sort();
            f
        }
    }

    fn response(status: u16, content_type: &str, body: &str) -> Canned {
        Canned::Raw(
            format!(
                "HTTP/1.1 {status} Canned\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }

    fn json(status: u16, body: &str) -> Canned {
        response(status, "application/json", body)
    }

    /// A provider on 127.0.0.1 answering connection n with `answers[n]` (the last one repeats).
    async fn provider(answers: Vec<Canned>) -> (String, Arc<Mutex<Vec<Captured>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        tokio::spawn(async move {
            let mut n = 0usize;
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let answer = answers[n.min(answers.len() - 1)].clone();
                n += 1;
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut tmp = [0u8; 4096];
                    let head_end = loop {
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p;
                        }
                        let r = sock.read(&mut tmp).await.unwrap();
                        if r == 0 {
                            return;
                        }
                        buf.extend_from_slice(&tmp[..r]);
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + 4 + len {
                        let r = sock.read(&mut tmp).await.unwrap();
                        if r == 0 {
                            break;
                        }
                        buf.extend_from_slice(&tmp[..r]);
                    }
                    let body = String::from_utf8_lossy(&buf[head_end + 4..]).into_owned();
                    seen.lock().unwrap().push(Captured { head, body });
                    match answer {
                        Canned::Raw(bytes) => {
                            let _ = sock.write_all(&bytes).await;
                            let _ = sock.shutdown().await;
                        }
                        Canned::Hang => tokio::time::sleep(Duration::from_secs(60)).await,
                    }
                });
            }
        });
        (base, seen)
    }

    fn app(base: &str) -> AppEndpoints {
        AppEndpoints {
            client_id: "client-abc".into(),
            client_secret: Some(SecretString::from("s3cr3t-value")),
            authorization_uri: Some(format!("{base}/authorize")),
            token_uri: Some(format!("{base}/token")),
            revocation_uri: Some(format!("{base}/revoke")),
            redirect_uri: REDIRECT.into(),
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            query_params: vec![
                ("access_type".into(), "offline".into()),
                ("prompt".into(), "consent".into()),
            ],
        }
    }

    /// The shared client, allowed to reach the test providers on loopback.
    fn http() -> HttpClient {
        build_http_client(Duration::from_secs(2), Duration::from_secs(5), &loopback()).unwrap()
    }

    fn loopback() -> OutboundAllow {
        "127.0.0.0/8,::1".parse().unwrap()
    }

    const LIMITS: ClientLimits = ClientLimits {
        max_response_bytes: 4096,
    };

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        v.sort();
        v
    }

    /// Exchange 323's recorded form (field set; the order is cosmetic).
    fn recorded_code_form() -> Vec<(String, String)> {
        pairs(&[
            ("grant_type", "authorization_code"),
            ("client_id", "client-abc"),
            ("client_secret", "s3cr3t-value"),
            ("code", "abc"),
            ("redirect_uri", REDIRECT),
            ("access_type", "offline"),
            ("prompt", "consent"),
        ])
    }

    fn assert_token_request_headers(c: &Captured) {
        assert_eq!(c.request_line(), "POST /token HTTP/1.1");
        assert_eq!(c.header("authorization"), None);
        assert_eq!(c.header("accept").as_deref(), Some("application/json"));
        assert!(c
            .header("content-type")
            .unwrap()
            .starts_with("application/x-www-form-urlencoded"));
    }

    #[test]
    fn authorization_url_matches_exchange_301() {
        let a = app("http://127.0.0.1:9100");
        assert_eq!(
            authorization_url(&a, RECORDED_STATE, None).unwrap(),
            RECORDED_URL
        );
    }

    #[test]
    fn authorization_url_with_pkce() {
        let a = app("http://127.0.0.1:9100");
        let expected = RECORDED_URL.replace(
            "&access_type=",
            "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&access_type=",
        );
        let got = authorization_url(
            &a,
            RECORDED_STATE,
            Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
        )
        .unwrap();
        assert_eq!(got, expected);
    }

    #[test]
    fn authorization_url_python_quirks() {
        let mut a = app("http://127.0.0.1:9100");
        a.authorization_uri = Some("https://idp.example/auth?tenant=a%20b&x=1#frag".into());
        a.scopes = vec!["a:b".into(), "c/d*~".into()];
        a.query_params = vec![
            ("access_type".into(), "offline".into()),
            ("empty".into(), String::new()),
            ("state".into(), "clash".into()),
            ("access_type".into(), "online".into()),
            ("é".into(), "ü&=".into()),
        ];
        let got = authorization_url(&a, "s", None).unwrap();
        assert_eq!(
            got,
            format!(
                "https://idp.example/auth?tenant=a+b&x=1&response_type=code&client_id=client-abc&redirect_uri={}&scope=a%3Ab+c%2Fd%2A~&state=s&access_type=online&%C3%A9=%C3%BC%26%3D#frag",
                "http%3A%2F%2F127.0.0.1%3A8000%2Fapi%2Fmethod%2Ffrappe.integrations.doctype.connected_app.connected_app.callback%2F90c7bdi80h"
            )
        );
    }

    #[test]
    fn authorization_url_not_configured() {
        let mut a = app("http://127.0.0.1:9100");
        a.authorization_uri = None;
        assert!(matches!(
            authorization_url(&a, "s", None),
            Err(OAuthError::NotConfigured("authorization_uri"))
        ));
        let mut a = app("http://127.0.0.1:9100");
        a.client_id.clear();
        assert!(matches!(
            authorization_url(&a, "s", None),
            Err(OAuthError::NotConfigured("client_id"))
        ));
        let mut a = app("http://127.0.0.1:9100");
        a.authorization_uri = Some("ftp://x/y".into());
        assert!(matches!(
            authorization_url(&a, "s", None),
            Err(OAuthError::InvalidUrl("authorization_uri"))
        ));
    }

    #[test]
    fn pkce_and_state() {
        use sha2::Digest as _;
        let p = Pkce::generate();
        assert_eq!(p.verifier.expose_secret().len(), 43);
        let digest = sha2::Sha256::digest(p.verifier.expose_secret().as_bytes());
        assert_eq!(
            p.challenge,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
        );
        let s = generate_state();
        assert_eq!(s.len(), 30);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(s, generate_state());
    }

    #[tokio::test]
    async fn code_exchange_body_matches_frappe() {
        let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
        let t = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
            .await
            .unwrap();
        assert_eq!(t.access_token.expose_secret(), "at-1");
        assert_eq!(t.refresh_token.unwrap().expose_secret(), "rt-1");
        assert_eq!(t.token_type, "Bearer");
        assert_eq!(t.expires_in, Some(3600));
        assert_eq!(t.scope.as_deref(), Some("openid email"));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_token_request_headers(&seen[0]);
        assert_eq!(seen[0].sorted_form(), recorded_code_form());
    }

    #[tokio::test]
    async fn code_exchange_with_pkce_adds_verifier_only() {
        let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
        let verifier = SecretString::from("v".repeat(43));
        exchange_code(&http(), &LIMITS, &app(&base), "abc", Some(&verifier))
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        assert_token_request_headers(&seen[0]);
        let mut expected = recorded_code_form();
        expected.push(("code_verifier".into(), "v".repeat(43)));
        expected.sort();
        assert_eq!(seen[0].sorted_form(), expected);
    }

    #[tokio::test]
    async fn code_exchange_skips_empty_and_clashing_query_params() {
        let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
        let mut a = app(&base);
        a.query_params.push(("code".into(), "evil".into()));
        a.query_params.push(("empty".into(), String::new()));
        exchange_code(&http(), &LIMITS, &a, "abc", None)
            .await
            .unwrap();
        assert_eq!(seen.lock().unwrap()[0].sorted_form(), recorded_code_form());
    }

    #[tokio::test]
    async fn refresh_body_matches_frappe() {
        let (base, seen) = provider(vec![json(
            200,
            r#"{"access_token":"at-2","token_type":"Bearer","expires_in":"3600"}"#,
        )])
        .await;
        let rt = SecretString::from("rt-1");
        let t = refresh(&http(), &LIMITS, &app(&base), Some(&rt))
            .await
            .unwrap();
        assert_eq!(t.access_token.expose_secret(), "at-2");
        assert!(t.refresh_token.is_none());
        assert_eq!(t.expires_in, Some(3600));
        let seen = seen.lock().unwrap();
        assert_token_request_headers(&seen[0]);
        // console 403
        assert_eq!(
            seen[0].sorted_form(),
            pairs(&[
                ("redirect_uri", REDIRECT),
                ("grant_type", "refresh_token"),
                ("client_id", "client-abc"),
                ("client_secret", "s3cr3t-value"),
                ("scope", "openid email profile"),
                ("refresh_token", "rt-1"),
            ])
        );
    }

    #[tokio::test]
    async fn refresh_without_refresh_token_matches_console_411() {
        let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
        refresh(&http(), &LIMITS, &app(&base), None).await.unwrap();
        let seen = seen.lock().unwrap();
        assert_token_request_headers(&seen[0]);
        assert_eq!(
            seen[0].body,
            format!(
                "redirect_uri={}&grant_type=refresh_token&client_id=client-abc&client_secret=s3cr3t-value&scope=openid+email+profile",
                "http%3A%2F%2F127.0.0.1%3A8000%2Fapi%2Fmethod%2Ffrappe.integrations.doctype.connected_app.connected_app.callback%2F90c7bdi80h"
            )
        );
    }

    #[tokio::test]
    async fn client_credentials_matches_console_413() {
        let (base, seen) = provider(vec![json(
            200,
            r#"{"access_token":"bt","token_type":"MAC","expires_in":3600}"#,
        )])
        .await;
        let t = client_credentials(&http(), &LIMITS, &app(&base))
            .await
            .unwrap();
        assert_eq!(t.token_type, "MAC");
        let seen = seen.lock().unwrap();
        let c = &seen[0];
        assert_eq!(c.request_line(), "POST /token HTTP/1.1");
        assert_eq!(
            c.header("authorization").as_deref(),
            Some("Basic Y2xpZW50LWFiYzpzM2NyM3QtdmFsdWU=")
        );
        assert_eq!(c.header("accept").as_deref(), Some("application/json"));
        assert_eq!(
            c.body,
            "grant_type=client_credentials&scope=openid+email+profile"
        );
    }

    #[tokio::test]
    async fn client_credentials_basic_is_not_urlencoded() {
        let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
        let mut a = app(&base);
        a.client_id = "id:with space".into();
        a.client_secret = Some(SecretString::from("p@ss/+"));
        client_credentials(&http(), &LIMITS, &a).await.unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode("id:with space:p@ss/+");
        assert_eq!(
            seen.lock().unwrap()[0].header("authorization"),
            Some(format!("Basic {expected}"))
        );
    }

    #[tokio::test]
    async fn revoke_body() {
        let (base, seen) = provider(vec![response(200, "text/plain", "")]).await;
        let tok = SecretString::from("rt-9");
        revoke(&http(), &LIMITS, &app(&base), &tok, TokenKind::RefreshToken)
            .await
            .unwrap();
        let seen = seen.lock().unwrap();
        let c = &seen[0];
        assert_eq!(c.request_line(), "POST /revoke HTTP/1.1");
        assert_eq!(c.header("authorization"), None);
        assert_eq!(
            c.sorted_form(),
            pairs(&[
                ("token", "rt-9"),
                ("token_type_hint", "refresh_token"),
                ("client_id", "client-abc"),
                ("client_secret", "s3cr3t-value"),
            ])
        );
    }

    #[tokio::test]
    async fn revoke_errors() {
        let (base, _) = provider(vec![
            json(400, r#"{"error":"unsupported_token_type"}"#),
            response(503, "text/html", "<p>down</p>"),
        ])
        .await;
        let tok = SecretString::from("at-9");
        let a = app(&base);
        let e = revoke(&http(), &LIMITS, &a, &tok, TokenKind::AccessToken)
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "(unsupported_token_type) ");
        let e = revoke(&http(), &LIMITS, &a, &tok, TokenKind::AccessToken)
            .await
            .unwrap_err();
        assert!(matches!(e, OAuthError::Status { status: 503, .. }));
        assert!(e.is_transient());
        let mut a = app(&base);
        a.revocation_uri = None;
        assert!(matches!(
            revoke(&http(), &LIMITS, &a, &tok, TokenKind::AccessToken).await,
            Err(OAuthError::NotConfigured("revocation_uri"))
        ));
    }

    #[tokio::test]
    async fn invalid_grant_400() {
        let (base, _) = provider(vec![json(
            400,
            r#"{"error":"invalid_grant","error_description":"bad code"}"#,
        )])
        .await;
        let e = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "(invalid_grant) bad code");
        assert!(e.is_invalid_grant());
        assert!(!e.is_transient());
        assert!(matches!(e, OAuthError::Provider { status: 400, .. }));
    }

    #[tokio::test]
    async fn provider_text_never_echoes_secrets() {
        let (base, _) = provider(vec![json(
            400,
            r#"{"error":"invalid_grant","error_description":"code the-code for s3cr3t-value is bad"}"#,
        )])
        .await;
        let e = exchange_code(&http(), &LIMITS, &app(&base), "the-code", None)
            .await
            .unwrap_err();
        let shown = format!("{e} {e:?}");
        assert!(
            !shown.contains("the-code") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn non_json_200_is_missing_token() {
        let (base, _) = provider(vec![response(200, "text/html", "<html>hello</html>")]).await;
        let e = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "(missing_token) Missing access token parameter."
        );
        assert!(matches!(e, OAuthError::MissingToken { status: 200 }));
        assert!(!e.is_transient());
    }

    #[tokio::test]
    async fn form_encoded_token_is_accepted_like_oauthlib() {
        let (base, _) = provider(vec![response(
            200,
            "application/x-www-form-urlencoded",
            "access_token=at-f&token_type=bearer&expires_in=60",
        )])
        .await;
        let t = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
            .await
            .unwrap();
        assert_eq!(t.access_token.expose_secret(), "at-f");
        assert_eq!(t.expires_in, Some(60));
    }

    #[tokio::test]
    async fn weird_token_type() {
        let (base, _) = provider(vec![
            json(200, r#"{"access_token":"a","token_type":"weird"}"#),
            json(200, r#"{"access_token":"a"}"#),
        ])
        .await;
        for _ in 0..2 {
            let e = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
                .await
                .unwrap_err();
            assert!(matches!(e, OAuthError::InvalidTokenType));
            assert_eq!(e.to_string(), "Received an invalid token type.");
        }
    }

    #[tokio::test]
    async fn missing_access_token() {
        let (base, _) =
            provider(vec![json(200, r#"{"token_type":"bearer","expires_in":1}"#)]).await;
        let e = refresh(
            &http(),
            &LIMITS,
            &app(&base),
            Some(&SecretString::from("rt")),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, OAuthError::MissingToken { status: 200 }));
    }

    #[tokio::test]
    async fn server_error_500_is_transient() {
        let (base, _) = provider(vec![
            response(500, "text/html", "<h1>Internal Server Error</h1>"),
            json(503, r#"{"error":"temporarily_unavailable"}"#),
            json(500, TOKEN_OK),
        ])
        .await;
        let e = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
            .await
            .unwrap_err();
        assert!(matches!(e, OAuthError::MissingToken { status: 500 }));
        assert!(e.is_transient());
        let e = client_credentials(&http(), &LIMITS, &app(&base))
            .await
            .unwrap_err();
        assert!(matches!(e, OAuthError::Provider { status: 503, .. }));
        assert!(e.is_transient() && !e.is_invalid_grant());
        // A token in a 5xx answer is not accepted.
        let e = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
            .await
            .unwrap_err();
        assert!(matches!(e, OAuthError::MissingToken { status: 500 }));
    }

    #[tokio::test]
    async fn response_over_the_cap() {
        let big = format!(
            r#"{{"access_token":"{}","token_type":"bearer"}}"#,
            "x".repeat(5000)
        );
        let mut chunked_head =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                .to_vec();
        chunked_head.extend_from_slice(big.as_bytes());
        let (base, _) = provider(vec![json(200, &big), Canned::Raw(chunked_head)]).await;
        for _ in 0..2 {
            let e = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
                .await
                .unwrap_err();
            assert!(
                matches!(e, OAuthError::TooLarge { limit: 4096, .. }),
                "{e:?}"
            );
        }
    }

    #[tokio::test]
    async fn provider_that_never_answers_times_out() {
        let (base, _) = provider(vec![Canned::Hang]).await;
        let http = build_http_client(
            Duration::from_millis(500),
            Duration::from_millis(500),
            &loopback(),
        )
        .unwrap();
        let mut a = app(&base);
        a.token_uri = Some(format!("{base}/token?api_key=hidden"));
        let started = std::time::Instant::now();
        let e = exchange_code(&http, &LIMITS, &a, "the-code", None)
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(matches!(e, OAuthError::Timeout { .. }), "{e:?}");
        assert!(e.is_transient());
        let shown = format!("{e} {e:?}");
        assert!(shown.contains("/token"));
        for secret in ["hidden", "the-code", "s3cr3t"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[tokio::test]
    async fn unreachable_provider() {
        // Bind then drop, so nothing listens on the port.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let base = format!("http://127.0.0.1:{port}");
        let e = client_credentials(&http(), &LIMITS, &app(&base))
            .await
            .unwrap_err();
        assert!(matches!(e, OAuthError::Unreachable { .. }), "{e:?}");
        assert!(e.is_transient());
        assert!(!format!("{e} {e:?}").contains("s3cr3t"));
    }

    /// Every flow refuses non-public destinations before connecting: loopback (with a real
    /// listener that counts connections), a name resolving to it, and literal addresses that
    /// are checked before any socket exists (`Refused` is only made before `execute` or by the
    /// resolver, never after a connection attempt).
    #[tokio::test]
    async fn refused_destinations_are_never_contacted() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            while let Ok((_socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        let none = build_http_client(
            Duration::from_secs(5),
            Duration::from_secs(10),
            &OutboundAllow::default(),
        )
        .unwrap();
        let s = SecretString::from("tok");
        for base in [
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
            format!("http://[::ffff:127.0.0.1]:{port}"),
            format!("http://0.0.0.0:{port}"),
            "http://169.254.169.254".to_owned(),
            "http://10.0.0.1".to_owned(),
            "https://[fd00::1]".to_owned(),
            "http://[fe80::1]".to_owned(),
        ] {
            let a = app(&base);
            let started = std::time::Instant::now();
            let errors = [
                exchange_code(&none, &LIMITS, &a, "c", None).await.err(),
                refresh(&none, &LIMITS, &a, Some(&s)).await.err(),
                refresh(&none, &LIMITS, &a, None).await.err(),
                client_credentials(&none, &LIMITS, &a).await.err(),
                revoke(&none, &LIMITS, &a, &s, TokenKind::RefreshToken)
                    .await
                    .err(),
                discover(
                    &none,
                    &LIMITS,
                    &format!("{base}/.well-known/openid-configuration"),
                )
                .await
                .err(),
            ];
            for e in errors {
                assert!(
                    matches!(e, Some(OAuthError::Refused { .. })),
                    "{base}: {e:?}"
                );
                assert!(!e.is_some_and(|e| e.is_transient()));
            }
            assert!(started.elapsed() < Duration::from_secs(2), "{base}");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
        // The same listener is reached once loopback is allowed.
        let e = client_credentials(&http(), &LIMITS, &app(&format!("http://localhost:{port}")))
            .await
            .unwrap_err();
        assert!(!matches!(e, OAuthError::Refused { .. }), "{e:?}");
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn redirect_is_not_followed() {
        let (base, seen) = provider(vec![Canned::Raw(
            b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
        )])
        .await;
        let e = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
            .await
            .unwrap_err();
        assert!(
            matches!(e, OAuthError::MissingToken { status: 302 }),
            "{e:?}"
        );
        let e = discover(
            &http(),
            &LIMITS,
            &format!("{base}/.well-known/openid-configuration"),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, OAuthError::Status { status: 302, .. }), "{e:?}");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen
            .iter()
            .all(|c| !c.request_line().contains("/elsewhere")));
    }

    #[tokio::test]
    async fn not_configured_fails_before_any_request() {
        let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
        let mut a = app(&base);
        a.token_uri = Some("  ".into());
        assert!(matches!(
            exchange_code(&http(), &LIMITS, &a, "abc", None).await,
            Err(OAuthError::NotConfigured("token_uri"))
        ));
        let mut a = app(&base);
        a.client_id.clear();
        assert!(matches!(
            refresh(&http(), &LIMITS, &a, None).await,
            Err(OAuthError::NotConfigured("client_id"))
        ));
        assert!(matches!(
            refresh(&http(), &LIMITS, &a, Some(&SecretString::from("x"))).await,
            Err(OAuthError::NotConfigured("client_id"))
        ));
        assert!(matches!(
            exchange_code(&http(), &LIMITS, &a, "abc", None).await,
            Err(OAuthError::NotConfigured("client_id"))
        ));
        assert!(matches!(
            client_credentials(&http(), &LIMITS, &a).await,
            Err(OAuthError::NotConfigured("client_id"))
        ));
        let mut a = app(&base);
        a.token_uri = Some("file:///etc/passwd".into());
        assert!(matches!(
            exchange_code(&http(), &LIMITS, &a, "abc", None).await,
            Err(OAuthError::InvalidUrl("token_uri"))
        ));
        assert!(matches!(
            discover(&http(), &LIMITS, "file:///etc/passwd").await,
            Err(OAuthError::InvalidUrl(_))
        ));
        assert!(seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn discovery() {
        let (base, seen) = provider(vec![
            json(
                200,
                r#"{"issuer":"x","authorization_endpoint":"https://p/auth","token_endpoint":"https://p/token","userinfo_endpoint":"https://p/me","revocation_endpoint":"https://p/revoke","introspection_endpoint":7}"#,
            ),
            response(200, "text/html", "nope"),
        ])
        .await;
        let url = format!("{base}/.well-known/openid-configuration");
        let d = discover(&http(), &LIMITS, &url).await.unwrap();
        assert_eq!(
            d,
            Discovery {
                authorization_endpoint: Some("https://p/auth".into()),
                token_endpoint: Some("https://p/token".into()),
                userinfo_endpoint: Some("https://p/me".into()),
                introspection_endpoint: None,
                revocation_endpoint: Some("https://p/revoke".into()),
            }
        );
        assert!(matches!(
            discover(&http(), &LIMITS, &url).await,
            Err(OAuthError::InvalidResponse { .. })
        ));
        assert_eq!(
            seen.lock().unwrap()[0].request_line(),
            "GET /.well-known/openid-configuration HTTP/1.1"
        );
    }

    #[test]
    fn flows_are_send() {
        fn assert_send<T: Send>(_: &T) {}
        let http = http();
        let a = app("http://127.0.0.1:1");
        let s = SecretString::from("x");
        assert_send(&exchange_code(&http, &LIMITS, &a, "c", Some(&s)));
        assert_send(&refresh(&http, &LIMITS, &a, Some(&s)));
        assert_send(&client_credentials(&http, &LIMITS, &a));
        assert_send(&revoke(&http, &LIMITS, &a, &s, TokenKind::AccessToken));
        assert_send(&discover(&http, &LIMITS, "http://127.0.0.1:1/"));
    }

    #[test]
    fn token_set_debug_hides_tokens() {
        let raw = RawResponse {
            status: 200,
            body: TOKEN_OK.as_bytes().to_vec(),
        };
        let t = parse_token_response(&raw, &[]).unwrap();
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("at-1") && !shown.contains("rt-1"),
            "{shown}"
        );
        let raw = RawResponse {
            status: 200,
            body:
                br#"{"access_token":"a","token_type":"BEARER","scope":["a","b"],"expires_in":12.7}"#
                    .to_vec(),
        };
        let t = parse_token_response(&raw, &[]).unwrap();
        assert_eq!(t.token_type, "Bearer");
        assert_eq!(t.scope.as_deref(), Some("a b"));
        assert_eq!(t.expires_in, Some(12));
    }
}
