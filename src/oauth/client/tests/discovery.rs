//! Unit tests: discovery.

use super::*;

#[tokio::test]
async fn discovery() {
    let (base, seen) = provider(vec![
        json(
            200,
            r#"{"issuer":"x","authorization_endpoint":"https://p/auth","token_endpoint":"https://p/token","userinfo_endpoint":"https://p/me","revocation_endpoint":"https://p/revoke","introspection_endpoint":7}"#,
        ),
        response(200, "text/html", "nope"),
    ])
    .await;
    let url = format!("{base}/.well-known/openid-configuration");
    let d = discover(&http(), &LIMITS, &url).await.unwrap();
    assert_eq!(
        d,
        Discovery {
            authorization_endpoint: Some("https://p/auth".into()),
            token_endpoint: Some("https://p/token".into()),
            userinfo_endpoint: Some("https://p/me".into()),
            introspection_endpoint: None,
            revocation_endpoint: Some("https://p/revoke".into()),
            token_endpoint_auth_methods_supported: vec![],
        }
    );
    assert!(matches!(
        discover(&http(), &LIMITS, &url).await,
        Err(OAuthError::InvalidResponse { .. })
    ));
    assert_eq!(
        seen.lock().unwrap()[0].request_line(),
        "GET /.well-known/openid-configuration HTTP/1.1"
    );
}
