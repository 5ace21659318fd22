//! Simulated switch agents (`ztpd device simulate --switch all --agent`)
//! against a running [`Daemon`]: every planned non-root switch does its ZTP
//! flow, then carries out the actions ztpd pushes. Killed when dropped.

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::daemon::{Daemon, BIN};
use super::tools::ChildGuard;

pub struct Agents {
    pub child: ChildGuard,
    lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Agents {
    /// Start the agents with `faults` (`KIND[:DEVICE,...]` each) and wait
    /// until all of them are deployed and listening.
    pub fn start(d: &Daemon, faults: &[&str]) -> Agents {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(d.root.join("ztpd.toml"))
            .args(["device", "simulate", "--switch", "all", "--agent"])
            .args(["--server", &d.http_url("")])
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for f in faults {
            cmd.args(["--fault", f]);
        }
        let mut child = ChildGuard::spawn(&mut cmd);
        let stdout = child.child().stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        let mut a = Agents {
            child,
            lines,
            seen: Vec::new(),
        };
        a.wait_line("agents ready", Duration::from_secs(60));
        a
    }

    /// Wait for a stdout line containing `needle`.
    pub fn wait_line(&mut self, needle: &str, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    self.seen.push(l);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!(
                    "agents: no line with {needle:?} within {limit:?}; saw:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}
