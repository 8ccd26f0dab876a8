//! How the client authenticates at the token endpoint (RFC 6749 §2.3.1), per Connected App:
//! `client_secret_post` (form fields), `client_secret_basic` (HTTP Basic of the form-urlencoded
//! id and secret), `none` (a public client: `client_id` only, with PKCE), `auto` (chosen from
//! the discovery document's `token_endpoint_auth_methods_supported`), or unset: as Frappe does
//! it (form fields for the code exchange, the refresh and revocation; HTTP Basic of the *plain*
//! id and secret for client credentials, as requests-oauthlib sends it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret};
use reqwest::header::HeaderValue;
use secrecy::ExposeSecret;

use super::{discover, required, AppEndpoints, ClientLimits, HttpClient, OAuthError};

/// A Connected App's client authentication setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// Unset: Frappe's wire behaviour for each grant.
    #[default]
    Frappe,
    /// `client_secret_post`: `client_id` and `client_secret` as form fields.
    Post,
    /// `client_secret_basic`: `Authorization: Basic` of the form-urlencoded id and secret.
    Basic,
    /// `none`: a public client sends only its `client_id` (and proves the code with PKCE).
    None,
    /// `auto`: one of the above, as the provider's discovery document lists them.
    Auto,
}

impl ClientAuth {
    /// Every value the setting takes, as stored and as the API spells it.
    pub const NAMES: [&'static str; 4] =
        ["client_secret_post", "client_secret_basic", "none", "auto"];

    /// The setting from its name (`None`: not a known name).
    pub fn from_name(name: &str) -> Option<ClientAuth> {
        Some(match name {
            "client_secret_post" => ClientAuth::Post,
            "client_secret_basic" => ClientAuth::Basic,
            "none" => ClientAuth::None,
            "auto" => ClientAuth::Auto,
            _ => return None,
        })
    }

    /// The stored name (`None` when unset).
    pub fn name(self) -> Option<&'static str> {
        match self {
            ClientAuth::Frappe => None,
            ClientAuth::Post => Some("client_secret_post"),
            ClientAuth::Basic => Some("client_secret_basic"),
            ClientAuth::None => Some("none"),
            ClientAuth::Auto => Some("auto"),
        }
    }

    /// What `auto` picks from a provider's `token_endpoint_auth_methods_supported`:
    /// `client_secret_basic` when listed (RFC 6749 says every server supports it), else
    /// `client_secret_post`, else `none`; a list naming none of these (or no list, whose
    /// default is `client_secret_basic` in RFC 8414 and OpenID Discovery) picks Basic.
    pub fn choose(supported: &[String]) -> ClientAuth {
        let listed = |m: &str| supported.iter().any(|s| s == m);
        if listed("client_secret_basic") {
            ClientAuth::Basic
        } else if listed("client_secret_post") {
            ClientAuth::Post
        } else if listed("none") {
            ClientAuth::None
        } else {
            ClientAuth::Basic
        }
    }
}

/// How long what a discovery document listed is used before it is asked again.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// The `token_endpoint_auth_methods_supported` of each discovery URL asked (for `auto`).
#[derive(Debug, Default)]
pub(super) struct MethodCache {
    entries: Mutex<HashMap<String, (Instant, Vec<String>)>>,
}

impl MethodCache {
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, (Instant, Vec<String>)>) -> R) -> R {
        let mut m = match self.entries.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut m)
    }
}

/// The method a request uses (never `Auto`). `auto` without a client secret is `none`; else
/// the app's discovery document decides (asked once an hour; when asking fails, the last
/// answer is used, and without one the error is the request's).
pub(super) async fn resolve(
    http: &HttpClient,
    limits: &ClientLimits,
    app: &AppEndpoints,
) -> Result<ClientAuth, OAuthError> {
    if app.client_auth != ClientAuth::Auto {
        return Ok(app.client_auth);
    }
    if app.client_secret.is_none() {
        return Ok(ClientAuth::None);
    }
    let url = required(app.openid_configuration.as_deref(), "openid_configuration")?.to_owned();
    let cached = http
        .methods
        .with(|m| m.get(&url).cloned())
        .map(|(at, methods)| (at.elapsed() < DISCOVERY_TTL, methods));
    if let Some((true, methods)) = &cached {
        return Ok(ClientAuth::choose(methods));
    }
    match discover(http, limits, &url).await {
        Ok(d) => {
            let methods = d.token_endpoint_auth_methods_supported;
            let chosen = ClientAuth::choose(&methods);
            http.methods.with(|m| {
                if m.len() > 10_000 {
                    m.clear();
                }
                m.insert(url, (Instant::now(), methods));
            });
            Ok(chosen)
        }
        Err(e) => match cached {
            Some((_, methods)) => Ok(ClientAuth::choose(&methods)),
            None => Err(e),
        },
    }
}

/// The oauth2 client for the code exchange and the refresh: credentials in the body (unset,
/// `client_secret_post`), in an HTTP Basic header of the form-urlencoded id and secret
/// (`client_secret_basic`, as oauth2 builds it), or the `client_id` alone (`none`).
pub(super) fn oauth_client(
    app: &AppEndpoints,
    method: ClientAuth,
) -> Result<BasicClient, OAuthError> {
    if app.client_id.is_empty() {
        return Err(OAuthError::NotConfigured("client_id"));
    }
    let auth_type = match method {
        ClientAuth::Basic => AuthType::BasicAuth,
        _ => AuthType::RequestBody,
    };
    let mut client =
        BasicClient::new(ClientId::new(app.client_id.clone())).set_auth_type(auth_type);
    if method != ClientAuth::None {
        if let Some(secret) = &app.client_secret {
            client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
        }
    }
    Ok(client)
}

/// Adds the client's credentials to a request built by hand: form fields (unset,
/// `client_secret_post`; `client_id` alone for `none`), or the Authorization header to send
/// (`client_secret_basic`; without a secret it falls back to the `client_id` field, as oauth2
/// does).
pub(super) fn credentials<'a>(
    app: &'a AppEndpoints,
    method: ClientAuth,
    form: &mut Vec<(&'a str, &'a str)>,
) -> Result<Option<HeaderValue>, OAuthError> {
    let secret = app.client_secret.as_ref().map(|s| s.expose_secret());
    match (method, secret) {
        (ClientAuth::Basic, Some(secret)) => basic_header(&app.client_id, secret, true).map(Some),
        (ClientAuth::None, _) | (_, None) => {
            form.push(("client_id", &app.client_id));
            Ok(None)
        }
        (_, Some(secret)) => {
            form.push(("client_id", &app.client_id));
            form.push(("client_secret", secret));
            Ok(None)
        }
    }
}

/// `Basic base64(id:secret)`, marked sensitive. RFC 6749 §2.3.1 form-urlencodes both parts
/// first (`urlencoded`); requests-oauthlib, and so Frappe's client credentials, does not.
pub(super) fn basic_header(
    id: &str,
    secret: &str,
    urlencoded: bool,
) -> Result<HeaderValue, OAuthError> {
    let pair = if urlencoded {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        format!("{}:{}", enc(id), enc(secret))
    } else {
        format!("{id}:{secret}")
    };
    let credentials = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
        .map_err(|_| OAuthError::Request("invalid Authorization header".to_owned()))?;
    value.set_sensitive(true);
    Ok(value)
}
