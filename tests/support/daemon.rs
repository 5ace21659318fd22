//! The real `ztpd` binary: one builder for `ztpd run` (on free loopback
//! ports, or inside a network namespace on the ports a lab wants) and the
//! CLI as a function.
//!
//! A [`Daemon`] is ready when `/healthz` answers (ztpd binds DHCP and TFTP
//! before HTTP, so that covers every listener). Dropping it kills the
//! process; when the test is failing, the end of its log is printed first.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use super::{api, fixtures, netns, poll, ports, tools};

pub const BIN: &str = env!("CARGO_BIN_EXE_ztpd");

/// How long a daemon may take to become ready on a loaded machine.
const READY: Duration = Duration::from_secs(30);

/// `ztpd ARGS` with no settings file of the test's own.
pub fn ztpd(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run ztpd")
}

/// Address space a [`ztpd_bounded`] run may use: far above what any command
/// needs, so a read that ignores its cap fails with an allocation error
/// instead of taking the machine's memory.
pub const BOUNDED_MEMORY: u64 = 4 << 30;

/// `ztpd ARGS` run in `dir` under an address-space limit of
/// [`BOUNDED_MEMORY`] (`RLIMIT_AS`): for inputs that would make an unbounded
/// read grow without end (`/dev/zero`).
pub fn ztpd_bounded(dir: &Path, args: &[&str]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir).env("NO_COLOR", "1");
    // SAFETY: only setrlimit, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: BOUNDED_MEMORY,
                rlim_max: BOUNDED_MEMORY,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("run ztpd")
}

/// `ztpd --config CONFIG ARGS`.
pub fn ztpd_with(config: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run ztpd")
}

enum Root {
    None,
    Fixture(String),
    Owned(tempfile::TempDir),
    Borrowed(PathBuf),
}

/// What to start; see [`Daemon::builder`].
pub struct DaemonBuilder {
    root: Root,
    http: Option<String>,
    tftp: Option<String>,
    dhcp: Option<String>,
    /// `listen.dhcp6`; the default when None.
    dhcp6: Option<String>,
    /// The embedded broker's address and more `[broker]` keys; off if None.
    broker: Option<(SocketAddr, String)>,
    settings: String,
    /// `access.hello`; None: `any` on loopback, `leased` in a namespace.
    hello: Option<String>,
    /// More `[access]` keys.
    access: String,
    args: Vec<String>,
    netns: Option<String>,
    /// Extra environment of the daemon process (every start).
    env: Vec<(String, String)>,
}

impl DaemonBuilder {
    /// A fresh temp root copied from `tests/fixtures/<name>`.
    pub fn fixture(mut self, name: &str) -> Self {
        self.root = Root::Fixture(name.to_string());
        self
    }

    /// A root the daemon owns (and removes when dropped).
    pub fn owned_root(mut self, dir: tempfile::TempDir) -> Self {
        self.root = Root::Owned(dir);
        self
    }

    /// A root the caller keeps (it outlives the daemon, e.g. across restarts).
    pub fn root(mut self, dir: &Path) -> Self {
        self.root = Root::Borrowed(dir.to_path_buf());
        self
    }

    /// More `ztpd.toml` text, after `[listen]` and `[broker]`.
    pub fn settings(mut self, text: &str) -> Self {
        self.settings.push_str(text);
        self
    }

    /// One more `[access]` key, e.g. `configs = "open"`.
    pub fn access(mut self, line: &str) -> Self {
        self.access.push_str(line);
        self.access.push('\n');
        self
    }

    /// `access.hello`. Without this a daemon on loopback trusts any address
    /// (tests say hello from 127.0.0.1, where no device holds a lease) and
    /// one in a namespace keeps the default `leased`.
    pub fn hello(mut self, mode: &str) -> Self {
        self.hello = Some(mode.to_string());
        self
    }

    /// Run the embedded broker on a free loopback port, with more `[broker]`
    /// keys (e.g. `users = [...]`). Without this it is disabled.
    pub fn broker(mut self, keys: &str) -> Self {
        self.broker = Some((ports::loopback_tcp(), keys.to_string()));
        self
    }

    /// The embedded broker on `addr` (e.g. a port the test holds).
    pub fn broker_at(mut self, addr: SocketAddr, keys: &str) -> Self {
        self.broker = Some((addr, keys.to_string()));
        self
    }

    pub fn http(mut self, addr: &str) -> Self {
        self.http = Some(addr.to_string());
        self
    }

    pub fn tftp(mut self, addr: &str) -> Self {
        self.tftp = Some(addr.to_string());
        self
    }

    pub fn dhcp(mut self, addr: &str) -> Self {
        self.dhcp = Some(addr.to_string());
        self
    }

    pub fn dhcp6(mut self, addr: &str) -> Self {
        self.dhcp6 = Some(addr.to_string());
        self
    }

    /// Arguments after `ztpd --config ... run`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// One more environment variable of the daemon process, kept for
    /// restarts (e.g. `LD_PRELOAD` of libfaketime for clock faults).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Run inside network namespace `ns` (as root); HTTP calls of the
    /// returned daemon are made from inside it too.
    pub fn netns(mut self, ns: &str) -> Self {
        self.netns = Some(ns.to_string());
        self
    }

    /// Write `ztpd.toml`, start, and wait until ready.
    ///
    /// Ports the harness picked are free when picked, but another test's
    /// sockets (a TFTP transfer, a client) may take one before ztpd binds
    /// it. Such a start fails with "Address already in use" and is made
    /// again on fresh ports, at most three times; a port the test chose is
    /// never changed.
    pub fn start(self) -> Daemon {
        let picked = [
            self.http.is_none(),
            self.tftp.is_none(),
            self.dhcp.is_none(),
        ];
        let mut d = self.prepare();
        for attempt in 1.. {
            d.spawn();
            match d.try_ready() {
                Ok(()) => return d,
                Err(log) if attempt < 3 && log.contains("Address already in use") => {
                    if !d.repick_ports(picked) {
                        panic!("ztpd exited early:\n{log}");
                    }
                }
                Err(log) => panic!("ztpd exited early:\n{log}"),
            }
        }
        unreachable!()
    }

    /// Start a daemon that must refuse to run: its exit status and log.
    /// Panics if it is still running after `within`.
    pub fn expect_exit(self, within: Duration) -> (ExitStatus, String) {
        let mut d = self.prepare();
        d.spawn();
        let child = d.child.as_mut().expect("spawned");
        let status = poll::poll(within, || child.try_wait().ok().flatten());
        let log = d.log();
        match status {
            Some(s) => {
                d.child = None;
                (s, log)
            }
            None => panic!("ztpd kept running for {within:?} although it should not start:\n{log}"),
        }
    }

    fn prepare(self) -> Daemon {
        let (root, dir) = match self.root {
            Root::None => panic!("Daemon::builder() needs .fixture(), .root() or .owned_root()"),
            Root::Fixture(name) => {
                let dir = fixtures::temp_root(&name);
                (dir.path().to_path_buf(), Some(dir))
            }
            Root::Owned(dir) => (dir.path().to_path_buf(), Some(dir)),
            Root::Borrowed(p) => (p, None),
        };
        let http = self
            .http
            .unwrap_or_else(|| ports::loopback_tcp().to_string());
        let tftp = self
            .tftp
            .unwrap_or_else(|| ports::loopback_udp().to_string());
        let dhcp = self
            .dhcp
            .unwrap_or_else(|| ports::loopback_udp().to_string());
        let broker_port = self.broker.as_ref().map(|(addr, _)| addr.port());
        // The TLS listener on a free port too, unless the test chose one.
        let mut broker_tls = None;
        let broker = match &self.broker {
            Some((addr, keys)) if keys.contains("tls_listen") => {
                format!("listen = \"{addr}\"\n{keys}")
            }
            Some((addr, keys)) => {
                let tls = ports::loopback_tcp();
                broker_tls = Some(tls.port());
                format!("listen = \"{addr}\"\ntls_listen = \"{tls}\"\n{keys}")
            }
            None => "enabled = false\n".to_string(),
        };
        let hello = self.hello.unwrap_or_else(|| {
            if self.netns.is_some() {
                "leased"
            } else {
                "any"
            }
            .to_string()
        });
        let dhcp6 = self
            .dhcp6
            .map(|a| format!("dhcp6 = \"{a}\"\n"))
            .unwrap_or_default();
        let text = format!(
            "[listen]\nhttp = \"{http}\"\ntftp = \"{tftp}\"\ndhcp = \"{dhcp}\"\n{dhcp6}\
             [access]\nhello = \"{hello}\"\n{}[broker]\n{broker}{}",
            self.access, self.settings
        );
        std::fs::write(root.join("ztpd.toml"), text).expect("write ztpd.toml");
        Daemon {
            child: None,
            root,
            http: reachable(&http),
            tftp: reachable(&tftp),
            dhcp: reachable(&dhcp),
            broker: broker_port,
            broker_tls,
            netns: self.netns,
            args: self.args,
            env: self.env,
            run: 0,
            _dir: dir,
        }
    }
}

/// Where to connect to a listener bound to `addr` (0.0.0.0 means loopback).
fn reachable(addr: &str) -> SocketAddr {
    let mut a: SocketAddr = addr
        .parse()
        .unwrap_or_else(|e| panic!("listen address {addr:?}: {e}"));
    if a.ip().is_unspecified() {
        a.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    a
}

/// A running `ztpd run`; killed on drop.
pub struct Daemon {
    child: Option<std::process::Child>,
    pub root: PathBuf,
    pub http: SocketAddr,
    pub tftp: SocketAddr,
    pub dhcp: SocketAddr,
    /// The local hub's plain MQTT port, when it runs.
    pub broker: Option<u16>,
    /// Its TLS port, when the harness picked it.
    pub broker_tls: Option<u16>,
    netns: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Starts so far: each has its own log file.
    run: u32,
    _dir: Option<tempfile::TempDir>,
}

impl Daemon {
    pub fn builder() -> DaemonBuilder {
        DaemonBuilder {
            root: Root::None,
            http: None,
            tftp: None,
            dhcp: None,
            dhcp6: None,
            broker: None,
            settings: String::new(),
            hello: None,
            access: String::new(),
            args: Vec::new(),
            netns: None,
            env: Vec::new(),
        }
    }

    /// The common case: a temp copy of fixture `name` on free loopback
    /// ports, the embedded broker off, `settings` added to `ztpd.toml`.
    pub fn start(fixture: &str, settings: &str, args: &[&str]) -> Daemon {
        Daemon::builder()
            .fixture(fixture)
            .settings(settings)
            .args(args)
            .start()
    }

    fn spawn(&mut self) {
        self.run += 1;
        let log = std::fs::File::create(self.log_path()).expect("create daemon log");
        let mut cmd = match &self.netns {
            Some(ns) => {
                // `ip netns exec` execs ztpd: the child's pid is ztpd's.
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, BIN]);
                c
            }
            None => Command::new(BIN),
        };
        cmd.arg("--config")
            .arg(self.root.join("ztpd.toml"))
            .arg("run")
            .args(&self.args)
            .env("ZTPD_LOG", "info,ztpd=debug")
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log);
        self.child = Some(cmd.spawn().expect("start ztpd"));
    }

    fn wait_ready(&mut self) {
        if let Err(log) = self.try_ready() {
            panic!("ztpd exited early:\n{log}");
        }
    }

    /// Ready, or the log of a daemon that exited before it was.
    fn try_ready(&mut self) -> Result<(), String> {
        let mut exited = None;
        let ready = poll::poll(READY, || {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                exited = Some(format!("({st})\n{}", self.log()));
                return Some(false);
            }
            matches!(self.try_get("/healthz"), Ok((200, _))).then_some(true)
        });
        if let Some(log) = exited {
            self.child = None;
            return Err(log);
        }
        assert!(
            ready == Some(true),
            "ztpd not ready within {READY:?}:\n{}",
            self.log()
        );
        Ok(())
    }

    /// New ports for the listeners the harness picked (`[http, tftp, dhcp]`)
    /// in `ztpd.toml`; false when it picked none.
    fn repick_ports(&mut self, picked: [bool; 3]) -> bool {
        let path = self.root.join("ztpd.toml");
        let mut text = std::fs::read_to_string(&path).expect("read ztpd.toml");
        let mut changed = false;
        if picked[0] {
            let new = ports::loopback_tcp();
            text = text.replacen(
                &format!("http = \"{}\"", self.http),
                &format!("http = \"{new}\""),
                1,
            );
            self.http = new;
            changed = true;
        }
        for (i, which) in [(1, "tftp"), (2, "dhcp")] {
            if picked[i] {
                let new = ports::loopback_udp();
                let old = if which == "tftp" {
                    &mut self.tftp
                } else {
                    &mut self.dhcp
                };
                text = text.replacen(
                    &format!("{which} = \"{old}\""),
                    &format!("{which} = \"{new}\""),
                    1,
                );
                *old = new;
                changed = true;
            }
        }
        std::fs::write(&path, text).expect("write ztpd.toml");
        changed
    }

    /// Start again on the same root, settings and ports (after [`Self::stop`]).
    pub fn restart(&mut self) {
        self.stop(true);
        self.spawn();
        self.wait_ready();
    }

    /// SIGKILL (`kill`) or SIGTERM, then wait for the process to end.
    pub fn stop(&mut self, kill: bool) {
        if let Some(mut c) = self.child.take() {
            tools::signal(c.id(), if kill { libc::SIGKILL } else { libc::SIGTERM });
            let _ = c.wait();
        }
    }

    /// Send `sig` and wait at most `within` for the process to end: its
    /// exit status, or None while it still runs (it is killed on drop).
    pub fn signal_and_wait(&mut self, sig: i32, within: Duration) -> Option<ExitStatus> {
        let c = self.child.as_mut().expect("daemon running");
        tools::signal(c.id(), sig);
        let status = poll::poll(within, || c.try_wait().ok().flatten());
        if status.is_some() {
            self.child = None;
        }
        status
    }

    pub fn kill9(&mut self) {
        self.stop(true);
    }

    /// Send a signal (e.g. `libc::SIGHUP`) to the running daemon.
    pub fn signal(&self, sig: i32) {
        let c = self.child.as_ref().expect("daemon running");
        tools::signal(c.id(), sig);
    }

    /// The network namespace the daemon runs in, if any.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// The running daemon's process id (what systemd calls `$MAINPID`).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon running").id()
    }

    /// How many times this daemon has been started.
    pub fn runs(&self) -> u32 {
        self.run
    }

    pub fn log_path(&self) -> PathBuf {
        match self.run {
            0 | 1 => self.root.join("ztpd.log"),
            n => self.root.join(format!("ztpd.{n}.log")),
        }
    }

    /// The current run's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Poll `f` until it returns `Some`; panic with the log after `timeout`.
    pub fn wait_for<T>(&self, what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
        poll::poll(timeout, f).unwrap_or_else(|| {
            panic!(
                "timed out after {timeout:?} waiting for {what}:\n{}",
                self.log()
            )
        })
    }

    /// Wait (30 s at most) until the current log holds `needle` `n` times.
    pub fn wait_log(&self, needle: &str, n: usize) {
        self.wait_for(
            &format!("{needle:?} logged {n} time(s)"),
            Duration::from_secs(30),
            || (self.log().matches(needle).count() >= n).then_some(()),
        )
    }

    /// A path under the root.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The bytes of `files/<rel>` as served.
    pub fn file(&self, rel: &str) -> Vec<u8> {
        let p = self.root.join("files").join(rel);
        std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub fn tftp_url(&self, path: &str) -> String {
        format!("tftp://{}/{path}", self.tftp)
    }

    /// `ztpd --config <root>/ztpd.toml ARGS`: the CLI against this daemon
    /// (inside its network namespace, where its API listens, if it has one).
    pub fn cli(&self, args: &[&str]) -> Output {
        let config = self.root.join("ztpd.toml");
        let Some(ns) = &self.netns else {
            return ztpd_with(&config, args);
        };
        Command::new("ip")
            .args(["netns", "exec", ns, BIN, "--config"])
            .arg(config)
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .expect("run ztpd in its namespace")
    }

    /// The operator token the daemon wrote.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.root.join("state/operator.token"))
            .expect("operator token")
            .trim()
            .to_string()
    }

    /// An HTTP request to the daemon, from inside its namespace if it has one.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let addr = self.http;
        let (method, path) = (method.to_string(), path.to_string());
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let body = body.map(str::to_string);
        let call = move || {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            api::request(addr, &method, &path, &h, body.as_deref())
        };
        match &self.netns {
            Some(ns) => netns::in_netns(ns, call),
            None => call(),
        }
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> (u16, String) {
        self.try_request(method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.log()))
    }

    fn try_get(&self, path: &str) -> std::io::Result<(u16, String)> {
        self.try_request("GET", path, &[], None)
    }

    /// `GET path` without a token.
    pub fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, &[], None)
    }

    /// `GET path` with the operator token, as JSON.
    pub fn api(&self, path: &str) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {}", self.token());
        let (code, body) = self.request("GET", path, &[("Authorization", &auth)], None);
        (code, api::json(body))
    }

    /// `POST path` with a JSON body (no token) and extra headers.
    pub fn post(
        &self,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let (code, text) = self.request("POST", path, headers, Some(body));
        (code, api::json(text))
    }

    /// `POST path` with the operator token.
    pub fn api_post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {}", self.token());
        self.post(path, body, &[("Authorization", &auth)])
    }

    /// `PATCH path` with the operator token and a JSON body, as JSON.
    pub fn api_patch(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {}", self.token());
        let (code, text) = self.request("PATCH", path, &[("Authorization", &auth)], Some(body));
        (code, api::json(text))
    }

    /// `DELETE path` with the operator token, as JSON.
    pub fn api_delete(&self, path: &str) -> (u16, serde_json::Value) {
        let auth = format!("Bearer {}", self.token());
        let (code, text) = self.request("DELETE", path, &[("Authorization", &auth)], None);
        (code, api::json(text))
    }

    /// `/metrics` as text.
    pub fn metrics(&self) -> String {
        let (code, body) = self.get("/metrics");
        assert_eq!(code, 200, "/metrics: {body}");
        body
    }

    /// One sample of `/metrics` (`name{labels}` exactly), 0 when absent.
    pub fn metric(&self, sample: &str) -> u64 {
        api::metric(&self.metrics(), sample)
    }

    /// Poll `/metrics` until `sample` reaches `min` (20 s at most).
    pub fn wait_metric(&self, sample: &str, min: u64) {
        self.wait_metrics(&format!("{sample} >= {min}"), 20, |d| {
            d.metric(sample) >= min
        })
    }

    /// Poll until `pred` holds (or fail after `secs` with `/metrics`).
    pub fn wait_metrics(&self, what: &str, secs: u64, pred: impl Fn(&Daemon) -> bool) {
        let ok = poll::poll(Duration::from_secs(secs), || pred(self).then_some(()));
        assert!(
            ok.is_some(),
            "timed out after {secs} s waiting for {what}:\n{}\nlog:\n{}",
            self.metrics(),
            self.log()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop(true);
        if std::thread::panicking() {
            let log = self.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            eprintln!(
                "--- last {} lines of {} ---\n{}\n---",
                tail.len(),
                self.log_path().display(),
                tail.join("\n")
            );
        }
    }
}
