//! Typed, layered settings: defaults, then an optional JSON config file, then environment
//! variables, then command-line flags. Built once in `main` (or a test) and passed in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

/// Every setting of the service. Tests build one with `Settings::default()` and change fields.
#[derive(Clone)]
pub struct Settings {
    /// `mysql://user:pass@host:port/db` or `sqlite://path` (a plain path is SQLite too).
    pub database_url: String,
    /// A Frappe `site_config.json` holding `encryption_key` (and optionally `host_name`).
    pub site_config: PathBuf,
    /// Create `site_config` with a new key when it does not exist (the embedded default).
    pub create_site_config: bool,
    /// The URL users reach the service at; `redirect_uri`s are built from it.
    pub public_url: String,
    /// Whether `public_url` was set explicitly (else `host_name` from the site config wins).
    pub public_url_explicit: bool,
    pub bind: String,
    /// Administrator's password on first start; generated and printed when absent.
    pub admin_password: Option<String>,
    /// IANA time zone for timestamps; `None` reads Frappe's System Settings, else UTC.
    pub time_zone: Option<String>,
    pub log_json: bool,
    pub log_filter: String,
    pub workers: usize,
    pub db_pool_size: u32,
    pub db_timeout: Duration,
    /// Run short reads on the request's own worker thread when a pooled connection is idle,
    /// instead of handing them to the blocking pool (see `Db::read`).
    pub inline_reads: bool,
    /// `wsrep_sync_wait` of the service's MariaDB sessions (`auto`: 1 on a Galera node).
    pub wsrep_sync_wait: crate::db::SyncWait,
    /// Times a write that lost a conflict to a concurrent writer runs again.
    pub db_write_retries: u32,
    /// Largest accepted request body.
    pub body_limit: usize,
    /// Outbound HTTP (OAuth providers).
    pub http_connect_timeout: Duration,
    pub http_timeout: Duration,
    pub http_max_response: usize,
    /// Networks and host names provider requests may reach although they are not public
    /// (loopback, private, link-local…); everything else non-public is refused.
    pub outbound_allow: crate::oauth::outbound::OutboundAllow,
    /// How long an authorization `state` stays valid.
    pub state_ttl: Duration,
    /// Refresh a token this long before it expires.
    pub refresh_margin: Duration,
    /// How long a verified API key is trusted without checking the database again.
    pub api_key_cache_ttl: Duration,
    /// Login throttling: failures allowed per user or address, and the cooling-off time.
    pub login_max_failures: u32,
    pub login_lockout: Duration,
    /// Session lifetime (Frappe's default `session_expiry` is 170 hours).
    pub session_ttl: Duration,
    /// Apply migrations when `serve` starts.
    pub auto_migrate: bool,
    /// Origins (`https://app.example`) whose pages may act with a user's session cookie:
    /// logins and cookie-authenticated writes from them are accepted, and they get CORS
    /// headers, as Frappe's `allow_cors`; `*` allows every origin. The site config's
    /// `allow_cors` (a list or one string, as Frappe reads it) is added to these.
    pub allow_cors: Vec<String>,
    /// Create the database when it does not exist (`serve`, `migrate`); the other commands
    /// refuse instead, so that one run from another directory does not start an empty one.
    pub create_database: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://data/connected-apps.sqlite".into(),
            site_config: PathBuf::from("data/site_config.json"),
            create_site_config: true,
            public_url: "http://127.0.0.1:8000".into(),
            public_url_explicit: false,
            bind: "127.0.0.1:8000".into(),
            admin_password: None,
            time_zone: None,
            log_json: false,
            log_filter: "info".into(),
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            db_pool_size: 16,
            db_timeout: Duration::from_secs(3),
            inline_reads: true,
            wsrep_sync_wait: crate::db::SyncWait::Auto,
            db_write_retries: crate::db::DEFAULT_WRITE_RETRIES,
            body_limit: 1024 * 1024,
            http_connect_timeout: Duration::from_secs(5),
            http_timeout: Duration::from_secs(15),
            http_max_response: 1024 * 1024,
            outbound_allow: Default::default(),
            state_ttl: Duration::from_secs(600),
            refresh_margin: Duration::from_secs(60),
            api_key_cache_ttl: Duration::from_secs(30),
            login_max_failures: 5,
            login_lockout: Duration::from_secs(300),
            session_ttl: Duration::from_secs(170 * 3600),
            auto_migrate: true,
            allow_cors: Vec::new(),
            create_database: true,
        }
    }
}

/// The optional config file: any subset of the settings, in JSON.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub database_url: Option<String>,
    pub site_config: Option<PathBuf>,
    pub public_url: Option<String>,
    pub bind: Option<String>,
    pub admin_password: Option<String>,
    pub time_zone: Option<String>,
    pub log_json: Option<bool>,
    pub log_filter: Option<String>,
    pub workers: Option<usize>,
    pub db_pool_size: Option<u32>,
    pub db_timeout_secs: Option<u64>,
    pub inline_reads: Option<bool>,
    pub wsrep_sync_wait: Option<crate::db::SyncWait>,
    pub db_write_retries: Option<u32>,
    pub body_limit: Option<usize>,
    pub http_connect_timeout_secs: Option<u64>,
    pub http_timeout_secs: Option<u64>,
    pub http_max_response: Option<usize>,
    /// `"127.0.0.0/8,::1"` or `["127.0.0.0/8", "::1"]`.
    pub outbound_allow: Option<crate::oauth::outbound::OutboundAllow>,
    pub state_ttl_secs: Option<u64>,
    pub refresh_margin_secs: Option<u64>,
    pub api_key_cache_ttl_secs: Option<u64>,
    pub login_max_failures: Option<u32>,
    pub login_lockout_secs: Option<u64>,
    pub session_ttl_secs: Option<u64>,
    pub allow_cors: Option<AllowCors>,
}

/// `allow_cors` as Frappe's site config holds it: one origin (or `*`) or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AllowCors {
    One(String),
    List(Vec<String>),
}

impl AllowCors {
    /// The origins, trimmed, without empty entries.
    pub fn origins(self) -> Vec<String> {
        let list = match self {
            AllowCors::One(s) => s.split(',').map(str::to_string).collect(),
            AllowCors::List(l) => l,
        };
        list.into_iter()
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect()
    }
}

impl Settings {
    /// Applies a config file on top of these settings.
    pub fn apply_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let f: FileSettings =
            serde_json::from_str(&text).with_context(|| path.display().to_string())?;
        self.apply(f);
        Ok(())
    }

    /// Applies every field that is set.
    pub fn apply(&mut self, f: FileSettings) {
        let secs = Duration::from_secs;
        if let Some(v) = f.database_url {
            self.database_url = v;
        }
        if let Some(v) = f.site_config {
            self.site_config = v;
            self.create_site_config = false;
        }
        if let Some(v) = f.public_url {
            self.public_url = v;
            self.public_url_explicit = true;
        }
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = f.$field { self.$field = v; } )* };
        }
        set!(
            bind,
            log_json,
            log_filter,
            workers,
            db_pool_size,
            inline_reads,
            wsrep_sync_wait,
            db_write_retries,
            body_limit,
            http_max_response,
            outbound_allow,
            login_max_failures
        );
        if f.admin_password.is_some() {
            self.admin_password = f.admin_password;
        }
        if f.time_zone.is_some() {
            self.time_zone = f.time_zone;
        }
        if let Some(v) = f.allow_cors {
            self.allow_cors = v.origins();
        }
        macro_rules! set_secs {
            ($($file:ident => $field:ident),*) => { $( if let Some(v) = f.$file { self.$field = secs(v); } )* };
        }
        set_secs!(db_timeout_secs => db_timeout, http_connect_timeout_secs => http_connect_timeout,
            http_timeout_secs => http_timeout, state_ttl_secs => state_ttl, refresh_margin_secs => refresh_margin,
            api_key_cache_ttl_secs => api_key_cache_ttl, login_lockout_secs => login_lockout,
            session_ttl_secs => session_ttl);
    }
}

/// What the service reads from a Frappe `site_config.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct SiteConfig {
    pub encryption_key: String,
    #[serde(default)]
    pub host_name: Option<String>,
    /// Keys that decrypt older values (left by `rotate-key` while it runs).
    #[serde(default)]
    pub previous_encryption_keys: Vec<String>,
    /// Frappe's `allow_cors`: origins whose pages may use the session cookie.
    #[serde(default)]
    pub allow_cors: Option<AllowCors>,
}

impl SiteConfig {
    /// Reads the site config; with `create`, writes a new one (fresh key) when it is missing.
    pub fn load(path: &Path, create: bool) -> anyhow::Result<SiteConfig> {
        if !path.exists() {
            if !create {
                bail!("site config {} does not exist", path.display());
            }
            if let Some(dir) = path.parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
            }
            let key = crate::secrets::generate_key();
            let body = serde_json::json!({ "encryption_key": key });
            write_private(
                path,
                &serde_json::to_string_pretty(&body).unwrap_or_default(),
            )?;
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid site config", path.display()))
    }
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(contents.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

impl Settings {
    /// The address actually bound, with the real port when 0 was asked for.
    pub fn bind_display(&self, port: u16) -> String {
        match self.bind.rsplit_once(':') {
            Some((host, _)) => format!("{host}:{port}"),
            None => format!("{}:{port}", self.bind),
        }
    }
}

impl std::fmt::Debug for Settings {
    /// Everything but the secrets: the database password and the Administrator password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &crate::db::redact_url(&self.database_url))
            .field("site_config", &self.site_config)
            .field("public_url", &self.public_url)
            .field("bind", &self.bind)
            .field(
                "admin_password",
                &self.admin_password.as_ref().map(|_| "<redacted>"),
            )
            .field("time_zone", &self.time_zone)
            .field("workers", &self.workers)
            .field("db_pool_size", &self.db_pool_size)
            .field("inline_reads", &self.inline_reads)
            .field("body_limit", &self.body_limit)
            .field("allow_cors", &self.allow_cors)
            .field("outbound_allow", &self.outbound_allow.to_string())
            .finish_non_exhaustive()
    }
}
