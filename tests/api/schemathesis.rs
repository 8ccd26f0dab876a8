//! Schemathesis (PyPI, pinned in `scripts/test`) fuzzes the live service from
//! `api-spec/openapi.yaml` on MariaDB, as a System Manager and as a plain user: no server
//! error, no response outside the spec, no crash. The run is bounded by the number of
//! examples per operation so the suite stays within CI's time.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

/// Test cases per operation and phase; enough to reach every documented branch quickly.
const MAX_EXAMPLES: &str = "8";

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

async fn schemathesis(app: &TestApp, auth: &str, who: &str) {
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/api-spec/openapi.yaml");
    let run = tokio::process::Command::new(python())
        .args([
            "-m",
            "schemathesis.cli",
            "--no-color",
            "run",
            spec,
            "--url",
            &app.address,
        ])
        .args(["--header", &format!("Authorization: {auth}")])
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", "20240611"])
        // One worker: CPython 3.11 can fail parsing in two threads at once ("AST constructor
        // recursion depth mismatch"), which Hypothesis does while describing strategies.
        .args(["--workers", "1"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("schemathesis finishes within 5 minutes")
        .expect("schemathesis runs (pip install schemathesis; see scripts/test)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis as {who} found problems ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("passed"), "{stdout}");
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_response_outside_the_spec() {
    // The issue asks for the production backend; SQLite runs the same handlers.
    let app = spawn_app(Backend::Mysql).await;
    let manager = app.user("manager@example.com", &["System Manager"]).await;
    let plain = app.user("plain@example.com", &[]).await;
    let ca = app
        .create_app(json!({
            "provider_name": "Fuzzed",
            "client_id": "fuzz-client",
            "client_secret": "fuzz-secret",
            "authorization_uri": "http://127.0.0.1:1/authorize",
            "token_uri": "http://127.0.0.1:1/token",
            "revocation_uri": "http://127.0.0.1:1/revoke",
            "scopes": [{"scope": "openid"}],
            "query_parameters": [{"key": "prompt", "value": "consent"}],
        }))
        .await;
    let name = ca["name"].as_str().unwrap();
    for user in ["plain@example.com", "manager@example.com"] {
        let (status, v) = app
            .post(
                &app.admin,
                "/api/resource/Token%20Cache",
                &json!({
                    "connected_app": name,
                    "user": user,
                    "access_token": "seeded-access-token",
                    "refresh_token": "seeded-refresh-token",
                    "expires_in": 3600,
                    "token_type": "Bearer",
                }),
            )
            .await;
        assert_eq!(status, 200, "seed a Token Cache: {v}");
    }

    schemathesis(&app, &manager, "a System Manager").await;
    schemathesis(&app, &plain, "a plain user").await;
}
