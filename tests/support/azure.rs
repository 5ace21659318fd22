//! The unmodified Azure IoT device SDK (`.venv-azure`) running a driver
//! script of `tests/hub/` inside a network namespace (the SDK always dials
//! port 8883).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The venv's python, or None (the test is skipped) when not root.
pub fn sdk_python(test: &str) -> Option<PathBuf> {
    if !super::tools::root_or_skip(test, "a network namespace with port 8883") {
        return None;
    }
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-azure/bin/python");
    assert!(
        py.is_file(),
        "{} is missing: scripts/install-test-deps.sh makes it",
        py.display()
    );
    Some(py)
}

/// `tests/hub/<script> ARGS` in namespace `ns`, at most 120 s.
pub fn run_driver(python: &Path, ns: &str, script: &str, args: &[&str]) -> Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hub")
        .join(script);
    Command::new("timeout")
        .args(["120", "ip", "netns", "exec", ns])
        .arg(python)
        .arg(script)
        .args(args)
        .output()
        .expect("run the SDK driver")
}

/// A fresh namespace `ns` (a leftover of a killed run removed) with ztpd of
/// fixture `good` in it, its hub's TLS listener on 127.0.0.1:8883. Keep
/// the namespace guard alive as long as the daemon.
pub fn hub_in_netns(ns: &str) -> (super::netns::Namespaces, super::Daemon) {
    hub_in_netns_at(ns, super::fixtures::temp_root("good"))
}

/// [`hub_in_netns`] with the daemon's root made by the caller (a fixture
/// with its plan edited).
pub fn hub_in_netns_at(
    ns: &str,
    root: tempfile::TempDir,
) -> (super::netns::Namespaces, super::Daemon) {
    super::netns::Namespaces::remove_leftovers(ns);
    let mut guard = super::netns::Namespaces::default();
    guard.add(ns);
    let d = super::Daemon::builder()
        .owned_root(root)
        .netns(ns)
        .broker("tls_listen = \"127.0.0.1:8883\"\n")
        .start();
    (guard, d)
}

/// What a device of the local hub `d` is flashed with: the CA's path, the
/// id scope and the enrollment key (trimmed).
pub fn flashed(d: &super::Daemon) -> (String, String, String) {
    let read = |f: &str| {
        std::fs::read_to_string(d.path(f))
            .unwrap()
            .trim()
            .to_string()
    };
    let ca = d.path("state/hub-ca.pem").to_str().unwrap().to_string();
    (ca, read("state/id_scope"), read("state/hub.key"))
}

/// An SDK device serving in the background (`dps_device.py serve`): it
/// reported `reported` once connected, answers direct methods, and its
/// lines (`{"method": ...}`, `{"desired": ...}`) arrive as they come.
/// Closing its stdin (on drop) lets it disconnect.
pub struct ServingDevice {
    child: super::tools::ChildGuard,
    lines: std::sync::mpsc::Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
}

impl ServingDevice {
    /// Connect device `id` of hub `d` (in namespace `ns`) and wait, at most
    /// 60 s, until it has reported and listens.
    pub fn start(
        python: &Path,
        ns: &str,
        d: &super::Daemon,
        id: &str,
        reported: &serde_json::Value,
    ) -> ServingDevice {
        use std::io::BufRead;
        use std::process::Stdio;
        let (ca, _scope, key) = flashed(d);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hub/dps_device.py");
        let reported = reported.to_string();
        let mut child = super::tools::ChildGuard::spawn(
            Command::new("timeout")
                .args(["120", "ip", "netns", "exec", ns])
                .arg(python)
                .arg(script)
                .args(["serve", &ca, "localhost", "-", &key, id, &reported])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        );
        let out = std::io::BufReader::new(child.child().stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&l) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        let mut device = ServingDevice {
            child,
            lines,
            seen: Vec::new(),
        };
        device.wait_for(std::time::Duration::from_secs(60), |v| {
            v.get("ready").is_some()
        });
        device
    }

    /// The first line the device printed that `want` accepts, waiting at
    /// most `within` for it. Panics with what came when none does.
    pub fn wait_for(
        &mut self,
        within: std::time::Duration,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(v) = self.seen.iter().find(|v| want(v)) {
                return v.clone();
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => self.seen.push(v),
                Err(e) => panic!(
                    "the SDK device: no expected line ({e}); it printed {:?}",
                    self.seen
                ),
            }
        }
    }

    /// Every line the device printed so far, without waiting.
    pub fn printed(&mut self) -> &[serde_json::Value] {
        self.seen.extend(self.lines.try_iter());
        &self.seen
    }
}

impl Drop for ServingDevice {
    fn drop(&mut self) {
        drop(self.child.child().stdin.take());
    }
}
