//! How a token response is read: oauthlib's `parse_token_response` and Frappe's
//! `TokenCache.update_data`, and OAuth error bodies.

use secrecy::SecretString;
use serde_json::{Map, Value};

use super::http::RawResponse;
use super::{OAuthError, TokenSet};

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
pub(super) fn parse_token_response(raw: &RawResponse, sensitive: &[&str]) -> Result<TokenSet, OAuthError> {
    if let Some(err) = provider_error(raw, sensitive) {
        return Err(err);
    }
    let missing = OAuthError::MissingToken { status: raw.status };
    if !(200..300).contains(&raw.status) {
        return Err(missing);
    }
    let params = token_params(&raw.body);
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
    })
}
