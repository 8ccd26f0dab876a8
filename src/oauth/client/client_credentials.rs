//! The client-credentials grant (the app's own token).

use base64::Engine as _;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use secrecy::ExposeSecret;

use super::http::send_built;
use super::token_response::parse_token_response;
use super::{
    encode_form, token_url, with_secret, AppEndpoints, ClientLimits, HttpClient, OAuthError,
    TokenSet, FORM_CONTENT_TYPE,
};

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
