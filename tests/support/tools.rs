//! Third-party tools and processes: is a tool installed, are we root, run a
//! command, and a guard that kills a child when a test ends or fails.

use std::path::PathBuf;
use std::process::{Child, Command, Output};

/// Are we root (network namespaces, port 67, raw sockets)?
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Where `name` is installed: PATH, then the sbin directories a non-login
/// PATH may lack (`mosquitto` lives in /usr/sbin).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

pub fn have(name: &str) -> bool {
    which(name).is_some()
}

/// `true` when every tool is installed; otherwise prints which one is
/// missing, as the reason `test` skips.
pub fn have_all(test: &str, tools: &[&str]) -> bool {
    match tools.iter().find(|t| !have(t)) {
        None => true,
        Some(t) => {
            eprintln!("SKIP {test}: {t} is not installed (run scripts/install-test-deps.sh)");
            false
        }
    }
}

/// `true` when root; otherwise prints why `test` skips.
pub fn root_or_skip(test: &str, why: &str) -> bool {
    if !is_root() {
        eprintln!("SKIP {test}: needs root ({why})");
    }
    is_root()
}

/// Run a shell command line; panics only if `sh` cannot start.
pub fn sh(cmd: &str) -> Output {
    Command::new("sh")
        .args(["-c", cmd])
        .output()
        .unwrap_or_else(|e| panic!("cannot run sh -c {cmd:?}: {e}"))
}

/// Run a shell command line that must succeed.
pub fn must(cmd: &str) {
    let o = sh(cmd);
    assert!(
        o.status.success(),
        "`{cmd}` failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Run `argv` (no shell); panics only if it cannot start.
pub fn run(argv: &[&str]) -> Output {
    Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {argv:?}: {e} (run scripts/install-test-deps.sh)"))
}

/// Run `argv` (no shell), which must succeed.
pub fn must_run(argv: &[&str]) {
    let o = run(argv);
    assert!(
        o.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// stdout then stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Send `sig` to `pid` (our own child).
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: signalling a process we started, by its pid.
    unsafe { libc::kill(pid as i32, sig) };
}

/// A child process killed (SIGKILL) and reaped when the guard goes, so a
/// failing test leaves nothing running.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn spawn(cmd: &mut Command) -> ChildGuard {
        ChildGuard(Some(
            cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}")),
        ))
    }

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("child already taken")
    }

    /// SIGTERM, then SIGKILL after 10 s: for servers that save state on exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.0.take() {
            signal(c.id(), libc::SIGTERM);
            let stopped = super::poll::poll(std::time::Duration::from_secs(10), || {
                c.try_wait().ok().flatten()
            });
            if stopped.is_none() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
