//! Frappe timestamps: `YYYY-MM-DD HH:MM:SS.ffffff`, naive, in the site's time zone.

use chrono::{NaiveDateTime, Utc};
use chrono_tz::Tz;

pub const FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// A time zone name that is not an IANA zone.
#[derive(Debug, thiserror::Error)]
#[error("unknown time zone {0:?}")]
pub struct UnknownTimeZone(pub String);

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
    pub fn from_name(name: &str) -> Result<Self, UnknownTimeZone> {
        name.parse::<Tz>()
            .map(Self::new)
            .map_err(|_| UnknownTimeZone(name.to_string()))
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

/// `s` itself when it already is in [`FORMAT`] (`YYYY-MM-DD HH:MM:SS.ffffff`), as MariaDB's
/// datetime(6) and the service's own writes are: such text needs no parsing to be printed.
pub fn canonical(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 26
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b' ',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            _ => c.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    // The digits must also make a real date and time, as parsing would insist.
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let real =
        chrono::NaiveDate::from_ymd_opt(y as i32, mo, d).is_some() && h < 24 && mi < 60 && sec < 60;
    real.then_some(s)
}

/// Parses `YYYY-MM-DD HH:MM:SS[.ffffff]`.
pub fn parse(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S%.f").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text_passes_through_and_anything_else_does_not() {
        let ok = "2026-11-28 08:35:16.132698";
        assert_eq!(canonical(ok), Some(ok));
        assert_eq!(
            canonical("2024-02-29 23:59:59.999999"),
            Some("2024-02-29 23:59:59.999999")
        );
        for bad in [
            "2026-11-28 08:35:16",
            "2026-11-28 08:35:16.1326989",
            "2026-02-30 08:35:16.000000",
            "2025-02-29 08:35:16.000000",
            "0000-00-00 00:00:00.000000",
            "2026-11-28 24:00:00.000000",
            "2026-11-28 08:60:00.000000",
            "2026-11-28T08:35:16.132698",
            "2026-1a-28 08:35:16.132698",
            "",
        ] {
            assert_eq!(canonical(bad), None, "{bad}");
        }
    }
}
