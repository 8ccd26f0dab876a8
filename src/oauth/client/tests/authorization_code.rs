//! Unit tests: authorization_code.

use super::*;

#[test]
fn authorization_url_matches_exchange_301() {
    let a = app("http://127.0.0.1:9100");
    assert_eq!(
        authorization_url(&a, RECORDED_STATE, None).unwrap(),
        RECORDED_URL
    );
}

#[test]
fn authorization_url_with_pkce() {
    let a = app("http://127.0.0.1:9100");
    let expected = RECORDED_URL.replace(
        "&access_type=",
        "&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&access_type=",
    );
    let got = authorization_url(
        &a,
        RECORDED_STATE,
        Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"),
    )
    .unwrap();
    assert_eq!(got, expected);
}

#[test]
fn authorization_url_python_quirks() {
    let mut a = app("http://127.0.0.1:9100");
    a.authorization_uri = Some("https://idp.example/auth?tenant=a%20b&x=1#frag".into());
    a.scopes = vec!["a:b".into(), "c/d*~".into()];
    a.query_params = vec![
        ("access_type".into(), "offline".into()),
        ("empty".into(), String::new()),
        ("state".into(), "clash".into()),
        ("access_type".into(), "online".into()),
        ("é".into(), "ü&=".into()),
    ];
    let got = authorization_url(&a, "s", None).unwrap();
    assert_eq!(
        got,
        format!(
            "https://idp.example/auth?tenant=a+b&x=1&response_type=code&client_id=client-abc&redirect_uri={}&scope=a%3Ab+c%2Fd%2A~&state=s&access_type=online&%C3%A9=%C3%BC%26%3D#frag",
            "http%3A%2F%2F127.0.0.1%3A8000%2Fapi%2Fmethod%2Ffrappe.integrations.doctype.connected_app.connected_app.callback%2F90c7bdi80h"
        )
    );
}

#[test]
fn authorization_url_not_configured() {
    let mut a = app("http://127.0.0.1:9100");
    a.authorization_uri = None;
    assert!(matches!(
        authorization_url(&a, "s", None),
        Err(OAuthError::NotConfigured("authorization_uri"))
    ));
    let mut a = app("http://127.0.0.1:9100");
    a.client_id.clear();
    assert!(matches!(
        authorization_url(&a, "s", None),
        Err(OAuthError::NotConfigured("client_id"))
    ));
    let mut a = app("http://127.0.0.1:9100");
    a.authorization_uri = Some("ftp://x/y".into());
    assert!(matches!(
        authorization_url(&a, "s", None),
        Err(OAuthError::InvalidUrl("authorization_uri"))
    ));
}

#[test]
fn pkce_and_state() {
    use sha2::Digest as _;
    let p = Pkce::generate();
    assert_eq!(p.verifier.expose_secret().len(), 43);
    let digest = sha2::Sha256::digest(p.verifier.expose_secret().as_bytes());
    assert_eq!(
        p.challenge,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
    );
    let s = generate_state();
    assert_eq!(s.len(), 30);
    assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_ne!(s, generate_state());
}

#[tokio::test]
async fn code_exchange_body_matches_frappe() {
    let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
    let t = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
        .await
        .unwrap();
    assert_eq!(t.access_token.expose_secret(), "at-1");
    assert_eq!(t.refresh_token.unwrap().expose_secret(), "rt-1");
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.expires_in, Some(3600));
    assert_eq!(t.scope.as_deref(), Some("openid email"));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_token_request_headers(&seen[0]);
    assert_eq!(seen[0].sorted_form(), recorded_code_form());
}

#[tokio::test]
async fn code_exchange_with_pkce_adds_verifier_only() {
    let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
    let verifier = SecretString::from("v".repeat(43));
    exchange_code(&http(), &LIMITS, &app(&base), "abc", Some(&verifier))
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_token_request_headers(&seen[0]);
    let mut expected = recorded_code_form();
    expected.push(("code_verifier".into(), "v".repeat(43)));
    expected.sort();
    assert_eq!(seen[0].sorted_form(), expected);
}

#[tokio::test]
async fn code_exchange_skips_empty_and_clashing_query_params() {
    let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
    let mut a = app(&base);
    a.query_params.push(("code".into(), "evil".into()));
    a.query_params.push(("empty".into(), String::new()));
    exchange_code(&http(), &LIMITS, &a, "abc", None)
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap()[0].sorted_form(), recorded_code_form());
}
