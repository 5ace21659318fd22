//! Refused reports, coalesced (issue 25 defect 4).
//!
//! A hello that does not count is recorded as an event so an operator sees
//! it. It needs no credential, only a planned serial, so a stranger could
//! send tens of thousands a second and each would be a row in the state
//! database. Per device and source address, the first refusal in a minute is
//! written at once; the rest of that minute are counted and written as one
//! event ("N more refused hellos ... in the last minute") when it ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one event stands for the refusals that follow it.
pub const WINDOW: Duration = Duration::from_secs(60);

/// (device, source, kind) triples tracked at once. A refusal beyond them (a flood
/// from more addresses than this within a minute) is counted in the next
/// summary of [`Refusals::flush`] without an event of its own.
pub const MAX_SOURCES: usize = 4096;

struct Window {
    start: Instant,
    /// Refusals after the first, not written yet.
    more: u64,
}

#[derive(Default)]
pub struct Refusals {
    windows: Mutex<HashMap<(String, IpAddr, &'static str), Window>>,
    /// Refusals left out because [`MAX_SOURCES`] pairs were tracked.
    untracked: Mutex<u64>,
}

impl Refusals {
    /// Whether the refusal (`what`, e.g. "refused hellos") of `device`'s
    /// report from `ip` is to be written now: the first of its minute.
    pub fn admit(&self, device: &str, ip: IpAddr, what: &'static str, now: Instant) -> bool {
        let Ok(mut w) = self.windows.lock() else {
            return true;
        };
        let key = (device.to_string(), ip, what);
        if let Some(win) = w.get_mut(&key) {
            if now.duration_since(win.start) < WINDOW {
                win.more += 1;
                return false;
            }
        }
        if w.len() >= MAX_SOURCES && !w.contains_key(&key) {
            if let Ok(mut n) = self.untracked.lock() {
                *n += 1;
            }
            return false;
        }
        w.insert(
            key,
            Window {
                start: now,
                more: 0,
            },
        );
        true
    }

    /// The summary events of every minute that has ended, as (device,
    /// message); their windows are forgotten.
    pub fn flush(&self, now: Instant) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let Ok(mut w) = self.windows.lock() else {
            return out;
        };
        w.retain(|(device, ip, what), win| {
            if now.duration_since(win.start) < WINDOW {
                return true;
            }
            if win.more > 0 {
                out.push((
                    device.clone(),
                    format!(
                        "{} more {} for {device} from {ip} in the last minute (one event \
                         a minute per address)",
                        win.more, what
                    ),
                ));
            }
            false
        });
        drop(w);
        if let Ok(mut n) = self.untracked.lock() {
            if *n > 0 {
                tracing::warn!(
                    "{} refused reports from more than {MAX_SOURCES} device/address pairs \
                     in a minute were not recorded as events",
                    *n
                );
                *n = 0;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_a_minute_then_a_summary() {
        let r = Refusals::default();
        let t0 = Instant::now();
        let ip: IpAddr = "127.0.0.50".parse().unwrap();
        let other: IpAddr = "127.0.0.51".parse().unwrap();
        assert!(r.admit("leaf1", ip, "refused hellos", t0));
        for _ in 0..1000 {
            assert!(!r.admit("leaf1", ip, "refused hellos", t0));
        }
        assert!(r.admit("leaf1", other, "refused hellos", t0));
        assert!(r.admit("leaf2", ip, "refused hellos", t0));
        assert!(r.flush(t0 + Duration::from_secs(59)).is_empty());
        let s = r.flush(t0 + WINDOW);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].0, "leaf1");
        assert!(s[0]
            .1
            .starts_with("1000 more refused hellos for leaf1 from 127.0.0.50"));
        assert!(r.admit("leaf1", ip, "refused hellos", t0 + WINDOW));
    }
}
