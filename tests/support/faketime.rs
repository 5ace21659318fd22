//! Fault injection of the clock: libfaketime preloaded into the daemon
//! process only, its offset read from a file the test rewrites, so a test
//! can set the daemon's wall clock forward and back while it runs. The
//! machine's clock is never touched, and the monotonic clock stays real
//! (`FAKETIME_DONT_FAKE_MONOTONIC=1`), as in a real clock jump: NTP, an
//! operator or a bad RTC changes CLOCK_REALTIME only.

use std::path::{Path, PathBuf};

use super::daemon::DaemonBuilder;

/// Where Debian's `libfaketime` puts the multithreaded variant.
fn library() -> Option<PathBuf> {
    let dirs = std::fs::read_dir("/usr/lib").ok()?;
    dirs.flatten()
        .map(|d| d.path().join("faketime/libfaketimeMT.so.1"))
        .chain([PathBuf::from("/usr/lib/faketime/libfaketimeMT.so.1")])
        .find(|p| p.is_file())
}

/// The offset file of one daemon.
pub struct FakeClock {
    file: PathBuf,
    lib: PathBuf,
}

impl FakeClock {
    /// `None` (after printing why `test` skips) without libfaketime.
    pub fn new(test: &str, dir: &Path) -> Option<FakeClock> {
        let Some(lib) = library() else {
            eprintln!(
                "SKIP {test}: libfaketime is not installed (run scripts/install-test-deps.sh)"
            );
            return None;
        };
        let c = FakeClock {
            file: dir.join("faketime.offset"),
            lib,
        };
        c.set(0);
        Some(c)
    }

    /// The daemon's environment for this clock.
    pub fn apply(&self, b: DaemonBuilder) -> DaemonBuilder {
        b.env("LD_PRELOAD", self.lib.to_str().expect("utf-8 path"))
            .env(
                "FAKETIME_TIMESTAMP_FILE",
                self.file.to_str().expect("utf-8 path"),
            )
            // Read the file at every clock read: a jump takes effect at once.
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
    }

    /// Set the daemon's wall clock `secs` seconds from real time (written
    /// whole, by rename: the library never reads half an offset).
    pub fn set(&self, secs: i64) {
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, format!("{secs:+}\n")).expect("write faketime offset");
        std::fs::rename(&tmp, &self.file).expect("replace faketime offset");
    }
}
