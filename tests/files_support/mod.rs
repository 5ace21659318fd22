//! Shared harness for the file-service tests: a temp root with a plan,
//! templates, images and a credential, the real `ztpd run` on free
//! 127.0.0.1 ports behind a Drop guard, and helpers around curl.
#![allow(dead_code)]

use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const IMAGE: &str = "images/EOS-4.30.1F.swi";
/// A multiple of both 512 and 1468: the transfer ends with an empty block.
pub const EVEN_IMAGE: &str = "images/even.bin";
pub const CREDENTIAL_ID: &str = "24c319455312bcd559b333c986024211";

const PLAN: &str = r#"
[site]
name = "lab"
server_ip = "10.10.0.1"

[dhcp]
subnet = "10.10.0.0/24"
pool = "10.10.0.100-10.10.0.199"
router = "10.10.0.1"
lease_time = "1h"

[models.access-24]
vendor = "arista"
match = "DCS-7050SX-64"
ports = ["Ethernet1-52", "Management1"]
template = "arista.j2"
software = { image = "images/EOS-4.30.1F.swi", version = "4.30.1F" }

[models.rtr]
vendor = "cisco-ios"
match = "ISR4321"
ports = ["GigabitEthernet0/0/0"]
template = "ios.j2"

[[devices]]
name = "leaf1"
model = "access-24"
serial = "JPE87654321"
mac = "00:1c:73:aa:bb:11"
ip = "10.10.0.11"

[[devices]]
name = "rtr1"
model = "rtr"
serial = "FDO1234X0AB"
mac = "00:1c:73:aa:bb:21"
ip = "10.10.0.21"
"#;

/// Deterministic, incompressible test bytes.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free udp port")
        .port()
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free tcp port")
        .port()
}

pub struct Daemon {
    pub root: tempfile::TempDir,
    pub tftp_port: u16,
    pub http_port: u16,
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// Start `ztpd run` with `access.configs = <access>` and a big image of
    /// `image_len` bytes.
    pub fn start(access: &str, image_len: usize) -> Daemon {
        let root = tempfile::tempdir().expect("tempdir");
        let r = root.path();
        for d in ["plans", "templates", "files/images", "device_credentials"] {
            std::fs::create_dir_all(r.join(d)).expect("mkdir");
        }
        let (tftp_port, http_port) = (free_udp_port(), free_tcp_port());
        let dhcp_port = free_udp_port();
        let broker_port = free_tcp_port();
        let settings = format!(
            "[listen]\ndhcp = \"127.0.0.1:{dhcp_port}\"\ntftp = \"127.0.0.1:{tftp_port}\"\n\
             http = \"127.0.0.1:{http_port}\"\n\n[access]\nconfigs = \"{access}\"\n\n\
             [broker]\nlisten = \"127.0.0.1:{broker_port}\"\n"
        );
        std::fs::write(r.join("ztpd.toml"), settings).expect("write settings");
        std::fs::write(r.join("plans/lab.toml"), PLAN).expect("write plan");
        std::fs::write(
            r.join("templates/arista.j2"),
            "hostname {{ device.name }}\n! serial {{ device.serial }}\n",
        )
        .expect("write template");
        std::fs::write(
            r.join("templates/ios.j2"),
            "hostname {{ device.name }}\nip domain-name lab\nend\n",
        )
        .expect("write template");
        std::fs::write(r.join("files").join(IMAGE), pseudo_random(image_len, 7)).expect("image");
        std::fs::write(
            r.join("files").join(EVEN_IMAGE),
            pseudo_random(512 * 1468 * 4, 9),
        )
        .expect("image");
        std::fs::write(r.join("secret.txt"), "SECRET\n").expect("secret");
        std::os::unix::fs::symlink(r.join("secret.txt"), r.join("files/escape.txt"))
            .expect("symlink");
        std::fs::write(
            r.join("device_credentials")
                .join(format!("device_{CREDENTIAL_ID}.json")),
            "{\"device_id\":\"x\"}\n",
        )
        .expect("credential");
        let log = std::fs::File::create(r.join("ztpd.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_ztpd"))
            .arg("--config")
            .arg(r.join("ztpd.toml"))
            .arg("run")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ztpd");
        let mut d = Daemon {
            root,
            tftp_port,
            http_port,
            child,
        };
        d.wait_ready();
        d
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ztpd exited early ({status}):\n{}", self.log());
            }
            let out = curl(&["-sf", &self.http_url("/healthz")]);
            if out.status.success() {
                return;
            }
            assert!(Instant::now() < deadline, "ztpd not ready:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("ztpd.log")).unwrap_or_default()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    pub fn file(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.root.path().join("files").join(rel)).expect("read served file")
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http_port)
    }

    pub fn tftp_url(&self, path: &str) -> String {
        format!("tftp://127.0.0.1:{}/{path}", self.tftp_port)
    }

    pub fn metrics(&self) -> String {
        let out = curl(&["-sf", &self.http_url("/metrics")]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The value of one sample line in `/metrics` (0 when absent).
    pub fn metric(&self, sample: &str) -> u64 {
        let m = self.metrics();
        m.lines()
            .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Poll `/metrics` until `pred` holds (or fail after `secs`).
    pub fn wait_metrics(&self, secs: u64, what: &str, pred: impl Fn(&Daemon) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !pred(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.metrics()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn curl(args: &[&str]) -> Output {
    Command::new("curl").args(args).output().expect("run curl")
}

/// Run a command, returning its output; panics only if it cannot start.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e} (apt-get install atftp tftp-hpa curl)"))
}

pub fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}
