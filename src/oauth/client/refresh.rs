//! The refresh grant.

use oauth2::{RefreshToken, Scope};
use secrecy::{ExposeSecret, SecretString};

use super::auth::{self, oauth_client};
use super::http::{post_form, Transport};
use super::token_response::parse_token_response;
use super::{token_url, with_secret, AppEndpoints, ClientLimits, HttpClient, OAuthError, TokenSet};

/// Refresh grant, as Frappe's `get_active_token` sends it (console 403): `redirect_uri,
/// grant_type=refresh_token, client_id, client_secret, scope (the app's scopes), refresh_token`;
/// no Authorization header and no Query Parameters. A client authentication setting other
/// than `client_secret_post` changes only where the credentials go (see [`auth`]).
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
    let method = auth::resolve(http, limits, app).await?;
    let Some(refresh_token) = refresh_token else {
        let scope = app.scopes.join(" ");
        let mut form: Vec<(&str, &str)> = Vec::with_capacity(5);
        if !app.redirect_uri.is_empty() {
            form.push(("redirect_uri", &app.redirect_uri));
        }
        form.push(("grant_type", "refresh_token"));
        let authorization = auth::credentials(app, method, &mut form)?;
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        let raw = post_form(http, limits, token_url.url().clone(), authorization, &form).await?;
        return parse_token_response(&raw, &with_secret(app, &[])).map(refreshed);
    };

    let client = oauth_client(app, method)?.set_token_uri(token_url);
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
    parse_token_response(&raw, &with_secret(app, &[refresh_token.expose_secret()])).map(refreshed)
}

fn refreshed(mut tokens: TokenSet) -> TokenSet {
    tokens.from_refresh = true;
    tokens
}
