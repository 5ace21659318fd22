//! Shared harness for tests that run the real `ztpd` binary: a temporary
//! root copied from a fixture, free loopback ports, a `Drop` guard that kills
//! the daemon, readiness by polling (never sleeping as synchronisation).
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Copy a directory tree (fixtures into a temp root).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

pub struct Daemon {
    pub child: Child,
    pub root: PathBuf,
    pub http: SocketAddr,
    pub tftp: SocketAddr,
    pub dhcp: SocketAddr,
    _dir: Option<tempfile::TempDir>,
}

impl Daemon {
    /// A temp root from `fixture` (e.g. `tests/fixtures/good`) with a
    /// `ztpd.toml` on free loopback ports, plus `extra` settings text.
    pub fn start(fixture: &str, extra: &str, args: &[&str]) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        copy_tree(Path::new(fixture), &root);
        let mut d = Daemon::start_in(&root, extra, args);
        d._dir = Some(dir);
        d
    }

    pub fn start_in(root: &Path, extra: &str, args: &[&str]) -> Daemon {
        let http: SocketAddr = format!("127.0.0.1:{}", free_tcp_port()).parse().unwrap();
        let tftp: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let dhcp: SocketAddr = format!("127.0.0.1:{}", free_udp_port()).parse().unwrap();
        let settings = format!(
            "[listen]\nhttp = \"{http}\"\ntftp = \"{tftp}\"\ndhcp = \"{dhcp}\"\n[broker]\nenabled = false\n{extra}"
        );
        std::fs::write(root.join("ztpd.toml"), settings).unwrap();
        Daemon::spawn(root, http, tftp, dhcp, args)
    }

    /// Start on an existing root whose `ztpd.toml` is already written.
    pub fn spawn(
        root: &Path,
        http: SocketAddr,
        tftp: SocketAddr,
        dhcp: SocketAddr,
        args: &[&str],
    ) -> Daemon {
        let log = std::fs::File::create(root.join("ztpd.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ztpd"))
            .arg("--config")
            .arg(root.join("ztpd.toml"))
            .arg("run")
            .args(args)
            .env("ZTPD_LOG", "info,ztpd=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ztpd");
        let mut d = Daemon {
            child,
            root: root.to_path_buf(),
            http,
            tftp,
            dhcp,
            _dir: None,
        };
        d.wait_ready();
        d
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("ztpd.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("ztpd exited early ({st}):\n{}", self.log());
            }
            if let Ok((200, _)) = http_get(self.http, "/healthz", None) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("ztpd not ready within 30 s:\n{}", self.log());
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.root.join("state/operator.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.http, path, None).unwrap()
    }

    pub fn api(&self, path: &str) -> (u16, serde_json::Value) {
        let (code, body) = http_get(self.http, path, Some(&self.token())).unwrap();
        (
            code,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body)),
        )
    }

    /// Poll `f` until it returns Some, or panic with the daemon log.
    pub fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = f() {
                return v;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Minimal HTTP/1.1 GET (Connection: close); returns status and body.
pub fn http_get(
    addr: SocketAddr,
    path: &str,
    bearer: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}
