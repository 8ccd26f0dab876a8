//! The two client libraries people use with Frappe, unchanged, against the service on both
//! backends: Frappe's Python `frappe-client` (vendored in `tests/clients/frappe-client`) run by
//! `tests/clients/frappe_client_check.py`, and `frappe-js-sdk` from npm (`tests/clients/js`) run
//! by `tests/clients/js/frappe_js_sdk_check.mjs`. Each script makes many calls against one
//! service and prints `ok   <check>` or `FAIL <check>: …` per check; every expectation is
//! what the same library call gets from a Frappe v15 site.

use std::path::{Path, PathBuf};

use connected_apps::commands::{add_user, generate_api_key};

use crate::helpers::*;

const SM_EMAIL: &str = "sm@example.com";
const PLAIN_EMAIL: &str = "plain@example.com";
const OTHER_EMAIL: &str = "other@example.com";
const PASSWORD: &str = "client-pass-1";

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// A fresh service with a System Manager and two users with no role but `All`, and the
/// environment the scripts read (URL, passwords, API keys).
async fn service_for_clients(backend: Backend) -> (TestApp, Vec<(String, String)>) {
    let app = spawn_app(backend).await;
    let mut env = vec![
        ("SERVICE_URL".to_string(), app.address.clone()),
        ("ADMIN_PASSWORD".to_string(), "admin-pass".to_string()),
    ];
    let admin = app
        .admin
        .strip_prefix("token ")
        .and_then(|t| t.split_once(':'))
        .map(|(k, s)| (k.to_string(), s.to_string()))
        .expect("admin token");
    env.push(("ADMIN_KEY".to_string(), admin.0));
    env.push(("ADMIN_SECRET".to_string(), admin.1));
    for (prefix, email, roles) in [
        ("SM", SM_EMAIL, vec!["System Manager".to_string()]),
        ("PLAIN", PLAIN_EMAIL, vec![]),
        ("OTHER", OTHER_EMAIL, vec![]),
    ] {
        add_user(&app.state, email, None, &roles, Some(PASSWORD))
            .await
            .expect("add user");
        let (key, secret) = generate_api_key(&app.state, email).await.expect("api key");
        env.push((format!("{prefix}_EMAIL"), email.to_string()));
        env.push((format!("{prefix}_PASSWORD"), PASSWORD.to_string()));
        env.push((format!("{prefix}_KEY"), key));
        env.push((format!("{prefix}_SECRET"), secret));
    }
    (app, env)
}

/// Runs a check script; returns its check lines as the error unless every check passed.
async fn run_checks(
    backend: Backend,
    program: std::ffi::OsString,
    script: &Path,
    cwd: &Path,
    env: &[(String, String)],
) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new(&program);
    cmd.arg(script)
        .current_dir(cwd)
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(std::time::Duration::from_secs(240), cmd.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{backend:?}: {} did not finish within 240 s",
                script.display()
            )
        })
        .unwrap_or_else(|e| panic!("{backend:?}: cannot run {program:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Only the check lines: the libraries print whole bodies they cannot parse.
    let checks: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("ok ") || l.starts_with("FAIL") || l.starts_with("summary: "))
        .collect();
    let failing = checks.iter().filter(|l| l.starts_with("FAIL")).count();
    let ok = checks.iter().filter(|l| l.starts_with("ok ")).count();
    let stderr_tail: String = {
        let chars: Vec<char> = stderr.chars().collect();
        chars[chars.len().saturating_sub(4000)..].iter().collect()
    };
    if out.status.success()
        && failing == 0
        && ok > 0
        && checks.last().is_some_and(|l| l.starts_with("summary: "))
    {
        return Ok(());
    }
    Err(format!(
        "{backend:?}: {} ({}): {ok} checks passed, {failing} failed:\n{}\n\nstderr:\n{stderr_tail}",
        script.display(),
        out.status,
        checks.join("\n"),
    ))
}

/// Runs the script on each backend (both, even when the first fails) and fails with both outputs.
async fn on_both_backends(program: std::ffi::OsString, script: PathBuf, cwd: PathBuf) {
    let mut failures = Vec::new();
    for backend in BACKENDS {
        let (_app, env) = service_for_clients(backend).await;
        if let Err(e) = run_checks(backend, program.clone(), &script, &cwd, &env).await {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn frappes_python_client_works_unchanged_on_both_backends() {
    let python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let dir = clients_dir();
    on_both_backends(python, dir.join("frappe_client_check.py"), dir).await;
}

#[tokio::test]
async fn frappe_js_sdk_works_unchanged_on_both_backends() {
    let dir = clients_dir().join("js");
    assert!(
        dir.join("node_modules/frappe-js-sdk").is_dir(),
        "tests/clients/js/node_modules is missing: run `npm ci` there (./scripts/test does it)"
    );
    let node = std::env::var_os("NODE").unwrap_or_else(|| "node".into());
    on_both_backends(node, dir.join("frappe_js_sdk_check.mjs"), dir).await;
}
