//! Human durations as plans write them: `90s`, `5m`, `1h30m`, `500ms`, `2d`.

use std::time::Duration;

/// The longest duration accepted anywhere (100 years): any deadline
/// `now + d` a timer or a rollout computes from it stays representable, so
/// no written duration can make an instant overflow.
pub const MAX: Duration = Duration::from_secs(100 * 365 * 86400);

/// Parse a duration of at most [`MAX`]; the error says what was expected.
pub fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration; write e.g. \"30s\", \"5m\" or \"1h\"".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("`{s}` is not a duration; write a number and a unit, e.g. \"30s\", \"5m\", \"1h30m\""));
        }
        let too_long = || format!("`{s}` is too long; the longest duration accepted is 36500d");
        let n: u64 = rest[..digits].parse().map_err(|_| too_long())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = |per: u64| n.checked_mul(per).map(Duration::from_secs);
        let d = match unit {
            "ms" => Some(Duration::from_millis(n)),
            "s" => secs(1),
            "m" => secs(60),
            "h" => secs(3600),
            "d" => secs(86400),
            "" => {
                return Err(format!(
                    "`{s}` has no unit; write e.g. \"{n}s\" or \"{n}m\" (units: ms, s, m, h, d)"
                ))
            }
            u => return Err(format!("`{s}`: unknown unit `{u}`; use ms, s, m, h or d")),
        };
        total = d
            .and_then(|d| total.checked_add(d))
            .filter(|t| *t <= MAX)
            .ok_or_else(too_long)?;
    }
    Ok(total)
}

/// Format a duration the way plans write them (`1h30m`, `45s`).
pub fn format(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("2d").unwrap(), Duration::from_secs(172800));
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(parse("5").unwrap_err().contains("no unit"));
        assert!(parse("5 minutes").is_err());
        assert!(parse("fast").is_err());
        assert!(parse("3y").unwrap_err().contains("unknown unit"));
        assert_eq!(parse("36500d").unwrap(), MAX);
        for long in [
            "36501d",
            "99999999999999999999s",
            "213503982334601d",
            "36500d1ms",
        ] {
            assert!(parse(long).unwrap_err().contains("too long"), "{long}");
        }
    }
}
