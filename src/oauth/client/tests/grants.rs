//! Unit tests: grants.

use super::*;

#[tokio::test]
async fn refresh_body_matches_frappe() {
    let (base, seen) = provider(vec![json(
        200,
        r#"{"access_token":"at-2","token_type":"Bearer","expires_in":"3600"}"#,
    )])
    .await;
    let rt = SecretString::from("rt-1");
    let t = refresh(&http(), &LIMITS, &app(&base), Some(&rt))
        .await
        .unwrap();
    assert_eq!(t.access_token.expose_secret(), "at-2");
    assert!(t.refresh_token.is_none());
    assert_eq!(t.expires_in, Some(3600));
    let seen = seen.lock().unwrap();
    assert_token_request_headers(&seen[0]);
    // console 403
    assert_eq!(
        seen[0].sorted_form(),
        pairs(&[
            ("redirect_uri", REDIRECT),
            ("grant_type", "refresh_token"),
            ("client_id", "client-abc"),
            ("client_secret", "s3cr3t-value"),
            ("scope", "openid email profile"),
            ("refresh_token", "rt-1"),
        ])
    );
}

#[tokio::test]
async fn refresh_without_refresh_token_matches_console_411() {
    let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
    refresh(&http(), &LIMITS, &app(&base), None).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_token_request_headers(&seen[0]);
    assert_eq!(
        seen[0].body,
        format!(
            "redirect_uri={}&grant_type=refresh_token&client_id=client-abc&client_secret=s3cr3t-value&scope=openid+email+profile",
            "http%3A%2F%2F127.0.0.1%3A8000%2Fapi%2Fmethod%2Ffrappe.integrations.doctype.connected_app.connected_app.callback%2F90c7bdi80h"
        )
    );
}

#[tokio::test]
async fn client_credentials_matches_console_413() {
    let (base, seen) = provider(vec![json(
        200,
        r#"{"access_token":"bt","token_type":"MAC","expires_in":3600}"#,
    )])
    .await;
    let t = client_credentials(&http(), &LIMITS, &app(&base))
        .await
        .unwrap();
    assert_eq!(t.token_type, "MAC");
    let seen = seen.lock().unwrap();
    let c = &seen[0];
    assert_eq!(c.request_line(), "POST /token HTTP/1.1");
    assert_eq!(
        c.header("authorization").as_deref(),
        Some("Basic Y2xpZW50LWFiYzpzM2NyM3QtdmFsdWU=")
    );
    assert_eq!(c.header("accept").as_deref(), Some("application/json"));
    assert_eq!(
        c.body,
        "grant_type=client_credentials&scope=openid+email+profile"
    );
}

#[tokio::test]
async fn client_credentials_basic_is_not_urlencoded() {
    let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
    let mut a = app(&base);
    a.client_id = "id:with space".into();
    a.client_secret = Some(SecretString::from("p@ss/+"));
    client_credentials(&http(), &LIMITS, &a).await.unwrap();
    let expected = base64::engine::general_purpose::STANDARD.encode("id:with space:p@ss/+");
    assert_eq!(
        seen.lock().unwrap()[0].header("authorization"),
        Some(format!("Basic {expected}"))
    );
}

#[tokio::test]
async fn revoke_body() {
    let (base, seen) = provider(vec![response(200, "text/plain", "")]).await;
    let tok = SecretString::from("rt-9");
    revoke(&http(), &LIMITS, &app(&base), &tok, TokenKind::RefreshToken)
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    let c = &seen[0];
    assert_eq!(c.request_line(), "POST /revoke HTTP/1.1");
    assert_eq!(c.header("authorization"), None);
    assert_eq!(
        c.sorted_form(),
        pairs(&[
            ("token", "rt-9"),
            ("token_type_hint", "refresh_token"),
            ("client_id", "client-abc"),
            ("client_secret", "s3cr3t-value"),
        ])
    );
}

#[tokio::test]
async fn revoke_errors() {
    let (base, _) = provider(vec![
        json(400, r#"{"error":"unsupported_token_type"}"#),
        response(503, "text/html", "<p>down</p>"),
    ])
    .await;
    let tok = SecretString::from("at-9");
    let a = app(&base);
    let e = revoke(&http(), &LIMITS, &a, &tok, TokenKind::AccessToken)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "(unsupported_token_type) ");
    let e = revoke(&http(), &LIMITS, &a, &tok, TokenKind::AccessToken)
        .await
        .unwrap_err();
    assert!(matches!(e, OAuthError::Status { status: 503, .. }));
    assert!(e.is_transient());
    let mut a = app(&base);
    a.revocation_uri = None;
    assert!(matches!(
        revoke(&http(), &LIMITS, &a, &tok, TokenKind::AccessToken).await,
        Err(OAuthError::NotConfigured("revocation_uri"))
    ));
}
