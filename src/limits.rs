//! Descriptor limits, the logging of accept errors (issue 15 defect 2), and
//! the size caps on files read whole (issue 14).
//!
//! Files: every file a command or the daemon reads into memory is read
//! through [`read_capped`], which stops at a cap. A path may name something
//! that is not a regular file (`--credential /dev/zero`, a FIFO, a symlink
//! to a device), whose length the metadata does not tell, so the cap is
//! enforced while reading (`take(cap + 1)`), not from `metadata().len()`.
//!
//! Every open connection and transfer costs a file descriptor. When the
//! process runs out, every listener fails at once (`accept` returns EMFILE
//! in a tight loop) and nothing answers, not even `/healthz`. So: the soft
//! `RLIMIT_NOFILE` is raised to the hard limit at start, each listener caps
//! what it holds open (sized below that limit), and accept errors are logged
//! at most once a second with a count of what was left out.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// A device credential (`device_<id>.json`): about 1 KiB in practice; the
/// device function inside it is the largest part.
pub const CREDENTIAL_BYTES: u64 = 1 << 20;
/// A plan file: the 10,000-device example plan (`examples/gen_plan.rs`) is a
/// few MiB; a site larger than this should be split into one file per site.
pub const PLAN_BYTES: u64 = 64 << 20;
/// `ztpd.toml` and `hub.toml`: a few dozen keys.
pub const SETTINGS_BYTES: u64 = 1 << 20;
/// A key or token file (hub enrollment key, operator token): one line.
pub const SECRET_BYTES: u64 = 64 << 10;
/// A device-function template (`templates/device_function/*.toml`).
pub const DEVICE_FUNCTION_BYTES: u64 = 1 << 20;
/// A config or bootstrap template: far above any device config.
pub const TEMPLATE_BYTES: u64 = 16 << 20;
/// A reported neighbour table (`ztpd topology diff PLAN REPORTED.json`): far
/// above any real fabric's.
pub const REPORT_BYTES: u64 = 64 << 20;

/// Read all of `path`, or fail when it holds more than `cap` bytes. `what`
/// names the kind of file in the error ("device credential", "plan"); the
/// caller's error names the path. Exceeding the cap is an
/// [`std::io::ErrorKind::FileTooLarge`] error saying the cap.
pub fn read_capped(path: &Path, cap: u64, what: &str) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    // A regular file says its size: refuse a large one without reading it.
    let known = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    if known.is_some_and(|len| len > cap) {
        return Err(too_large(what, cap));
    }
    let mut buf = Vec::with_capacity(known.unwrap_or(0).min(cap) as usize);
    file.take(cap.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > cap {
        return Err(too_large(what, cap));
    }
    Ok(buf)
}

/// [`read_capped`] as UTF-8 text; invalid UTF-8 is an
/// [`std::io::ErrorKind::InvalidData`] error with the offset of the bad byte.
pub fn read_capped_string(path: &Path, cap: u64, what: &str) -> std::io::Result<String> {
    String::from_utf8(read_capped(path, cap, what)?).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "the {what} is not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// Whether `e` is [`read_capped`]'s "more than the cap" error.
pub fn is_too_large(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::FileTooLarge
}

fn too_large(what: &str, cap: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::FileTooLarge,
        format!(
            "more than {} ({cap} bytes), the most ztpd reads for a {what}; is it the right file?",
            human_bytes(cap)
        ),
    )
}

/// `1 MiB`, `64 KiB`, `512 bytes`.
pub fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

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
/// Lowering the embedded `default` is `info` (the user asked for nothing);
/// lowering a value the user set is a warning saying how to get it.
pub fn fit_cap(what: &str, wanted: usize, default: usize, nofile: u64, others: u64) -> usize {
    let room = nofile.saturating_sub(RESERVED_FDS + others).max(16);
    if (wanted as u64) <= room {
        return wanted;
    }
    if wanted == default {
        tracing::info!(
            "{what}: using {room}, what the open-file limit ({nofile}) leaves of the default \
             {default}"
        );
    } else {
        tracing::warn!(
            "{what}: {wanted} wanted, but the open-file limit ({nofile}) leaves room for {room}; \
             raise it (LimitNOFILE= in systemd, ulimit -n) to allow more"
        );
    }
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

/// A warning logged at most `burst` times per `every` (once, unless
/// [`RateLimitedLog::with_burst`]); the next one says how many were left out.
pub struct RateLimitedLog {
    every: Duration,
    burst: u32,
    window: Option<Instant>,
    used: u32,
    suppressed: u64,
}

impl RateLimitedLog {
    pub fn new(every: Duration) -> Self {
        Self::with_burst(every, 1)
    }

    /// Up to `burst` lines in each period of `every`.
    pub fn with_burst(every: Duration, burst: u32) -> Self {
        RateLimitedLog {
            every,
            burst: burst.max(1),
            window: None,
            used: 0,
            suppressed: 0,
        }
    }

    /// May a line be logged now? `Some(n)`: yes, and `n` were left out since
    /// the last one; `None`: no (counted).
    pub fn admit(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .window
            .is_none_or(|t| now.duration_since(t) >= self.every)
        {
            self.window = Some(now);
            self.used = 0;
        }
        if self.used >= self.burst {
            self.suppressed += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.suppressed))
    }

    /// Log `msg` now, or count it when the last one was too recent.
    /// Returns whether it was logged.
    pub fn warn(&mut self, what: &str, e: &dyn std::fmt::Display) -> bool {
        match self.admit() {
            None => false,
            Some(0) => {
                tracing::warn!("{what}: {e}");
                true
            }
            Some(n) => {
                tracing::warn!("{what}: {e} ({n} more since the last report)");
                true
            }
        }
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
        assert_eq!(fit_cap("t", 16_384, 16_384, 1_048_576, 1_024), 16_384);
        assert_eq!(
            fit_cap("t", 16_384, 16_384, 4_096, 1_024),
            4_096 - 512 - 1_024
        );
        assert_eq!(fit_cap("t", 16_384, 1, 100, 1_024), 16);
    }

    #[test]
    fn reads_stop_at_the_cap_even_on_endless_files() {
        let e = read_capped(Path::new("/dev/zero"), 4096, "device credential").unwrap_err();
        assert!(is_too_large(&e));
        let msg = e.to_string();
        assert!(
            msg.contains("4 KiB (4096 bytes)") && msg.contains("device credential"),
            "{msg}"
        );

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![b'x'; 4096]).unwrap();
        assert_eq!(
            read_capped(&p, 4096, "t").unwrap().len(),
            4096,
            "the cap itself is allowed"
        );
        assert!(is_too_large(&read_capped(&p, 4095, "t").unwrap_err()));
        // a sparse regular file is refused from its size, without reading
        std::fs::File::create(&p).unwrap().set_len(1 << 40).unwrap();
        assert!(is_too_large(&read_capped(&p, 1 << 20, "t").unwrap_err()));

        std::fs::write(&p, b"ok\xff").unwrap();
        let e = read_capped_string(&p, 10, "plan").unwrap_err();
        assert!(e.to_string().contains("offset 2"), "{e}");
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
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

    #[test]
    fn a_burst_lets_that_many_lines_through_per_period() {
        let mut log = RateLimitedLog::with_burst(Duration::from_secs(3600), 20);
        let logged = (0..1_000).filter(|_| log.admit().is_some()).count();
        assert_eq!(logged, 20);
        assert_eq!(log.suppressed, 980);
    }
}
