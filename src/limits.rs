//! Descriptor limits and the logging of accept errors (issue 15 defect 2).
//!
//! Every open connection and transfer costs a file descriptor. When the
//! process runs out, every listener fails at once (`accept` returns EMFILE
//! in a tight loop) and nothing answers, not even `/healthz`. So: the soft
//! `RLIMIT_NOFILE` is raised to the hard limit at start, each listener caps
//! what it holds open (sized below that limit), and accept errors are logged
//! at most once a second with a count of what was left out.

use std::time::{Duration, Instant};

/// Descriptors kept for everything that is not a capped connection: the
/// state databases, logs, the watcher, the DHCP sockets, the broker.
pub const RESERVED_FDS: u64 = 512;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit; the soft limit in
/// force afterwards.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim.rlim_cur = lim.rlim_max;
            } else {
                tracing::warn!(
                    soft = lim.rlim_cur,
                    hard = lim.rlim_max,
                    "cannot raise the open-file limit: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
    }
    lim.rlim_cur
}

/// A cap of `wanted` open connections, lowered when the descriptor limit
/// (`nofile`, after the other listeners took `others`) cannot hold it.
pub fn fit_cap(what: &str, wanted: usize, nofile: u64, others: u64) -> usize {
    let room = nofile.saturating_sub(RESERVED_FDS + others).max(16);
    if (wanted as u64) <= room {
        return wanted;
    }
    tracing::warn!(
        "{what}: {wanted} wanted, but the open-file limit ({nofile}) leaves room for {room}; \
         raise it (LimitNOFILE= in systemd, ulimit -n) to allow more"
    );
    room as usize
}

/// Whether an accept error means the process (or system) ran out of
/// descriptors or memory, so the listener must pause instead of spinning.
pub fn is_exhaustion(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// A warning logged at most once per `every`; the next one says how many
/// were left out.
pub struct RateLimitedLog {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    pub fn new(every: Duration) -> Self {
        RateLimitedLog {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// Log `msg` now, or count it when the last one was too recent.
    /// Returns whether it was logged.
    pub fn warn(&mut self, what: &str, e: &dyn std::fmt::Display) -> bool {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.every)
        {
            self.suppressed += 1;
            return false;
        }
        if self.suppressed > 0 {
            tracing::warn!(
                "{what}: {e} ({} more since the last report)",
                self.suppressed
            );
        } else {
            tracing::warn!("{what}: {e}");
        }
        self.last = Some(now);
        self.suppressed = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let soft = raise_nofile();
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a valid pointer to a local struct.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        assert_eq!(soft, lim.rlim_cur);
        assert_eq!(lim.rlim_cur, lim.rlim_max);
    }

    #[test]
    fn caps_fit_under_the_descriptor_limit() {
        assert_eq!(fit_cap("t", 16_384, 1_048_576, 1_024), 16_384);
        assert_eq!(fit_cap("t", 16_384, 4_096, 1_024), 4_096 - 512 - 1_024);
        assert_eq!(fit_cap("t", 16_384, 100, 1_024), 16);
    }

    #[test]
    fn a_flood_of_errors_is_one_line_a_second() {
        let mut log = RateLimitedLog::new(Duration::from_secs(3600));
        let e = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert!(is_exhaustion(&e));
        let logged = (0..100_000).filter(|_| log.warn("accept", &e)).count();
        assert_eq!(logged, 1);
        assert_eq!(log.suppressed, 99_999);
    }
}
