use serde_json::Value;

use super::{permits, validate, validate_endpoint, ConnectedApp, CALLBACK_PATH};
use crate::doc::perm::Perm;
use crate::doc::Doc;
use crate::frappe::meta::CONNECTED_APP;

#[test]
fn role_all_may_only_read_connected_apps() {
    assert!(permits(Perm::Read));
    for perm in [Perm::Write, Perm::Create, Perm::Delete] {
        assert!(!permits(perm));
    }
}

#[test]
fn validate_sets_the_redirect_uri_and_refuses_endpoints_that_are_not_http_urls() {
    let mut doc = Doc::new(&CONNECTED_APP, "abc123".into());
    doc.row.set(
        "token_uri",
        Value::String("https://idp.example/token".into()),
    );
    validate("https://svc.example", &mut doc).unwrap();
    assert_eq!(
        doc.row.get_str("redirect_uri").map(str::to_string),
        Some(format!("https://svc.example{CALLBACK_PATH}/abc123"))
    );
    assert_eq!(ConnectedApp::of(&doc).name(), "abc123");
    doc.row
        .set("revocation_uri", Value::String("file:///etc/passwd".into()));
    assert!(validate("https://svc.example", &mut doc).is_err());
    assert!(validate_endpoint("http://idp.example/x", "token_uri").is_ok());
    assert!(validate_endpoint("idp.example/x", "token_uri").is_err());
}
