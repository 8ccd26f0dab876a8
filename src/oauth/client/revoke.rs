//! RFC 7009 token revocation.

use secrecy::{ExposeSecret, SecretString};

use super::auth;
use super::http::{post_form, redacted_endpoint};
use super::token_response::provider_error;
use super::{
    parse_http_url, required, with_secret, AppEndpoints, ClientLimits, HttpClient, OAuthError,
};

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
/// client_secret` in the body (unset client authentication and `client_secret_post`; Basic
/// and `none` as at the token endpoint, see [`auth`]). Any 2xx is success.
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
    let method = auth::resolve(http, limits, app).await?;
    let mut form: Vec<(&str, &str)> = vec![
        ("token", token.expose_secret()),
        ("token_type_hint", kind.hint()),
    ];
    let authorization = auth::credentials(app, method, &mut form)?;
    let endpoint = redacted_endpoint(&url);
    let raw = post_form(http, limits, url, authorization, &form).await?;
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
