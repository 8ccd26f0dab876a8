//! Provider presets: what the providers Frappe sites connect to document about their OAuth
//! endpoints, scopes, parameters and client authentication, and the quirks they are known for.
//!
//! A preset only fills a normal Connected App (every field is one Frappe has); `client_auth`
//! is carried for the service's own per-app setting. A `{parameter}` in a URL (a Microsoft
//! tenant, a self-managed GitLab host, a Zoho data centre) is filled from the caller's value,
//! or the parameter's default.

use serde_json::{json, Map, Value};

use crate::error::AppError;

/// A value filled into a preset's URLs.
pub struct Parameter {
    pub name: &'static str,
    pub label: &'static str,
    /// `None`: the caller must give a value.
    pub default: Option<&'static str>,
    pub description: &'static str,
}

/// One provider.
pub struct Preset {
    pub id: &'static str,
    pub provider_name: &'static str,
    pub openid_configuration: Option<&'static str>,
    pub authorization_uri: &'static str,
    pub token_uri: &'static str,
    pub revocation_uri: Option<&'static str>,
    pub userinfo_uri: Option<&'static str>,
    pub introspection_uri: Option<&'static str>,
    pub scopes: &'static [&'static str],
    pub query_parameters: &'static [(&'static str, &'static str)],
    /// `client_secret_post`, `client_secret_basic` or `none`: the value to give the app's
    /// `client_auth` setting (`connected_apps.app_settings`).
    pub client_auth: &'static str,
    pub parameters: &'static [Parameter],
    pub quirks: &'static [&'static str],
    /// The provider's own documentation of its OAuth endpoints.
    pub documentation: &'static str,
}

const TENANT: Parameter = Parameter {
    name: "tenant",
    label: "Directory (tenant) ID",
    default: None,
    description: "The tenant's ID (a GUID) or a verified domain such as contoso.onmicrosoft.com.",
};

const NO_TENANT_CLIENT_CREDENTIALS: &str = "Client credentials need a tenant: with `common` \
    the token endpoint refuses them (use the per-tenant preset and a scope ending in `/.default`).";

/// The catalogue, in the order the page offers it.
pub const PRESETS: &[Preset] = &[
    Preset {
        id: "google",
        provider_name: "Google",
        openid_configuration: Some("https://accounts.google.com/.well-known/openid-configuration"),
        authorization_uri: "https://accounts.google.com/o/oauth2/v2/auth",
        token_uri: "https://oauth2.googleapis.com/token",
        revocation_uri: Some("https://oauth2.googleapis.com/revoke"),
        userinfo_uri: Some("https://openidconnect.googleapis.com/v1/userinfo"),
        introspection_uri: None,
        scopes: &["openid", "email", "profile"],
        query_parameters: &[("access_type", "offline"), ("prompt", "consent")],
        client_auth: "client_secret_post",
        parameters: &[],
        quirks: &[
            "A refresh token is issued only with access_type=offline, and only at the first consent unless prompt=consent asks again.",
            "A refresh answer carries no refresh_token: the one already held stays valid and must be kept.",
            "Refresh tokens lapse after 6 months unused, and after 7 days while the consent screen is in Testing.",
            "A user holds at most 100 refresh tokens per client; older ones are revoked silently.",
        ],
        documentation: "https://developers.google.com/identity/protocols/oauth2/web-server",
    },
    Preset {
        id: "microsoft",
        provider_name: "Microsoft Entra ID",
        openid_configuration: Some(
            "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration",
        ),
        authorization_uri: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        token_uri: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        revocation_uri: None,
        userinfo_uri: Some("https://graph.microsoft.com/oidc/userinfo"),
        introspection_uri: None,
        scopes: &["openid", "email", "profile", "offline_access", "User.Read"],
        query_parameters: &[],
        client_auth: "client_secret_post",
        parameters: &[],
        quirks: &[
            "Without the offline_access scope no refresh token is issued.",
            "Refresh tokens rotate: each refresh returns a new one, which replaces the old.",
            "Refresh tokens lapse after 90 days unused.",
            "One token is for one resource: scopes of Microsoft Graph and of another API cannot be mixed in one request.",
            "There is no revocation endpoint (RFC 7009); sign-out or revoking sessions in Entra ID ends the grant.",
            NO_TENANT_CLIENT_CREDENTIALS,
        ],
        documentation: "https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-auth-code-flow",
    },
    Preset {
        id: "microsoft-tenant",
        provider_name: "Microsoft Entra ID (single tenant)",
        openid_configuration: Some(
            "https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration",
        ),
        authorization_uri: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize",
        token_uri: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        revocation_uri: None,
        userinfo_uri: Some("https://graph.microsoft.com/oidc/userinfo"),
        introspection_uri: None,
        scopes: &["openid", "email", "profile", "offline_access", "User.Read"],
        query_parameters: &[],
        client_auth: "client_secret_post",
        parameters: &[TENANT],
        quirks: &[
            "Without the offline_access scope no refresh token is issued.",
            "Refresh tokens rotate: each refresh returns a new one, which replaces the old.",
            "Refresh tokens lapse after 90 days unused.",
            "For client credentials (a backend token) use one scope `https://graph.microsoft.com/.default` and grant the application permissions in the tenant.",
            "There is no revocation endpoint (RFC 7009).",
        ],
        documentation: "https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow",
    },
    Preset {
        id: "github",
        provider_name: "GitHub",
        openid_configuration: None,
        authorization_uri: "https://github.com/login/oauth/authorize",
        token_uri: "https://github.com/login/oauth/access_token",
        revocation_uri: None,
        userinfo_uri: Some("https://api.github.com/user"),
        introspection_uri: None,
        scopes: &["read:user", "user:email"],
        query_parameters: &[],
        client_auth: "client_secret_post",
        parameters: &[],
        quirks: &[
            "The token answer is form-encoded unless `Accept: application/json` is sent.",
            "OAuth App tokens have no expires_in and no refresh token: they never expire and are never refreshed.",
            "GitHub App user tokens expire after 8 hours; their refresh tokens last 6 months and rotate.",
            "The granted scopes come back separated by commas.",
            "Errors of the token endpoint are answered with status 200 and an `error` field.",
            "No discovery document and no RFC 7009 revocation: a token is revoked with DELETE https://api.github.com/applications/{client_id}/token.",
        ],
        documentation: "https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps",
    },
    Preset {
        id: "gitlab",
        provider_name: "GitLab",
        openid_configuration: Some("https://{host}/.well-known/openid-configuration"),
        authorization_uri: "https://{host}/oauth/authorize",
        token_uri: "https://{host}/oauth/token",
        revocation_uri: Some("https://{host}/oauth/revoke"),
        userinfo_uri: Some("https://{host}/oauth/userinfo"),
        introspection_uri: None,
        scopes: &["openid", "profile", "email", "read_user"],
        query_parameters: &[],
        client_auth: "client_secret_post",
        parameters: &[Parameter {
            name: "host",
            label: "GitLab host",
            default: Some("gitlab.com"),
            description: "gitlab.com, or the host name of a self-managed GitLab.",
        }],
        quirks: &[
            "Access tokens expire after 2 hours.",
            "Refresh tokens rotate: using one invalidates it, and the answer carries the next.",
        ],
        documentation: "https://docs.gitlab.com/ee/api/oauth2.html",
    },
    Preset {
        id: "slack",
        provider_name: "Slack",
        openid_configuration: None,
        authorization_uri: "https://slack.com/oauth/v2/authorize",
        token_uri: "https://slack.com/api/oauth.v2.access",
        revocation_uri: Some("https://slack.com/api/auth.revoke"),
        userinfo_uri: None,
        introspection_uri: None,
        scopes: &["channels:read", "chat:write"],
        query_parameters: &[],
        client_auth: "client_secret_post",
        parameters: &[],
        quirks: &[
            "Scopes are separated by commas, in the request and in the answer.",
            "Bot scopes go in `scope`, user scopes in a `user_scope` query parameter; the user's token comes back nested in `authed_user`.",
            "Errors are answered with status 200 and `\"ok\": false`.",
            "Tokens never expire unless token rotation is turned on for the app (then 12 hours, with refresh tokens).",
            "Sign in with Slack (OpenID Connect) uses other endpoints: https://slack.com/.well-known/openid-configuration.",
        ],
        documentation: "https://api.slack.com/authentication/oauth-v2",
    },
    Preset {
        id: "salesforce",
        provider_name: "Salesforce",
        openid_configuration: Some("https://{host}/.well-known/openid-configuration"),
        authorization_uri: "https://{host}/services/oauth2/authorize",
        token_uri: "https://{host}/services/oauth2/token",
        revocation_uri: Some("https://{host}/services/oauth2/revoke"),
        userinfo_uri: Some("https://{host}/services/oauth2/userinfo"),
        introspection_uri: Some("https://{host}/services/oauth2/introspect"),
        scopes: &["api", "refresh_token", "openid"],
        query_parameters: &[],
        client_auth: "client_secret_post",
        parameters: &[Parameter {
            name: "host",
            label: "Login host",
            default: Some("login.salesforce.com"),
            description: "login.salesforce.com, test.salesforce.com for a sandbox, or the org's My Domain host.",
        }],
        quirks: &[
            "The token answer has no expires_in: the session lasts as the org's policy says.",
            "API calls go to the `instance_url` of the token answer, not to the login host.",
            "A refresh token is issued only with the refresh_token (or offline_access) scope.",
            "PKCE is supported, and a connected app can be set to require it.",
        ],
        documentation: "https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_endpoints.htm",
    },
    Preset {
        id: "xero",
        provider_name: "Xero",
        openid_configuration: Some("https://identity.xero.com/.well-known/openid-configuration"),
        authorization_uri: "https://login.xero.com/identity/connect/authorize",
        token_uri: "https://identity.xero.com/connect/token",
        revocation_uri: Some("https://identity.xero.com/connect/revocation"),
        userinfo_uri: Some("https://identity.xero.com/connect/userinfo"),
        introspection_uri: Some("https://identity.xero.com/connect/introspect"),
        scopes: &["openid", "profile", "email", "offline_access", "accounting.transactions"],
        query_parameters: &[],
        client_auth: "client_secret_basic",
        parameters: &[],
        quirks: &[
            "The client authenticates with HTTP Basic; a refresh without the client's credentials fails.",
            "Access tokens last 30 minutes; refresh tokens are single-use (rotating) and lapse after 60 days.",
            "Without offline_access no refresh token is issued.",
            "API calls need the organisation's `xero-tenant-id` header, listed at https://api.xero.com/connections.",
        ],
        documentation: "https://developer.xero.com/documentation/guides/oauth2/auth-flow",
    },
    Preset {
        id: "zoom",
        provider_name: "Zoom",
        openid_configuration: None,
        authorization_uri: "https://zoom.us/oauth/authorize",
        token_uri: "https://zoom.us/oauth/token",
        revocation_uri: Some("https://zoom.us/oauth/revoke"),
        userinfo_uri: Some("https://api.zoom.us/v2/users/me"),
        introspection_uri: None,
        scopes: &[],
        query_parameters: &[],
        client_auth: "client_secret_basic",
        parameters: &[],
        quirks: &[
            "The client must authenticate with HTTP Basic at the token and revocation endpoints.",
            "Scopes are chosen on the app in the Zoom App Marketplace; the request may leave them out.",
            "Access tokens last 1 hour; refresh tokens rotate and lapse after 90 days.",
            "Server-to-Server OAuth uses the account_credentials grant, which a Connected App does not speak.",
        ],
        documentation: "https://developers.zoom.us/docs/integrations/oauth/",
    },
    Preset {
        id: "dropbox",
        provider_name: "Dropbox",
        openid_configuration: None,
        authorization_uri: "https://www.dropbox.com/oauth2/authorize",
        token_uri: "https://api.dropboxapi.com/oauth2/token",
        revocation_uri: None,
        userinfo_uri: None,
        introspection_uri: None,
        scopes: &["account_info.read"],
        query_parameters: &[("token_access_type", "offline")],
        client_auth: "client_secret_post",
        parameters: &[],
        quirks: &[
            "A refresh token is issued only with token_access_type=offline.",
            "Access tokens last about 4 hours; refresh tokens do not expire and a refresh answer carries none.",
            "Revocation is an RPC call with the token as bearer (POST https://api.dropboxapi.com/2/auth/token/revoke), not RFC 7009.",
            "The account is read with POST https://api.dropboxapi.com/2/users/get_current_account.",
        ],
        documentation: "https://developers.dropbox.com/oauth-guide",
    },
    Preset {
        id: "atlassian",
        provider_name: "Atlassian",
        openid_configuration: None,
        authorization_uri: "https://auth.atlassian.com/authorize",
        token_uri: "https://auth.atlassian.com/oauth/token",
        revocation_uri: None,
        userinfo_uri: Some("https://api.atlassian.com/me"),
        introspection_uri: None,
        scopes: &["read:me", "read:jira-work", "offline_access"],
        query_parameters: &[("audience", "api.atlassian.com"), ("prompt", "consent")],
        client_auth: "client_secret_post",
        parameters: &[],
        quirks: &[
            "The authorization request must carry audience=api.atlassian.com.",
            "Without offline_access no refresh token is issued; refresh tokens rotate and lapse after 90 days unused.",
            "API calls go to https://api.atlassian.com/ex/jira/{cloudid}/…; the cloud id comes from https://api.atlassian.com/oauth/token/accessible-resources.",
            "There is no revocation endpoint: the user removes the app in their Atlassian account.",
        ],
        documentation: "https://developer.atlassian.com/cloud/jira/platform/oauth-2-3lo-apps/",
    },
    Preset {
        id: "hubspot",
        provider_name: "HubSpot",
        openid_configuration: None,
        authorization_uri: "https://app.hubspot.com/oauth/authorize",
        token_uri: "https://api.hubapi.com/oauth/v1/token",
        revocation_uri: None,
        userinfo_uri: None,
        introspection_uri: None,
        scopes: &["oauth", "crm.objects.contacts.read"],
        query_parameters: &[],
        client_auth: "client_secret_post",
        parameters: &[],
        quirks: &[
            "The client's credentials must be form fields; HTTP Basic is not accepted.",
            "The scopes asked for must match the app's required scopes exactly; others go in an `optional_scope` parameter.",
            "Access tokens last 30 minutes; refresh tokens do not expire.",
            "Revocation is DELETE https://api.hubapi.com/oauth/v1/refresh-tokens/{token}, not RFC 7009.",
        ],
        documentation: "https://developers.hubspot.com/docs/api/oauth-quickstart-guide",
    },
    Preset {
        id: "zoho",
        provider_name: "Zoho",
        openid_configuration: Some("https://{accounts_server}/.well-known/openid-configuration"),
        authorization_uri: "https://{accounts_server}/oauth/v2/auth",
        token_uri: "https://{accounts_server}/oauth/v2/token",
        revocation_uri: Some("https://{accounts_server}/oauth/v2/token/revoke"),
        userinfo_uri: Some("https://{accounts_server}/oauth/user/info"),
        introspection_uri: None,
        scopes: &["AaaServer.profile.Read"],
        query_parameters: &[("access_type", "offline"), ("prompt", "consent")],
        client_auth: "client_secret_post",
        parameters: &[Parameter {
            name: "accounts_server",
            label: "Accounts server",
            default: Some("accounts.zoho.com"),
            description: "The data centre's accounts host: accounts.zoho.com, .eu, .in, .com.au, .jp, .ca, .sa or .com.cn.",
        }],
        quirks: &[
            "Each data centre has its own accounts server; the callback names the user's in `accounts-server`.",
            "Scopes are separated by commas.",
            "A refresh answer carries no refresh_token: keep the old one. A user holds at most 20 refresh tokens per client; the oldest is deleted.",
            "The token answer's `api_domain` is where API calls go, with the header `Authorization: Zoho-oauthtoken <token>`.",
            "Revocation is documented with the refresh token in the query string (POST …/oauth/v2/token/revoke?token=…).",
        ],
        documentation: "https://www.zoho.com/accounts/protocol/oauth/web-server-applications.html",
    },
];

/// A parameter value may only be a host name or a tenant id: no `/`, `?`, `#`, `@` or spaces.
fn valid_value(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 253
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

impl Preset {
    /// Fills the `{parameter}`s of a text from `values` or the defaults.
    fn fill(&self, text: &str, values: &[(&str, String)]) -> String {
        let mut out = text.to_string();
        for (k, v) in values {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }

    /// The parameter values to fill: given ones (checked), then defaults; `None` when a
    /// parameter without a default was not given.
    fn values(&self, given: &Map<String, Value>) -> Result<Option<Vec<(&str, String)>>, AppError> {
        let mut out = Vec::new();
        for p in self.parameters {
            let v = match given.get(p.name).and_then(Value::as_str).map(str::trim) {
                Some(v) if !v.is_empty() => {
                    if !valid_value(v) {
                        return Err(AppError::validation(format!(
                            "{} must be a host name or an ID (letters, digits, '.', '-', '_').",
                            p.label
                        )));
                    }
                    v.to_string()
                }
                _ => match p.default {
                    Some(d) => d.to_string(),
                    None => return Ok(None),
                },
            };
            out.push((p.name, v));
        }
        Ok(Some(out))
    }

    /// The body of a normal Connected App (what `POST /api/resource/Connected App` takes).
    fn connected_app(&self, values: &[(&str, String)]) -> Value {
        let mut m = Map::new();
        m.insert("provider_name".into(), json!(self.provider_name));
        let urls = [
            ("openid_configuration", self.openid_configuration),
            ("authorization_uri", Some(self.authorization_uri)),
            ("token_uri", Some(self.token_uri)),
            ("revocation_uri", self.revocation_uri),
            ("userinfo_uri", self.userinfo_uri),
            ("introspection_uri", self.introspection_uri),
        ];
        for (field, url) in urls {
            if let Some(u) = url {
                m.insert(field.into(), json!(self.fill(u, values)));
            }
        }
        m.insert(
            "scopes".into(),
            self.scopes.iter().map(|s| json!({ "scope": s })).collect(),
        );
        m.insert(
            "query_parameters".into(),
            self.query_parameters
                .iter()
                .map(|(k, v)| json!({ "key": k, "value": v }))
                .collect(),
        );
        Value::Object(m)
    }

    /// The preset as `connected_apps.provider_presets` lists it. `connected_app` is the
    /// filled form, or null while a parameter without a default has no value.
    pub fn to_json(&self, given: &Map<String, Value>) -> Result<Value, AppError> {
        let values = self.values(given)?;
        Ok(json!({
            "id": self.id,
            "provider_name": self.provider_name,
            "openid_configuration": self.openid_configuration,
            "authorization_uri": self.authorization_uri,
            "token_uri": self.token_uri,
            "revocation_uri": self.revocation_uri,
            "userinfo_uri": self.userinfo_uri,
            "introspection_uri": self.introspection_uri,
            "scopes": self.scopes,
            "query_parameters": self.query_parameters.iter()
                .map(|(k, v)| json!({ "key": k, "value": v })).collect::<Vec<_>>(),
            "client_auth": self.client_auth,
            "parameters": self.parameters.iter().map(|p| json!({
                "name": p.name, "label": p.label, "default": p.default, "description": p.description,
            })).collect::<Vec<_>>(),
            "quirks": self.quirks,
            "documentation": self.documentation,
            "connected_app": values.map(|v| self.connected_app(&v)),
        }))
    }
}

/// Looks a preset up by its id.
pub fn find(id: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::client::ClientAuth;

    #[test]
    fn every_preset_url_is_https_and_its_placeholders_are_its_parameters() {
        for p in PRESETS {
            let mut urls = vec![p.authorization_uri, p.token_uri];
            urls.extend(
                [
                    p.openid_configuration,
                    p.revocation_uri,
                    p.userinfo_uri,
                    p.introspection_uri,
                ]
                .into_iter()
                .flatten(),
            );
            let values: Vec<(&str, String)> = p
                .parameters
                .iter()
                .map(|x| (x.name, "example.com".to_string()))
                .collect();
            for u in urls {
                let filled = p.fill(u, &values);
                assert!(!filled.contains('{'), "{}: {u}", p.id);
                let parsed = url::Url::parse(&filled).expect("a URL");
                assert_eq!(parsed.scheme(), "https", "{}: {u}", p.id);
            }
            // A preset's method is one the per-app setting takes (and never `auto`).
            assert!(
                ClientAuth::from_name(p.client_auth).is_some_and(|m| m != ClientAuth::Auto),
                "{}",
                p.id
            );
        }
    }

    #[test]
    fn a_parameter_value_cannot_change_the_url_it_is_filled_into() {
        for bad in ["evil.example/x", "a b", "x@y", "h?x", "h#x", ""] {
            assert!(!valid_value(bad), "{bad}");
        }
        assert!(valid_value("contoso.onmicrosoft.com"));
        assert!(valid_value("72f988bf-86f1-41af-91ab-2d7cd011db47"));
    }
}
