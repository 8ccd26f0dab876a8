//! Storage: one connection type over MariaDB and SQLite, its r2d2 pool, migrations, and the
//! helper that runs blocking diesel work off the async workers.

pub mod schema;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{self, CustomizeConnection, ManageConnection};
use diesel::{Connection, MysqlConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::AppError;

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
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("the database URL is empty".into());
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
            return Err(format!(
                "unsupported database URL scheme in {:?}; use mysql:// or sqlite://",
                redact_url(url)
            ));
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
}

/// A pooled connection and whether a query on it failed as if the server went away; such a
/// connection is dropped when it returns to the pool instead of being tested on every
/// checkout (which would cost a round trip per request).
pub struct PoolConn {
    conn: DbConnection,
    broken: bool,
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
        })
    }

    fn is_valid(&self, conn: &mut PoolConn) -> Result<(), r2d2::Error> {
        conn.conn
            .batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut PoolConn) -> bool {
        conn.broken
    }
}

#[derive(Debug)]
struct Customizer;

impl CustomizeConnection<PoolConn, r2d2::Error> for Customizer {
    fn on_acquire(&self, conn: &mut PoolConn) -> Result<(), r2d2::Error> {
        let sql = match &conn.conn {
            // WAL lets readers run beside the single writer; busy_timeout makes writers queue
            // instead of failing with SQLITE_BUSY.
            DbConnection::Sqlite(_) => {
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;"
            }
            // Frappe's sessions run in UTC-agnostic local time; keep the connection's own
            // time zone out of our datetime values and use READ COMMITTED as Frappe does.
            DbConnection::Mysql(_) => {
                "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED; SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci;"
            }
        };
        conn.conn
            .batch_execute(sql)
            .map_err(r2d2::Error::QueryError)
    }
}

/// Runs `f` on a pooled connection; a connection whose query failed as if the server went
/// away is dropped when it returns to the pool.
fn use_connection<T>(
    mut conn: PooledConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, AppError>,
) -> Result<T, AppError> {
    let result = f(&mut conn);
    if let Err(e) = &result {
        if e.status == actix_web::http::StatusCode::SERVICE_UNAVAILABLE {
            conn.broken = true;
        }
    }
    result
}

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// The pool plus which backend it serves.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    pub backend: Backend,
    inline_reads: bool,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens a pool. SQLite files and their folder are created when missing.
    pub fn connect(url: &DatabaseUrl, max_size: u32, timeout: Duration) -> Result<Db, String> {
        if let Some(path) = url.sqlite_path() {
            if let Some(dir) = std::path::Path::new(path).parent() {
                if !dir.as_os_str().is_empty() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
            }
        }
        let manager = Manager { url: url.clone() };
        let pool = r2d2::Pool::builder()
            .max_size(max_size)
            .min_idle(Some(1))
            .connection_timeout(timeout)
            .test_on_check_out(false)
            .connection_customizer(Box::new(Customizer))
            .build(manager)
            .map_err(|e| format!("cannot connect to {}: {e}", url.redacted()))?;
        Ok(Db {
            pool,
            backend: url.backend,
            inline_reads: false,
        })
    }

    pub fn get(&self) -> Result<PooledConnection, AppError> {
        self.pool.get().map_err(|e| AppError::unavailable(&e))
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
            if let Some(conn) = self.pool.try_get() {
                return use_connection(conn, f);
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
        actix_web::rt::task::spawn_blocking(move || {
            let _entered = span.enter();
            use_connection(db.get()?, f)
        })
        .await
        .map_err(|_| AppError::internal("a database task was cancelled"))?
    }

    /// Applies pending migrations of this backend.
    pub fn migrate(&self) -> Result<Vec<String>, String> {
        let mut conn = self
            .pool
            .get()
            .map_err(|e| format!("cannot connect: {e}"))?;
        run_migrations(&mut conn)
    }
}

fn run_migrations(conn: &mut DbConnection) -> Result<Vec<String>, String> {
    let applied = match conn {
        DbConnection::Mysql(c) => c.run_pending_migrations(MYSQL_MIGRATIONS),
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
    }
    .map_err(|e| format!("migration failed: {e}"))?;
    Ok(applied.into_iter().map(|v| v.to_string()).collect())
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        AppError::database(&e)
    }
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
