//! Typed, layered settings: defaults, then an optional JSON config file, then environment
//! variables, then command-line flags. Built once in `main` (or a test) and passed in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

/// Declares every setting once. A row gives the setting's field (of [`Settings`], or of
/// [`KeepAlive`] in the `keepalive` block) with its type and default, then the key that flags,
/// environment variables and the config file give it by: the key's type as clap parses it,
/// what its value does to the settings, clap's `arg(…)` (long name, environment variable) and
/// any serde attributes of the config file's key. Its doc comment is the setting's and the
/// flag's help. The blocks choose where the flag is listed: every command (`global`), `serve`
/// (`server`, `keepalive`; also accepted before the command) or `serve` alone (`serve`).
///
/// From the table come `Settings` and `KeepAlive` with their `Default`s, [`FileSettings`]
/// (the config file: any subset of the keys), the option groups clap fills
/// ([`GlobalSettings`], [`ServerOptions`], [`ServeOptions`]) and how each is applied.
macro_rules! settings {
    (
        internal { $( $(#[doc = $idoc:literal])* $ifield:ident : $ity:ty = $idefault:expr; )* }
        $(#[$gmeta:meta])* global $Global:ident { $(
            $(#[doc = $gdoc:literal])*
            $gfield:ident : $gty:ty = $gdefault:expr;
                #[$garg:meta] $(#[$gfile:meta])* $gkey:ident : $gcli:ty => $gapply:expr;
        )* }
        $(#[$smeta:meta])* server $Server:ident { $(
            $(#[doc = $sdoc:literal])*
            $sfield:ident : $sty:ty = $sdefault:expr;
                #[$sarg:meta] $(#[$sfile:meta])* $skey:ident : $scli:ty => $sapply:expr;
        )* }
        keepalive $KeepAlive:ident { $(
            $(#[doc = $kdoc:literal])*
            $kfield:ident : $kty:ty = $kdefault:expr;
                #[$karg:meta] $(#[$kfile:meta])* $kkey:ident : $kcli:ty => $kapply:expr;
        )* }
        serve $Serve:ident { $(
            $(#[doc = $vdoc:literal])*
            $vfield:ident : $vty:ty = $vdefault:expr;
                #[$varg:meta] $(#[$vfile:meta])* $vkey:ident : $vcli:ty => $vapply:expr;
        )* }
    ) => {
        /// Every setting of the service. Tests build one with `Settings::default()` and change
        /// fields.
        #[derive(Clone)]
        pub struct Settings {
            $( $(#[doc = $idoc])* pub $ifield: $ity, )*
            $( $(#[doc = $gdoc])* pub $gfield: $gty, )*
            $( $(#[doc = $sdoc])* pub $sfield: $sty, )*
            $( $(#[doc = $vdoc])* pub $vfield: $vty, )*
        }

        impl Default for Settings {
            fn default() -> Self {
                Self {
                    $( $ifield: $idefault, )*
                    $( $gfield: $gdefault, )*
                    $( $sfield: $sdefault, )*
                    $( $vfield: $vdefault, )*
                }
            }
        }

        /// Settings of the background keep-alive job (see docs/keep-alive.md), one group so
        /// that they move together.
        #[derive(Debug, Clone)]
        pub struct $KeepAlive {
            $( $(#[doc = $kdoc])* pub $kfield: $kty, )*
        }

        impl Default for $KeepAlive {
            fn default() -> Self {
                Self { $( $kfield: $kdefault, )* }
            }
        }

        /// The optional config file: any subset of the settings, in JSON, by their keys.
        #[derive(Debug, Default, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct FileSettings {
            $( $(#[$gfile])* pub $gkey: $gcli, )*
            $( $(#[$sfile])* pub $skey: $scli, )*
            $( $(#[$kfile])* pub $kkey: $kcli, )*
            $( $(#[$vfile])* pub $vkey: $vcli, )*
        }

        impl FileSettings {
            /// Applies every key that is set.
            pub fn apply_to(self, s: &mut Settings) {
                $( apply::<$gcli>(s, self.$gkey, $gapply); )*
                $( apply::<$scli>(s, self.$skey, $sapply); )*
                $( apply::<$kcli>(s, self.$kkey, $kapply); )*
                $( apply::<$vcli>(s, self.$vkey, $vapply); )*
            }
        }

        /// The settings every command takes; each also has an environment variable.
        #[derive(Debug, Clone, Default, clap::Args)]
        $(#[$gmeta])*
        pub struct $Global {
            $( $(#[doc = $gdoc])* #[$garg] pub $gkey: $gcli, )*
        }

        impl $Global {
            /// Applies every option that was given.
            pub fn apply_to(self, s: &mut Settings) {
                $( apply::<$gcli>(s, self.$gkey, $gapply); )*
            }
        }

        /// Options of the running service (`serve`); each also has an environment variable,
        /// which every command reads.
        #[derive(Debug, Clone, Default, clap::Args)]
        $(#[$smeta])*
        pub struct $Server {
            $( $(#[doc = $sdoc])* #[$sarg] pub $skey: $scli, )*
            $( $(#[doc = $kdoc])* #[$karg] pub $kkey: $kcli, )*
        }

        impl $Server {
            /// These options where set, else `other`'s (the ones given before the subcommand).
            pub fn or(self, other: $Server) -> $Server {
                $Server {
                    $( $skey: self.$skey.or(other.$skey), )*
                    $( $kkey: self.$kkey.or(other.$kkey), )*
                }
            }

            /// Applies every option that was given.
            pub fn apply_to(self, s: &mut Settings) {
                $( apply::<$scli>(s, self.$skey, $sapply); )*
                $( apply::<$kcli>(s, self.$kkey, $kapply); )*
            }
        }

        /// Options of `serve` alone.
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct $Serve {
            $( $(#[doc = $vdoc])* #[$varg] pub $vkey: $vcli, )*
        }

        impl $Serve {
            /// Applies every option that was given.
            pub fn apply_to(self, s: &mut Settings) {
                $( apply::<$vcli>(s, self.$vkey, $vapply); )*
            }
        }
    };
}

/// A key's value as given: `Some` for an option or file key that was set, and for a flag
/// that is on (a flag that is off sets nothing).
pub trait Given {
    type Value;
    fn given(self) -> Option<Self::Value>;
}

impl<T> Given for Option<T> {
    type Value = T;
    fn given(self) -> Option<T> {
        self
    }
}

impl Given for bool {
    type Value = bool;
    fn given(self) -> Option<bool> {
        self.then_some(true)
    }
}

/// Applies one key's value, when it was given.
fn apply<G: Given>(s: &mut Settings, value: G, to: fn(&mut Settings, G::Value)) {
    if let Some(v) = value.given() {
        to(s, v);
    }
}

/// A flag in the config file: `null` leaves it off, as a missing key does.
fn null_is_off<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

settings! {
    internal {
        /// Create `site_config` with a new key when it does not exist (the embedded default).
        create_site_config: bool = true;
        /// Whether `public_url` was set explicitly (else `host_name` from the site config wins).
        public_url_explicit: bool = false;
        /// Apply migrations when `serve` starts.
        auto_migrate: bool = true;
        /// Create the database when it does not exist (`serve`, `migrate`); the other commands
        /// refuse instead, so that one run from another directory does not start an empty one.
        create_database: bool = true;
        /// The background keep-alive job (see docs/keep-alive.md).
        keepalive: KeepAlive = KeepAlive::default();
    }

    #[command(next_help_heading = "Service data and logging (every command)")]
    global GlobalSettings {
        /// The service's database: mysql://user:pass@host:port/db or sqlite://path [default: sqlite://data/connected-apps.sqlite; serve/migrate create it]
        database_url: String = "sqlite://data/connected-apps.sqlite".into();
            #[arg(long, global = true, env = "DATABASE_URL")]
            database_url: Option<String> => |s, v| s.database_url = v;
        /// The service's own site_config.json (Frappe's format) with `encryption_key` [default: data/site_config.json, created by serve/migrate when missing]
        site_config: PathBuf = PathBuf::from("data/site_config.json");
            #[arg(long, global = true, env = "CONNECTED_APPS_SITE_CONFIG")]
            site_config: Option<PathBuf> => |s, v| {
                s.site_config = v;
                s.create_site_config = false;
            };
        /// IANA time zone for timestamps [default: the site's System Settings, else UTC]
        time_zone: Option<String> = None;
            #[arg(long, global = true, env = "CONNECTED_APPS_TIME_ZONE")]
            time_zone: Option<String> => |s, v| s.time_zone = Some(v);
        /// Log as JSON lines instead of human-readable text.
        log_json: bool = false;
            #[arg(long, global = true, env = "CONNECTED_APPS_LOG_JSON")]
            #[serde(deserialize_with = "null_is_off")]
            log_json: bool => |s, v| s.log_json = v;
        /// Log filter (tracing EnvFilter syntax) [default: info]
        log_filter: String = "info".into();
            #[arg(long, global = true, env = "RUST_LOG")]
            #[serde(rename = "log_filter")]
            log: Option<String> => |s, v| s.log_filter = v;
    }

    #[command(next_help_heading = "Server options")]
    server ServerOptions {
        /// The URL users reach the service at [default: site_config host_name, else http://127.0.0.1:8000]
        public_url: String = "http://127.0.0.1:8000".into();
            #[arg(long, env = "CONNECTED_APPS_PUBLIC_URL")]
            public_url: Option<String> => |s, v| {
                s.public_url = v;
                s.public_url_explicit = true;
            };
        /// Address to listen on [default: 127.0.0.1:8000]
        bind: String = "127.0.0.1:8000".into();
            #[arg(long, env = "CONNECTED_APPS_BIND")]
            bind: Option<String> => |s, v| s.bind = v;
        /// Largest request body, in bytes [default: 1048576]
        body_limit: usize = 1024 * 1024;
            #[arg(long, env = "CONNECTED_APPS_BODY_LIMIT")]
            body_limit: Option<usize> => |s, v| s.body_limit = v;
        /// Database connections per instance [default: 16]
        db_pool_size: u32 = 16;
            #[arg(long, env = "CONNECTED_APPS_DB_POOL_SIZE")]
            db_pool_size: Option<u32> => |s, v| s.db_pool_size = v;
        /// Run short reads on the request's worker thread when a pooled connection is idle [default: true]
        inline_reads: bool = true;
            #[arg(long, env = "CONNECTED_APPS_INLINE_READS")]
            inline_reads: Option<bool> => |s, v| s.inline_reads = v;
        /// `wsrep_sync_wait` of MariaDB sessions: auto (1 on a Galera cluster, else untouched) or 0-15 [default: auto]
        wsrep_sync_wait: crate::db::SyncWait = crate::db::SyncWait::Auto;
            #[arg(long, env = "CONNECTED_APPS_WSREP_SYNC_WAIT")]
            wsrep_sync_wait: Option<crate::db::SyncWait> => |s, v| s.wsrep_sync_wait = v;
        /// Times a write that lost a conflict to a concurrent writer runs again [default: 10]
        db_write_retries: u32 = crate::db::DEFAULT_WRITE_RETRIES;
            #[arg(long, env = "CONNECTED_APPS_DB_WRITE_RETRIES")]
            db_write_retries: Option<u32> => |s, v| s.db_write_retries = v;
        /// Seconds to wait for a database connection [default: 3]
        db_timeout: Duration = secs(3);
            #[arg(long, env = "CONNECTED_APPS_DB_TIMEOUT_SECS")]
            db_timeout_secs: Option<u64> => |s, v| s.db_timeout = secs(v);
        /// Seconds to connect to an OAuth provider [default: 5]
        http_connect_timeout: Duration = secs(5);
            #[arg(long, env = "CONNECTED_APPS_HTTP_CONNECT_TIMEOUT_SECS")]
            http_connect_timeout_secs: Option<u64> => |s, v| s.http_connect_timeout = secs(v);
        /// Seconds for a whole OAuth provider request [default: 15]
        http_timeout: Duration = secs(15);
            #[arg(long, env = "CONNECTED_APPS_HTTP_TIMEOUT_SECS")]
            http_timeout_secs: Option<u64> => |s, v| s.http_timeout = secs(v);
        /// Largest accepted provider response, in bytes [default: 1048576]
        http_max_response: usize = 1024 * 1024;
            #[arg(long, env = "CONNECTED_APPS_HTTP_MAX_RESPONSE")]
            http_max_response: Option<usize> => |s, v| s.http_max_response = v;
        /// Networks and host names provider requests may reach although they are not public
        /// (loopback, private, link-local, …), comma-separated, e.g. `127.0.0.0/8,::1,idp.internal` [default: none]
        outbound_allow: crate::oauth::outbound::OutboundAllow = Default::default();
            #[arg(long, env = "CONNECTED_APPS_OUTBOUND_ALLOW")]
            outbound_allow: Option<crate::oauth::outbound::OutboundAllow> => |s, v| s.outbound_allow = v;
        /// Seconds an authorization `state` stays valid [default: 600]
        state_ttl: Duration = secs(600);
            #[arg(long, env = "CONNECTED_APPS_STATE_TTL_SECS")]
            state_ttl_secs: Option<u64> => |s, v| s.state_ttl = secs(v);
        /// Refresh a token this many seconds before it expires [default: 60]
        refresh_margin: Duration = secs(60);
            #[arg(long, env = "CONNECTED_APPS_REFRESH_MARGIN_SECS")]
            refresh_margin_secs: Option<u64> => |s, v| s.refresh_margin = secs(v);
        /// Seconds a verified API key is trusted without the database [default: 30]
        api_key_cache_ttl: Duration = secs(30);
            #[arg(long, env = "CONNECTED_APPS_API_KEY_CACHE_TTL_SECS")]
            api_key_cache_ttl_secs: Option<u64> => |s, v| s.api_key_cache_ttl = secs(v);
        /// Failed logins allowed per user or address before the lockout [default: 5]
        login_max_failures: u32 = 5;
            #[arg(long, env = "CONNECTED_APPS_LOGIN_MAX_FAILURES")]
            login_max_failures: Option<u32> => |s, v| s.login_max_failures = v;
        /// Seconds a throttled login stays locked [default: 300]
        login_lockout: Duration = secs(300);
            #[arg(long, env = "CONNECTED_APPS_LOGIN_LOCKOUT_SECS")]
            login_lockout_secs: Option<u64> => |s, v| s.login_lockout = secs(v);
        /// Session lifetime in seconds [default: 612000, Frappe's 170 hours]
        session_ttl: Duration = secs(170 * 3600);
            #[arg(long, env = "CONNECTED_APPS_SESSION_TTL_SECS")]
            session_ttl_secs: Option<u64> => |s, v| s.session_ttl = secs(v);
        /// Origins whose pages may use the session cookie (Frappe's allow_cors), comma-separated, or * [default: none; the site config's allow_cors is added]
        allow_cors: Vec<String> = Vec::new();
            #[arg(long, env = "CONNECTED_APPS_ALLOW_CORS")]
            allow_cors: Option<AllowCors> => |s, v| s.allow_cors = v.origins();
    }

    keepalive KeepAlive {
        /// Run the background keep-alive job [default: true]
        enabled: bool = true;
            #[arg(long, env = "CONNECTED_APPS_KEEPALIVE_ENABLED")]
            keepalive_enabled: Option<bool> => |s, v| s.keepalive.enabled = v;
        /// Seconds between two runs of the keep-alive job [default: 300]
        interval: Duration = secs(300);
            #[arg(long, env = "CONNECTED_APPS_KEEPALIVE_INTERVAL_SECS")]
            keepalive_interval_secs: Option<u64> => |s, v| s.keepalive.interval = secs(v.max(1));
        /// Refresh connections idle longer than this many seconds [default: 2592000, 30 days]
        idle_age: Duration = secs(30 * 24 * 3600);
            #[arg(long, env = "CONNECTED_APPS_KEEPALIVE_IDLE_AGE_SECS")]
            keepalive_idle_age_secs: Option<u64> => |s, v| s.keepalive.idle_age = secs(v);
        /// Most keep-alive refreshes in flight to one token endpoint [default: 4]
        concurrency: usize = 4;
            #[arg(long, env = "CONNECTED_APPS_KEEPALIVE_CONCURRENCY")]
            keepalive_concurrency: Option<usize> => |s, v| s.keepalive.concurrency = v.max(1);
    }

    serve ServeOptions {
        /// Administrator's password when the database is new [default: generated and printed]
        admin_password: Option<String> = None;
            #[arg(long, env = "CONNECTED_APPS_ADMIN_PASSWORD")]
            admin_password: Option<String> => |s, v| s.admin_password = Some(v);
        /// Worker threads [default: number of CPUs]
        workers: usize = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
            #[arg(long, env = "CONNECTED_APPS_WORKERS")]
            workers: Option<usize> => |s, v| s.workers = v;
    }
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

/// `--allow-cors` / `CONNECTED_APPS_ALLOW_CORS`: one comma-separated string.
impl std::str::FromStr for AllowCors {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(AllowCors::One(s.to_string()))
    }
}

impl Settings {
    /// Applies a config file on top of these settings.
    pub fn apply_file(&mut self, path: &Path) -> anyhow::Result<()> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let f: FileSettings =
            serde_json::from_str(&text).with_context(|| path.display().to_string())?;
        f.apply_to(self);
        Ok(())
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
            .field("keepalive", &self.keepalive)
            .finish_non_exhaustive()
    }
}
