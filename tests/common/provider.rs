//! Test helper: runs the oidc-provider based OAuth 2.0 / OpenID provider in
//! `tests/provider/provider.js` (see the comment at the top of that file for the config format)
//! as a child process on a free loopback port.
//!
//! ```ignore
//! mod common;
//! use common::provider::TestProvider;
//!
//! let p = TestProvider::start(serde_json::json!({
//!     "accessTokenTTL": 2,
//!     "clients": [{ "client_id": "app", "client_secret": "s3cret",
//!                   "redirect_uris": ["http://127.0.0.1:8000/callback"] }]
//! })).await;
//! let issuer = p.base_url();              // "http://127.0.0.1:PORT"
//! let redirect = p.authorize(&auth_url).await; // follows the autoApprove redirects
//! let reqs = p.requests().await;          // token + revocation requests seen so far
//! ```
//!
//! The provider directory is `$TEST_PROVIDER_DIR` (set by scripts/test) or
//! `<crate root>/tests/provider`; `node` is taken from `$NODE` or `PATH`.
//! `npm ci` must have been run in that directory (scripts/test does it).
//! The child is killed when the `TestProvider` is dropped.
//!
//! Only `std`, `serde_json`, `reqwest` (0.12, `json`) and `tokio` (`process`, `time`) are used.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const READY_TIMEOUT: Duration = Duration::from_secs(20);

pub struct TestProvider {
    child: tokio::process::Child,
    base_url: String,
    http: reqwest::Client,
    dir: PathBuf,
}

impl TestProvider {
    /// Starts the provider with `config` (a JSON object, see provider.js) and waits for `READY`.
    /// Panics (with the provider's output) if it does not come up within 20 s.
    pub async fn start(config: Value) -> TestProvider {
        match Self::try_start(config).await {
            Ok(p) => p,
            Err(e) => panic!("test OAuth provider failed to start: {e}"),
        }
    }

    /// Starts the provider with the built-in default config (client `test-client`/`test-secret`).
    pub async fn start_default() -> TestProvider {
        Self::start(serde_json::json!({})).await
    }

    pub async fn try_start(config: Value) -> Result<TestProvider, String> {
        let provider_dir = provider_dir();
        let script = provider_dir.join("provider.js");
        if !script.is_file() {
            return Err(format!("{} not found", script.display()));
        }
        if !provider_dir.join("node_modules").is_dir() {
            return Err(format!(
                "{}/node_modules is missing: run `npm ci` there (./scripts/test does it)",
                provider_dir.display()
            ));
        }

        let dir = unique_temp_dir()?;
        let config_path = dir.join("config.json");
        let stdout_path = dir.join("stdout.log");
        let text = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
        std::fs::write(&config_path, text)
            .map_err(|e| format!("writing {}: {e}", config_path.display()))?;
        let stdout = std::fs::File::create(&stdout_path)
            .map_err(|e| format!("creating {}: {e}", stdout_path.display()))?;

        let node = std::env::var_os("NODE").unwrap_or_else(|| "node".into());
        let mut cmd = tokio::process::Command::new(&node);
        cmd.arg(&script)
            .arg("--port")
            .arg("0") // the provider binds a free port itself and reports it (no race)
            .arg("--config")
            .arg(&config_path)
            .current_dir(&provider_dir)
            .env_remove("PROVIDER_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawning {:?} {}: {e}", node, script.display()))?;

        let started = Instant::now();
        let base_url = loop {
            let out = std::fs::read_to_string(&stdout_path).unwrap_or_default();
            if let Some(url) = out
                .lines()
                .find_map(|l| l.strip_prefix("READY ").map(|u| u.trim().to_string()))
            {
                break url;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(format!(
                    "provider exited with {status} before READY; stdout: {out}"
                ));
            }
            if started.elapsed() > READY_TIMEOUT {
                let _ = child.start_kill();
                let _ = std::fs::remove_dir_all(&dir);
                return Err(format!(
                    "no READY line within {READY_TIMEOUT:?}; stdout: {out}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };

        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;

        Ok(TestProvider {
            child,
            base_url,
            http,
            dir,
        })
    }

    /// `http://127.0.0.1:PORT` — also the issuer.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn issuer(&self) -> &str {
        &self.base_url
    }

    /// `base_url` + `path` (path starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    pub fn authorization_endpoint(&self) -> String {
        self.url("/auth")
    }

    pub fn token_endpoint(&self) -> String {
        self.url("/token")
    }

    pub fn revocation_endpoint(&self) -> String {
        self.url("/token/revocation")
    }

    pub fn introspection_endpoint(&self) -> String {
        self.url("/token/introspection")
    }

    pub fn userinfo_endpoint(&self) -> String {
        self.url("/me")
    }

    /// The temp directory holding config.json and stdout.log (removed on drop).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    async fn get_json(&self, path: &str) -> Value {
        let resp = self
            .http
            .get(self.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
        resp.json()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: bad JSON: {e}"))
    }

    /// `/.well-known/openid-configuration`.
    pub async fn discovery(&self) -> Value {
        self.get_json("/.well-known/openid-configuration").await
    }

    /// Every request received on the token and revocation endpoints so far, in order:
    /// `{method, path, headers: {authorization?, content-type?}, form: [[k, v], ...], status, error?}`.
    pub async fn requests(&self) -> Vec<Value> {
        match self.get_json("/__test/requests").await {
            Value::Array(v) => v,
            other => panic!("/__test/requests: expected an array, got {other}"),
        }
    }

    /// Clears the recorded requests and the stats.
    pub async fn reset(&self) {
        let resp = self
            .http
            .post(self.url("/__test/reset"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST /__test/reset: {e}"));
        assert!(
            resp.status().is_success(),
            "POST /__test/reset: {}",
            resp.status()
        );
    }

    /// `{token_requests, refresh_requests, invalid_grant, authorization_code_requests,
    ///   client_credentials_requests, revocation_requests}`.
    pub async fn stats(&self) -> Value {
        self.get_json("/__test/stats").await
    }

    /// Follows an authorization URL through the provider's autoApprove redirects (no cookie jar
    /// needed) and returns the first redirect target outside the provider, i.e.
    /// `redirect_uri?code=...&state=...&iss=...` (or `?error=...`). Panics if the provider
    /// answers with a page instead of a redirect (e.g. with `autoApprove: false`).
    pub async fn authorize(&self, authorization_url: &str) -> String {
        let origin = reqwest::Url::parse(&self.base_url).expect("base url");
        let mut url = reqwest::Url::parse(authorization_url)
            .unwrap_or_else(|e| panic!("bad authorization url {authorization_url}: {e}"));
        for _ in 0..10 {
            if url.origin() != origin.origin() {
                return url.to_string();
            }
            let resp = self
                .http
                .get(url.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("GET {url}: {e}"));
            let status = resp.status();
            if !status.is_redirection() {
                let body = resp.text().await.unwrap_or_default();
                panic!("GET {url}: expected a redirect, got {status}: {body}");
            }
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_else(|| panic!("GET {url}: {status} without Location"))
                .to_string();
            url = url
                .join(&location)
                .unwrap_or_else(|e| panic!("bad Location {location}: {e}"));
        }
        panic!("too many redirects for {authorization_url}");
    }

    /// Stops the provider now (SIGKILL) and waits for it to exit.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        // kill_on_drop(true) also does this; be explicit so the port is freed promptly.
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn provider_dir() -> PathBuf {
    match std::env::var_os("TEST_PROVIDER_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join("provider"),
    }
}

fn unique_temp_dir() -> Result<PathBuf, String> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "connected-apps-oidc-{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}
