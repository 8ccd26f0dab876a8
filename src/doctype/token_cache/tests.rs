use super::identity::name;
use super::Key;

#[test]
fn names_are_app_dash_user_and_different_pairs_can_make_the_same_one() {
    assert_eq!(
        name("a", Some("mary-jane@corp.example")),
        "a-mary-jane@corp.example"
    );
    assert_eq!(
        name("a-mary", Some("jane@corp.example")),
        "a-mary-jane@corp.example"
    );
    assert_eq!(name("a", None), "a-");
    assert_eq!(Key::app_itself("a").name(), "a-");
}

#[test]
fn only_the_rows_own_app_and_user_match_whatever_its_name() {
    let jane = Key::user("a-mary", "jane@corp.example");
    assert!(jane.matches_columns(Some("a-mary"), Some("jane@corp.example")));
    assert!(jane.matches_columns(Some("A-Mary"), Some("JANE@corp.example")));
    // mary-jane's connection to `a` has jane's name for `a-mary`, but not her columns.
    assert!(!jane.matches_columns(Some("a"), Some("mary-jane@corp.example")));
    assert!(!jane.matches_columns(Some("a-mary"), None));
    assert!(!jane.matches_columns(None, Some("jane@corp.example")));
    // The app's own token has no user (NULL or empty, as Frappe leaves it).
    let own = Key::app_itself("a");
    assert!(own.matches_columns(Some("a"), None));
    assert!(own.matches_columns(Some("a"), Some("")));
    assert!(!own.matches_columns(Some("a"), Some("mary-jane@corp.example")));
}

use chrono::NaiveDateTime;
use serde_json::{json, Map, Value};

use super::{autoname, kept_on_update, permits, TokenCache};
use crate::auth::{AuthMethod, CurrentUser};
use crate::doc::perm::Perm;

fn at(s: &str) -> NaiveDateTime {
    crate::frappe::time::parse(s).unwrap()
}

fn body(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

fn user(name: &str) -> CurrentUser {
    CurrentUser {
        name: name.into(),
        roles: vec!["All".into()],
        method: AuthMethod::ApiKey,
        sid: None,
    }
}

#[test]
fn a_token_cache_made_through_the_api_is_named_by_its_app_and_user() {
    let b = body(json!({"connected_app": "a-mary", "user": "jane@corp.example"}));
    assert_eq!(autoname(&b), "a-mary-jane@corp.example");
    assert_eq!(autoname(&body(json!({"connected_app": "a"}))), "a-");
}

#[test]
fn a_user_may_read_and_delete_only_its_own_token_caches() {
    let jane = user("jane@corp.example");
    assert!(permits(&jane, Perm::Read, Some("JANE@corp.example")));
    assert!(permits(&jane, Perm::Delete, Some("jane@corp.example")));
    assert!(!permits(&jane, Perm::Write, Some("jane@corp.example")));
    assert!(!permits(&jane, Perm::Read, Some("mary@corp.example")));
    assert!(!permits(&jane, Perm::Create, None));
}

#[test]
fn a_new_row_takes_its_name_app_and_user_from_the_key() {
    let now = at("2026-11-28 08:35:16.132698");
    let key = Key::user("a-mary", "jane@corp.example");
    let tc = TokenCache::new(&key, Some("Provider"), "Administrator", now);
    assert_eq!(tc.name(), "a-mary-jane@corp.example");
    assert!(tc.is_of(&key));
    assert!(!tc.is_of(&Key::user("a", "mary-jane@corp.example")));
    assert_eq!(tc.app(), Some("a-mary"));
    assert_eq!(tc.user(), Some("jane@corp.example"));
    assert_eq!(tc.expires_in(), 0);
    assert_eq!(tc.state(), "");
    let row = &tc.doc().row;
    assert_eq!(row.get_str("provider_name"), Some("Provider"));
    assert_eq!(row.owner.as_deref(), Some("Administrator"));
    assert_eq!((row.creation, row.modified), (Some(now), Some(now)));
    // The app's own token has no user.
    let own = TokenCache::new(&Key::app_itself("a"), None, "Administrator", now);
    assert_eq!(own.name(), "a-");
    assert_eq!(own.user(), None);
    assert_eq!(own.doc().row.value("provider_name"), Value::Null);
}

#[test]
fn the_setters_write_the_fields_a_flow_changes() {
    let now = at("2026-11-28 08:35:16.132698");
    let later = at("2026-11-28 09:00:00.000000");
    let mut tc = TokenCache::new(&Key::user("a", "jane@corp.example"), None, "jane", now);
    tc.set_state(Some("abc"));
    tc.set_success_uri(Some("/done"));
    assert_eq!((tc.state(), tc.success_uri()), ("abc", Some("/done")));
    tc.set_state(None);
    tc.set_success_uri(None);
    assert_eq!(tc.doc().row.value("state"), Value::Null);
    assert_eq!(tc.success_uri(), None);
    tc.set_expires_in(Some(i64::MAX));
    assert_eq!(tc.expires_in(), i64::from(i32::MAX));
    tc.set_expires_in(None);
    assert_eq!(tc.expires_in(), 0);
    tc.set_token_type("Bearer");
    assert_eq!(tc.token_type(), Some("Bearer"));
    assert_eq!(tc.set_scopes(" read  write ", "bot", later), "scopes");
    assert_eq!(tc.scopes(), ["read", "write"]);
    let rows = tc.doc().child("scopes");
    assert_eq!(rows[1].row.idx, 2);
    assert_eq!(rows[1].row.get_str("parent"), Some("a-jane@corp.example"));
    assert_eq!(rows[1].row.get_str("parenttype"), Some("Token Cache"));
    assert!(rows
        .iter()
        .all(|r| r.unsaved && r.row.modified == Some(later)));
    tc.touch("bot", later);
    assert_eq!(tc.modified(), Some(later));
    assert_eq!(tc.doc().row.modified_by.as_deref(), Some("bot"));
}

#[test]
fn a_save_keeps_whose_connection_a_row_is() {
    let now = at("2026-11-28 08:35:16.132698");
    let tc = TokenCache::new(&Key::user("a", "jane@corp.example"), None, "jane", now);
    let same = body(json!({"connected_app": "A", "user": "JANE@corp.example", "state": "x"}));
    let kept = kept_on_update(tc.doc(), &same).unwrap();
    assert_eq!(
        kept,
        [
            ("connected_app", json!("a")),
            ("user", json!("jane@corp.example"))
        ]
    );
    for other in [
        json!({"user": "mary@corp.example"}),
        json!({"connected_app": "b"}),
        json!({"user": null}),
    ] {
        assert!(kept_on_update(tc.doc(), &body(other)).is_err());
    }
}
