//! The wall clock, read one way everywhere: Unix seconds for expiries and
//! SAS tokens, RFC 3339 UTC text for records and status.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Now as RFC 3339 UTC with milliseconds (`2026-12-01T23:28:57.123Z`).
pub fn rfc3339_millis() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Now as RFC 3339 UTC with microseconds: records ordered by time of change.
pub fn rfc3339_micros() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readings_agree() {
        let s = unix_now();
        let ms = unix_millis();
        assert!(ms / 1000 >= s && ms / 1000 - s <= 1);
        let t = chrono::DateTime::parse_from_rfc3339(&rfc3339_millis()).unwrap();
        assert!((t.timestamp() as u64).abs_diff(s) <= 1);
        assert!(rfc3339_micros().ends_with('Z'));
    }
}
