//! How a token response is read: oauthlib's `parse_token_response` and Frappe's
//! `TokenCache.update_data`, and OAuth error bodies.

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::http::RawResponse;
use super::{Extra, OAuthError, TokenSet};

/// The members of a token response Frappe's Token Cache reads (and Slack's envelope `ok`);
/// the others are extras.
const STANDARD_MEMBERS: &[&str] = &[
    "access_token",
    "refresh_token",
    "token_type",
    "expires_in",
    "scope",
    "ok",
];

/// Longest provider-supplied text (error code / description) kept in an [`OAuthError`].
const MAX_PROVIDER_TEXT: usize = 300;

/// Python `str()` of a JSON value, as Frappe's `cstr` / oauthlib's formatting see it.
fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "None".to_owned(),
        other => other.to_string(),
    }
}

/// Provider text made safe for an error: known secrets masked, length capped.
fn clean_provider_text(text: &str, sensitive: &[&str]) -> String {
    let mut text = text.to_owned();
    for s in sensitive.iter().filter(|s| s.len() >= 3) {
        text = text.replace(s, "****");
    }
    if text.chars().count() > MAX_PROVIDER_TEXT {
        text = text.chars().take(MAX_PROVIDER_TEXT).collect::<String>() + "…";
    }
    text
}

/// The body as oauthlib's `parse_token_response` reads it: a JSON object, else (a body that is
/// not JSON) `dict(parse_qsl(body))` for old form-encoded providers; JSON that is not an object
/// has no parameters.
fn token_params(body: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => Map::new(),
        Err(_) => url::form_urlencoded::parse(body)
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
            .collect(),
    }
}

/// An OAuth error body (`error` present), as oauthlib's `raise_from_error` reports it.
pub(super) fn provider_error(raw: &RawResponse, sensitive: &[&str]) -> Option<OAuthError> {
    let params = token_params(&raw.body);
    let error = params.get("error")?;
    Some(OAuthError::Provider {
        error: clean_provider_text(&py_str(error), sensitive),
        description: params
            .get("error_description")
            .filter(|d| !d.is_null())
            .map(|d| clean_provider_text(&py_str(d), sensitive)),
        status: raw.status,
    })
}

/// A token response, checked as oauthlib's `validate_token_parameters` and Frappe's
/// `TokenCache.update_data` do: an `error` member → [`OAuthError::Provider`] (whatever the
/// status); no `access_token` → [`OAuthError::MissingToken`]; a token type other than
/// bearer/mac → [`OAuthError::InvalidTokenType`]. Unlike oauthlib, a non-2xx answer is never
/// accepted as a token, it is [`OAuthError::MissingToken`] with its status.
///
/// Providers' quirks: Slack's answer (`"ok": true`) may hold the user's token only nested in
/// `authed_user`, which is then the token (a top-level token, a bot's, wins when both are
/// there), and its token types `bot` and `user` are bearer tokens; scopes separated by commas
/// are separated by spaces; every member beyond the standard ones is kept in
/// [`TokenSet::extra`] (the nested user's own token fields excepted when it is the token).
pub(super) fn parse_token_response(
    raw: &RawResponse,
    sensitive: &[&str],
) -> Result<TokenSet, OAuthError> {
    if let Some(err) = provider_error(raw, sensitive) {
        return Err(err);
    }
    let missing = OAuthError::MissingToken { status: raw.status };
    if !(200..300).contains(&raw.status) {
        return Err(missing);
    }
    let mut params = token_params(&raw.body);
    let slack = params.get("ok") == Some(&Value::Bool(true)) || params.contains_key("authed_user");
    let nested = !params.contains_key("access_token")
        && params
            .get("authed_user")
            .is_some_and(|u| u.get("access_token").is_some());
    let (params, mut extra) = match params.remove("authed_user") {
        Some(Value::Object(user)) if nested => {
            let mut extra = params;
            let rest: Map<String, Value> = user
                .iter()
                .filter(|(k, _)| !STANDARD_MEMBERS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            extra.insert("authed_user".to_owned(), Value::Object(rest));
            (user, extra)
        }
        Some(mut user) => {
            // The user's token stays a script's to use (as its own access token is), but a
            // refresh token is the service's to keep: never answered, here as anywhere.
            if let Value::Object(u) = &mut user {
                u.remove("refresh_token");
            }
            params.insert("authed_user".to_owned(), user);
            (params.clone(), params)
        }
        None => (params.clone(), params),
    };
    extra.retain(|k, _| !STANDARD_MEMBERS.contains(&k.as_str()));
    let access_token = match params.get("access_token") {
        Some(Value::String(s)) => s.clone(),
        Some(v @ Value::Number(_)) => v.to_string(),
        _ => return Err(missing),
    };
    let token_type = match params.get("token_type") {
        Some(Value::String(s)) => s.to_lowercase(),
        _ => String::new(),
    };
    let token_type = match token_type.as_str() {
        "bearer" => "Bearer",
        "bot" | "user" if slack => "Bearer",
        "mac" => "MAC",
        _ => return Err(OAuthError::InvalidTokenType),
    };
    let refresh_token = match params.get("refresh_token") {
        Some(Value::String(s)) => Some(SecretString::from(s.clone())),
        _ => None,
    };
    let expires_in = match params.get("expires_in") {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    let scope = match params.get("scope") {
        Some(Value::String(s)) if s.contains(',') => Some(s.replace(',', " ")),
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(items)) => Some(items.iter().map(py_str).collect::<Vec<_>>().join(" ")),
        _ => None,
    };
    Ok(TokenSet {
        access_token: SecretString::from(access_token),
        refresh_token,
        token_type: token_type.to_owned(),
        expires_in,
        scope,
        extra: Extra(extra),
        from_refresh: false,
    })
}
