//! Login throttling like Frappe's LoginAttemptTracker: after N failures for a user or an
//! address, further attempts are refused for a cooling-off time. Kept in the database so
//! every instance sees the same counts.
//!
//! A login takes its attempt before the password is checked: one conditional
//! `UPDATE … SET failures = failures + 1 WHERE failures < max` per counter, decided by the
//! number of rows it changed. The database applies it atomically (and a Galera cluster
//! certifies it like any write), so a concurrent burst, from one instance or many, gets exactly
//! `max` guesses; nothing is read and then written. A failed attempt keeps what it took, a
//! good login gives it back (the user's counter is cleared, as in Frappe).
//!
//! Password hashing is the one expensive step an unauthenticated caller can ask for. It runs
//! on the blocking pool without a database connection, at most [`LoginLimits::permits`] at a
//! time, so a flood of failed logins queues behind those few permits instead of taking every
//! pooled connection and core from other users' requests.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use chrono::NaiveDateTime;
use diesel::dsl::case_when;
use diesel::prelude::*;
use sha2::{Digest, Sha256};

use crate::configuration::Settings;
use crate::db::schema::ca_login_attempts as la;
use crate::db::DbConnection;
use crate::error::{AppError, AppResult, DbFailure};

/// The settings of one kind of counter.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    max_failures: i32,
    lockout_secs: i64,
}

/// The counter of a login name: the resolved user's name when it exists, else what was typed;
/// either way in lower case, so every spelling of one login shares it.
pub fn user_key(login: &str) -> String {
    bounded("user:", &login.to_lowercase())
}

/// The counter of an address for logins.
pub fn login_address_key(addr: &str) -> String {
    bounded("ip:", addr)
}

/// The counter of an API key (as sent, whether or not it exists).
pub fn api_key_key(api_key: &str) -> String {
    bounded("key:", api_key)
}

/// The counter of an address for API-key secrets (apart from its login counter).
pub fn api_address_key(addr: &str) -> String {
    bounded("keyip:", addr)
}

/// `prefix` + `value`, or a digest of the value when it would not fit the 255-character key.
fn bounded(prefix: &str, value: &str) -> String {
    if prefix.len() + value.len() <= 200 {
        return format!("{prefix}{value}");
    }
    let digest = Sha256::digest(value.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}#{hex}")
}

/// The client's address: the first `X-Forwarded-For` (or `Forwarded: for=`) entry when
/// present, as in Frappe, else the peer. A forwarded value that is not an address falls back
/// to the peer. Counters key it with [`address_key`].
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let info = req.connection_info();
    let forwarded = info.realip_remote_addr().and_then(parse_address);
    forwarded
        .or_else(|| req.peer_addr().map(|a| a.ip()))
        .map(|ip| ip.to_canonical())
}

/// Parses `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]:443`, `"[2001:db8::1]"`.
pub fn parse_address(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')
        .and_then(|r| r.split(']').next())
        .and_then(|r| r.parse::<Ipv6Addr>().ok())
        .map(IpAddr::V6)
}

/// The counter's text for an address: IPv4 as is, IPv6 as its /64 (one host usually owns a
/// whole /64), an IPv4-mapped IPv6 address as its IPv4.
pub fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
    }
}

impl Throttle {
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            max_failures: s.login_max_failures.min(i32::MAX as u32) as i32,
            lockout_secs: s.login_lockout.as_secs().min(i64::MAX as u64 / 2) as i64,
        }
    }

    /// `login_max_failures = 0` or `login_lockout = 0` turns throttling off.
    fn disabled(&self) -> bool {
        self.max_failures <= 0 || self.lockout_secs <= 0
    }

    fn window(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.lockout_secs)
    }

    /// Takes one attempt from every counter, atomically per counter. True when all had one
    /// left; otherwise what was taken is given back and the caller is locked out.
    pub fn admit(
        &self,
        conn: &mut DbConnection,
        keys: &[String],
        now: NaiveDateTime,
    ) -> AppResult<bool> {
        if self.disabled() {
            return Ok(true);
        }
        for (i, key) in keys.iter().enumerate() {
            let taken = match self.take(conn, key, now) {
                Ok(taken) => taken,
                // Still losing to concurrent writers of this counter after every retry (a
                // burst through several Galera nodes): refuse, as a used-up counter would.
                Err(e) if e.db_failure == Some(DbFailure::Conflict) => false,
                Err(e) => return Err(e),
            };
            if !taken {
                for key in &keys[..i] {
                    match self.give_back(conn, key) {
                        // Not given back: the counter counts one more, which only refuses sooner.
                        Err(e) if e.db_failure != Some(DbFailure::Conflict) => return Err(e),
                        _ => {}
                    }
                }
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One attempt from one counter: the conditional increment decides. When it changes no
    /// row, the row is missing, stale (its window or lockout is over) or locked: make sure it
    /// exists, restart it when stale, and let the increment decide again.
    fn take(&self, conn: &mut DbConnection, key: &str, now: NaiveDateTime) -> AppResult<bool> {
        if self.increment_if_open(conn, key, now)? {
            return Ok(true);
        }
        self.ensure_row(conn, key, now)?;
        self.restart_if_stale(conn, key, now)?;
        self.increment_if_open(conn, key, now)
    }

    /// `failures + 1` when below the limit and inside the window; the increment that reaches
    /// the limit also sets the lockout. (`locked_until` comes first in `SET`: MariaDB assigns
    /// left to right and would otherwise see the new `failures`.)
    fn increment_if_open(
        &self,
        conn: &mut DbConnection,
        key: &str,
        now: NaiveDateTime,
    ) -> AppResult<bool> {
        let until = now + self.window();
        let n = diesel::update(
            la::table
                .filter(la::attempt_key.eq(key))
                .filter(la::failures.lt(self.max_failures))
                .filter(la::first_failure.gt(now - self.window())),
        )
        .set((
            la::locked_until.eq(
                case_when(la::failures.ge(self.max_failures - 1), Some(until))
                    .otherwise(la::locked_until),
            ),
            la::failures.eq(la::failures + 1),
        ))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// Inserts an empty counter unless one exists. `INSERT IGNORE` on MariaDB and
    /// `INSERT OR IGNORE` on SQLite: a concurrent insert of the same key is not an error.
    fn ensure_row(&self, conn: &mut DbConnection, key: &str, now: NaiveDateTime) -> AppResult<()> {
        let row = || {
            (
                la::attempt_key.eq(key),
                la::failures.eq(0),
                la::first_failure.eq(Some(now)),
                la::locked_until.eq(None::<NaiveDateTime>),
            )
        };
        certified(|| {
            Ok(match &mut *conn {
                DbConnection::Mysql(c) => diesel::insert_or_ignore_into(la::table)
                    .values(row())
                    .execute(c)?,
                DbConnection::Sqlite(c) => diesel::insert_or_ignore_into(la::table)
                    .values(row())
                    .execute(c)?,
            })
        })?;
        Ok(())
    }

    /// Restarts a counter whose lockout is over, or whose window passed without one.
    fn restart_if_stale(
        &self,
        conn: &mut DbConnection,
        key: &str,
        now: NaiveDateTime,
    ) -> AppResult<()> {
        certified(|| {
            Ok(diesel::update(
                la::table.filter(la::attempt_key.eq(key)).filter(
                    la::locked_until.le(now).or(la::locked_until.is_null().and(
                        la::first_failure
                            .is_null()
                            .or(la::first_failure.le(now - self.window())),
                    )),
                ),
            )
            .set((
                la::failures.eq(0),
                la::first_failure.eq(Some(now)),
                la::locked_until.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?)
        })?;
        Ok(())
    }

    /// Gives back an attempt that was not a failure (the password was right, or another
    /// counter refused it).
    pub fn give_back(&self, conn: &mut DbConnection, key: &str) -> AppResult<()> {
        certified(|| {
            Ok(diesel::update(
                la::table
                    .filter(la::attempt_key.eq(key))
                    .filter(la::failures.gt(0)),
            )
            .set((
                la::locked_until.eq(None::<NaiveDateTime>),
                la::failures.eq(la::failures - 1),
            ))
            .execute(conn)?)
        })?;
        Ok(())
    }

    /// Forgets a counter (a good login clears its user's, as in Frappe).
    pub fn clear(&self, conn: &mut DbConnection, key: &str) -> AppResult<()> {
        certified(|| Ok(diesel::delete(la::table.filter(la::attempt_key.eq(key))).execute(conn)?))?;
        Ok(())
    }

    /// True when one of the counters is locked right now (API keys check this on the rare
    /// path that verifies a secret, and count failures with [`Throttle::record_failure`]).
    pub fn is_locked(
        &self,
        conn: &mut DbConnection,
        keys: &[String],
        now: NaiveDateTime,
    ) -> AppResult<bool> {
        let n: i64 = la::table
            .filter(la::attempt_key.eq_any(keys))
            .filter(la::failures.ge(self.max_failures))
            .filter(la::locked_until.gt(now))
            .count()
            .get_result(conn)?;
        Ok(n > 0)
    }

    /// Counts a failure on every counter (atomically, without a limit check).
    pub fn record_failure(
        &self,
        conn: &mut DbConnection,
        keys: &[String],
        now: NaiveDateTime,
    ) -> AppResult<()> {
        if self.disabled() {
            return Ok(());
        }
        for key in keys {
            // A locked counter stays as it is; an open one counts the failure.
            if !self.increment_if_open(conn, key, now)? {
                self.ensure_row(conn, key, now)?;
                self.restart_if_stale(conn, key, now)?;
                self.increment_if_open(conn, key, now)?;
            }
        }
        Ok(())
    }

    /// Deletes counters whose lockout or window is over; returns how many.
    pub fn purge(&self, conn: &mut DbConnection, now: NaiveDateTime) -> AppResult<usize> {
        Ok(diesel::delete(
            la::table.filter(
                la::locked_until.le(now).or(la::locked_until.is_null().and(
                    la::first_failure
                        .is_null()
                        .or(la::first_failure.le(now - self.window())),
                )),
            ),
        )
        .execute(conn)?)
    }
}

/// Runs one autocommit statement again when it lost a conflict (an InnoDB deadlock, or a
/// Galera certification failure against a write through another node): the server rolled it
/// back, so running it again is safe, and its `WHERE` is decided again on the winner's row.
fn certified<T>(mut statement: impl FnMut() -> AppResult<T>) -> AppResult<T> {
    use rand::Rng;
    let mut attempt = 0u32;
    loop {
        match statement() {
            Err(e) if e.db_failure == Some(DbFailure::Conflict) && attempt < 8 => {
                attempt += 1;
                let cap_us = 1000u64 << attempt.min(6);
                let wait = rand::thread_rng().gen_range(200..=cap_us);
                std::thread::sleep(Duration::from_micros(wait));
            }
            other => return other,
        }
    }
}

/// Shared by every request of an instance: the password-hashing permits and the purge clock.
#[derive(Debug)]
pub struct LoginLimits {
    permits: usize,
    hashing: Arc<tokio::sync::Semaphore>,
    /// Logins waiting for or holding a permit; beyond `max_waiting` a login is refused at once.
    waiting: AtomicUsize,
    max_waiting: usize,
    stats: Arc<HashStats>,
    purge_every: Duration,
    last_purge: Mutex<Option<Instant>>,
}

#[derive(Debug, Default)]
struct HashStats {
    running: AtomicUsize,
    peak: AtomicUsize,
    checks: AtomicU64,
}

impl LoginLimits {
    pub fn new(s: &Settings) -> Self {
        // Below the worker and pool counts, so hashing never takes every core or connection.
        let permits = (s.workers.min(s.db_pool_size as usize) / 2).max(1);
        Self {
            permits,
            hashing: Arc::new(tokio::sync::Semaphore::new(permits)),
            waiting: AtomicUsize::new(0),
            max_waiting: permits * 128,
            stats: Arc::default(),
            purge_every: s
                .login_lockout
                .clamp(Duration::from_secs(1), Duration::from_secs(60)),
            last_purge: Mutex::new(None),
        }
    }

    /// How many password checks may run at once.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Password checks run so far.
    pub fn checks(&self) -> u64 {
        self.stats.checks.load(Ordering::Relaxed)
    }

    /// The most password checks that ever ran at the same time.
    pub fn peak(&self) -> usize {
        self.stats.peak.load(Ordering::Relaxed)
    }

    /// A place in the queue for a password check, or a 429 when the queue is full.
    pub fn enter(&self) -> Result<Queued<'_>, AppError> {
        let before = self.waiting.fetch_add(1, Ordering::AcqRel);
        let q = Queued { limits: self };
        if before >= self.max_waiting {
            return Err(too_many_requests());
        }
        Ok(q)
    }

    /// True at most once per `purge_every`: time to delete old counters.
    pub fn purge_due(&self) -> bool {
        let Ok(mut last) = self.last_purge.lock() else {
            return false;
        };
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < self.purge_every) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// A login's place in the hashing queue.
#[derive(Debug)]
pub struct Queued<'a> {
    limits: &'a LoginLimits,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.limits.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Queued<'_> {
    /// Checks `pwd` against `hash` on the blocking pool once a permit is free. The permit
    /// travels with the blocking task, so a login whose client went away still holds it
    /// until its hash is done: the bound holds for the work, not just for the requests.
    pub async fn verify(&self, pwd: String, hash: String) -> Result<bool, AppError> {
        let permit = self
            .limits
            .hashing
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AppError::internal("the password check queue is closed"))?;
        let stats = self.limits.stats.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let running = stats.running.fetch_add(1, Ordering::AcqRel) + 1;
            stats.peak.fetch_max(running, Ordering::AcqRel);
            stats.checks.fetch_add(1, Ordering::Relaxed);
            let ok = crate::secrets::password::verify_password(&pwd, &hash);
            stats.running.fetch_sub(1, Ordering::AcqRel);
            drop(permit);
            ok
        })
        .await
        .map_err(|_| AppError::internal("a password check was cancelled"))
    }
}

/// 429 as Frappe's rate limiter answers.
pub fn too_many_requests() -> AppError {
    AppError::thrown(
        crate::error::ExcType::TooManyRequestsError,
        "You hit the rate limit because of too many requests. Please try after sometime.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Option<String> {
        parse_address(s).map(address_key)
    }

    #[test]
    fn addresses_parse_with_or_without_port_and_ipv6_counts_by_its_64() {
        assert_eq!(key("10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(key(" 10.0.0.1:8080 ").as_deref(), Some("10.0.0.1"));
        assert_eq!(key("::ffff:10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(key("2001:db8:1:2::a").as_deref(), Some("2001:db8:1:2::/64"));
        assert_eq!(
            key("[2001:db8:1:2:ffff::c]:443").as_deref(),
            Some("2001:db8:1:2::/64")
        );
        assert_eq!(
            key("\"[2001:db8:1:2::1]\"").as_deref(),
            Some("2001:db8:1:2::/64")
        );
        assert_eq!(
            key("[2001:db8:1:3::1]").as_deref(),
            Some("2001:db8:1:3::/64")
        );
        assert_eq!(key("::1").as_deref(), Some("::/64"));
        for bad in [
            "",
            "unknown",
            "10.0.0",
            "2001",
            "[2001]:1",
            "example.com:80",
        ] {
            assert_eq!(key(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn long_counter_keys_are_digested_to_fit_the_column() {
        assert_eq!(user_key("Admin@Example.com"), "user:admin@example.com");
        let long = user_key(&"x".repeat(10_000));
        assert!(long.starts_with("user:#") && long.len() == 6 + 64, "{long}");
        assert_ne!(long, user_key(&"x".repeat(10_001)));
    }
}
