//! Maintenance windows (SPEC §8): `"HH:MM-HH:MM"`, optionally after days
//! (`"Sat,Sun 01:00-05:00"`, `"Mon-Fri 22:00-04:00"`), in the daemon's local
//! time. A window that wraps midnight belongs to the day it starts on:
//! `"Sat 22:00-02:00"` holds Sunday 01:00, not Saturday 01:00.

use chrono::{Datelike, NaiveDateTime, Timelike};

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Days the window opens on, Monday first; all when none were given.
    days: [bool; 7],
    start: u32,
    end: u32,
}

fn day(s: &str) -> Result<usize, String> {
    DAYS.iter()
        .position(|d| d.eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| format!("unknown day {s:?}; expected Mon, Tue, Wed, Thu, Fri, Sat or Sun"))
}

fn hm(x: &str) -> Result<u32, String> {
    let bad = || format!("{x:?} is not a time; expected HH:MM (00:00 to 23:59)");
    let (h, m) = x.trim().split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h < 24 && m < 60 {
        Ok(h * 60 + m)
    } else {
        Err(bad())
    }
}

impl Window {
    pub fn parse(s: &str) -> Result<Window, String> {
        let s = s.trim();
        let (days_text, range) = match s.rsplit_once(' ') {
            Some((d, r)) => (Some(d.trim()), r),
            None => (None, s),
        };
        let (a, b) = range.split_once('-').ok_or_else(|| {
            "expected HH:MM-HH:MM, optionally after days (\"Sat,Sun 01:00-05:00\")".to_string()
        })?;
        let (start, end) = (hm(a)?, hm(b)?);
        if start == end {
            return Err("the window starts and ends at the same time; expected a range".into());
        }
        let mut days = [days_text.is_none(); 7];
        for part in days_text.into_iter().flat_map(|d| d.split(',')) {
            match part.split_once('-') {
                Some((x, y)) => {
                    let (x, y) = (day(x)?, day(y)?);
                    let mut i = x;
                    loop {
                        days[i] = true;
                        if i == y {
                            break;
                        }
                        i = (i + 1) % 7;
                    }
                }
                None => days[day(part)?] = true,
            }
        }
        Ok(Window { days, start, end })
    }

    /// Whether local time `t` is inside the window.
    pub fn contains(&self, t: NaiveDateTime) -> bool {
        let minute = t.hour() * 60 + t.minute();
        let today = t.weekday().num_days_from_monday() as usize;
        let yesterday = (today + 6) % 7;
        if self.start < self.end {
            self.days[today] && (self.start..self.end).contains(&minute)
        } else {
            (self.days[today] && minute >= self.start)
                || (self.days[yesterday] && minute < self.end)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn parses_and_refuses_with_what_was_expected() {
        assert!(Window::parse("22:00-04:00").is_ok());
        assert!(Window::parse("Mon-Fri 22:00-04:00").is_ok());
        assert!(Window::parse("25:00-01:00").unwrap_err().contains("HH:MM"));
        assert!(Window::parse("Funday 01:00-02:00")
            .unwrap_err()
            .contains("unknown day"));
        assert!(Window::parse("soon").unwrap_err().contains("HH:MM-HH:MM"));
    }

    #[test]
    fn days_and_midnight() {
        // 2026-12-05 is a Saturday.
        let w = Window::parse("Sat 22:00-02:00").unwrap();
        assert!(w.contains(at("2026-12-05 23:00")));
        assert!(
            w.contains(at("2026-12-06 01:00")),
            "Sunday 01:00 is Saturday's night"
        );
        assert!(
            !w.contains(at("2026-12-05 01:00")),
            "Saturday 01:00 is Friday's night"
        );
        assert!(!w.contains(at("2026-12-06 22:30")));
        let w = Window::parse("Mon-Wed 01:00-05:00").unwrap();
        assert!(w.contains(at("2026-12-01 03:00")), "a Tuesday");
        assert!(!w.contains(at("2026-12-03 03:00")), "a Thursday");
    }
}
