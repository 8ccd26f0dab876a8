//! Login throttling like Frappe's LoginAttemptTracker: after N failures for a user or an
//! address, further attempts are refused for a cooling-off time. Kept in the database so
//! every instance sees the same counts.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::configuration::Settings;
use crate::db::schema::ca_login_attempts as la;
use crate::db::DbConnection;
use crate::error::AppResult;

#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    max_failures: i32,
    lockout_secs: i64,
}

impl Throttle {
    pub fn from_settings(s: &Settings) -> Self {
        Self {
            max_failures: s.login_max_failures as i32,
            lockout_secs: s.login_lockout.as_secs() as i64,
        }
    }

    /// The counters a login attempt touches: the user, and the address when known.
    pub fn keys(&self, usr: &str, ip: Option<&str>) -> Vec<String> {
        let mut k = vec![format!("user:{}", usr.to_lowercase())];
        if let Some(ip) = ip {
            k.push(format!("ip:{ip}"));
        }
        k
    }

    pub fn is_locked(
        &self,
        conn: &mut DbConnection,
        keys: &[String],
        now: NaiveDateTime,
    ) -> AppResult<bool> {
        let until: Vec<Option<NaiveDateTime>> = la::table
            .filter(la::attempt_key.eq_any(keys))
            .select(la::locked_until)
            .load(conn)?;
        Ok(until.into_iter().flatten().any(|t| t > now))
    }

    pub fn record_failure(
        &self,
        conn: &mut DbConnection,
        keys: &[String],
        now: NaiveDateTime,
    ) -> AppResult<()> {
        for key in keys {
            let row: Option<(i32, Option<NaiveDateTime>, Option<NaiveDateTime>)> = la::table
                .filter(la::attempt_key.eq(key))
                .select((la::failures, la::first_failure, la::locked_until))
                .first(conn)
                .optional()?;
            let window = chrono::Duration::seconds(self.lockout_secs);
            let (failures, first) = match row {
                // A finished lockout or an old window starts counting again.
                Some((f, Some(first), until))
                    if now - first < window && until.map_or(true, |u| u > now) =>
                {
                    (f + 1, first)
                }
                Some(_) | None => (1, now),
            };
            let locked = (failures >= self.max_failures).then_some(now + window);
            let n = diesel::update(la::table.filter(la::attempt_key.eq(key)))
                .set((
                    la::failures.eq(failures),
                    la::first_failure.eq(Some(first)),
                    la::locked_until.eq(locked),
                ))
                .execute(conn)?;
            if n == 0 {
                diesel::insert_into(la::table)
                    .values((
                        la::attempt_key.eq(key),
                        la::failures.eq(failures),
                        la::first_failure.eq(Some(first)),
                        la::locked_until.eq(locked),
                    ))
                    .execute(conn)?;
            }
        }
        Ok(())
    }

    pub fn clear(&self, conn: &mut DbConnection, keys: &[String]) -> AppResult<()> {
        // Only the user's counter: one good login must not unlock an address that is guessing.
        if let Some(user_key) = keys.first() {
            diesel::delete(la::table.filter(la::attempt_key.eq(user_key))).execute(conn)?;
        }
        Ok(())
    }
}
