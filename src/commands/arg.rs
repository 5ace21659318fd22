//! Value parsers for the counts and durations of every command. clap puts
//! the argument's name in front of each error (`invalid value '0' for
//! '--count <N>': ...`); these say what was expected. A value that passes
//! cannot panic later: no zero period for a timer, no count that wraps, no
//! duration that overflows an instant ([`crate::duration::MAX`]).

use std::time::Duration;

/// A whole number in `min..=max`.
fn whole(s: &str, min: u64, max: u64) -> Result<u64, String> {
    let t = s.trim();
    let expected = if max == u64::MAX {
        format!("expected a whole number of at least {min}")
    } else {
        format!("expected a whole number from {min} to {max}")
    };
    if t.starts_with('-') && t.len() > 1 {
        return Err(format!("`{s}` is negative; {expected}"));
    }
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` is not a whole number; {expected}"));
    }
    let n: u64 = t
        .parse()
        .map_err(|_| format!("`{s}` is too large; {expected}"))?;
    if n < min {
        return Err(format!("`{s}` is too small; {expected}"));
    }
    if n > max {
        return Err(format!("`{s}` is too large; {expected}"));
    }
    Ok(n)
}

/// A JSON value (a method's payload).
pub fn json_value(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("{e}; expected JSON such as '{{\"delay\": 5}}'"))
}

/// A count of things that must happen at least once: messages, devices,
/// switches at once, devices per batch.
pub fn count(s: &str) -> Result<u64, String> {
    whole(s, 1, u64::MAX)
}

/// [`count`] as a `usize` (devices, tasks).
pub fn count_usize(s: &str) -> Result<usize, String> {
    whole(s, 1, usize::MAX as u64).map(|n| n as usize)
}

/// Tasks at once (`--concurrency`): at least 1, and at most 2^20, since
/// each holds a connection (far beyond any descriptor limit already).
pub fn concurrency(s: &str) -> Result<usize, String> {
    whole(s, 1, 1 << 20).map(|n| n as usize)
}

/// `--max-failures`: a count (`2`) or a percentage (`10%`), as the rollout
/// policy reads it; sent on as text.
pub fn failure_limit_text(s: &str) -> Result<String, String> {
    crate::rollout::policy::parse_failure_text(s).map(|_| s.to_string())
}

/// [`count`] as a `u32` (the rollout policy's fields).
pub fn count_u32(s: &str) -> Result<u32, String> {
    whole(s, 1, u32::MAX.into()).map(|n| n as u32)
}

/// A `u32` that may be 0 (`--canary 0`: no canary batch).
pub fn zero_or_more_u32(s: &str) -> Result<u32, String> {
    whole(s, 0, u32::MAX.into()).map(|n| n as u32)
}

/// A duration longer than zero (a period, a timeout).
pub fn positive_duration(s: &str) -> Result<Duration, String> {
    let d = crate::duration::parse(s)?;
    if d.is_zero() {
        return Err(format!(
            "`{s}` is zero; expected a duration longer than 0, e.g. 100ms or 1s"
        ));
    }
    Ok(d)
}

/// A duration that may be zero (`--approval-wait 0s`: ask once, no wait).
pub fn duration(s: &str) -> Result<Duration, String> {
    crate::duration::parse(s)
}

/// A duration sent on as text (the operator API parses it again), checked
/// here so that a typo is an error before the daemon is asked.
pub fn duration_text(s: &str) -> Result<String, String> {
    duration(s).map(|_| s.to_string())
}

/// [`duration_text`] for a duration that must be longer than zero.
pub fn positive_duration_text(s: &str) -> Result<String, String> {
    positive_duration(s).map(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_say_what_was_expected() {
        assert_eq!(count("12").unwrap(), 12);
        assert!(count("0").unwrap_err().contains("too small"));
        assert!(count("-1").unwrap_err().contains("negative"));
        assert!(count("99999999999999999999")
            .unwrap_err()
            .contains("too large"));
        assert!(count("ten").unwrap_err().contains("not a whole number"));
        assert!(count_u32("4294967296")
            .unwrap_err()
            .contains("to 4294967295"));
        assert_eq!(zero_or_more_u32("0").unwrap(), 0);
        assert!(concurrency("0").is_err());
        assert!(concurrency("18446744073709551615")
            .unwrap_err()
            .contains("to 1048576"));
        assert!(failure_limit_text("150%").is_err());
        assert_eq!(failure_limit_text("10%").unwrap(), "10%");
    }

    #[test]
    fn durations_are_bounded() {
        assert!(positive_duration("0s").unwrap_err().contains("zero"));
        assert!(positive_duration("0ms").is_err());
        assert_eq!(positive_duration("1ms").unwrap(), Duration::from_millis(1));
        assert_eq!(duration("0s").unwrap(), Duration::ZERO);
        assert!(duration("99999999999d").unwrap_err().contains("too long"));
        assert_eq!(duration_text("5m").unwrap(), "5m");
        assert!(positive_duration_text("0m").is_err());
    }
}
