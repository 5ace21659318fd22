//! DHCPv6 end to end: the real `ztpd` binary in one network namespace, ISC
//! `dhclient -6` and `dhcpcd` in another, joined by a veth pair; IPv6
//! addresses only inside those namespaces. Needs root (CI runs as root);
//! skips with a message otherwise. DAD is off in both namespaces (set before
//! the links exist), so addresses are usable at once.

mod support;

use std::collections::HashMap;
use std::fs;
use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::daemon::Daemon;
use support::netns::{in_netns, Namespaces};
use support::tools::{have_all, is_root, must_run, sh, signal, ChildGuard};
use support::{fixtures, poll};

const SERVER6: &str = "2001:db8:201::1";
const HTTP_PORT: u16 = 8080;
/// host6's planned DUID (a DUID-LL), as dhclient's lease file writes it.
const HOST6_DUID: &str = "\\000\\003\\000\\001\\002\\000\\000\\000\\006\\001";
const SONIC6_MAC: &str = "02:00:00:00:06:02";

struct Lab6 {
    daemon: Daemon,
    cli: String,
    vc: String,
    /// A second link of the server, with an address outside every plan.
    cli_foreign: String,
    vf: String,
    ns: Namespaces,
}

fn sysctl_no_dad(ns: &str) {
    must_run(&[
        "ip",
        "netns",
        "exec",
        ns,
        "sysctl",
        "-qw",
        "net.ipv6.conf.all.accept_dad=0",
        "net.ipv6.conf.default.accept_dad=0",
    ]);
}

/// A veth pair whose client end has a fixed MAC set before it is up.
fn link(srv: &str, vs: &str, cli: &str, vc: &str, mac: &str) {
    must_run(&[
        "ip", "link", "add", vs, "netns", srv, "type", "veth", "peer", "name", vc, "netns", cli,
    ]);
    must_run(&["ip", "-n", cli, "link", "set", vc, "address", mac]);
    must_run(&["ip", "-n", srv, "link", "set", vs, "up"]);
    must_run(&["ip", "-n", cli, "link", "set", vc, "up"]);
}

impl Lab6 {
    fn new(tag: &str) -> Option<Lab6> {
        Lab6::with_root(tag, |_| {})
    }

    /// The lab with `edit` applied to the fixture's copy before ztpd starts.
    fn with_root(tag: &str, edit: impl FnOnce(&Path)) -> Option<Lab6> {
        if !is_root() {
            eprintln!("SKIP: DHCPv6 netns tests need root (network namespaces, port 547)");
            return None;
        }
        if !have_all("dhcp6_netns", &["ip", "dhclient", "curl"]) {
            return None;
        }
        let mut ns = Namespaces::default();
        let srv = ns.add(&format!("ztpt-dhcp6-{tag}-s"));
        let cli = ns.add(&format!("ztpt-dhcp6-{tag}-c"));
        let cli_foreign = ns.add(&format!("ztpt-dhcp6-{tag}-f"));
        for n in [&srv, &cli, &cli_foreign] {
            sysctl_no_dad(n);
        }
        let (vs, vc) = (format!("z6{tag}s"), format!("z6{tag}c"));
        let (fs_, vf) = (format!("z6{tag}u"), format!("z6{tag}f"));
        link(&srv, &vs, &cli, &vc, SONIC6_MAC);
        link(&srv, &fs_, &cli_foreign, &vf, "02:00:00:00:06:99");
        must_run(&[
            "ip",
            "-n",
            &srv,
            "-6",
            "addr",
            "add",
            "2001:db8:201::1/64",
            "dev",
            &vs,
            "nodad",
        ]);
        // The "uplink": an address in no plan subnet.
        must_run(&[
            "ip",
            "-n",
            &srv,
            "-6",
            "addr",
            "add",
            "2001:db8:999::1/64",
            "dev",
            &fs_,
            "nodad",
        ]);
        wait_link_local(&cli, &vc);
        wait_link_local(&cli_foreign, &vf);

        let root = fixtures::temp_root("dhcp6_lab");
        fs::create_dir_all(root.path().join("state")).expect("mkdir state");
        edit(root.path());
        let daemon = Daemon::builder()
            .owned_root(root)
            .http(&format!("[::]:{HTTP_PORT}"))
            .tftp("[::]:6969")
            .dhcp("127.0.0.1:6767")
            .netns(&srv)
            .start();
        daemon.wait_log("dhcpv6 serving this interface", 1);
        Some(Lab6 {
            daemon,
            cli,
            vc,
            cli_foreign,
            vf,
            ns,
        })
    }

    fn path(&self, p: &str) -> PathBuf {
        self.daemon.path(p)
    }

    /// `dhclient -6` once, with stock Debian's request list (no option 59)
    /// and `duid` (octal-escaped) as its DUID: the script's `new_*`
    /// variables, or `None` when no lease came (within ~`timeout` s).
    fn dhclient6(
        &self,
        ns: &str,
        ifname: &str,
        duid: &str,
        tag: &str,
    ) -> Option<HashMap<String, String>> {
        let conf = self.path(&format!("dhclient6-{tag}.conf"));
        fs::write(
            &conf,
            "timeout 8;\nrequest dhcp6.name-servers, dhcp6.domain-search, dhcp6.fqdn, dhcp6.sntp-servers;\n",
        )
        .ok()?;
        let leases = self.path(&format!("dhclient6-{tag}.leases"));
        fs::write(&leases, format!("default-duid \"{duid}\";\n")).ok()?;
        let env_out = self.path(&format!("dhclient6-{tag}.env"));
        let _ = fs::remove_file(&env_out);
        let script = self.path("dhclient6.sh");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\ncase \"$reason\" in BOUND6|REBOOT6|RENEW6) env | grep '^new_' > {}.$$ && mv {}.$$ {};; esac\nexit 0\n",
                env_out.display(),
                env_out.display(),
                env_out.display()
            ),
        )
        .ok()?;
        must_run(&["chmod", "755", script.to_str()?]);
        let mut child = Command::new("ip")
            .args([
                "netns", "exec", ns, "dhclient", "-6", "-1", "-d", "-v", "-cf",
            ])
            .arg(&conf)
            .arg("-sf")
            .arg(&script)
            .arg("-lf")
            .arg(&leases)
            .arg("-pf")
            .arg(self.path(&format!("dhclient6-{tag}.pid")))
            .arg(ifname)
            .stdout(Stdio::null())
            .stderr(fs::File::create(self.path(&format!("dhclient6-{tag}.log"))).ok()?)
            .spawn()
            .ok()?;
        let _ = poll::poll(Duration::from_secs(15), || {
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            (env_out.exists() || exited).then_some(())
        });
        signal(child.id(), libc::SIGTERM);
        let _ = child.wait();
        read_env(&env_out)
    }

    /// host6's whole flow with IPv6 only: the on-link prefix from ztpd's
    /// RA, its planned address from `dhclient -6`, then the generic
    /// bootstrap from option 59 run end to end to `deployed`. The option 59
    /// URL.
    fn host6_deploys_over_ipv6(&self, tag: &str) -> String {
        let route = format!("ip -n {} -6 route show 2001:db8:201::/64", self.cli);
        poll::wait_until(
            "the on-link prefix from ztpd's RA",
            Duration::from_secs(20),
            || String::from_utf8_lossy(&sh(&route).stdout).contains("2001:db8:201::/64"),
        );
        let env = self
            .dhclient6(&self.cli, &self.vc, HOST6_DUID, tag)
            .unwrap_or_else(|| panic!("no lease for host6:\n{}", self.dhclient_log(tag)));
        let ip = env["new_ip6_address"].clone();
        assert_eq!(ip, "2001:db8:201::11");
        // What dhclient-script does with a lease: the /128 on the interface.
        must_run(&[
            "ip",
            "-n",
            &self.cli,
            "-6",
            "addr",
            "add",
            &format!("{ip}/128"),
            "dev",
            &self.vc,
            "nodad",
        ]);
        let url = env["new_dhcp6_bootfile_url"].clone();
        let cfg = self.path("device/startup-config");
        let run = sh(&format!(
            "ip netns exec {ns} sh -c 'curl -fsS {url} | env ZTP_SERIAL=H6 ZTP_MODEL=linux \
             ZTP_MAC=02:00:00:00:06:01 ZTP_LLDP_WAIT=0 ZTP_CONFIG_PATH={cfg} ZTP_IMAGE_DIR={dir} sh' 2>&1",
            ns = self.cli,
            cfg = cfg.display(),
            dir = self.path("device").display(),
        ));
        let out = String::from_utf8_lossy(&run.stdout).to_string();
        assert!(run.status.success(), "generic bootstrap failed:\n{out}");
        let config = fs::read_to_string(&cfg).unwrap_or_default();
        assert!(config.contains("hostname host6"), "{config}\n{out}");
        let (code, devices) = self.daemon.api("/api/v1/devices");
        assert_eq!(code, 200);
        let host = devices
            .as_array()
            .and_then(|a| a.iter().find(|d| d["name"] == "host6"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(host["state"], "deployed", "{host}\n{out}");
        url
    }

    fn dhclient_log(&self, tag: &str) -> String {
        fs::read_to_string(self.path(&format!("dhclient6-{tag}.log"))).unwrap_or_default()
    }

    /// curl over IPv6 from the client namespace, after giving it `addr`/64
    /// (a DHCPv6 lease is a /128: the on-link prefix is added by hand here,
    /// as an RA would).
    fn curl6(&self, addr: &str, url: &str, extra: &[&str]) -> (u16, String) {
        let _ = sh(&format!(
            "ip -n {} -6 addr add {addr}/64 dev {} nodad 2>/dev/null",
            self.cli, self.vc
        ));
        let mut args: Vec<String> = ["-sS", "-g", "--max-time", "10", "-w", "\n%{http_code}"]
            .into_iter()
            .map(String::from)
            .collect();
        args.extend(["--interface".to_string(), addr.to_string()]);
        args.extend(extra.iter().map(|a| a.to_string()));
        args.push(url.to_string());
        let o = in_netns(&self.cli, move || {
            Command::new("curl").args(&args).output().expect("curl")
        });
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        let (body, code) = out.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

fn wait_link_local(ns: &str, ifname: &str) {
    let cmd = format!("ip -n {ns} -6 addr show dev {ifname} scope link");
    poll::wait_until(
        "a usable link-local address",
        Duration::from_secs(10),
        || {
            let o = sh(&cmd);
            let t = String::from_utf8_lossy(&o.stdout);
            t.contains("fe80") && !t.contains("tentative")
        },
    );
}

fn read_env(p: &Path) -> Option<HashMap<String, String>> {
    let text = fs::read_to_string(p).ok()?;
    let m: HashMap<String, String> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
        .collect();
    (!m.is_empty()).then_some(m)
}

fn in_pool(ip: &str) -> bool {
    let ip: Ipv6Addr = ip.parse().expect("an IPv6 address");
    let lo: Ipv6Addr = "2001:db8:201::1000".parse().unwrap();
    let hi: Ipv6Addr = "2001:db8:201::1003".parse().unwrap();
    (lo..=hi).contains(&ip)
}

/// A DUID-LL of an unplanned client, octal-escaped for dhclient.
const STRANGER_DUID: &str = "\\000\\003\\000\\001\\002\\000\\000\\000\\006\\077";

#[test]
fn dhclient6_gets_the_planned_address_and_an_unasked_bootfile_url_that_downloads() {
    let Some(lab) = Lab6::new("plan") else {
        return;
    };
    let env = lab
        .dhclient6(&lab.cli, &lab.vc, HOST6_DUID, "host6")
        .unwrap_or_else(|| panic!("no lease for host6:\n{}", lab.dhclient_log("host6")));
    assert_eq!(env["new_ip6_address"], "2001:db8:201::11", "{env:?}");
    // Debian's dhclient never asks for 59: it came unasked.
    let url = &env["new_dhcp6_bootfile_url"];
    assert_eq!(
        url,
        &format!("http://[{SERVER6}]:{HTTP_PORT}/files/bootstrap/generic")
    );
    assert_eq!(env["new_dhcp6_name_servers"], SERVER6);
    let (code, body) = lab.curl6("2001:db8:201::11", url, &[]);
    assert_eq!(code, 200, "{body}");
    assert!(body.starts_with("#!"), "{body}");
    assert!(
        body.contains(&format!("[{SERVER6}]:{HTTP_PORT}")),
        "the IPv6-only site's bootstrap points at ztpd's IPv6 address"
    );

    // Its hello over IPv6, from the leased address: it counts
    // (access.hello = "leased"), and the URLs it gets are IPv6 ones.
    let hello = format!("http://[{SERVER6}]:{HTTP_PORT}/ztp/v1/hello");
    let (code, body) = lab.curl6(
        "2001:db8:201::11",
        &hello,
        &[
            "-H",
            "Content-Type: application/json",
            "--data",
            r#"{"serial":"H6","mac":"02:00:00:00:06:01","model":"linux","version":"1","neighbors":[]}"#,
        ],
    );
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(v["state"], "approved", "{v}");
    let config_url = v["config_url"].as_str().expect("a config URL").to_string();
    assert_eq!(
        config_url,
        format!("http://[{SERVER6}]:{HTTP_PORT}/files/configs/host6.cfg")
    );
    // access.configs = "leased": its IPv6 lease is its address.
    let (code, body) = lab.curl6("2001:db8:201::11", &config_url, &[]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("hostname host6"), "{body}");
    // From another address of the link: refused.
    let (code, _) = lab.curl6("2001:db8:201::77", &config_url, &[]);
    assert_eq!(code, 403);

    // An unplanned DUID: a pool address, listed with family 6.
    let env = lab
        .dhclient6(&lab.cli, &lab.vc, STRANGER_DUID, "stranger")
        .expect("a pool lease");
    assert!(in_pool(&env["new_ip6_address"]), "{env:?}");
    let (code, list) = lab.daemon.api("/api/v1/unplanned");
    assert_eq!(code, 200);
    let rows = list.as_array().expect("a list");
    let row = rows
        .iter()
        .find(|r| r["family"] == 6)
        .unwrap_or_else(|| panic!("no IPv6 row in {list}"));
    assert_eq!(row["duid"], "00:03:00:01:02:00:00:00:06:3f");
    assert_eq!(row["address"], env["new_ip6_address"].as_str());
    assert_eq!(row["mac"], "02:00:00:00:06:3f");
}

/// A `[dhcp6]` plan with an IPv4-only HTTP listener is refused at start,
/// naming the setting (its devices could not reach ztpd).
#[test]
fn an_ipv4_only_listener_with_dhcp6_is_refused_by_name() {
    let (status, log) = Daemon::builder()
        .fixture("dhcp6_lab")
        .http("127.0.0.1:0")
        .tftp("[::1]:0")
        .dhcp("127.0.0.1:0")
        .expect_exit(Duration::from_secs(20));
    assert!(!status.success());
    assert!(log.contains("listen.http = \"127.0.0.1:"), "{log}");
    assert!(log.contains("serves DHCPv6"), "{log}");
}

#[test]
fn dhcpcd_is_identified_by_the_mac_in_its_duid() {
    let Some(lab) = Lab6::new("dcpd") else {
        return;
    };
    if !have_all(
        "dhcpcd_is_identified_by_the_mac_in_its_duid",
        &["dhcpcd", "unshare"],
    ) {
        return;
    }
    let conf = lab.path("dhcpcd.conf");
    let env_out = lab.path("dhcpcd.env");
    let script = lab.path("dhcpcd.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\ncase \"$reason\" in BOUND6|REBOOT6) env | grep '^new_' > {0}.$$ && mv {0}.$$ {0};; esac\nexit 0\n",
            env_out.display()
        ),
    )
    .unwrap();
    must_run(&["chmod", "755", script.to_str().unwrap()]);
    fs::write(
        &conf,
        format!(
            "noipv6rs\nipv6only\nduid lt\nia_na 1\nscript {}\n",
            script.display()
        ),
    )
    .unwrap();
    let mut child = Command::new("ip")
        .args(["netns", "exec", &lab.cli, "unshare", "-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs x /run && mount -t tmpfs x /var/lib/dhcpcd 2>/dev/null; exec dhcpcd -f {} -B -1 -t 15 {}",
            conf.display(),
            lab.vc
        ))
        .stdout(Stdio::null())
        .stderr(fs::File::create(lab.path("dhcpcd.log")).unwrap())
        .spawn()
        .expect("dhcpcd");
    let got = poll::poll(Duration::from_secs(20), || read_env(&env_out));
    signal(child.id(), libc::SIGTERM);
    let _ = child.wait();
    let env = got.unwrap_or_else(|| {
        panic!(
            "dhcpcd got no lease:\n{}",
            fs::read_to_string(lab.path("dhcpcd.log")).unwrap_or_default()
        )
    });
    assert_eq!(
        env["new_dhcp6_ia_na1_ia_addr1"], "2001:db8:201::12",
        "{env:?}"
    );
}

#[test]
fn a_pool_lease_survives_kill_9_and_nothing_answers_outside_the_plan() {
    let Some(mut lab) = Lab6::new("kill") else {
        return;
    };
    let first = lab
        .dhclient6(&lab.cli, &lab.vc, STRANGER_DUID, "before")
        .expect("a pool lease");
    let ip = first["new_ip6_address"].clone();
    assert!(in_pool(&ip));
    // Another client takes the next address, so a lost lease would show.
    let other = "\\000\\003\\000\\001\\002\\000\\000\\000\\006\\100";
    lab.dhclient6(&lab.cli, &lab.vc, other, "other")
        .expect("a second lease");

    lab.daemon.kill9();
    lab.daemon.restart();
    lab.daemon.wait_log("dhcpv6 serving this interface", 1);
    // A fresh lease file with the same DUID: no address hint from the client.
    let again = lab
        .dhclient6(&lab.cli, &lab.vc, STRANGER_DUID, "after")
        .expect("a lease after kill -9");
    assert_eq!(again["new_ip6_address"], ip, "the stored lease is kept");

    // The server's other link has no address in a plan subnet: silence.
    assert!(lab
        .dhclient6(&lab.cli_foreign, &lab.vf, STRANGER_DUID, "foreign")
        .is_none());
    let log = lab.dhclient_log("foreign");
    assert!(!log.contains("RCV: Advertise"), "{log}");

    // Malformed datagrams sent straight to the server are counted, never answered.
    must_run(&[
        "ip",
        "-n",
        &lab.cli,
        "-6",
        "addr",
        "add",
        "2001:db8:201::50/64",
        "dev",
        &lab.vc,
        "nodad",
    ]);
    let cli = lab.cli.clone();
    in_netns(&cli, move || {
        let s = UdpSocket::bind("[2001:db8:201::50]:0").expect("socket");
        let dst = SocketAddrV6::new(SERVER6.parse().unwrap(), 547, 0, 0);
        // A Solicit whose option runs past the end.
        s.send_to(&[1, 0, 0, 1, 0, 1, 0, 40, 0, 3], dst)
            .expect("send");
        // Relays nested 40 deep.
        let mut msg = vec![1, 0, 0, 1];
        for _ in 0..40 {
            let mut r = vec![12, 0];
            r.extend_from_slice(&[0u8; 32]);
            r.extend_from_slice(&9u16.to_be_bytes());
            r.extend_from_slice(&(msg.len() as u16).to_be_bytes());
            r.extend_from_slice(&msg);
            msg = r;
        }
        s.send_to(&msg, dst).expect("send");
    });
    lab.daemon
        .wait_metric("ztpd_dhcp6_dropped_total{reason=\"malformed\"}", 2);
}

/// Through a real relay agent: `dhcrelay -6 -I` (it drops replies without
/// its interface-id, so an answer proves the echo) between the client's link
/// and ztpd's. The subnet is the one holding the relay's link-address.
/// dhcrelay adds no option 79: identity by option 79 is tested with a
/// Relay-forward built by hand in `src/dhcp6/handler_tests.rs`.
#[test]
fn requests_through_dhcrelay_are_answered_through_it() {
    let Some(mut lab) = Lab6::new("rly") else {
        return;
    };
    if !have_all(
        "requests_through_dhcrelay_are_answered_through_it",
        &["dhcrelay"],
    ) {
        return;
    }
    // lab.cli is the relay's namespace: its upper link faces ztpd.
    let relay = lab.cli.clone();
    must_run(&[
        "ip",
        "-n",
        &relay,
        "-6",
        "addr",
        "add",
        "2001:db8:201::2/64",
        "dev",
        &lab.vc,
        "nodad",
    ]);
    let client = lab.ns.add("ztpt-dhcp6-rly-k");
    sysctl_no_dad(&client);
    let (lower, cif) = ("z6rlyl", "z6rlyk");
    link(&relay, lower, &client, cif, "02:00:00:00:06:50");
    must_run(&[
        "ip",
        "-n",
        &relay,
        "-6",
        "addr",
        "add",
        "2001:db8:202::fe/64",
        "dev",
        lower,
        "nodad",
    ]);
    wait_link_local(&client, cif);
    let upper = format!("2001:db8:201::1%{}", lab.vc);
    let pid = lab.path("dhcrelay.pid");
    let _relay = ChildGuard::spawn(
        Command::new("ip")
            .args(["netns", "exec", &relay, "dhcrelay", "-6", "-d", "-I", "-pf"])
            .arg(&pid)
            .args(["-l", lower, "-u", &upper])
            .stdout(Stdio::null())
            .stderr(fs::File::create(lab.path("dhcrelay.log")).expect("log")),
    );
    let env = lab
        .dhclient6(&client, cif, STRANGER_DUID, "relayed")
        .unwrap_or_else(|| {
            panic!(
                "no lease through the relay:\n{}\n--- dhcrelay ---\n{}",
                lab.dhclient_log("relayed"),
                fs::read_to_string(lab.path("dhcrelay.log")).unwrap_or_default()
            )
        });
    let ip: Ipv6Addr = env["new_ip6_address"].parse().expect("an address");
    let lo: Ipv6Addr = "2001:db8:202::1000".parse().unwrap();
    let hi: Ipv6Addr = "2001:db8:202::1003".parse().unwrap();
    assert!((lo..=hi).contains(&ip), "{env:?}");
    // A stranger of no recognised vendor gets an address, not boot options.
    assert!(!env.contains_key("new_dhcp6_bootfile_url"), "{env:?}");
}

/// SPEC §11's IPv6-only device: no IPv4 at all and no router on its link.
/// It learns the on-link prefix from ztpd's Router Advertisement (nothing is
/// added by hand), takes its planned address from DHCPv6, then runs the
/// generic bootstrap from option 59 end to end and is `deployed`, with
/// `access.hello = "leased"` (its IPv6 lease is its address).
#[test]
fn an_ipv6_only_device_learns_its_prefix_from_the_ra_and_deploys() {
    let Some(lab) = Lab6::new("only") else {
        return;
    };
    let v4 = sh(&format!("ip -n {} -4 addr show dev {}", lab.cli, lab.vc));
    assert!(
        !String::from_utf8_lossy(&v4.stdout).contains("inet "),
        "no IPv4 on the device's link"
    );
    lab.host6_deploys_over_ipv6("only");
}

/// On a dual-stack site (`server_ip` and `server_ip6`) a device that came in
/// over IPv6 gets the bootstrap script on ztpd's IPv6 address and deploys
/// with IPv6 only; the same script fetched over IPv4 names the IPv4 address.
#[test]
fn a_dual_stack_site_hands_a_device_on_ipv6_its_ipv6_urls() {
    let Some(lab) = Lab6::with_root("dual", |root| {
        // One site, made dual-stack.
        fs::remove_file(root.join("plans/relayed.toml")).expect("rm relayed plan");
        let p = root.join("plans/t.toml");
        let plan = fs::read_to_string(&p).expect("plan");
        let plan = plan.replace(
            "server_ip6 = \"2001:db8:201::1\"",
            "server_ip = \"10.66.0.1\"\nserver_ip6 = \"2001:db8:201::1\"",
        );
        assert!(plan.contains("server_ip = "), "edit applied");
        fs::write(&p, plan).expect("write plan");
    }) else {
        return;
    };
    let url = lab.host6_deploys_over_ipv6("dual");
    let script = sh(&format!(
        "ip netns exec {} curl -fsS --max-time 10 {url}",
        lab.cli
    ));
    let script = String::from_utf8_lossy(&script.stdout).to_string();
    let v6_server = format!("SERVER=\"${{ZTP_SERVER:-http://[{SERVER6}]:{HTTP_PORT}}}\"");
    assert!(script.contains(&v6_server), "{script}");

    // Over IPv4 (the dual-stack listener sees a v4-mapped client): the
    // IPv4 server address, as before.
    let srv = "ztpt-dhcp6-dual-s";
    must_run(&[
        "ip",
        "-n",
        srv,
        "addr",
        "add",
        "10.66.0.1/24",
        "dev",
        "z6duals",
    ]);
    must_run(&[
        "ip",
        "-n",
        &lab.cli,
        "addr",
        "add",
        "10.66.0.2/24",
        "dev",
        &lab.vc,
    ]);
    let v4 = sh(&format!(
        "ip netns exec {} curl -fsS --max-time 10 http://10.66.0.1:{HTTP_PORT}/files/bootstrap/generic",
        lab.cli
    ));
    let v4 = String::from_utf8_lossy(&v4.stdout).to_string();
    assert!(
        v4.contains(&format!(
            "SERVER=\"${{ZTP_SERVER:-http://10.66.0.1:{HTTP_PORT}}}\""
        )),
        "{v4}"
    );
}

/// A reload that adds the first `[dhcp6]` to a daemon whose HTTP listener
/// is IPv4 only is refused by name; the last good plan keeps serving.
#[test]
fn a_reload_adding_dhcp6_to_ipv4_only_listeners_is_refused_by_name() {
    let d = Daemon::builder().fixture("good").start();
    let (_, before) = d.api("/api/v1/status");
    let version = before["snapshot_version"].clone();
    fs::copy(
        Path::new("tests/fixtures/dhcp6_lab/plans/relayed.toml"),
        d.root.join("plans/v6.toml"),
    )
    .expect("copy the IPv6 plan");
    let s = d.wait_for("refused reload", Duration::from_secs(15), || {
        let (_, s) = d.api("/api/v1/status");
        (s["last_reload"]["ok"] == false).then_some(s)
    });
    let msg = s["last_reload"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("listen.http"), "{msg}");
    assert!(msg.contains("serves DHCPv6"), "{msg}");
    assert_eq!(s["snapshot_version"], version);
}
