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
