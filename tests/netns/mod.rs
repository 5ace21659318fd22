//! Test lab for DHCP: a server namespace running the real `ztpd` and a client
//! namespace for udhcpc, dhclient and a hand-made relay, joined by a veth
//! pair. Everything is named `ztpt-dhcp-<tag>-*` and removed on drop.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ztpd::dhcp::packet::MessageType;
use ztpd::dhcp::wire::DecodedReply;

pub const SERVER: &str = "10.201.0.1";
const HTTP_PORT: u16 = 8080;
const POLL: Duration = Duration::from_millis(50);

const PLAN: &str = r#"
[site]
name = "t"
server_ip = "10.201.0.1"

[dhcp]
subnet = "10.201.0.0/24"
pool = "10.201.0.100-10.201.0.104"
router = "10.201.0.1"
lease_time = "1h"

[models.host]
vendor = "generic"
match = "linux"

[models.jun]
vendor = "juniper"
match = "ex4300-48t"

[models.cis]
vendor = "cisco-ios"
match = "C2960"

[[devices]]
name = "host1"
model = "host"
serial = "H1"
mac = "02:00:00:00:01:01"
ip = "10.201.0.11"

[[devices]]
name = "jun1"
model = "jun"
serial = "PE100"
mac = "02:00:00:00:01:02"
ip = "10.201.0.12"

[[devices]]
name = "cis1"
model = "cis"
serial = "C1"
mac = "02:00:00:00:01:03"
ip = "10.201.0.13"
"#;

pub struct Lab {
    pub srv: String,
    pub cli: String,
    veth_cli: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
    pub http_port: u16,
    runs: std::cell::Cell<u32>,
}

fn sh(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

fn must(args: &[&str]) {
    let o = sh(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Lab {
    /// `None` (after printing why) when not root.
    pub fn new(tag: &str, durability: &str) -> Option<Lab> {
        Lab::with_plan(tag, durability, PLAN)
    }

    /// The lab plan without its `[dhcp]` section.
    pub fn plan_without_dhcp() -> String {
        let start = PLAN.find("[dhcp]").expect("[dhcp] in PLAN");
        let end = PLAN.find("[models.host]").expect("models after [dhcp]");
        format!("{}{}", &PLAN[..start], &PLAN[end..])
    }

    /// The lab plan as [`Lab::new`] serves it.
    pub fn plan() -> &'static str {
        PLAN
    }

    /// A lab whose daemon starts with `plan`; DHCP may be off.
    pub fn with_plan(tag: &str, durability: &str, plan: &str) -> Option<Lab> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIP: DHCP netns tests need root (network namespaces, port 67)");
            return None;
        }
        for tool in ["ip", "udhcpc", "dhclient", "curl"] {
            assert!(
                have(tool),
                "{tool} missing: run scripts/install-test-deps.sh"
            );
        }
        let srv = format!("ztpt-dhcp-{tag}-s");
        let cli = format!("ztpt-dhcp-{tag}-c");
        let (vs, vc) = (format!("zd{tag}s"), format!("zd{tag}c"));
        // Leftovers of a killed run of this same test.
        let _ = sh(&["ip", "netns", "del", &srv]);
        let _ = sh(&["ip", "netns", "del", &cli]);
        let dir = tempfile::tempdir().expect("tempdir");
        let mut lab = Lab {
            srv: srv.clone(),
            cli: cli.clone(),
            veth_cli: vc.clone(),
            dir,
            child: None,
            http_port: HTTP_PORT,
            runs: std::cell::Cell::new(0),
        };
        must(&["ip", "netns", "add", &srv]);
        must(&["ip", "netns", "add", &cli]);
        must(&[
            "ip", "link", "add", &vs, "netns", &srv, "type", "veth", "peer", "name", &vc, "netns",
            &cli,
        ]);
        must(&["ip", "-n", &srv, "addr", "add", "10.201.0.1/24", "dev", &vs]);
        for (ns, l) in [
            (&srv, "lo"),
            (&srv, vs.as_str()),
            (&cli, "lo"),
            (&cli, vc.as_str()),
        ] {
            must(&["ip", "-n", ns, "link", "set", l, "up"]);
        }
        let root = lab.dir.path();
        for d in ["plans", "templates", "files", "state"] {
            fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        fs::write(root.join("plans/t.toml"), plan).expect("write plan");
        fs::write(
            root.join("ztpd.toml"),
            format!(
                "[listen]\ndhcp = \"0.0.0.0:67\"\nhttp = \"127.0.0.1:{HTTP_PORT}\"\ntftp = \"127.0.0.1:6969\"\n\
                 [state]\ndurability = \"{durability}\"\n[broker]\nenabled = false\n"
            ),
        )
        .expect("write settings");
        lab.start();
        Some(lab)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The current daemon's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.path(&format!("ztpd-{}.log", self.runs.get()))).unwrap_or_default()
    }

    /// Wait (30 s at most) until the current log holds `needle` `n` times.
    pub fn wait_log(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.log();
            if text.matches(needle).count() >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} not logged {n} times after 30 s:\n{text}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// Replace the plan (atomically, as editors do); the watcher reloads it.
    pub fn write_plan(&self, toml: &str) {
        let tmp = self.path("plans/.t.toml.tmp");
        fs::write(&tmp, toml).expect("write plan");
        fs::rename(&tmp, self.path("plans/t.toml")).expect("replace plan");
    }

    /// Start ztpd in the server namespace; ready when it logs that HTTP
    /// listens, and DHCP when the plan serves it.
    pub fn start(&mut self) {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let log = self.path(&format!("ztpd-{n}.log"));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.srv,
                env!("CARGO_BIN_EXE_ztpd"),
                "--config",
            ])
            .arg(self.path("ztpd.toml"))
            .arg("run")
            .env("ZTPD_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("spawn ztpd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = fs::read_to_string(&log).unwrap_or_default();
            let dhcp = text.contains("dhcp listening") || text.contains("DHCP not started");
            if dhcp && text.contains("http listening") {
                return;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(Child::try_wait) {
                panic!("ztpd exited ({st}) before listening:\n{text}");
            }
            assert!(
                Instant::now() < deadline,
                "ztpd not ready after 30 s:\n{text}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// Append TOML to the plan (the daemon's watcher reloads it) and wait
    /// until the log says a reload happened.
    pub fn append_to_plan(&self, toml: &str) {
        let plan = self.path("plans/t.toml");
        let mut text = fs::read_to_string(&plan).expect("read plan");
        text.push_str(toml);
        let tmp = self.path("plans/.t.toml.tmp");
        fs::write(&tmp, text).expect("write plan");
        fs::rename(&tmp, &plan).expect("replace plan");
        let log = self.path(&format!("ztpd-{}.log", self.runs.get()));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if text.contains("reloaded plans") {
                return;
            }
            assert!(Instant::now() < deadline, "no reload after 30 s:\n{text}");
            std::thread::sleep(POLL);
        }
    }

    /// SIGKILL (`kill`) or SIGTERM, then wait for the process.
    pub fn stop(&mut self, kill: bool) {
        if let Some(mut c) = self.child.take() {
            let sig = if kill { libc::SIGKILL } else { libc::SIGTERM };
            // SAFETY: signalling our own child by pid.
            unsafe { libc::kill(c.id() as i32, sig) };
            let _ = c.wait();
        }
    }

    fn set_mac(&self, mac: &str) {
        must(&[
            "ip",
            "-n",
            &self.cli,
            "link",
            "set",
            &self.veth_cli,
            "address",
            mac,
        ]);
    }

    /// Run busybox udhcpc once; the environment of its `bound` event, or None.
    pub fn udhcpc(&self, mac: &str, extra: &[&str]) -> Option<HashMap<String, String>> {
        self.set_mac(mac);
        let script = self.path("udhcpc.sh");
        fs::write(
            &script,
            "#!/bin/sh\n[ \"$1\" = bound ] || exit 0\nenv > \"$OUT\"\n",
        )
        .ok()?;
        must(&["chmod", "+x", script.to_str()?]);
        let out = self.path(&format!("udhcpc-{}.env", mac.replace(':', "")));
        let _ = fs::remove_file(&out);
        let mut args = vec![
            "netns",
            "exec",
            &self.cli,
            "timeout",
            "30",
            "udhcpc",
            "-i",
            &self.veth_cli,
            "-f",
            "-q",
            "-n",
            // Five tries two seconds apart: a loaded CI disk can make the
            // fsync before an ACK slow.
            "-t",
            "5",
            "-T",
            "2",
            "-s",
        ];
        let s = script.to_str()?;
        args.push(s);
        args.extend(["-O", "43", "-O", "150", "-O", "66", "-O", "67"]);
        args.extend_from_slice(extra);
        let st = Command::new("ip")
            .args(&args)
            .env("OUT", &out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()?;
        if !st.success() {
            return None;
        }
        Some(read_env(&out))
    }

    /// Run udhcpc until bound, then stop it with SIGTERM so that it sends
    /// DHCPRELEASE (`-R`). busybox only releases from the bound state, which
    /// `-q` never reaches, and only from a configured address: the script
    /// configures it.
    pub fn udhcpc_then_release(&self, mac: &str) -> Option<HashMap<String, String>> {
        self.set_mac(mac);
        let script = self.path("udhcpc-rel.sh");
        let out = self.path("udhcpc-rel.env");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\ncase \"$1\" in\n bound) ip addr add \"$ip/${{mask:-24}}\" dev \"$interface\"; env > {o}.tmp; mv {o}.tmp {o};;\n \
                 deconfig) ip addr flush dev \"$interface\";;\nesac\n",
                o = out.display()
            ),
        )
        .ok()?;
        must(&["chmod", "+x", script.to_str()?]);
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.cli,
                "udhcpc",
                "-i",
                &self.veth_cli,
                "-f",
                "-R",
                "-t",
                "5",
                "-T",
                "2",
                "-s",
            ])
            .arg(&script)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline && !out.exists() {
            std::thread::sleep(POLL);
        }
        // SAFETY: terminating our own child by pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
        out.exists().then(|| read_env(&out))
    }

    /// Run ISC dhclient until it binds; when `accept` is false its script
    /// fails on BOUND, which makes dhclient send DHCPDECLINE.
    pub fn dhclient(&self, mac: &str, accept: bool) -> Option<HashMap<String, String>> {
        self.set_mac(mac);
        let n = self.runs.get();
        let conf = self.path("dhclient.conf");
        fs::write(
            &conf,
            "option tftp150 code 150 = array of ip-address;\n\
             request subnet-mask, routers, host-name, tftp-server-name, bootfile-name,\n\
             vendor-encapsulated-options, tftp150;\n",
        )
        .ok()?;
        let env_out = self.path(&format!("dhclient-{}-{n}.env", mac.replace(':', "")));
        let declined = self.path("declined");
        let script = self.path("dhclient.sh");
        let on_bound = if accept {
            format!("env | grep '^new_' > {}; exit 0", env_out.display())
        } else {
            format!("echo $new_ip_address > {}; exit 1", declined.display())
        };
        fs::write(
            &script,
            format!("#!/bin/sh\n[ \"$reason\" = BOUND ] || exit 0\n{on_bound}\n"),
        )
        .ok()?;
        must(&["chmod", "+x", script.to_str()?]);
        let mut child = Command::new("ip")
            .args([
                "netns", "exec", &self.cli, "dhclient", "-4", "-1", "-d", "-cf",
            ])
            .arg(&conf)
            .arg("-sf")
            .arg(&script)
            .arg("-lf")
            .arg(self.path(&format!("dhclient-{}-{n}.leases", mac.replace(':', ""))))
            .arg("-pf")
            .arg(self.path("dhclient.pid"))
            .arg(&self.veth_cli)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let target = if accept { env_out.clone() } else { declined };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline && !target.exists() {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(POLL);
        }
        if !accept && target.exists() {
            // The script has failed; dhclient sends DHCPDECLINE after it, so
            // stopping it now would race with that send.
            self.wait_metric("ztpd_dhcp_received_total{type=\"decline\"}", 1);
        }
        // SAFETY: terminating our own child by pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let _ = child.wait();
        accept.then(|| read_env(&env_out)).filter(|m| !m.is_empty())
    }

    pub fn declined_ip(&self) -> Option<String> {
        let s = fs::read_to_string(self.path("declined")).ok()?;
        let s = s.trim().to_string();
        (!s.is_empty()).then_some(s)
    }

    pub fn metrics(&self) -> String {
        let url = format!("http://127.0.0.1:{}/metrics", self.http_port);
        let o = sh(&[
            "ip",
            "netns",
            "exec",
            &self.srv,
            "curl",
            "-s",
            "--max-time",
            "5",
            &url,
        ]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `GET /api/v1/<path>` with the operator token, parsed as JSON.
    pub fn api(&self, path: &str) -> serde_json::Value {
        let token = fs::read_to_string(self.path("state/operator.token")).expect("operator token");
        let url = format!("http://127.0.0.1:{}/api/v1/{path}", self.http_port);
        let auth = format!("Authorization: Bearer {}", token.trim());
        let o = sh(&[
            "ip",
            "netns",
            "exec",
            &self.srv,
            "curl",
            "-sf",
            "--max-time",
            "5",
            "-H",
            &auth,
            &url,
        ]);
        assert!(o.status.success(), "GET {url} failed");
        serde_json::from_slice(&o.stdout).expect("API answers JSON")
    }

    /// Poll `/metrics` until `name` reaches `min` (20 s at most).
    pub fn wait_metric(&self, name: &str, min: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = self.metrics();
            if metric(&m, name) >= min {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never reached {min}:\n{m}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// A UDP socket on 10.201.0.254:67 inside the client namespace: a relay agent.
    pub fn relay_socket(&self) -> UdpSocket {
        must(&[
            "ip",
            "-n",
            &self.cli,
            "addr",
            "add",
            "10.201.0.254/24",
            "dev",
            &self.veth_cli,
        ]);
        let ns = format!("/var/run/netns/{}", self.cli);
        let sock = std::thread::spawn(move || {
            let f = fs::File::open(&ns).expect("open netns");
            // SAFETY: setns on this short-lived thread only; the socket made
            // here keeps its namespace after the thread ends.
            let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
            UdpSocket::bind("10.201.0.254:67").expect("bind relay socket")
        })
        .join()
        .expect("relay thread");
        sock.set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        sock
    }
}

/// A DHCP reply frame as it arrived at the client's interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenFrame {
    pub dst_mac: [u8; 6],
    pub dst_ip: Ipv4Addr,
    pub msg_type: Option<MessageType>,
}

/// A packet socket on the client's veth: every frame to UDP port 68 is
/// kept in its receive queue until [`Sniffer::replies`] reads them.
pub struct Sniffer {
    fd: std::os::fd::OwnedFd,
}

impl Lab {
    pub fn sniff_replies(&self) -> Sniffer {
        let ns = format!("/var/run/netns/{}", self.cli);
        let ifname = self.veth_cli.clone();
        std::thread::spawn(move || {
            let f = fs::File::open(&ns).expect("open netns");
            // SAFETY: setns on this short-lived thread only; the socket made
            // here stays in the client namespace. The sockaddr_ll is plain
            // data of the size given to bind.
            unsafe {
                assert_eq!(libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET), 0);
                let proto = (libc::ETH_P_IP as u16).to_be();
                let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto));
                assert!(
                    fd >= 0,
                    "packet socket: {}",
                    std::io::Error::last_os_error()
                );
                let name = std::ffi::CString::new(ifname).expect("name");
                let mut sll: libc::sockaddr_ll = std::mem::zeroed();
                sll.sll_family = libc::AF_PACKET as u16;
                sll.sll_protocol = proto;
                sll.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
                let rc = libc::bind(
                    fd,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                );
                assert_eq!(rc, 0, "bind packet socket");
                Sniffer {
                    fd: std::os::fd::FromRawFd::from_raw_fd(fd),
                }
            }
        })
        .join()
        .expect("sniffer thread")
    }
}

impl Sniffer {
    /// DHCP replies received so far (frames to UDP port 68).
    pub fn replies(&self) -> Vec<SeenFrame> {
        let mut out = Vec::new();
        let mut buf = [0u8; 2048];
        loop {
            // SAFETY: reading into a live buffer of the given length.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                return out;
            }
            if let Some(f) = parse_frame(&buf[..n as usize]) {
                out.push(f);
            }
        }
    }
}

fn parse_frame(b: &[u8]) -> Option<SeenFrame> {
    if b.len() < 34 || b[12..14] != [0x08, 0x00] || b[23] != 17 {
        return None;
    }
    let ihl = usize::from(b[14] & 0x0f) * 4;
    let udp = b.get(14 + ihl..)?;
    if udp.len() < 8 || udp[2..4] != [0, 68] {
        return None;
    }
    let mut dst_mac = [0u8; 6];
    dst_mac.copy_from_slice(&b[..6]);
    Some(SeenFrame {
        dst_mac,
        dst_ip: Ipv4Addr::new(b[30], b[31], b[32], b[33]),
        msg_type: DecodedReply::decode(&udp[8..]).and_then(|r| r.msg_type()),
    })
}

/// `ip neigh` of the server namespace for `ip`, as printed.
pub fn neighbour(lab: &Lab, ip: &str) -> String {
    let o = sh(&["ip", "-n", &lab.srv, "neigh", "show", ip]);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Send a relayed request to the server and wait for the reply with its xid
/// (three tries, one second each).
pub fn exchange(sock: &UdpSocket, req: &[u8]) -> Option<DecodedReply> {
    let xid = &req[4..8];
    let server = SocketAddrV4::new(SERVER.parse::<Ipv4Addr>().ok()?, 67);
    let mut buf = [0u8; 1500];
    for _ in 0..3 {
        sock.send_to(req, server).ok()?;
        while let Ok((n, _)) = sock.recv_from(&mut buf) {
            if n >= 240 && &buf[4..8] == xid {
                return DecodedReply::decode(&buf[..n]);
            }
        }
    }
    None
}

/// Every reply arriving until the socket is quiet for its read timeout, by xid.
pub fn collect(sock: &UdpSocket) -> Vec<(u32, DecodedReply)> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1500];
    while let Ok((n, _)) = sock.recv_from(&mut buf) {
        if n < 240 {
            continue;
        }
        let xid = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        if let Some(r) = DecodedReply::decode(&buf[..n]) {
            out.push((xid, r));
        }
    }
    out
}

/// Replies until `n` arrived or `within` passed: for ACKs, which wait for a
/// disk commit that a loaded machine can make slow.
pub fn collect_n(sock: &UdpSocket, n: usize, within: Duration) -> Vec<(u32, DecodedReply)> {
    let deadline = Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        out.extend(collect(sock));
    }
    out
}

fn read_env(p: &Path) -> HashMap<String, String> {
    fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect()
}

/// The value of one sample (`name{labels}` exactly as exposed), 0 when absent.
pub fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Decode `code len value` sub-options from udhcpc's hex form.
pub fn decode_tlvs(hex: &str) -> Vec<(u8, String)> {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    ztpd::dhcp::packet::tlvs(&bytes)
        .map(|(c, v)| (c, String::from_utf8_lossy(v).into_owned()))
        .collect()
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop(true);
        let _ = sh(&["ip", "netns", "del", &self.srv]);
        let _ = sh(&["ip", "netns", "del", &self.cli]);
    }
}
