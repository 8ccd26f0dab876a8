//! The command line: `serve`, `migrate`, `user add`, `user api-key`, `user set-password`,
//! `rotate-key`, `import`. Each command's help lists its own options first, then the options
//! every command takes; the server options are listed under `serve` only.

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
    /// The server options given before the subcommand (`connected-apps --bind … serve`, as
    /// earlier versions took them); hidden from the help, which lists them under `serve`.
    #[command(flatten)]
    pub server: ServerOptions,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes (where the service's data is, logging); each also has an
/// environment variable.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Service data and logging (every command)")]
pub struct GlobalOptions {
    /// A JSON file with settings (applied before environment variables and flags).
    #[arg(long, global = true, env = "CONNECTED_APPS_CONFIG")]
    pub config: Option<PathBuf>,
    /// The service's database: mysql://user:pass@host:port/db or sqlite://path [default: sqlite://data/connected-apps.sqlite; serve/migrate create it]
    #[arg(long, global = true, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// The service's own site_config.json (Frappe's format) with `encryption_key` [default: data/site_config.json, created by serve/migrate when missing]
    #[arg(long, global = true, env = "CONNECTED_APPS_SITE_CONFIG")]
    pub site_config: Option<PathBuf>,
    /// IANA time zone for timestamps [default: the site's System Settings, else UTC]
    #[arg(long, global = true, env = "CONNECTED_APPS_TIME_ZONE")]
    pub time_zone: Option<String>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "CONNECTED_APPS_LOG_JSON")]
    pub log_json: bool,
    /// Log filter (tracing EnvFilter syntax) [default: info]
    #[arg(long, global = true, env = "RUST_LOG")]
    pub log: Option<String>,
}

/// Options of the running service (`serve`); each also has an environment variable, which
/// every command reads.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Server options")]
pub struct ServerOptions {
    /// The URL users reach the service at [default: site_config host_name, else http://127.0.0.1:8000]
    #[arg(long, env = "CONNECTED_APPS_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Address to listen on [default: 127.0.0.1:8000]
    #[arg(long, env = "CONNECTED_APPS_BIND")]
    pub bind: Option<String>,
    /// Largest request body, in bytes [default: 1048576]
    #[arg(long, env = "CONNECTED_APPS_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Database connections per instance [default: 16]
    #[arg(long, env = "CONNECTED_APPS_DB_POOL_SIZE")]
    pub db_pool_size: Option<u32>,
    /// Run short reads on the request's worker thread when a pooled connection is idle [default: true]
    #[arg(long, env = "CONNECTED_APPS_INLINE_READS")]
    pub inline_reads: Option<bool>,
    /// `wsrep_sync_wait` of MariaDB sessions: auto (1 on a Galera cluster, else untouched) or 0-15 [default: auto]
    #[arg(long, env = "CONNECTED_APPS_WSREP_SYNC_WAIT")]
    pub wsrep_sync_wait: Option<crate::db::SyncWait>,
    /// Times a write that lost a conflict to a concurrent writer runs again [default: 10]
    #[arg(long, env = "CONNECTED_APPS_DB_WRITE_RETRIES")]
    pub db_write_retries: Option<u32>,
    /// Seconds to wait for a database connection [default: 3]
    #[arg(long, env = "CONNECTED_APPS_DB_TIMEOUT_SECS")]
    pub db_timeout_secs: Option<u64>,
    /// Seconds to connect to an OAuth provider [default: 5]
    #[arg(long, env = "CONNECTED_APPS_HTTP_CONNECT_TIMEOUT_SECS")]
    pub http_connect_timeout_secs: Option<u64>,
    /// Seconds for a whole OAuth provider request [default: 15]
    #[arg(long, env = "CONNECTED_APPS_HTTP_TIMEOUT_SECS")]
    pub http_timeout_secs: Option<u64>,
    /// Largest accepted provider response, in bytes [default: 1048576]
    #[arg(long, env = "CONNECTED_APPS_HTTP_MAX_RESPONSE")]
    pub http_max_response: Option<usize>,
    /// Networks and host names provider requests may reach although they are not public
    /// (loopback, private, link-local, …), comma-separated, e.g. `127.0.0.0/8,::1,idp.internal` [default: none]
    #[arg(long, env = "CONNECTED_APPS_OUTBOUND_ALLOW")]
    pub outbound_allow: Option<crate::oauth::outbound::OutboundAllow>,
    /// Seconds an authorization `state` stays valid [default: 600]
    #[arg(long, env = "CONNECTED_APPS_STATE_TTL_SECS")]
    pub state_ttl_secs: Option<u64>,
    /// Refresh a token this many seconds before it expires [default: 60]
    #[arg(long, env = "CONNECTED_APPS_REFRESH_MARGIN_SECS")]
    pub refresh_margin_secs: Option<u64>,
    /// Seconds a verified API key is trusted without the database [default: 30]
    #[arg(long, env = "CONNECTED_APPS_API_KEY_CACHE_TTL_SECS")]
    pub api_key_cache_ttl_secs: Option<u64>,
    /// Failed logins allowed per user or address before the lockout [default: 5]
    #[arg(long, env = "CONNECTED_APPS_LOGIN_MAX_FAILURES")]
    pub login_max_failures: Option<u32>,
    /// Seconds a throttled login stays locked [default: 300]
    #[arg(long, env = "CONNECTED_APPS_LOGIN_LOCKOUT_SECS")]
    pub login_lockout_secs: Option<u64>,
    /// Session lifetime in seconds [default: 612000, Frappe's 170 hours]
    #[arg(long, env = "CONNECTED_APPS_SESSION_TTL_SECS")]
    pub session_ttl_secs: Option<u64>,
    /// Origins whose pages may use the session cookie (Frappe's allow_cors), comma-separated, or * [default: none; the site config's allow_cors is added]
    #[arg(long, env = "CONNECTED_APPS_ALLOW_CORS")]
    pub allow_cors: Option<String>,
}

// Parsed once per process: `serve`'s options inline are simpler than a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (migrations are applied first).
    Serve {
        #[command(flatten)]
        server: ServerOptions,
        /// Administrator's password when the database is new [default: generated and printed]
        #[arg(long, env = "CONNECTED_APPS_ADMIN_PASSWORD")]
        admin_password: Option<String>,
        /// Worker threads [default: number of CPUs]
        #[arg(long, env = "CONNECTED_APPS_WORKERS")]
        workers: Option<usize>,
    },
    /// Apply database migrations and exit (creates the database when it does not exist).
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Re-encrypt every secret under a new key (the old key stays a fallback until it finishes).
    RotateKey,
    /// Copy Connected Apps, Token Caches and their users from a Frappe site's database.
    ///
    /// Users that already exist in the service's database (Administrator included) are left
    /// as they are unless --overwrite-users is given.
    Import {
        /// The Frappe site's database (mysql://user:pass@host/site_db).
        #[arg(long = "from")]
        from: String,
        /// The Frappe site's site_config.json (for its encryption_key). Without it, the
        /// --site-config given to `import` is taken as the Frappe site's (earlier spelling).
        #[arg(long, alias = "from-site-config")]
        frappe_site_config: Option<PathBuf>,
        /// Report what would change without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// Replace users that already exist here (password hash, roles, API key) with the site's.
        #[arg(long)]
        overwrite_users: bool,
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
        /// The login password [default: none: the user signs in with API keys only]
        #[arg(long, env = "CONNECTED_APPS_USER_PASSWORD")]
        password: Option<String>,
    },
    /// Set a user's login password (Administrator included).
    SetPassword {
        email: String,
        /// The new password [default: read from standard input when it is not a terminal,
        /// else generated and printed]
        #[arg(long, env = "CONNECTED_APPS_USER_PASSWORD")]
        password: Option<String>,
    },
    /// Generate a new API key and secret; prints `api_key:api_secret`.
    ApiKey { email: String },
}

impl ServerOptions {
    /// These options where set, else `other`'s (the ones given before the subcommand).
    pub fn or(self, other: ServerOptions) -> ServerOptions {
        ServerOptions {
            public_url: self.public_url.or(other.public_url),
            bind: self.bind.or(other.bind),
            body_limit: self.body_limit.or(other.body_limit),
            db_pool_size: self.db_pool_size.or(other.db_pool_size),
            inline_reads: self.inline_reads.or(other.inline_reads),
            wsrep_sync_wait: self.wsrep_sync_wait.or(other.wsrep_sync_wait),
            db_write_retries: self.db_write_retries.or(other.db_write_retries),
            db_timeout_secs: self.db_timeout_secs.or(other.db_timeout_secs),
            http_connect_timeout_secs: self
                .http_connect_timeout_secs
                .or(other.http_connect_timeout_secs),
            http_timeout_secs: self.http_timeout_secs.or(other.http_timeout_secs),
            http_max_response: self.http_max_response.or(other.http_max_response),
            outbound_allow: self.outbound_allow.or(other.outbound_allow),
            state_ttl_secs: self.state_ttl_secs.or(other.state_ttl_secs),
            refresh_margin_secs: self.refresh_margin_secs.or(other.refresh_margin_secs),
            api_key_cache_ttl_secs: self.api_key_cache_ttl_secs.or(other.api_key_cache_ttl_secs),
            login_max_failures: self.login_max_failures.or(other.login_max_failures),
            login_lockout_secs: self.login_lockout_secs.or(other.login_lockout_secs),
            session_ttl_secs: self.session_ttl_secs.or(other.session_ttl_secs),
            allow_cors: self.allow_cors.or(other.allow_cors),
        }
    }
}

/// Parses the command line. The server options are accepted before the subcommand too (as
/// earlier versions did) but listed only in `serve --help`.
pub fn parse() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let mut cmd = Cli::command();
    let ids: Vec<clap::Id> = <ServerOptions as Args>::augment_args(clap::Command::new("serve"))
        .get_arguments()
        .map(|a| a.get_id().clone())
        .collect();
    for id in ids {
        cmd = cmd.mut_arg(id, |a| a.hide(true));
    }
    let matches = cmd.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

impl GlobalOptions {
    /// Defaults, then the config file, then environment and flags.
    pub fn settings(&self, server: &ServerOptions) -> anyhow::Result<Settings> {
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
        if let Some(v) = &server.public_url {
            s.public_url = v.clone();
            s.public_url_explicit = true;
        }
        if let Some(v) = &server.bind {
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
            body_limit: server.body_limit,
            db_pool_size: server.db_pool_size,
            db_timeout_secs: server.db_timeout_secs,
            inline_reads: server.inline_reads,
            wsrep_sync_wait: server.wsrep_sync_wait,
            db_write_retries: server.db_write_retries,
            http_connect_timeout_secs: server.http_connect_timeout_secs,
            http_timeout_secs: server.http_timeout_secs,
            http_max_response: server.http_max_response,
            outbound_allow: server.outbound_allow.clone(),
            state_ttl_secs: server.state_ttl_secs,
            refresh_margin_secs: server.refresh_margin_secs,
            api_key_cache_ttl_secs: server.api_key_cache_ttl_secs,
            login_max_failures: server.login_max_failures,
            login_lockout_secs: server.login_lockout_secs,
            session_ttl_secs: server.session_ttl_secs,
            allow_cors: server
                .allow_cors
                .clone()
                .map(crate::configuration::AllowCors::One),
            ..Default::default()
        });
        Ok(s)
    }
}
