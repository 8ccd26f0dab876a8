//! Unit tests: http.

use super::*;

#[tokio::test]
async fn response_over_the_cap() {
    let big = format!(
        r#"{{"access_token":"{}","token_type":"bearer"}}"#,
        "x".repeat(5000)
    );
    let mut chunked_head =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n".to_vec();
    chunked_head.extend_from_slice(big.as_bytes());
    let (base, _) = provider(vec![json(200, &big), Canned::Raw(chunked_head)]).await;
    for _ in 0..2 {
        let e = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
            .await
            .unwrap_err();
        assert!(
            matches!(e, OAuthError::TooLarge { limit: 4096, .. }),
            "{e:?}"
        );
    }
}

#[tokio::test]
async fn provider_that_never_answers_times_out() {
    let (base, _) = provider(vec![Canned::Hang]).await;
    let http = build_http_client(
        Duration::from_millis(500),
        Duration::from_millis(500),
        &loopback(),
    )
    .unwrap();
    let mut a = app(&base);
    a.token_uri = Some(format!("{base}/token?api_key=hidden"));
    let started = std::time::Instant::now();
    let e = exchange_code(&http, &LIMITS, &a, "the-code", None)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(matches!(e, OAuthError::Timeout { .. }), "{e:?}");
    assert!(e.is_transient());
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("/token"));
    for secret in ["hidden", "the-code", "s3cr3t"] {
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[tokio::test]
async fn unreachable_provider() {
    // Bind then drop, so nothing listens on the port.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let e = client_credentials(&http(), &LIMITS, &app(&base))
        .await
        .unwrap_err();
    assert!(matches!(e, OAuthError::Unreachable { .. }), "{e:?}");
    assert!(e.is_transient());
    assert!(!format!("{e} {e:?}").contains("s3cr3t"));
}

/// Every flow refuses non-public destinations before connecting: loopback (with a real
/// listener that counts connections), a name resolving to it, and literal addresses that
/// are checked before any socket exists (`Refused` is only made before `execute` or by the
/// resolver, never after a connection attempt).
#[tokio::test]
async fn refused_destinations_are_never_contacted() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let none = build_http_client(
        Duration::from_secs(5),
        Duration::from_secs(10),
        &OutboundAllow::default(),
    )
    .unwrap();
    let s = SecretString::from("tok");
    for base in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        format!("http://0.0.0.0:{port}"),
        "http://169.254.169.254".to_owned(),
        "http://10.0.0.1".to_owned(),
        "https://[fd00::1]".to_owned(),
        "http://[fe80::1]".to_owned(),
    ] {
        let a = app(&base);
        let started = std::time::Instant::now();
        let errors = [
            exchange_code(&none, &LIMITS, &a, "c", None).await.err(),
            refresh(&none, &LIMITS, &a, Some(&s)).await.err(),
            refresh(&none, &LIMITS, &a, None).await.err(),
            client_credentials(&none, &LIMITS, &a).await.err(),
            revoke(&none, &LIMITS, &a, &s, TokenKind::RefreshToken)
                .await
                .err(),
            discover(
                &none,
                &LIMITS,
                &format!("{base}/.well-known/openid-configuration"),
            )
            .await
            .err(),
        ];
        for e in errors {
            assert!(
                matches!(e, Some(OAuthError::Refused { .. })),
                "{base}: {e:?}"
            );
            assert!(!e.is_some_and(|e| e.is_transient()));
        }
        assert!(started.elapsed() < Duration::from_secs(2), "{base}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    // The same listener is reached once loopback is allowed.
    let e = client_credentials(&http(), &LIMITS, &app(&format!("http://localhost:{port}")))
        .await
        .unwrap_err();
    assert!(!matches!(e, OAuthError::Refused { .. }), "{e:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn redirect_is_not_followed() {
    let (base, seen) = provider(vec![Canned::Raw(
        b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    )])
    .await;
    let e = exchange_code(&http(), &LIMITS, &app(&base), "abc", None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, OAuthError::MissingToken { status: 302 }),
        "{e:?}"
    );
    let e = discover(
        &http(),
        &LIMITS,
        &format!("{base}/.well-known/openid-configuration"),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, OAuthError::Status { status: 302, .. }), "{e:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|c| !c.request_line().contains("/elsewhere")));
}

#[tokio::test]
async fn not_configured_fails_before_any_request() {
    let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
    let mut a = app(&base);
    a.token_uri = Some("  ".into());
    assert!(matches!(
        exchange_code(&http(), &LIMITS, &a, "abc", None).await,
        Err(OAuthError::NotConfigured("token_uri"))
    ));
    let mut a = app(&base);
    a.client_id.clear();
    assert!(matches!(
        refresh(&http(), &LIMITS, &a, None).await,
        Err(OAuthError::NotConfigured("client_id"))
    ));
    assert!(matches!(
        refresh(&http(), &LIMITS, &a, Some(&SecretString::from("x"))).await,
        Err(OAuthError::NotConfigured("client_id"))
    ));
    assert!(matches!(
        exchange_code(&http(), &LIMITS, &a, "abc", None).await,
        Err(OAuthError::NotConfigured("client_id"))
    ));
    assert!(matches!(
        client_credentials(&http(), &LIMITS, &a).await,
        Err(OAuthError::NotConfigured("client_id"))
    ));
    let mut a = app(&base);
    a.token_uri = Some("file:///etc/passwd".into());
    assert!(matches!(
        exchange_code(&http(), &LIMITS, &a, "abc", None).await,
        Err(OAuthError::InvalidUrl("token_uri"))
    ));
    assert!(matches!(
        discover(&http(), &LIMITS, "file:///etc/passwd").await,
        Err(OAuthError::InvalidUrl(_))
    ));
    assert!(seen.lock().unwrap().is_empty());
}

#[test]
fn flows_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let http = http();
    let a = app("http://127.0.0.1:1");
    let s = SecretString::from("x");
    assert_send(&exchange_code(&http, &LIMITS, &a, "c", Some(&s)));
    assert_send(&refresh(&http, &LIMITS, &a, Some(&s)));
    assert_send(&client_credentials(&http, &LIMITS, &a));
    assert_send(&revoke(&http, &LIMITS, &a, &s, TokenKind::AccessToken));
    assert_send(&discover(&http, &LIMITS, "http://127.0.0.1:1/"));
}
