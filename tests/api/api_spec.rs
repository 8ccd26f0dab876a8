//! `api-spec/openapi.yaml` against the router: every route the service serves is in the spec
//! and every operation of the spec is a route, and the method names the dispatcher lists are
//! the ones it really runs.

use std::collections::BTreeSet;

use connected_apps::routes::{route_list, METHODS};
use serde_json::{json, Value};

use crate::helpers::*;

const SPEC: &str = include_str!("../../api-spec/openapi.yaml");
const HTTP_METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn spec() -> Value {
    serde_norway::from_str(SPEC).expect("api-spec/openapi.yaml is valid YAML")
}

/// `(method, path)` of every operation in the spec.
fn spec_operations(spec: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for m in HTTP_METHODS {
            if item.get(m).is_some() {
                out.insert((m.to_string(), path.clone()));
            }
        }
    }
    out
}

/// `(method, path)` of every route, as the spec spells them: `*` routes are GET and POST,
/// `{method:.*}` is `{method}`, and `/api/method/{method}` is one path per dispatched name.
fn router_operations() -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (method, pattern) in route_list() {
        let methods: Vec<String> = match method {
            "*" => vec!["get".into(), "post".into()],
            m => vec![m.to_lowercase()],
        };
        let paths: Vec<String> = if pattern == "/api/method/{method}" {
            METHODS
                .iter()
                // `{method}` stops at a slash: `Connected App/has_token` is v2 only.
                .filter(|n| !n.contains('/'))
                .map(|n| format!("/api/method/{n}"))
                .collect()
        } else {
            vec![pattern.replace("{method:.*}", "{method}")]
        };
        for m in &methods {
            for p in &paths {
                out.insert((m.clone(), p.clone()));
            }
        }
    }
    out
}

#[test]
fn every_route_is_in_the_spec_and_every_spec_operation_is_a_route() {
    let spec = spec();
    let in_spec = spec_operations(&spec);
    let in_router = router_operations();
    let missing: Vec<_> = in_router.difference(&in_spec).collect();
    let extra: Vec<_> = in_spec.difference(&in_router).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "routes missing from api-spec/openapi.yaml: {missing:#?}\n\
         operations in the spec that the router does not serve: {extra:#?}"
    );
}

#[test]
fn the_spec_lists_exactly_the_dispatched_method_names_under_api_v2_method() {
    let spec = spec();
    let param = spec["paths"]["/api/v2/method/{method}"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == "method")
        .expect("the method parameter")
        .clone();
    let listed: BTreeSet<&str> = param["schema"]["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .map(|v| v.as_str().expect("a name"))
        .collect();
    let dispatched: BTreeSet<&str> = METHODS.iter().copied().collect();
    assert_eq!(listed, dispatched);
}

#[test]
fn the_spec_is_openapi_3_1_and_every_reference_resolves() {
    let spec = spec();
    assert_eq!(spec["openapi"], "3.1.0");
    let mut refs = Vec::new();
    collect_refs(&spec, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r.strip_prefix('#').expect("a local reference");
        assert!(spec.pointer(pointer).is_some(), "dangling $ref {r}");
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The answer `run` gives a name it does not know.
fn is_unknown_method(body: &Value) -> bool {
    let text = body.to_string();
    text.contains("is not whitelisted") || text.contains("Failed to get method")
}

#[tokio::test]
async fn every_listed_method_name_is_dispatched_and_other_names_are_unknown() {
    // Only the dispatch is under test: one backend is enough, and nothing is stored.
    let app = spawn_app(Backend::Sqlite).await;
    for name in METHODS {
        let path = format!("/api/v2/method/{}", name.replace(' ', "%20"));
        let (status, body) = app.post(&app.admin, &path, &json!({})).await;
        assert!(
            !is_unknown_method(&body),
            "{name} is listed but not dispatched: {status} {body}"
        );
    }
    let (status, body) = app
        .post(
            &app.admin,
            "/api/v2/method/frappe.client.no_such",
            &json!({}),
        )
        .await;
    assert!(is_unknown_method(&body), "{status} {body}");
}
