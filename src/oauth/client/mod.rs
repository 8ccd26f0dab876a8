//! Outbound OAuth 2.0 client for Connected Apps, one module per grant, with Frappe v15
//! (oauthlib / requests-oauthlib) wire format and error semantics: the shared HTTP client and
//! its limits (`http`), Frappe's authorization URL and the code exchange
//! (`authorization_code`), `refresh`, `client_credentials`, RFC 7009 revocation (`revoke`),
//! OpenID discovery (`discovery`), how the client authenticates at the token endpoint
//! (`auth`) and how a token response is read (`token_response`). This module holds the types
//! they share.
//!
//! What goes over the wire, and who builds it:
//! - the authorization URL is built by hand: Frappe's parameter order and Python `urlencode`
//!   escaping (oauth2 orders `state` before `redirect_uri` and escapes `*`/`~` differently);
//! - the authorization-code exchange and the refresh (with a refresh token) go through the
//!   `oauth2` crate, over a small `AsyncHttpClient` wrapper that enforces the size cap;
//! - client credentials, revocation, the refresh without a refresh token and discovery are built
//!   with reqwest directly (the reason is given at each function).
//!
//! Token responses are always interpreted here, the way oauthlib + Frappe's `TokenCache.update_data`
//! do, from the raw response (oauth2's own parser is stricter: it requires HTTP 200, a JSON
//! Content-Type and a `token_type`).

mod auth;
mod authorization_code;
mod client_credentials;
mod discovery;
mod http;
mod refresh;
mod revoke;
#[cfg(test)]
mod tests;
mod token_response;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use oauth2::TokenUrl;

pub use auth::ClientAuth;
pub use authorization_code::{authorization_url, exchange_code, generate_state, Pkce};
pub use client_credentials::client_credentials;
pub use discovery::{discover, Discovery};
pub use http::{build_http_client, ClientLimits, HttpClient};
pub use refresh::refresh;
pub use revoke::{revoke, TokenKind};

/// The Content-Type that requests-oauthlib sends with token requests.
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded;charset=UTF-8";

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
    /// How the client authenticates at the token endpoint (the service's own setting).
    pub client_auth: ClientAuth,
    /// `openid_configuration` (what `auto` client authentication reads).
    pub openid_configuration: Option<String>,
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
    /// `scope` as sent, its scopes separated by spaces (a JSON list is joined with spaces, and
    /// commas, as GitHub, Slack and Zoho separate them, become spaces); `None` when absent
    /// (Frappe then keeps the Token Cache's scopes). Frappe splits it on spaces.
    pub scope: Option<String>,
    /// The response's other members (Salesforce's `instance_url`, an `id_token`, Slack's
    /// `team`, …), kept in the service's own table, never in Frappe's columns.
    pub extra: Extra,
    /// Whether it answered a refresh (whose extras add to the ones kept).
    pub from_refresh: bool,
}

/// The members of a token response that Frappe's Token Cache has no column for. Its Debug
/// shows only their names: an `id_token` or a nested token is as secret as the access token.
#[derive(Clone, Default, PartialEq)]
pub struct Extra(pub serde_json::Map<String, serde_json::Value>);

impl std::fmt::Debug for Extra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

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
