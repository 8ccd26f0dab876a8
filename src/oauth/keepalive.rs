//! The background keep-alive job: refreshes connections idle longer than `idle_age` (refresh
//! tokens lapse when unused) and, for apps marked keep warm, refreshes ahead of expiry. One
//! instance runs it at a time (a lease row in `ca_job_lease`); at most `concurrency` refreshes
//! are in flight per token endpoint, and at most half the database pool is used by the job.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use diesel::prelude::*;
use tokio::sync::Semaphore;

use super::flow;
use super::store as oauth_store;
use crate::auth::ADMINISTRATOR;
use crate::db::schema::{ca_token_state, connected_app, token_cache};
use crate::doctype::token_cache::Key;
use crate::error::AppResult;
use crate::state::SharedState;

const JOB: &str = "keepalive";
/// Connections read from the database at once.
const PAGE: i64 = 1000;

/// What this instance's job did, for tests and logs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Runs this instance made while holding the job lease.
    pub runs: AtomicU64,
    pub refreshed: AtomicU64,
    pub failed: AtomicU64,
    /// Due connections another refresh (a user's, or another instance's) was already doing.
    pub skipped: AtomicU64,
}

/// One run's counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunReport {
    pub due: u64,
    pub refreshed: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// Starts the job on the current runtime when it is enabled; it runs every `interval`,
/// the first time one interval after start.
pub fn spawn(state: SharedState) {
    if !state.settings.keepalive.enabled {
        return;
    }
    let owner = format!("{}-{}", std::process::id(), crate::secrets::random_hex(8));
    tokio::spawn(async move {
        let interval = state.settings.keepalive.interval;
        loop {
            tokio::time::sleep(interval).await;
            match run_once(&state, &owner).await {
                Ok(Some(r)) if r.due > 0 => tracing::info!(
                    due = r.due,
                    refreshed = r.refreshed,
                    failed = r.failed,
                    skipped = r.skipped,
                    "keep-alive run finished"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "keep-alive run failed"),
            }
        }
    });
}

/// The lease lasts long enough to outlive the next tick: its holder keeps it from run to run,
/// and another instance takes over only when the holder stopped renewing it.
fn lease_length(state: &SharedState) -> Duration {
    state.settings.keepalive.interval * 2 + Duration::from_secs(30)
}

async fn take_lease(state: &SharedState, owner: &str) -> AppResult<bool> {
    let owner = owner.to_string();
    let clock = state.clock;
    let length = chrono::Duration::from_std(lease_length(state))
        .unwrap_or_else(|_| chrono::Duration::hours(1));
    state
        .db
        .write(move |conn| {
            let now = clock.now();
            oauth_store::take_job_lease(conn, JOB, &owner, now, now + length)
        })
        .await
}

/// One run, when this instance holds (or takes) the job lease; `None` when another does.
pub async fn run_once(state: &SharedState, owner: &str) -> AppResult<Option<RunReport>> {
    if !take_lease(state, owner).await? {
        return Ok(None);
    }
    state.oauth.keepalive.runs.fetch_add(1, Ordering::Relaxed);
    let due = due_connections(state).await?;
    let report = refresh_all(state, owner, due).await;
    Ok(Some(report))
}

/// A Token Cache as the job reads it: name, app, user, `expires_in`, `modified`.
type Row = (
    String,
    Option<String>,
    Option<String>,
    i32,
    Option<NaiveDateTime>,
);

/// A connection the job refreshes, with the received time it was selected at.
#[derive(Debug, Clone)]
struct Due {
    key: Key,
    seen: Option<NaiveDateTime>,
    endpoint: String,
}

/// Every connection whose refresh is due now: it has a refresh token, needs no reconnect, and
/// is idle longer than `idle_age`, or (keep warm) expires before the run after next.
async fn due_connections(state: &SharedState) -> AppResult<Vec<Due>> {
    let st = state.clone();
    state
        .db
        .run(move |conn| {
            let state = &st;
            let keep_warm: HashSet<String> = oauth_store::keep_warm_apps(conn)?
                .into_iter()
                .map(|a| a.to_lowercase())
                .collect();
            let endpoints: HashMap<String, String> = connected_app::table
                .select((connected_app::name, connected_app::token_uri))
                .load::<(String, Option<String>)>(conn)?
                .into_iter()
                .filter_map(|(n, t)| Some((n.to_lowercase(), t.filter(|t| !t.is_empty())?)))
                .collect();
            let idle_age = state.settings.keepalive.idle_age.as_secs() as i64;
            let ahead = state.settings.keepalive.interval.as_secs() as i64;
            let margin = state.settings.refresh_margin.as_secs() as i64;
            let mut due = Vec::new();
            let mut after = String::new();
            loop {
                let rows: Vec<Row> = token_cache::table
                    .filter(token_cache::name.gt(&after))
                    .filter(token_cache::refresh_token.is_not_null())
                    .filter(token_cache::refresh_token.ne(""))
                    .order(token_cache::name.asc())
                    .limit(PAGE)
                    .select((
                        token_cache::name,
                        token_cache::connected_app,
                        token_cache::user,
                        token_cache::expires_in,
                        token_cache::modified,
                    ))
                    .load(conn)?;
                let Some(last) = rows.last() else { break };
                after = last.0.clone();
                let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
                let states: HashMap<String, (Option<NaiveDateTime>, i32)> = ca_token_state::table
                    .filter(ca_token_state::token_cache.eq_any(&names))
                    .select((
                        ca_token_state::token_cache,
                        ca_token_state::received_at,
                        ca_token_state::needs_reconnect,
                    ))
                    .load::<(String, Option<NaiveDateTime>, i32)>(conn)?
                    .into_iter()
                    .map(|(n, r, x)| (n.to_lowercase(), (r, x)))
                    .collect();
                for (name, app, user, expires_in, modified) in rows {
                    let (Some(app), Some(user)) = (app, user.filter(|u| !u.is_empty())) else {
                        continue;
                    };
                    let Some(endpoint) = endpoints.get(&app.to_lowercase()) else {
                        continue;
                    };
                    let (received, reconnect) = states
                        .get(&name.to_lowercase())
                        .copied()
                        .unwrap_or((None, 0));
                    if reconnect != 0 {
                        continue;
                    }
                    let Some(base) = received.or(modified) else {
                        continue;
                    };
                    let age = state.clock.seconds_since(base);
                    let lifetime = i64::from(expires_in);
                    let warm_due = keep_warm.contains(&app.to_lowercase())
                        && lifetime > 0
                        && lifetime - age <= flow::effective_margin(margin, lifetime) + ahead;
                    if age >= idle_age || warm_due {
                        due.push(Due {
                            key: Key::user(&app, &user),
                            seen: received,
                            endpoint: endpoint.clone(),
                        });
                    }
                }
            }
            Ok(due)
        })
        .await
}

/// Refreshes the due connections: per token endpoint at most `concurrency` at a time, and at
/// most half the pool's connections in use by the job at any moment.
async fn refresh_all(state: &SharedState, owner: &str, due: Vec<Due>) -> RunReport {
    let per_endpoint = state.settings.keepalive.concurrency.max(1);
    let db_share = (state.settings.db_pool_size as usize / 2).max(1);
    let global = Arc::new(Semaphore::new(db_share));
    let mut endpoints: HashMap<String, Arc<Semaphore>> = HashMap::new();
    let report = Arc::new(Counts::default());
    let mut tasks = tokio::task::JoinSet::new();
    let mut renewed = Instant::now();
    let renew_every = lease_length(state) / 4;
    let total = due.len() as u64;
    for d in due {
        if renewed.elapsed() > renew_every {
            // A run longer than the lease keeps it, or stops when another instance took it.
            match take_lease(state, owner).await {
                Ok(true) => renewed = Instant::now(),
                _ => break,
            }
        }
        let sem = endpoints
            .entry(d.endpoint.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(per_endpoint)))
            .clone();
        let (state, global, report) = (state.clone(), global.clone(), report.clone());
        tasks.spawn(async move {
            let Ok(_endpoint) = sem.acquire_owned().await else {
                return;
            };
            let Ok(_db) = global.acquire_owned().await else {
                return;
            };
            let outcome = refresh_one(&state, &d).await;
            report.add(&state.oauth.keepalive, outcome);
        });
        // Do not queue unboundedly many tasks ahead of the permits.
        while tasks.len() > 4 * per_endpoint.max(db_share) * endpoints.len().max(1) {
            let _ = tasks.join_next().await;
        }
    }
    while tasks.join_next().await.is_some() {}
    RunReport {
        due: total,
        refreshed: report.refreshed.load(Ordering::Relaxed),
        failed: report.failed.load(Ordering::Relaxed),
        skipped: report.skipped.load(Ordering::Relaxed),
    }
}

#[derive(Default)]
struct Counts {
    refreshed: AtomicU64,
    failed: AtomicU64,
    skipped: AtomicU64,
}

impl Counts {
    /// Counts an outcome in this run and in the instance's totals.
    fn add(&self, totals: &Stats, o: Outcome) {
        let (run, total) = match o {
            Outcome::Refreshed => (&self.refreshed, &totals.refreshed),
            Outcome::Failed => (&self.failed, &totals.failed),
            Outcome::Skipped => (&self.skipped, &totals.skipped),
        };
        run.fetch_add(1, Ordering::Relaxed);
        total.fetch_add(1, Ordering::Relaxed);
    }
}

enum Outcome {
    Refreshed,
    Failed,
    Skipped,
}

/// Refreshes one connection through the same single flight as a user's request: the
/// process-wide lock of the Token Cache, then its lease row. Either being held means someone
/// is refreshing it now, and the job leaves it; a connection refreshed since it was selected
/// is left too, so nothing is refreshed twice.
async fn refresh_one(state: &SharedState, d: &Due) -> Outcome {
    let name = d.key.name();
    let lock = state.oauth.lock_for(&name);
    let Ok(_guard) = lock.try_lock() else {
        return Outcome::Skipped;
    };
    match flow::refresh_if_unchanged(state, &d.key, d.seen, ADMINISTRATOR).await {
        Ok(true) => Outcome::Refreshed,
        Ok(false) => Outcome::Skipped,
        Err(e) => {
            tracing::warn!(token_cache = %name, error = %e, "keep-alive refresh failed");
            Outcome::Failed
        }
    }
}
