//! Unit tests: token_response.

use super::*;

#[tokio::test]
async fn invalid_grant_400() {
    let (base, _) = provider(vec![json(
        400,
        r#"{"error":"invalid_grant","error_description":"bad code"}"#,
    )])
    .await;
    let e = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "(invalid_grant) bad code");
    assert!(e.is_invalid_grant());
    assert!(!e.is_transient());
    assert!(matches!(e, OAuthError::Provider { status: 400, .. }));
}

#[tokio::test]
async fn provider_text_never_echoes_secrets() {
    let (base, _) = provider(vec![json(
        400,
        r#"{"error":"invalid_grant","error_description":"code the-code for s3cr3t-value is bad"}"#,
    )])
    .await;
    let e = exchange_code(&http(), &LIMITS, &app(&base), "the-code", None)
        .await
        .unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains("the-code") && !shown.contains("s3cr3t"),
        "{shown}"
    );
}

#[tokio::test]
async fn non_json_200_is_missing_token() {
    let (base, _) = provider(vec![response(200, "text/html", "<html>hello</html>")]).await;
    let e = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "(missing_token) Missing access token parameter."
    );
    assert!(matches!(e, OAuthError::MissingToken { status: 200 }));
    assert!(!e.is_transient());
}

#[tokio::test]
async fn form_encoded_token_is_accepted_like_oauthlib() {
    let (base, _) = provider(vec![response(
        200,
        "application/x-www-form-urlencoded",
        "access_token=at-f&token_type=bearer&expires_in=60",
    )])
    .await;
    let t = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
        .await
        .unwrap();
    assert_eq!(t.access_token.expose_secret(), "at-f");
    assert_eq!(t.expires_in, Some(60));
}

#[tokio::test]
async fn weird_token_type() {
    let (base, _) = provider(vec![
        json(200, r#"{"access_token":"a","token_type":"weird"}"#),
        json(200, r#"{"access_token":"a"}"#),
    ])
    .await;
    for _ in 0..2 {
        let e = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
            .await
            .unwrap_err();
        assert!(matches!(e, OAuthError::InvalidTokenType));
        assert_eq!(e.to_string(), "Received an invalid token type.");
    }
}

#[tokio::test]
async fn missing_access_token() {
    let (base, _) = provider(vec![json(200, r#"{"token_type":"bearer","expires_in":1}"#)]).await;
    let e = refresh(
        &http(),
        &LIMITS,
        &app(&base),
        Some(&SecretString::from("rt")),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, OAuthError::MissingToken { status: 200 }));
}

#[tokio::test]
async fn server_error_500_is_transient() {
    let (base, _) = provider(vec![
        response(500, "text/html", "<h1>Internal Server Error</h1>"),
        json(503, r#"{"error":"temporarily_unavailable"}"#),
        json(500, TOKEN_OK),
    ])
    .await;
    let e = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
        .await
        .unwrap_err();
    assert!(matches!(e, OAuthError::MissingToken { status: 500 }));
    assert!(e.is_transient());
    let e = client_credentials(&http(), &LIMITS, &app(&base))
        .await
        .unwrap_err();
    assert!(matches!(e, OAuthError::Provider { status: 503, .. }));
    assert!(e.is_transient() && !e.is_invalid_grant());
    // A token in a 5xx answer is not accepted.
    let e = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
        .await
        .unwrap_err();
    assert!(matches!(e, OAuthError::MissingToken { status: 500 }));
}

#[test]
fn token_set_debug_hides_tokens() {
    let raw = RawResponse {
        status: 200,
        body: TOKEN_OK.as_bytes().to_vec(),
    };
    let t = parse_token_response(&raw, &[]).unwrap();
    let shown = format!("{t:?}");
    assert!(
        !shown.contains("at-1") && !shown.contains("rt-1"),
        "{shown}"
    );
    let raw = RawResponse {
        status: 200,
        body: br#"{"access_token":"a","token_type":"BEARER","scope":["a","b"],"expires_in":12.7}"#
            .to_vec(),
    };
    let t = parse_token_response(&raw, &[]).unwrap();
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.scope.as_deref(), Some("a b"));
    assert_eq!(t.expires_in, Some(12));
}

fn parse(body: &str) -> Result<TokenSet, OAuthError> {
    parse_token_response(
        &RawResponse {
            status: 200,
            body: body.as_bytes().to_vec(),
        },
        &[],
    )
}

#[test]
fn slacks_user_token_nested_in_authed_user() {
    let t = parse(
        r#"{"ok":true,"app_id":"A1","team":{"id":"T1"},"authed_user":{"id":"U1","scope":"chat:write,users:read","access_token":"xoxp-1","token_type":"user","refresh_token":"xoxe-1","expires_in":43200}}"#,
    )
    .unwrap();
    assert_eq!(t.access_token.expose_secret(), "xoxp-1");
    assert_eq!(t.refresh_token.unwrap().expose_secret(), "xoxe-1");
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.expires_in, Some(43200));
    assert_eq!(t.scope.as_deref(), Some("chat:write users:read"));
    assert_eq!(
        serde_json::Value::Object(t.extra.0.clone()),
        serde_json::json!({"app_id": "A1", "team": {"id": "T1"}, "authed_user": {"id": "U1"}})
    );
    // A bot token at the top wins; the user's stays in the extras.
    let t = parse(
        r#"{"ok":true,"access_token":"xoxb-1","token_type":"bot","scope":"commands","authed_user":{"id":"U1","access_token":"xoxp-1","token_type":"user","refresh_token":"xoxe-1"}}"#,
    )
    .unwrap();
    assert_eq!(t.access_token.expose_secret(), "xoxb-1");
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.extra.0["authed_user"]["access_token"], "xoxp-1");
    assert!(
        t.extra.0["authed_user"].get("refresh_token").is_none(),
        "a refresh token is never kept among the extras get_access_token answers"
    );
    // Outside Slack's answers, `bot` is not a token type Frappe accepts.
    assert!(matches!(
        parse(r#"{"access_token":"a","token_type":"bot"}"#),
        Err(OAuthError::InvalidTokenType)
    ));
}

#[test]
fn extras_and_comma_scopes_and_no_expiry() {
    let t = parse(
        r#"{"access_token":"a","token_type":"Bearer","scope":"read:user,user:email","instance_url":"https://na1.example","id_token":"h.p.s"}"#,
    )
    .unwrap();
    assert_eq!(t.scope.as_deref(), Some("read:user user:email"));
    assert_eq!(t.expires_in, None);
    assert!(!t.from_refresh);
    let keys: Vec<&String> = t.extra.0.keys().collect();
    assert_eq!(keys, ["instance_url", "id_token"]);
    let shown = format!("{t:?}");
    assert!(
        !shown.contains("h.p.s") && !shown.contains("na1"),
        "{shown}"
    );
    // Frappe's keys only: no extras.
    let t = parse(TOKEN_OK).unwrap();
    assert!(t.extra.0.is_empty());
    // A form-encoded answer (GitHub without Accept: application/json).
    let t = parse("access_token=gho_1&scope=repo%2Cgist&token_type=bearer").unwrap();
    assert_eq!(t.scope.as_deref(), Some("repo gist"));
    assert_eq!(t.expires_in, None);
}
