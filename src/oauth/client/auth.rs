//! How the client authenticates at the token endpoint.

use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret};
use secrecy::ExposeSecret;

use super::{AppEndpoints, OAuthError};

/// The oauth2 client for an app: client_secret_post (credentials in the body).
pub(super) fn oauth_client(app: &AppEndpoints) -> Result<BasicClient, OAuthError> {
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
