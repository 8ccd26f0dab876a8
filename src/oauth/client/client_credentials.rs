//! The client-credentials grant (the app's own token).

use secrecy::ExposeSecret;

use super::auth::{self, ClientAuth};
use super::http::post_form;
use super::token_response::parse_token_response;
use super::{token_url, with_secret, AppEndpoints, ClientLimits, HttpClient, OAuthError, TokenSet};

/// Client-credentials grant, as Frappe's `get_backend_app_token` sends it (console 413):
/// `Authorization: Basic base64(client_id:client_secret)` and the body
/// `grant_type=client_credentials&scope=…`.
///
/// Built with reqwest directly: requests-oauthlib puts the *plain* `client_id:client_secret`
/// in the Basic header, while oauth2 form-urlencodes each part first (RFC 6749 §2.3.1), which
/// differs as soon as either contains a reserved character. A missing secret is sent as `""`,
/// as requests-oauthlib does. That is the unset client authentication; `client_secret_basic`
/// form-urlencodes both parts (RFC 6749 §2.3.1), `client_secret_post` sends them as form
/// fields (for providers that refuse Basic), `none` the `client_id` alone.
pub async fn client_credentials(
    http: &HttpClient,
    limits: &ClientLimits,
    app: &AppEndpoints,
) -> Result<TokenSet, OAuthError> {
    let token_url = token_url(app)?;
    if app.client_id.is_empty() {
        return Err(OAuthError::NotConfigured("client_id"));
    }
    let method = auth::resolve(http, limits, app).await?;
    let scope = app.scopes.join(" ");
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
    if !scope.is_empty() {
        form.push(("scope", &scope));
    }
    let authorization = match method {
        ClientAuth::Frappe => {
            let secret = app
                .client_secret
                .as_ref()
                .map(|s| s.expose_secret())
                .unwrap_or("");
            Some(auth::basic_header(&app.client_id, secret, false)?)
        }
        other => auth::credentials(app, other, &mut form)?,
    };
    let raw = post_form(http, limits, token_url.url().clone(), authorization, &form).await?;
    parse_token_response(&raw, &with_secret(app, &[]))
}
