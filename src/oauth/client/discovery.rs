//! OpenID Provider Configuration (discovery).

use reqwest::header::ACCEPT;
use serde_json::Value;

use super::http::{redacted_endpoint, send_built};
use super::{parse_http_url, ClientLimits, HttpClient, OAuthError};

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
    /// `token_endpoint_auth_methods_supported` (its strings; empty when absent).
    pub token_endpoint_auth_methods_supported: Vec<String>,
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
        token_endpoint_auth_methods_supported: doc
            .get("token_endpoint_auth_methods_supported")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    })
}
