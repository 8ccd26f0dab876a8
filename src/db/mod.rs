//! Storage: one connection type over MariaDB and SQLite, its r2d2 pool, migrations, and the
//! helper that runs blocking diesel work off the async workers.

mod failure;
pub mod schema;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, CustomizeConnection, ManageConnection};
use diesel::{Connection, MysqlConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::{AppError, DbFailure};

const MYSQL_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// A connection to either backend. Backend-specific SQL matches on this enum in plain sight.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Mysql(MysqlConnection),
    Sqlite(SqliteConnection),
}

/// Which database a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Mysql,
    Sqlite,
}

/// A parsed database URL: the backend and what to hand to its driver.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub backend: Backend,
    target: String,
}

/// Debug output (and so any panic or log line that prints one) shows no password.
impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseUrl")
            .field("backend", &self.backend)
            .field("target", &self.redacted())
            .finish()
    }
}

impl DatabaseUrl {
    /// `mysql://…` (also `mariadb://…`) is MariaDB; `sqlite://path`, `sqlite:path` or a plain path is SQLite.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let url = url.trim();
        if url.is_empty() {
            bail!("the database URL is empty");
        }
        if let Some(rest) = url.strip_prefix("mariadb://") {
            return Ok(Self {
                backend: Backend::Mysql,
                target: format!("mysql://{rest}"),
            });
        }
        if url.starts_with("mysql://") {
            return Ok(Self {
                backend: Backend::Mysql,
                target: url.to_string(),
            });
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path.contains("://") {
            bail!(
                "unsupported database URL scheme in {:?}; use mysql:// or sqlite://",
                redact_url(url)
            );
        }
        Ok(Self {
            backend: Backend::Sqlite,
            target: path.to_string(),
        })
    }

    /// The SQLite file path, if this is SQLite.
    pub fn sqlite_path(&self) -> Option<&str> {
        (self.backend == Backend::Sqlite).then_some(self.target.as_str())
    }

    /// The URL without its password, for messages and logs.
    pub fn redacted(&self) -> String {
        redact_url(&self.target)
    }
}

/// Replaces the password of a URL with `***`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// An r2d2 manager that opens the backend the URL names and reports its real errors
/// (the derived `establish` would hide them).
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
    health: Arc<Health>,
}

/// What the pool knows about its connections' health, shared by all of them.
#[derive(Debug, Default)]
struct Health {
    /// Counts connection errors seen on any connection of the pool. A connection checked
    /// out after a connection error it has not been checked since is tested first
    /// (`SELECT 1`): when one connection to a node died, its siblings often did too.
    connection_errors: AtomicU64,
}

/// A pooled connection and whether a query on it failed as if the server went away; such a
/// connection is dropped when it returns to the pool instead of being tested on every
/// checkout (which would cost a round trip per request).
pub struct PoolConn {
    conn: DbConnection,
    broken: bool,
    /// `Health::connection_errors` when this connection was opened or last tested.
    checked_at: u64,
}

impl std::ops::Deref for PoolConn {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for PoolConn {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

impl ManageConnection for Manager {
    type Connection = PoolConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<PoolConn, r2d2::Error> {
        let conn = match self.url.backend {
            Backend::Mysql => MysqlConnection::establish(&self.url.target)
                .map(DbConnection::Mysql)
                .map_err(r2d2::Error::ConnectionError),
            Backend::Sqlite => SqliteConnection::establish(&self.url.target)
                .map(DbConnection::Sqlite)
                .map_err(r2d2::Error::ConnectionError),
        }?;
        Ok(PoolConn {
            conn,
            broken: false,
            checked_at: self.health.connection_errors.load(Ordering::Relaxed),
        })
    }

    fn is_valid(&self, conn: &mut PoolConn) -> Result<(), r2d2::Error> {
        conn.conn
            .batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    /// Dropped instead of returned: a connection a query found dead, or one whose
    /// transaction state diesel no longer knows (a failed ROLLBACK after a failed COMMIT).
    fn has_broken(&self, conn: &mut PoolConn) -> bool {
        use diesel::connection::TransactionManager;
        conn.broken
            || <DbConnection as Connection>::TransactionManager::is_broken_transaction_manager(
                &mut conn.conn,
            )
    }
}

/// `wsrep_sync_wait` for the service's sessions on a Galera cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncWait {
    /// `1` (reads wait until the node has applied every write the cluster committed before
    /// them) when the server is a Galera node, nothing otherwise.
    #[default]
    Auto,
    /// This value on every MariaDB session (`0` turns causal reads off).
    Value(u8),
}

impl std::str::FromStr for SyncWait {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "auto" => Ok(SyncWait::Auto),
            v => v
                .parse::<u8>()
                .ok()
                .filter(|n| *n <= 15)
                .map(SyncWait::Value)
                .ok_or_else(|| format!("wsrep_sync_wait must be auto or 0-15, not {v:?}")),
        }
    }
}

impl<'de> serde::Deserialize<'de> for SyncWait {
    /// `"auto"`, or a number 0-15 (as a JSON number or string).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n.to_string().parse(),
            serde_json::Value::String(s) => s.parse(),
            other => Err(format!("wsrep_sync_wait must be auto or 0-15, not {other}")),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// Set once a connection of this process found itself on a Galera node.
static GALERA: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process talks to a Galera cluster (as far as `wsrep_sync_wait = auto` found).
pub fn on_galera() -> bool {
    GALERA.load(Ordering::Relaxed)
}

/// How the pool is built.
#[derive(Debug, Clone)]
pub struct DbOptions {
    pub max_size: u32,
    pub timeout: Duration,
    pub sync_wait: SyncWait,
    /// How often a write that lost a conflict runs again before the client is told to retry.
    pub write_retries: u32,
}

impl DbOptions {
    pub fn new(max_size: u32, timeout: Duration) -> Self {
        Self {
            max_size,
            timeout,
            sync_wait: SyncWait::Auto,
            write_retries: DEFAULT_WRITE_RETRIES,
        }
    }
}

pub const DEFAULT_WRITE_RETRIES: u32 = 10;

#[derive(Debug)]
struct Customizer {
    sync_wait: SyncWait,
}

impl Customizer {
    /// On a Galera node, reads wait for the writes the cluster committed before them, so a
    /// document written through one instance (and node) is read back through another at once.
    fn sync_wait(&self, conn: &mut MysqlConnection) -> Result<(), r2d2::Error> {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct On {
            #[diesel(sql_type = diesel::sql_types::Text)]
            on: String,
        }
        // `wsrep_on` is ON only on a node of a cluster; servers without wsrep support do not
        // know the variable (an error here means "not Galera").
        let galera = diesel::sql_query("SELECT CAST(@@GLOBAL.wsrep_on AS CHAR) AS `on`")
            .load::<On>(conn)
            .ok()
            .and_then(|rows| rows.into_iter().next())
            .is_some_and(|r| r.on == "1" || r.on.eq_ignore_ascii_case("on"));
        if galera {
            GALERA.store(true, Ordering::Relaxed);
        }
        let value = match self.sync_wait {
            SyncWait::Value(v) => v,
            SyncWait::Auto if galera => 1,
            SyncWait::Auto => return Ok(()),
        };
        conn.batch_execute(&format!("SET SESSION wsrep_sync_wait = {value}"))
            .map_err(r2d2::Error::QueryError)
    }
}

impl CustomizeConnection<PoolConn, r2d2::Error> for Customizer {
    fn on_acquire(&self, conn: &mut PoolConn) -> Result<(), r2d2::Error> {
        match &mut conn.conn {
            DbConnection::Sqlite(c) => sqlite_setup(c),
            // Frappe's sessions run in UTC-agnostic local time; keep the connection's own
            // time zone out of our datetime values and use READ COMMITTED as Frappe does.
            DbConnection::Mysql(c) => {
                c.batch_execute(
                    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci;",
                )
                .map_err(r2d2::Error::QueryError)?;
                self.sync_wait(c)
            }
        }
    }
}

/// WAL lets readers run beside the single writer; busy_timeout makes writers queue instead of
/// failing with SQLITE_BUSY. Switching a file to WAL needs an exclusive lock, and SQLite does
/// not wait for it (busy_timeout does not apply while another connection writes): on a first
/// start, a connection the pool opened while another one was writing failed with "database is
/// locked" (logged by r2d2). The switch is retried here instead, within the busy timeout.
fn sqlite_setup(c: &mut SqliteConnection) -> Result<(), r2d2::Error> {
    const BUSY: Duration = Duration::from_secs(10);
    c.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
        .map_err(r2d2::Error::QueryError)?;
    let deadline = std::time::Instant::now() + BUSY;
    loop {
        match c.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;") {
            Ok(()) => return Ok(()),
            Err(e) if is_sqlite_busy(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(r2d2::Error::QueryError(e)),
        }
    }
}

fn is_sqlite_busy(e: &diesel::result::Error) -> bool {
    let msg = e.to_string();
    msg.contains("database is locked") || msg.contains("database is busy")
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// The pool plus which backend it serves.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    pub backend: Backend,
    inline_reads: bool,
    health: Arc<Health>,
    write_retries: u32,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// Whether `url`'s database exists (SQLite: the file; MariaDB: the server knows the database).
/// `Err` when the MariaDB server cannot be reached at all.
pub fn database_exists(url: &DatabaseUrl) -> anyhow::Result<bool> {
    probe(url).with_context(|| format!("cannot connect to {}", url.redacted()))
}

/// [`database_exists`] with the driver's own error.
fn probe(url: &DatabaseUrl) -> Result<bool, diesel::ConnectionError> {
    match url.backend {
        Backend::Sqlite => Ok(std::path::Path::new(&url.target).exists()),
        Backend::Mysql => match MysqlConnection::establish(&url.target) {
            Ok(_) => Ok(true),
            // ER_BAD_DB_ERROR: "Unknown database 'x'"
            Err(e) if e.to_string().contains("Unknown database") => Ok(false),
            Err(e) => Err(e),
        },
    }
}

/// The name of a MariaDB URL's database and the URL of its server (no database).
fn mysql_server_and_name(url: &DatabaseUrl) -> anyhow::Result<(String, String)> {
    let mut u = url::Url::parse(&url.target).with_context(|| url.redacted())?;
    let name = u.path().trim_start_matches('/').to_string();
    if name.is_empty() {
        bail!("{} names no database", url.redacted());
    }
    u.set_path("");
    Ok((u.to_string(), name))
}

/// The statement that creates a MariaDB URL's database as Frappe creates its sites'.
pub fn create_database_sql(url: &DatabaseUrl) -> anyhow::Result<String> {
    let (_, name) = mysql_server_and_name(url)?;
    Ok(format!(
        "CREATE DATABASE `{}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
        name.replace('`', "``")
    ))
}

/// Creates the MariaDB database of `url` when the server does not have it yet; returns
/// whether it did. SQLite files are created by [`Db::connect`].
pub fn create_database_if_missing(url: &DatabaseUrl) -> anyhow::Result<bool> {
    if url.backend != Backend::Mysql {
        return Ok(false);
    }
    match probe(url) {
        Ok(true) => return Ok(false),
        Ok(false) => {}
        // ER_DBACCESS_DENIED_ERROR: a user without rights on the database is told so whether
        // it exists or not.
        Err(e) if e.to_string().contains("to database") => {
            let sql = create_database_sql(url)?;
            bail!(
                "cannot connect to {}: {e}; if the database does not exist yet, create it as an administrator with: {sql}; and grant this user ALL on it",
                url.redacted()
            );
        }
        Err(e) => return Err(anyhow!(e).context(format!("cannot connect to {}", url.redacted()))),
    }
    let (server, _) = mysql_server_and_name(url)?;
    let sql = create_database_sql(url)?;
    let mut conn = MysqlConnection::establish(&server)
        .with_context(|| format!("cannot connect to {}", redact_url(&server)))?;
    conn.batch_execute(&sql).map_err(|e| {
        anyhow!(
            "the database of {} does not exist and could not be created ({e}); create it with: {sql};",
            url.redacted()
        )
    })?;
    Ok(true)
}

impl Db {
    /// Opens a pool. SQLite files and their folder are created when missing.
    pub fn connect(url: &DatabaseUrl, max_size: u32, timeout: Duration) -> anyhow::Result<Db> {
        Self::connect_with(url, DbOptions::new(max_size, timeout))
    }

    /// Opens a pool with every option.
    pub fn connect_with(url: &DatabaseUrl, options: DbOptions) -> anyhow::Result<Db> {
        let DbOptions {
            max_size,
            timeout,
            sync_wait,
            write_retries,
        } = options;
        if let Some(path) = url.sqlite_path() {
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
            }
        }
        let health = Arc::new(Health::default());
        let manager = Manager {
            url: url.clone(),
            health: health.clone(),
        };
        let pool = r2d2::Pool::builder()
            .max_size(max_size)
            .min_idle(Some(1))
            .connection_timeout(timeout)
            .test_on_check_out(false)
            .connection_customizer(Box::new(Customizer { sync_wait }))
            .build(manager)
            .with_context(|| format!("cannot connect to {}", url.redacted()))?;
        Ok(Db {
            pool,
            backend: url.backend,
            inline_reads: false,
            health,
            write_retries,
        })
    }

    /// A pooled connection, tested first when a connection error happened since it was last
    /// tested (a broken one is dropped and the next one tried).
    pub fn get(&self) -> Result<PooledConnection, AppError> {
        loop {
            let conn = self.pool.get().map_err(AppError::unavailable)?;
            if let Some(conn) = self.checked(conn) {
                return Ok(conn);
            }
        }
    }

    /// The connection, or `None` (and it is dropped) when it needed a test and failed it.
    fn checked(&self, mut conn: PooledConnection) -> Option<PooledConnection> {
        let errors = self.health.connection_errors.load(Ordering::Relaxed);
        if conn.checked_at == errors {
            return Some(conn);
        }
        if conn.conn.batch_execute("SELECT 1").is_err() {
            conn.broken = true;
            return None;
        }
        conn.checked_at = errors;
        Some(conn)
    }

    /// Runs `f` on a pooled connection; a connection whose query failed as if the server went
    /// away is dropped when it returns to the pool, and every other connection is tested
    /// before its next use. A lost conflict (`1213`) leaves the connection as it is.
    fn use_connection<T>(
        &self,
        mut conn: PooledConnection,
        f: impl FnOnce(&mut DbConnection) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        let result = f(&mut conn);
        if let Err(e) = &result {
            if e.db_failure == Some(DbFailure::Connection) {
                conn.broken = true;
                self.health
                    .connection_errors
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        result
    }

    /// Pool use for metrics: (connections, idle).
    pub fn pool_state(&self) -> (u32, u32) {
        let s = self.pool.state();
        (s.connections, s.idle_connections)
    }

    pub fn with_inline_reads(mut self, on: bool) -> Db {
        self.inline_reads = on;
        self
    }

    /// Runs a short read: on the calling worker thread when a pooled connection is idle right
    /// now, otherwise as [`Db::run`] does.
    ///
    /// Handing a query to the blocking pool and waking the worker again costs two thread
    /// switches per request: measured on MariaDB, a 20-row list took 141 µs of service CPU
    /// that way and 69 µs inline, and `bench/run` shows the p99 of a document GET at 20 ms
    /// on the pool and 1 ms inline (BENCHMARKS.md). Only plain SELECTs come here: they take no locks, so under
    /// InnoDB (and SQLite's WAL) they never wait for other transactions. When no connection
    /// is idle (the database is down, or every connection is busy) the read waits on the
    /// blocking pool instead, so a worker never blocks waiting for a connection.
    pub async fn read<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    {
        if self.inline_reads {
            if let Some(conn) = self.pool.try_get().and_then(|c| self.checked(c)) {
                return self.use_connection(conn, f);
            }
        }
        self.run(f).await
    }

    /// Runs blocking diesel work on the blocking thread pool, keeping the tracing span.
    pub async fn run<T, F>(&self, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    {
        let db = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            db.use_connection(db.get()?, f)
        })
        .await
        .map_err(|_| AppError::internal("a database task was cancelled"))?
    }

    /// Runs `f`, which writes in one transaction ([`write_transaction`]), on the blocking
    /// pool, and runs it again from its start when it lost a conflict to a concurrent writer (an InnoDB
    /// deadlock, a Galera certification failure through another node: `1213`) or its
    /// connection was lost, a bounded number of times with jittered exponential backoff.
    ///
    /// `f` must be safe to run again: it reads what it decides on inside the transaction
    /// (a rolled-back attempt leaves nothing behind). On a Galera cluster `SELECT … FOR
    /// UPDATE` does not lock across nodes; the loser of two conflicting transactions learns
    /// it here, at commit or at its next statement, and re-reads. When every retry lost, the
    /// answer is a 503 `QueryDeadlockError` with `Retry-After`.
    pub async fn write<T, F>(&self, mut f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnMut(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
    {
        let db = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conflicts = 0;
            let mut lost = 0;
            loop {
                let result = db.get().and_then(|conn| db.use_connection(conn, &mut f));
                let Err(e) = &result else { return result };
                match e.db_failure {
                    Some(DbFailure::Conflict) if conflicts < db.write_retries => {
                        conflicts += 1;
                        tracing::debug!(
                            attempt = conflicts,
                            "write conflict; running the transaction again"
                        );
                        std::thread::sleep(backoff(conflicts));
                    }
                    // A lost connection may have lost a commit's answer, not the commit:
                    // retry once, and not when the node is gone (the pool then waits
                    // `db_timeout` for a new connection and answers 503).
                    Some(DbFailure::Connection) if lost < 1 => {
                        lost += 1;
                        std::thread::sleep(backoff(1));
                    }
                    Some(DbFailure::Conflict) => {
                        tracing::warn!(
                            retries = conflicts,
                            "write still conflicting after every retry"
                        );
                        return result;
                    }
                    _ => return result,
                }
            }
        })
        .await
        .map_err(|_| AppError::internal("a database task was cancelled"))?
    }

    /// Applies pending migrations of this backend. Several instances starting at once on
    /// one database (through one server or several nodes of a cluster) take turns: one
    /// applies, the others wait for it and then find nothing left to apply.
    pub fn migrate(&self) -> anyhow::Result<Vec<String>> {
        let mut conn = self.pool.get().context("cannot connect")?;
        let lock = MigrationLock::take(&mut conn)?;
        let result = run_migrations(&mut conn);
        lock.release(&mut conn);
        result
    }
}

/// Full-jitter exponential backoff: up to 4 ms after the first conflict, doubling to a cap
/// of 256 ms, so colliding writers spread out instead of colliding again.
fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let cap_ms = 4u64 << attempt.saturating_sub(1).min(6);
    Duration::from_micros(rand::thread_rng().gen_range(500..=cap_ms * 1000))
}

/// A row in `ca_migration_lock` held while migrations run. Taking it is one INSERT of a
/// fixed primary key, which a database decides for exactly one writer, whichever Galera node
/// each one writes through (`GET_LOCK` and `FOR UPDATE` are local to one node). A holder
/// that died leaves a row older than [`MigrationLock::STALE_SECS`], which the next one takes
/// over.
struct MigrationLock {
    holder: String,
}

impl MigrationLock {
    const STALE_SECS: i64 = 600;

    fn take(conn: &mut DbConnection) -> anyhow::Result<MigrationLock> {
        use diesel::sql_types::{BigInt, Text};
        use diesel::RunQueryDsl;
        conn.batch_execute(
            "CREATE TABLE IF NOT EXISTS ca_migration_lock (id INT NOT NULL PRIMARY KEY, holder VARCHAR(64) NOT NULL, since BIGINT NOT NULL)",
        )
        .context("cannot create the migration lock")?;
        let holder = uuid::Uuid::new_v4().to_string();
        let started = std::time::Instant::now();
        let mut waited = false;
        loop {
            let now = chrono::Utc::now().timestamp();
            let taken = diesel::sql_query(
                "INSERT INTO ca_migration_lock (id, holder, since) VALUES (1, ?, ?)",
            )
            .bind::<Text, _>(&holder)
            .bind::<BigInt, _>(now)
            .execute(conn)
            .is_ok();
            if taken {
                return Ok(MigrationLock { holder });
            }
            // Another instance migrates right now (or died doing so long ago).
            let _ = diesel::sql_query("DELETE FROM ca_migration_lock WHERE id = 1 AND since < ?")
                .bind::<BigInt, _>(now - Self::STALE_SECS)
                .execute(conn);
            if !waited {
                tracing::info!("another instance is applying migrations; waiting for it");
                waited = true;
            }
            if started.elapsed() > Duration::from_secs(Self::STALE_SECS as u64 + 60) {
                bail!("another instance holds the migration lock (ca_migration_lock) and does not finish");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn release(self, conn: &mut DbConnection) {
        use diesel::sql_types::Text;
        use diesel::RunQueryDsl;
        let _ = diesel::sql_query("DELETE FROM ca_migration_lock WHERE id = 1 AND holder = ?")
            .bind::<Text, _>(&self.holder)
            .execute(conn);
    }
}

fn run_migrations(conn: &mut DbConnection) -> anyhow::Result<Vec<String>> {
    let applied = match conn {
        DbConnection::Mysql(c) => c.run_pending_migrations(MYSQL_MIGRATIONS),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
    }
    .map_err(|e| anyhow!(e).context("migration failed"))?;
    Ok(applied.into_iter().map(|v| v.to_string()).collect())
}

/// A transaction that writes. On SQLite it takes the write lock when it begins
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and then writes fails at once
/// with "database is locked" when another writer committed in between (busy_timeout does not
/// apply to that case), whereas an immediate one queues behind the other writer. MariaDB
/// locks rows as it goes and uses a plain transaction.
pub fn write_transaction<T>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, AppError>,
) -> Result<T, AppError> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let outermost_sqlite = match conn {
        DbConnection::Sqlite(c) => {
            let status = AnsiTransactionManager::transaction_manager_status_mut(c);
            status.transaction_depth()?.is_none()
        }
        DbConnection::Mysql(_) => false,
    };
    if !outermost_sqlite {
        return conn.transaction(f);
    }
    if let DbConnection::Sqlite(c) = conn {
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
    }
    let result = f(conn);
    let DbConnection::Sqlite(c) = conn else {
        return result;
    };
    match result {
        Ok(v) => {
            AnsiTransactionManager::commit_transaction(c)?;
            Ok(v)
        }
        Err(e) => {
            AnsiTransactionManager::rollback_transaction(c)?;
            Err(e)
        }
    }
}
