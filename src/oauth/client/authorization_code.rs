//! The authorization-code grant: PKCE, `state`, Frappe's authorization URL and the code exchange.

use std::borrow::Cow;
use std::fmt::Write as _;

use oauth2::{AuthorizationCode, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl};
use rand::Rng as _;
use secrecy::{ExposeSecret, SecretString};

use super::auth::{self, oauth_client};
use super::http::Transport;
use super::token_response::parse_token_response;
use super::{
    effective_query_params, parse_http_url, required, token_url, with_secret, AppEndpoints,
    ClientLimits, HttpClient, OAuthError, TokenSet,
};

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

/// Authorization-code exchange, sent by the `oauth2` crate. Unset client authentication (and
/// `client_secret_post`) sends `grant_type=authorization_code, code, [code_verifier],
/// client_id, client_secret, redirect_uri`, then the Query Parameters rows (Frappe appends
/// them to the token request too), no Authorization header, `Accept: application/json`: the
/// same field set as Frappe (exchange 323) plus `code_verifier` when PKCE is used; only the
/// order differs. `client_secret_basic` moves the credentials into the header, `none` sends
/// the `client_id` alone (see [`auth`]).
pub async fn exchange_code(
    http: &HttpClient,
    limits: &ClientLimits,
    app: &AppEndpoints,
    code: &str,
    verifier: Option<&SecretString>,
) -> Result<TokenSet, OAuthError> {
    let token_url = token_url(app)?;
    if app.client_id.is_empty() {
        return Err(OAuthError::NotConfigured("client_id"));
    }
    let method = auth::resolve(http, limits, app).await?;
    let mut client = oauth_client(app, method)?.set_token_uri(token_url);
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
