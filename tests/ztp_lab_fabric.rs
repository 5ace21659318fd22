//! End-to-end lab fabric (issue 5): network namespaces are switches running
//! real lldpd, veth pairs are the cables, a bridge in ztpd's namespace is the
//! management network. Each leaf gets its address from ztpd with udhcpc,
//! fetches `bootstrap/generic` from the option 67 URL with curl and runs it
//! with sh. Correctly cabled leaves end deployed with their config written;
//! leaf3, plugged into the wrong spine port, is refused with the problem
//! printed by the script and shown in `/api/v1/topology`.
//!
//! Needs root (namespaces); skips with a message otherwise.

mod support;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::netns::Namespaces;
use support::poll::wait_until;
use support::tools::{have_all, must, root_or_skip, sh, ChildGuard};
use support::Daemon;

const PREFIX: &str = "ztpt-zl";
const HTTP_PORT: u16 = 8080;

fn ns(name: &str) -> String {
    format!("{PREFIX}-{name}")
}

/// `args` in namespace `netns`, stderr to `log`; killed when the guard goes.
fn spawn_in(netns: &str, args: &[&str], log: &std::path::Path) -> ChildGuard {
    ChildGuard::spawn(
        Command::new("ip")
            .args(["netns", "exec", netns])
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap()),
    )
}

#[test]
fn lab_fabric_provisions_leaves_and_refuses_the_miscabled_one() {
    if !root_or_skip("lab_fabric", "network namespaces")
        || !have_all("lab_fabric", &["lldpd", "lldpcli", "udhcpc", "curl"])
    {
        return;
    }
    Namespaces::remove_leftovers(PREFIX);
    let dir = support::fixtures::temp_root("lab_fabric");
    let root = dir.path().to_path_buf();
    // lldpd's control sockets must sit where lldpcli can traverse.
    let run = PathBuf::from(format!("/run/{PREFIX}-{}", std::process::id()));
    std::fs::create_dir_all(&run).unwrap();
    let _run_guard = RunDir(run.clone());

    let (srv, sp) = (ns("srv"), ns("sp"));
    let leaves = ["l1", "l2", "l3"];
    // Declared before the processes below: they go first, then the namespaces.
    let mut namespaces = Namespaces::default();
    for n in [srv.clone(), sp.clone()]
        .into_iter()
        .chain(leaves.iter().map(|l| ns(l)))
    {
        namespaces.add(&n);
    }
    let mut lldpds = Vec::new();
    // Management network: a bridge in ztpd's namespace, one port per leaf.
    must(&format!(
        "ip -n {srv} link add br0 type bridge && ip -n {srv} addr add 10.77.0.1/24 dev br0 && ip -n {srv} link set br0 up"
    ));
    for (i, l) in leaves.iter().enumerate() {
        let n = ns(l);
        must(&format!(
            "ip link add mgmt netns {n} type veth peer name {l}-m netns {srv} && \
             ip -n {n} link set mgmt address 02:77:00:00:00:0{} && ip -n {n} link set mgmt up && \
             ip -n {srv} link set {l}-m master br0 && ip -n {srv} link set {l}-m up",
            i + 1
        ));
    }
    // Cables: leaf1 -> spine swp1, leaf2 -> swp2, leaf3 -> swp4 (plan: swp3).
    for (l, spine_port) in [("l1", "swp1"), ("l2", "swp2"), ("l3", "swp4")] {
        let n = ns(l);
        must(&format!(
            "ip link add swp1 netns {n} type veth peer name {spine_port} netns {sp} && \
             ip -n {n} link set swp1 up && ip -n {sp} link set {spine_port} up"
        ));
    }
    // lldpd everywhere that has cables.
    for (name, host) in [
        ("sp", "spine1"),
        ("l1", "leaf1"),
        ("l2", "leaf2"),
        ("l3", "leaf3"),
    ] {
        let sock = run.join(format!("{name}.sock"));
        let sock = sock.to_str().unwrap().to_string();
        let netns = ns(name);
        lldpds.push(spawn_in(
            &netns,
            &["lldpd", "-d", "-u", &sock, "-I", "swp*"],
            &root.join(format!("lldpd-{name}.log")),
        ));
        wait_until(
            &format!("lldpd in {netns}"),
            Duration::from_secs(10),
            || {
                sh(&format!("lldpcli -u {sock} show configuration"))
                    .status
                    .success()
            },
        );
        must(&format!(
            "lldpcli -u {sock} configure system hostname {host} && \
             lldpcli -u {sock} configure lldp portidsubtype ifname && \
             lldpcli -u {sock} configure lldp tx-interval 1"
        ));
    }

    // ztpd in its namespace, serving DHCP on br0.
    let d = Daemon::builder()
        .root(&root)
        .http(&format!("0.0.0.0:{HTTP_PORT}"))
        .tftp("10.77.0.1:69")
        .dhcp("0.0.0.0:67")
        .args(&["--watch", "off"])
        .netns(&srv)
        .start();

    // Each leaf: udhcpc, then curl option-67 URL | sh.
    let script = root.join("udhcpc.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\ncase \"$1\" in bound|renew)\n  ip addr add \"$ip/${mask:-24}\" dev \"$interface\"\n  echo \"${bootfile:-$boot_file}\" > \"$ZTPT_URL_FILE\"\n;; esac\nexit 0\n",
    )
    .unwrap();
    must(&format!("chmod +x {}", script.display()));
    let mut runs = Vec::new();
    for (i, l) in leaves.iter().enumerate() {
        let n = ns(l);
        let url_file = root.join(format!("{l}.url"));
        let o = sh(&format!(
            "ZTPT_URL_FILE={} ip netns exec {n} udhcpc -i mgmt -f -q -n -t 5 -T 1 -s {} -O 67",
            url_file.display(),
            script.display()
        ));
        assert!(
            o.status.success(),
            "udhcpc in {n}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let url = std::fs::read_to_string(&url_file)
            .unwrap()
            .trim()
            .to_string();
        assert_eq!(
            url,
            format!("http://10.77.0.1:{HTTP_PORT}/files/bootstrap/generic")
        );
        let addr = sh(&format!("ip -n {n} -4 -o addr show dev mgmt"));
        assert!(
            String::from_utf8_lossy(&addr.stdout).contains(&format!("10.77.0.1{}/24", i + 1)),
            "{n} did not get its planned address"
        );
        let sock = run.join(format!("{l}.sock"));
        let cfg_out = root.join(format!("{l}-startup-config"));
        let serial = format!("LABLEAF{}", i + 1);
        let cmd = format!(
            "curl -fsS {url} | ip netns exec {n} env ZTP_SERIAL={serial} ZTP_MODEL=LAB-LEAF \
             ZTP_MAC=02:77:00:00:00:0{} ZTP_LLDPCLI='lldpcli -u {}' ZTP_LLDP_WAIT=15 \
             ZTP_CONFIG_PATH={} ZTP_IMAGE_DIR={} sh",
            i + 1,
            sock.display(),
            cfg_out.display(),
            root.join(format!("{l}-images")).display()
        );
        // curl runs in the leaf namespace too: it is the leaf fetching its bootstrap.
        let cmd = format!("ip netns exec {n} sh -c \"{}\"", cmd.replace('"', "\\\""));
        runs.push((
            l,
            cfg_out,
            Command::new("sh").args(["-c", &cmd]).output().unwrap(),
        ));
    }

    for (l, cfg_out, out) in &runs {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if **l == "l3" {
            assert_eq!(out.status.code(), Some(1), "leaf3 must be refused:\n{text}");
            assert!(text.contains("refused"), "{text}");
            assert!(
                text.contains("spine1:swp4") && text.contains("spine1:swp3"),
                "{text}"
            );
            assert!(!cfg_out.exists(), "a refused leaf wrote a config");
        } else {
            assert_eq!(out.status.code(), Some(0), "{l}:\n{text}");
            let cfg = std::fs::read_to_string(cfg_out).unwrap();
            let name = format!("leaf{}", &l[1..]);
            assert!(cfg.starts_with(&format!("hostname {name}\n")), "{cfg}");
            assert!(cfg.contains("uplink to spine1:swp"), "{cfg}");
        }
    }
    let (_, devices) = d.api("/api/v1/devices");
    let state = |name: &str| {
        devices
            .as_array()
            .and_then(|a| a.iter().find(|d| d["name"] == name))
            .map(|d| d["state"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    assert_eq!(state("leaf1"), "deployed", "{devices}");
    assert_eq!(state("leaf2"), "deployed", "{devices}");
    assert_eq!(state("leaf3"), "topology_mismatch", "{devices}");
    let (_, topo) = d.api("/api/v1/topology");
    let problems = topo["problems"].as_array().cloned().unwrap_or_default();
    assert!(
        problems.iter().any(|p| p["kind"] == "wrong_port"
            && (p["device"] == "leaf3" || p["device"] == "spine1")
            && p["fix"].as_str().unwrap_or("").contains("spine1:swp4")),
        "{topo}"
    );
}

/// lldpd's control-socket directory, removed at the end.
struct RunDir(PathBuf);
impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
