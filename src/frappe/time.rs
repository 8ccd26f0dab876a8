//! Frappe timestamps: `YYYY-MM-DD HH:MM:SS.ffffff`, naive, in the site's time zone.

use chrono::{NaiveDateTime, Utc};
use chrono_tz::Tz;

pub const FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// Turns instants into the site's local time and back.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub tz: Tz,
}

impl Clock {
    pub fn new(tz: Tz) -> Self {
        Self { tz }
    }

    /// Parses an IANA zone name (`Asia/Kolkata`).
    pub fn from_name(name: &str) -> Result<Self, String> {
        name.parse::<Tz>()
            .map(Self::new)
            .map_err(|_| format!("unknown time zone {name:?}"))
    }

    /// Now, as a naive local timestamp with microseconds (what Frappe stores).
    pub fn now(&self) -> NaiveDateTime {
        let now = Utc::now().with_timezone(&self.tz).naive_local();
        // Frappe keeps microseconds; drop anything finer so values round-trip exactly.
        truncate_micros(now)
    }

    /// Seconds from a stored local timestamp to now (negative when it lies in the future).
    pub fn seconds_since(&self, t: NaiveDateTime) -> i64 {
        (self.now() - t).num_seconds()
    }
}

pub fn truncate_micros(t: NaiveDateTime) -> NaiveDateTime {
    use chrono::Timelike;
    let nanos = t.nanosecond() / 1000 * 1000;
    t.with_nanosecond(nanos).unwrap_or(t)
}

pub fn format(t: &NaiveDateTime) -> String {
    t.format(FORMAT).to_string()
}

/// Parses `YYYY-MM-DD HH:MM:SS[.ffffff]`.
pub fn parse(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S%.f").ok()
}
