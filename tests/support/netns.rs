//! Network namespaces for tests that need root: a guard that creates them
//! and removes them (and whatever runs inside) on drop, running code inside
//! one, and the DHCP lab: ztpd in a server namespace, udhcpc, dhclient and a
//! hand-made relay in a client namespace, joined by a veth pair.
//!
//! Namespace names are fixed per test (`ztpt-...`), so a killed run's
//! leftovers are found and removed by the next run. They are shared with the
//! other worktrees on this machine: run these tests under
//! `flock /tmp/ztpd-netns.lock`.

use std::collections::HashMap;
use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use ztpd::dhcp::packet::MessageType;
use ztpd::dhcp::wire::DecodedReply;

use super::daemon::Daemon;
use super::tools::{have, is_root, must_run, run, sh, signal};
use super::{fixtures, poll};

/// Run `f` on a short-lived thread that has entered namespace `ns`: sockets
/// it makes stay in that namespace after the thread ends.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{ns}");
    let r = std::thread::spawn(move || {
        let file = fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns on this thread only, with a namespace fd we hold open.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join();
    r.unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Namespaces of one test; each is deleted, with every process in it
/// killed, when the guard goes.
#[derive(Default)]
pub struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    /// Remove every namespace whose name starts with `prefix`: what a killed
    /// run of the same test left behind.
    pub fn remove_leftovers(prefix: &str) {
        let o = run(&["ip", "netns", "list"]);
        for line in String::from_utf8_lossy(&o.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if name.starts_with(prefix) {
                remove(name);
            }
        }
    }

    /// Create `name` (after removing a leftover of that name), loopback up.
    pub fn add(&mut self, name: &str) -> String {
        remove(name);
        must_run(&["ip", "netns", "add", name]);
        self.names.push(name.to_string());
        must_run(&["ip", "-n", name, "link", "set", "lo", "up"]);
        name.to_string()
    }
}

/// Delete namespace `name`, killing every process in it.
pub fn remove(name: &str) {
    let _ = sh(&format!(
        "ip netns pids {name} 2>/dev/null | xargs -r kill -9; ip netns del {name} 2>/dev/null"
    ));
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.names {
            remove(n);
        }
    }
}

/// A veth pair: `a_if` in namespace `a`, `b_if` in `b`, both up.
pub fn veth(a: &str, a_if: &str, b: &str, b_if: &str) {
    must_run(&[
        "ip", "link", "add", a_if, "netns", a, "type", "veth", "peer", "name", b_if, "netns", b,
    ]);
    must_run(&["ip", "-n", a, "link", "set", a_if, "up"]);
    must_run(&["ip", "-n", b, "link", "set", b_if, "up"]);
}

// --- the DHCP lab --------------------------------------------------------------

pub const SERVER: &str = "10.201.0.1";
/// Fixed ports are fine inside a namespace of our own.
const HTTP_PORT: u16 = 8080;
const PLAN: &str = "dhcp_lab/plans/t.toml";

pub struct Lab {
    /// Declared first: dropped (killed) before its namespaces go.
    pub daemon: Daemon,
    pub srv: String,
    pub cli: String,
    veth_cli: String,
    pub http_port: u16,
    _namespaces: Namespaces,
}

impl Lab {
    /// `None` (after printing why) when not root.
    pub fn new(tag: &str, durability: &str) -> Option<Lab> {
        Lab::with_plan(tag, durability, &Lab::plan())
    }

    /// The lab plan (`tests/fixtures/dhcp_lab/plans/t.toml`).
    pub fn plan() -> String {
        fixtures::read(PLAN)
    }

    /// The lab plan without its `[dhcp]` section.
    pub fn plan_without_dhcp() -> String {
        let plan = Lab::plan();
        let start = plan.find("[dhcp]").expect("[dhcp] in the lab plan");
        let end = plan.find("[models.host]").expect("models after [dhcp]");
        format!("{}{}", &plan[..start], &plan[end..])
    }

    /// A lab whose daemon starts with `plan`; DHCP may be off.
    pub fn with_plan(tag: &str, durability: &str, plan: &str) -> Option<Lab> {
        Lab::build(tag, durability, plan, |_, b| b)
    }

    /// [`Lab::with_plan`], with `customize` given the root (before the
    /// daemon starts: e.g. to mount a small filesystem on `state/`) and the
    /// daemon's builder (e.g. more environment).
    pub fn build(
        tag: &str,
        durability: &str,
        plan: &str,
        customize: impl FnOnce(&Path, super::daemon::DaemonBuilder) -> super::daemon::DaemonBuilder,
    ) -> Option<Lab> {
        if !is_root() {
            eprintln!("SKIP: DHCP netns tests need root (network namespaces, port 67)");
            return None;
        }
        for tool in ["ip", "udhcpc", "dhclient"] {
            assert!(
                have(tool),
                "{tool} missing: run scripts/install-test-deps.sh"
            );
        }
        let mut namespaces = Namespaces::default();
        let srv = namespaces.add(&format!("ztpt-dhcp-{tag}-s"));
        let cli = namespaces.add(&format!("ztpt-dhcp-{tag}-c"));
        let (vs, vc) = (format!("zd{tag}s"), format!("zd{tag}c"));
        veth(&srv, &vs, &cli, &vc);
        must_run(&["ip", "-n", &srv, "addr", "add", "10.201.0.1/24", "dev", &vs]);

        let root = fixtures::temp_root("dhcp_lab");
        fs::create_dir_all(root.path().join("state")).expect("mkdir state");
        fs::write(root.path().join("plans/t.toml"), plan).expect("write plan");
        let path = root.path().to_path_buf();
        let builder = Daemon::builder()
            .owned_root(root)
            // All addresses: devices in the client namespace say hello too.
            // Dual-stack, the default: IPv4 clients arrive v4-mapped and
            // must meet exactly the IPv4 rules (SPEC §11).
            .http(&format!("[::]:{HTTP_PORT}"))
            .tftp("127.0.0.1:6969")
            .dhcp("0.0.0.0:67")
            .settings(&format!("[state]\ndurability = \"{durability}\"\n"))
            .netns(&srv);
        let daemon = customize(&path, builder).start();
        Some(Lab {
            daemon,
            srv,
            cli,
            veth_cli: vc,
            http_port: HTTP_PORT,
            _namespaces: namespaces,
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.daemon.path(name)
    }

    /// The current daemon's log so far.
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// Wait (30 s at most) until the current log holds `needle` `n` times.
    pub fn wait_log(&self, needle: &str, n: usize) {
        self.daemon.wait_log(needle, n)
    }

    /// Replace the plan (atomically, as editors do); the watcher reloads it.
    pub fn write_plan(&self, toml: &str) {
        let tmp = self.path("plans/.t.toml.tmp");
        fs::write(&tmp, toml).expect("write plan");
        fs::rename(&tmp, self.path("plans/t.toml")).expect("replace plan");
    }

    /// Append TOML to the plan and wait until the log says it was reloaded.
    pub fn append_to_plan(&self, toml: &str) {
        let mut text = fs::read_to_string(self.path("plans/t.toml")).expect("read plan");
        text.push_str(toml);
        self.write_plan(&text);
        self.wait_log("reloaded plans", 1);
    }

    /// Start ztpd again (same root, same ports) after [`Lab::stop`].
    pub fn start(&mut self) {
        self.daemon.restart();
    }

    /// SIGKILL (`kill`) or SIGTERM, then wait for the process.
    pub fn stop(&mut self, kill: bool) {
        self.daemon.stop(kill);
    }

    pub fn metrics(&self) -> String {
        self.daemon.metrics()
    }

    /// `GET /api/v1/<path>` with the operator token, as JSON.
    pub fn api(&self, path: &str) -> serde_json::Value {
        let (code, v) = self.daemon.api(&format!("/api/v1/{path}"));
        assert_eq!(code, 200, "GET /api/v1/{path}: {v}");
        v
    }

    /// Poll `/metrics` until `sample` reaches `min` (20 s at most).
    pub fn wait_metric(&self, sample: &str, min: u64) {
        self.daemon.wait_metric(sample, min)
    }

    /// Give the client's interface one more address (`10.201.0.50/24`),
    /// e.g. the one udhcpc was leased, or a stranger's.
    pub fn add_client_address(&self, cidr: &str) {
        must_run(&[
            "ip",
            "-n",
            &self.cli,
            "addr",
            "add",
            cidr,
            "dev",
            &self.veth_cli,
        ]);
    }

    /// curl in the client namespace from source address `src` to
    /// `http://SERVER:port<path>`: status and body. `extra` goes before the URL.
    pub fn curl_from(&self, src: &str, path: &str, extra: &[&str]) -> (u16, String) {
        let url = format!("http://{SERVER}:{}{path}", self.http_port);
        let mut args: Vec<String> = vec!["--interface".into(), src.into()];
        args.extend(extra.iter().map(|a| a.to_string()));
        let (code, _, body) = in_netns(&self.cli, move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            super::curl::fetch(&url, &a)
        });
        (code, String::from_utf8_lossy(&body).into_owned())
    }

    fn set_mac(&self, mac: &str) {
        must_run(&[
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
        write_script(
            &script,
            "#!/bin/sh\n[ \"$1\" = bound ] || exit 0\nenv > \"$OUT\"\n",
        );
        let out = self.path(&format!("udhcpc-{}.env", mac.replace(':', "")));
        let _ = fs::remove_file(&out);
        let s = script.to_str()?;
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
            s,
            "-O",
            "43",
            "-O",
            "150",
            "-O",
            "66",
            "-O",
            "67",
        ];
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
        write_script(
            &script,
            &format!(
                "#!/bin/sh\ncase \"$1\" in\n bound) ip addr add \"$ip/${{mask:-24}}\" dev \"$interface\"; env > {o}.tmp; mv {o}.tmp {o};;\n \
                 deconfig) ip addr flush dev \"$interface\";;\nesac\n",
                o = out.display()
            ),
        );
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
        let _ = poll::poll(Duration::from_secs(30), || out.exists().then_some(()));
        signal(child.id(), libc::SIGTERM);
        let _ = child.wait();
        out.exists().then(|| read_env(&out))
    }

    /// Run ISC dhclient until it binds; when `accept` is false its script
    /// fails on BOUND, which makes dhclient send DHCPDECLINE.
    pub fn dhclient(&self, mac: &str, accept: bool) -> Option<HashMap<String, String>> {
        self.set_mac(mac);
        // Lease files per daemon run: a restarted server meets a fresh client.
        let n = self.daemon.runs();
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
        write_script(
            &script,
            &format!("#!/bin/sh\n[ \"$reason\" = BOUND ] || exit 0\n{on_bound}\n"),
        );
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
        let _ = poll::poll(Duration::from_secs(30), || {
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            (target.exists() || exited).then_some(())
        });
        if !accept && target.exists() {
            // The script has failed; dhclient sends DHCPDECLINE after it, so
            // stopping it now would race with that send.
            self.wait_metric("ztpd_dhcp_received_total{type=\"decline\"}", 1);
        }
        signal(child.id(), libc::SIGTERM);
        let _ = child.wait();
        accept.then(|| read_env(&env_out)).filter(|m| !m.is_empty())
    }

    pub fn declined_ip(&self) -> Option<String> {
        let s = fs::read_to_string(self.path("declined")).ok()?;
        let s = s.trim().to_string();
        (!s.is_empty()).then_some(s)
    }

    /// A UDP socket on 10.201.0.254:67 inside the client namespace: a relay agent.
    pub fn relay_socket(&self) -> UdpSocket {
        must_run(&[
            "ip",
            "-n",
            &self.cli,
            "addr",
            "add",
            "10.201.0.254/24",
            "dev",
            &self.veth_cli,
        ]);
        let sock = in_netns(&self.cli, || {
            UdpSocket::bind("10.201.0.254:67").expect("bind relay socket")
        });
        sock.set_read_timeout(Some(Duration::from_secs(1)))
            .expect("timeout");
        sock
    }

    /// A packet socket on the client's veth: every frame to UDP port 68 is
    /// kept in its receive queue until [`Sniffer::replies`] reads them.
    pub fn sniff_replies(&self) -> Sniffer {
        self.sniff(68)
    }

    /// A packet socket on the client's veth that keeps DHCP replies to UDP
    /// `port`: 68 for clients, 67 for a relay agent (perfdhcp).
    pub fn sniff(&self, port: u16) -> Sniffer {
        let ifname = self.veth_cli.clone();
        in_netns(&self.cli, move || {
            // SAFETY: a packet socket made and bound here, with a zeroed
            // sockaddr_ll (plain data) of the size given to bind.
            unsafe {
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
                // A deep queue (root may exceed rmem_max): a reader that
                // drains it between polls must not lose frames under load.
                let size: libc::c_int = 32 << 20;
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as u32,
                );
                Sniffer {
                    fd: std::os::fd::FromRawFd::from_raw_fd(fd),
                    port,
                }
            }
        })
    }
}

fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text).expect("write script");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod script");
}

/// A DHCP reply frame as it arrived at the client's interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenFrame {
    pub dst_mac: [u8; 6],
    pub dst_ip: Ipv4Addr,
    pub msg_type: Option<MessageType>,
    /// The client hardware address in the BOOTP header.
    pub chaddr: [u8; 6],
    /// The address the reply gives the client.
    pub yiaddr: Ipv4Addr,
}

pub struct Sniffer {
    fd: std::os::fd::OwnedFd,
    /// The UDP destination port of the frames kept.
    port: u16,
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
            if let Some(f) = parse_frame(&buf[..n as usize], self.port) {
                out.push(f);
            }
        }
    }
}

fn parse_frame(b: &[u8], port: u16) -> Option<SeenFrame> {
    if b.len() < 34 || b[12..14] != [0x08, 0x00] || b[23] != 17 {
        return None;
    }
    let ihl = usize::from(b[14] & 0x0f) * 4;
    let udp = b.get(14 + ihl..)?;
    // BOOTREPLY (op 2) only: a relay's own requests also go to port 67.
    if udp.len() < 8 + 240 || udp[2..4] != port.to_be_bytes() || udp[8] != 2 {
        return None;
    }
    let bootp = &udp[8..];
    let mut dst_mac = [0u8; 6];
    dst_mac.copy_from_slice(&b[..6]);
    let mut chaddr = [0u8; 6];
    chaddr.copy_from_slice(&bootp[28..34]);
    Some(SeenFrame {
        dst_mac,
        dst_ip: Ipv4Addr::new(b[30], b[31], b[32], b[33]),
        msg_type: DecodedReply::decode(bootp).and_then(|r| r.msg_type()),
        chaddr,
        yiaddr: Ipv4Addr::new(bootp[16], bootp[17], bootp[18], bootp[19]),
    })
}

/// `ip neigh` of the server namespace for `ip`, as printed.
pub fn neighbour(lab: &Lab, ip: &str) -> String {
    let o = run(&["ip", "-n", &lab.srv, "neigh", "show", ip]);
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
    let deadline = std::time::Instant::now() + within;
    let mut out = Vec::new();
    while out.len() < n && std::time::Instant::now() < deadline {
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

/// Decode `code len value` sub-options from udhcpc's hex form.
pub fn decode_tlvs(hex: &str) -> Vec<(u8, String)> {
    let bytes = unhex(hex);
    ztpd::dhcp::packet::tlvs(&bytes)
        .map(|(c, v)| (c, String::from_utf8_lossy(v).into_owned()))
        .collect()
}

/// Bytes as upper-case hex, as busybox udhcpc's `-x OPT:HEX` takes them.
#[allow(dead_code)]
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Hex (as udhcpc prints unknown options, `optNNN`) to bytes.
#[allow(dead_code)]
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok())
        .collect()
}
