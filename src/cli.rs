//! The command line: `serve`, `migrate`, `user add`, `user api-key`, `rotate-key`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::configuration::Settings;

#[derive(Debug, Parser)]
#[command(
    name = "connected-apps",
    version,
    about = "Frappe-compatible Connected App and Token Cache service"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes; each also has an environment variable.
#[derive(Debug, Clone, Args)]
pub struct GlobalOptions {
    /// A JSON file with settings (applied before environment variables and flags).
    #[arg(long, global = true, env = "CONNECTED_APPS_CONFIG")]
    pub config: Option<PathBuf>,
    /// mysql://user:pass@host:port/db or sqlite://path [default: sqlite://data/connected-apps.sqlite]
    #[arg(long, global = true, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// A Frappe site_config.json with `encryption_key` [default: data/site_config.json, created when missing]
    #[arg(long, global = true, env = "CONNECTED_APPS_SITE_CONFIG")]
    pub site_config: Option<PathBuf>,
    /// The URL users reach the service at [default: site_config host_name, else http://127.0.0.1:8000]
    #[arg(long, global = true, env = "CONNECTED_APPS_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8000]
    #[arg(long, global = true, env = "CONNECTED_APPS_BIND")]
    pub bind: Option<String>,
    /// IANA time zone for timestamps [default: the site's System Settings, else UTC]
    #[arg(long, global = true, env = "CONNECTED_APPS_TIME_ZONE")]
    pub time_zone: Option<String>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "CONNECTED_APPS_LOG_JSON")]
    pub log_json: bool,
    /// Log filter (tracing EnvFilter syntax) [default: info]
    #[arg(long, global = true, env = "RUST_LOG")]
    pub log: Option<String>,
    /// Largest request body, in bytes [default: 1048576]
    #[arg(long, global = true, env = "CONNECTED_APPS_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Database connections per instance [default: 16]
    #[arg(long, global = true, env = "CONNECTED_APPS_DB_POOL_SIZE")]
    pub db_pool_size: Option<u32>,
    /// Run short reads on the request's worker thread when a pooled connection is idle [default: true]
    #[arg(long, global = true, env = "CONNECTED_APPS_INLINE_READS")]
    pub inline_reads: Option<bool>,
    /// `wsrep_sync_wait` of MariaDB sessions: auto (1 on a Galera cluster, else untouched) or 0-15 [default: auto]
    #[arg(long, global = true, env = "CONNECTED_APPS_WSREP_SYNC_WAIT")]
    pub wsrep_sync_wait: Option<crate::db::SyncWait>,
    /// Times a write that lost a conflict to a concurrent writer runs again [default: 10]
    #[arg(long, global = true, env = "CONNECTED_APPS_DB_WRITE_RETRIES")]
    pub db_write_retries: Option<u32>,
    /// Seconds to wait for a database connection [default: 3]
    #[arg(long, global = true, env = "CONNECTED_APPS_DB_TIMEOUT_SECS")]
    pub db_timeout_secs: Option<u64>,
    /// Seconds to connect to an OAuth provider [default: 5]
    #[arg(long, global = true, env = "CONNECTED_APPS_HTTP_CONNECT_TIMEOUT_SECS")]
    pub http_connect_timeout_secs: Option<u64>,
    /// Seconds for a whole OAuth provider request [default: 15]
    #[arg(long, global = true, env = "CONNECTED_APPS_HTTP_TIMEOUT_SECS")]
    pub http_timeout_secs: Option<u64>,
    /// Largest accepted provider response, in bytes [default: 1048576]
    #[arg(long, global = true, env = "CONNECTED_APPS_HTTP_MAX_RESPONSE")]
    pub http_max_response: Option<usize>,
    /// Networks and host names provider requests may reach although they are not public
    /// (loopback, private, link-local, …), comma-separated, e.g. `127.0.0.0/8,::1,idp.internal` [default: none]
    #[arg(long, global = true, env = "CONNECTED_APPS_OUTBOUND_ALLOW")]
    pub outbound_allow: Option<crate::oauth::outbound::OutboundAllow>,
    /// Seconds an authorization `state` stays valid [default: 600]
    #[arg(long, global = true, env = "CONNECTED_APPS_STATE_TTL_SECS")]
    pub state_ttl_secs: Option<u64>,
    /// Refresh a token this many seconds before it expires [default: 60]
    #[arg(long, global = true, env = "CONNECTED_APPS_REFRESH_MARGIN_SECS")]
    pub refresh_margin_secs: Option<u64>,
    /// Seconds a verified API key is trusted without the database [default: 30]
    #[arg(long, global = true, env = "CONNECTED_APPS_API_KEY_CACHE_TTL_SECS")]
    pub api_key_cache_ttl_secs: Option<u64>,
    /// Failed logins allowed per user or address before the lockout [default: 5]
    #[arg(long, global = true, env = "CONNECTED_APPS_LOGIN_MAX_FAILURES")]
    pub login_max_failures: Option<u32>,
    /// Seconds a throttled login stays locked [default: 300]
    #[arg(long, global = true, env = "CONNECTED_APPS_LOGIN_LOCKOUT_SECS")]
    pub login_lockout_secs: Option<u64>,
    /// Session lifetime in seconds [default: 612000, Frappe's 170 hours]
    #[arg(long, global = true, env = "CONNECTED_APPS_SESSION_TTL_SECS")]
    pub session_ttl_secs: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (migrations are applied first).
    Serve {
        /// Administrator's password when the database is new [default: generated and printed]
        #[arg(long, env = "CONNECTED_APPS_ADMIN_PASSWORD")]
        admin_password: Option<String>,
        /// Worker threads [default: number of CPUs]
        #[arg(long, env = "CONNECTED_APPS_WORKERS")]
        workers: Option<usize>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Re-encrypt every secret under a new key (the old key stays a fallback until it finishes).
    RotateKey,
    /// Copy Connected Apps, Token Caches and their users from a Frappe site's database.
    Import {
        /// The Frappe site's database (mysql://user:pass@host/site_db).
        #[arg(long = "from")]
        from: String,
        /// Report what would change without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// The site's site_config.json (for its encryption_key); defaults to --site-config.
        #[arg(long)]
        from_site_config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (every user also has the role All).
    Add {
        email: String,
        #[arg(long)]
        first_name: Option<String>,
        /// A role such as "System Manager"; repeat for several.
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long, env = "CONNECTED_APPS_USER_PASSWORD")]
        password: Option<String>,
    },
    /// Generate a new API key and secret; prints `api_key:api_secret`.
    ApiKey { email: String },
}

impl GlobalOptions {
    /// Defaults, then the config file, then environment and flags.
    pub fn settings(&self) -> Result<Settings, String> {
        let mut s = Settings::default();
        if let Some(path) = &self.config {
            s.apply_file(path)?;
        }
        if let Some(v) = &self.database_url {
            s.database_url = v.clone();
        }
        if let Some(v) = &self.site_config {
            s.site_config = v.clone();
            s.create_site_config = false;
        }
        if let Some(v) = &self.public_url {
            s.public_url = v.clone();
            s.public_url_explicit = true;
        }
        if let Some(v) = &self.bind {
            s.bind = v.clone();
        }
        if let Some(v) = &self.time_zone {
            s.time_zone = Some(v.clone());
        }
        if self.log_json {
            s.log_json = true;
        }
        if let Some(v) = &self.log {
            s.log_filter = v.clone();
        }
        s.apply(crate::configuration::FileSettings {
            body_limit: self.body_limit,
            db_pool_size: self.db_pool_size,
            db_timeout_secs: self.db_timeout_secs,
            inline_reads: self.inline_reads,
            wsrep_sync_wait: self.wsrep_sync_wait,
            db_write_retries: self.db_write_retries,
            http_connect_timeout_secs: self.http_connect_timeout_secs,
            http_timeout_secs: self.http_timeout_secs,
            http_max_response: self.http_max_response,
            outbound_allow: self.outbound_allow.clone(),
            state_ttl_secs: self.state_ttl_secs,
            refresh_margin_secs: self.refresh_margin_secs,
            api_key_cache_ttl_secs: self.api_key_cache_ttl_secs,
            login_max_failures: self.login_max_failures,
            login_lockout_secs: self.login_lockout_secs,
            session_ttl_secs: self.session_ttl_secs,
            ..Default::default()
        });
        Ok(s)
    }
}
