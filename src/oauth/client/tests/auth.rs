//! Unit tests: client authentication at the token endpoint.

use super::*;

fn with(base: &str, method: ClientAuth) -> AppEndpoints {
    let mut a = app(base);
    a.client_id = "id:with space".into();
    a.client_secret = Some(SecretString::from("p@ss/+"));
    a.client_auth = method;
    a
}

/// RFC 6749 §2.3.1: both parts form-urlencoded before base64.
fn rfc_basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("id%3Awith+space:p%40ss%2F%2B")
    )
}

#[tokio::test]
async fn client_secret_post_sends_form_fields_for_every_grant() {
    let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
    let a = with(&base, ClientAuth::Post);
    client_credentials(&http(), &LIMITS, &a).await.unwrap();
    refresh(&http(), &LIMITS, &a, None).await.unwrap();
    let seen = seen.lock().unwrap();
    for c in seen.iter() {
        assert_eq!(c.header("authorization"), None);
        let form = c.form();
        assert!(form.contains(&("client_id".into(), "id:with space".into())));
        assert!(form.contains(&("client_secret".into(), "p@ss/+".into())));
    }
    assert_eq!(
        seen[0].body,
        "grant_type=client_credentials&scope=openid+email+profile&client_id=id%3Awith+space&client_secret=p%40ss%2F%2B"
    );
}

#[tokio::test]
async fn client_secret_basic_urlencodes_before_base64_for_every_grant() {
    let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
    let a = with(&base, ClientAuth::Basic);
    let rt = SecretString::from("rt-1");
    exchange_code(&http(), &LIMITS, &a, "abc", None)
        .await
        .unwrap();
    refresh(&http(), &LIMITS, &a, Some(&rt)).await.unwrap();
    refresh(&http(), &LIMITS, &a, None).await.unwrap();
    client_credentials(&http(), &LIMITS, &a).await.unwrap();
    revoke(&http(), &LIMITS, &a, &rt, TokenKind::RefreshToken)
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 5);
    for c in seen.iter() {
        assert_eq!(c.header("authorization"), Some(rfc_basic()), "{c:?}");
        assert!(
            c.form()
                .iter()
                .all(|(k, _)| k != "client_secret" && k != "client_id"),
            "{c:?}"
        );
    }
}

#[tokio::test]
async fn none_sends_the_client_id_alone() {
    let (base, seen) = provider(vec![json(200, TOKEN_OK)]).await;
    let a = with(&base, ClientAuth::None);
    let v = SecretString::from("v".repeat(43));
    exchange_code(&http(), &LIMITS, &a, "abc", Some(&v))
        .await
        .unwrap();
    refresh(&http(), &LIMITS, &a, Some(&SecretString::from("rt")))
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    for c in seen.iter() {
        assert_eq!(c.header("authorization"), None);
        let form = c.form();
        assert!(form.contains(&("client_id".into(), "id:with space".into())));
        assert!(form.iter().all(|(k, _)| k != "client_secret"), "{c:?}");
    }
}

#[tokio::test]
async fn auto_reads_the_discovery_document_once() {
    let (base, seen) = provider(vec![
        json(
            200,
            r#"{"token_endpoint":"x","token_endpoint_auth_methods_supported":["client_secret_post","private_key_jwt"]}"#,
        ),
        json(200, TOKEN_OK),
    ])
    .await;
    let mut a = with(&base, ClientAuth::Auto);
    a.openid_configuration = Some(format!("{base}/.well-known/openid-configuration"));
    let client = http();
    client_credentials(&client, &LIMITS, &a).await.unwrap();
    client_credentials(&client, &LIMITS, &a).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "one discovery, two token requests");
    assert!(seen[0].request_line().starts_with("GET /.well-known/"));
    for c in &seen[1..] {
        assert_eq!(c.header("authorization"), None);
        assert!(c
            .form()
            .contains(&("client_secret".into(), "p@ss/+".into())));
    }
    // Without a discovery URL, auto cannot choose.
    a.openid_configuration = None;
    let fresh = http();
    assert!(matches!(
        client_credentials(&fresh, &LIMITS, &a).await,
        Err(OAuthError::NotConfigured("openid_configuration"))
    ));
}

#[test]
fn auto_prefers_basic_then_post_then_none() {
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        ClientAuth::choose(&names(&["client_secret_post", "client_secret_basic"])),
        ClientAuth::Basic
    );
    assert_eq!(
        ClientAuth::choose(&names(&["private_key_jwt", "client_secret_post", "none"])),
        ClientAuth::Post
    );
    assert_eq!(ClientAuth::choose(&names(&["none"])), ClientAuth::None);
    assert_eq!(ClientAuth::choose(&[]), ClientAuth::Basic);
    assert_eq!(
        ClientAuth::choose(&names(&["tls_client_auth"])),
        ClientAuth::Basic
    );
    for name in ClientAuth::NAMES {
        assert_eq!(
            ClientAuth::from_name(name).and_then(ClientAuth::name),
            Some(name)
        );
    }
    assert_eq!(ClientAuth::from_name("client_secret_jwt"), None);
    assert_eq!(ClientAuth::Frappe.name(), None);
}
