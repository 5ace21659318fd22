//! Topology after deployment (SPEC §12), real LLDP over real SNMP: three
//! "switches" in network namespaces, each running lldpd as the AgentX
//! subagent (`lldpd -x`) of net-snmp's `snmpd` (`master agentx`); veth pairs
//! are the cables, one veth per switch to ztpd's namespace the management
//! network. After deployment a cable is moved: ztpd reports
//! `topology_drift` with the fix, then `topology_restored` once it goes
//! back. A stopped snmpd gives `snmp_unreachable`, not a drift.
//!
//! Needs root (namespaces); skips with a message otherwise.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::netns::{veth, Namespaces};
use support::poll::wait_until;
use support::tools::{have_all, must, root_or_skip, sh, ChildGuard};
use support::Daemon;

const PREFIX: &str = "ztpt-sn";
const HTTP_PORT: u16 = 8080;
const COMMUNITY: &str = "ztpt-ro";
/// The SNMP v3 user every agent knows (SHA authentication, AES privacy).
const V3_USER: &str = "ztptv3";
const V3_AUTH: &str = "ztpt-auth-pass";
const V3_PRIV: &str = "ztpt-priv-pass";

fn ns(name: &str) -> String {
    format!("{PREFIX}-{name}")
}

fn spawn_in(netns: &str, args: &[&str], env: &[(&str, &str)], log: &Path) -> ChildGuard {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", netns])
        .args(args)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    ChildGuard::spawn(&mut cmd)
}

/// sw1 (root) cabled swp1 to sw2:swp1 and swp2 to sw3:swp1.
const PLAN: &str = r#"
[site]
name = "snmp"
server_ip = "10.78.1.1"

[snmp]
version = "2c"
community = "ztpt-ro"

[models.box]
vendor = "generic"
match = "linux-box"
ports = ["swp1-4"]

[[devices]]
name = "sw1"
model = "box"
serial = "SN-SW1"
ip = "10.78.1.2"

[[devices]]
name = "sw2"
model = "box"
serial = "SN-SW2"
ip = "10.78.2.2"

[[devices]]
name = "sw3"
model = "box"
serial = "SN-SW3"
ip = "10.78.3.2"

[[links]]
a = "sw1:swp1"
b = "sw2:swp1"

[[links]]
a = "sw1:swp2"
b = "sw3:swp1"
"#;

struct RunDir(PathBuf);
impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn devices(d: &Daemon) -> Vec<Value> {
    d.api("/api/v1/devices")
        .1
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn device(d: &Daemon, name: &str) -> Value {
    devices(d)
        .into_iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("{name} missing"))
}

/// Start snmpd (master agentx) in `sw`, wait for its AgentX socket.
fn snmpd(run: &Path, sw: &str) -> ChildGuard {
    let conf = run.join(format!("{sw}-snmpd.conf"));
    let sock = run.join(format!("{sw}.agentx"));
    let persist = run.join(format!("{sw}-persist"));
    std::fs::create_dir_all(&persist).unwrap();
    std::fs::write(
        &conf,
        format!(
            "agentAddress udp:161\nrocommunity {COMMUNITY} 10.0.0.0/8\nmaster agentx\n\
             agentXSocket {}\nagentXPerms 0600 0700\n\
             createUser {V3_USER} SHA \"{V3_AUTH}\" AES \"{V3_PRIV}\"\nrouser {V3_USER} priv\n",
            sock.display()
        ),
    )
    .unwrap();
    let _ = std::fs::remove_file(&sock);
    let g = spawn_in(
        &ns(sw),
        &[
            "snmpd",
            "-f",
            "-C",
            "-c",
            conf.to_str().unwrap(),
            "-m",
            "",
            "-p",
            run.join(format!("{sw}-snmpd.pid")).to_str().unwrap(),
            "-Lf",
            run.join(format!("{sw}-snmpd.log")).to_str().unwrap(),
        ],
        &[("SNMP_PERSISTENT_DIR", persist.to_str().unwrap())],
        &run.join(format!("{sw}-snmpd.err")),
    );
    wait_until(&format!("snmpd in {sw}"), Duration::from_secs(10), || {
        std::fs::metadata(&sock).is_ok()
    });
    g
}

#[test]
fn a_moved_cable_is_drift_and_a_silent_agent_is_unreachable() {
    if !root_or_skip("topology_snmp", "network namespaces")
        || !have_all("topology_snmp", &["lldpd", "lldpcli", "snmpd", "curl"])
    {
        return;
    }
    Namespaces::remove_leftovers(PREFIX);
    let dir = support::fixtures::temp_root_with_plan("good", |_| PLAN.to_string());
    let root = dir.path().to_path_buf();
    // AgentX and lldpd sockets: one path per switch, where lldpcli can traverse.
    let run = PathBuf::from(format!("/run/{PREFIX}-{}", std::process::id()));
    std::fs::create_dir_all(&run).unwrap();
    let _run_guard = RunDir(run.clone());
    let switches = ["sw1", "sw2", "sw3"];
    let mut namespaces = Namespaces::default();
    let srv = namespaces.add(&ns("srv"));
    for (i, sw) in switches.iter().enumerate() {
        let n = namespaces.add(&ns(sw));
        let k = i + 1;
        // Management: one /24 per switch.
        veth(&srv, &format!("m{k}"), &n, "mgmt");
        must(&format!(
            "ip -n {srv} addr add 10.78.{k}.1/24 dev m{k} && ip -n {n} addr add 10.78.{k}.2/24 dev mgmt"
        ));
    }
    veth(&ns("sw1"), "swp1", &ns("sw2"), "swp1");
    veth(&ns("sw1"), "swp2", &ns("sw3"), "swp1");

    let mut snmpds: Vec<ChildGuard> = Vec::new();
    let mut lldpds = Vec::new();
    for sw in switches {
        snmpds.push(snmpd(&run, sw));
        let sock = run.join(format!("{sw}.sock")).to_str().unwrap().to_string();
        let agentx = run
            .join(format!("{sw}.agentx"))
            .to_str()
            .unwrap()
            .to_string();
        lldpds.push(spawn_in(
            &ns(sw),
            &[
                "lldpd", "-d", "-u", &sock, "-I", "swp*", "-x", "-X", &agentx,
            ],
            &[],
            &root.join(format!("lldpd-{sw}.log")),
        ));
        wait_until(&format!("lldpd in {sw}"), Duration::from_secs(10), || {
            sh(&format!("lldpcli -u {sock} show configuration"))
                .status
                .success()
        });
        must(&format!(
            "lldpcli -u {sock} configure system hostname {sw} && \
             lldpcli -u {sock} configure lldp portidsubtype ifname && \
             lldpcli -u {sock} configure lldp tx-interval 1"
        ));
    }

    let d = Daemon::builder()
        .root(&root)
        .http(&format!("0.0.0.0:{HTTP_PORT}"))
        .tftp("127.0.0.1:69")
        .dhcp("127.0.0.1:67")
        .hello("any")
        .settings("[topology]\npoll_interval = \"1s\"\n")
        .args(&["--watch", "off"])
        .netns(&srv)
        .start();
    assert!(d.metrics().contains("ztpd_topology_drift_devices 0"));

    // The event stream, recorded from the start.
    let sse_log = root.join("events.sse");
    let token = d.token();
    let _sse = ChildGuard::spawn(
        Command::new("ip")
            .args(["netns", "exec", &srv, "curl", "-sN", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("http://127.0.0.1:{HTTP_PORT}/api/v1/events"))
            .stdout(std::fs::File::create(&sse_log).unwrap())
            .stderr(Stdio::null()),
    );

    // Deploy the three, as their ZTP agents would.
    let planned = [
        (
            "sw1",
            "SN-SW1",
            json!([["swp1", "sw2", "swp1"], ["swp2", "sw3", "swp1"]]),
        ),
        ("sw2", "SN-SW2", json!([["swp1", "sw1", "swp1"]])),
        ("sw3", "SN-SW3", json!([["swp1", "sw1", "swp2"]])),
    ];
    for (name, serial, ns_list) in &planned {
        let neighbors: Vec<Value> = ns_list
            .as_array()
            .unwrap()
            .iter()
            .map(|n| json!({"local_port": n[0], "remote_device": n[1], "remote_port": n[2]}))
            .collect();
        let hello = json!({"serial": serial, "model": "linux-box", "neighbors": neighbors});
        let (code, v) = d.post("/ztp/v1/hello", &hello.to_string(), &[]);
        assert_eq!(code, 200, "{name}: {v}");
        let (code, v) = d.post(
            &format!("/ztp/v1/devices/{serial}/progress"),
            r#"{"stage":"deployed"}"#,
            &[],
        );
        assert_eq!(code, 200, "{name}: {v}");
    }

    // Read over SNMP, all as planned.
    d.wait_for(
        "every switch read over SNMP, as planned",
        Duration::from_secs(40),
        || {
            let all = devices(&d);
            let ok = all.iter().all(|x| {
                x["snmp"]["reachable"] == true
                    && x["problems"].as_array().is_some_and(|p| p.is_empty())
            });
            ok.then_some(())
        },
    );
    assert!(d.metrics().contains("ztpd_topology_drift_devices 0"));

    // Move a cable: sw3's uplink from sw1:swp2 to sw1:swp3.
    let moved = Instant::now();
    must(&format!("ip -n {} link del swp2", ns("sw1")));
    veth(&ns("sw1"), "swp3", &ns("sw3"), "swp1");
    let p = d.wait_for("drift on sw1", Duration::from_secs(30), || {
        let p = device(&d, "sw1")["problems"].clone();
        p.as_array().is_some_and(|l| !l.is_empty()).then_some(p)
    });
    eprintln!("drift seen {:?} after the cable moved", moved.elapsed());
    let p = &p[0];
    assert_eq!(p["kind"], "wrong_port", "{p}");
    let fix = p["fix"].as_str().unwrap();
    assert!(
        fix.contains("sw1:swp3") && fix.contains("sw1:swp2"),
        "{fix}"
    );
    assert_eq!(
        device(&d, "sw1")["state"],
        "deployed",
        "drift never changes the state"
    );
    d.wait_metric("ztpd_topology_drift_devices", 1);
    let (_, topo) = d.api("/api/v1/topology");
    assert!(
        topo["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["kind"] == "wrong_port"),
        "{topo}"
    );

    // Put it back: restored.
    must(&format!("ip -n {} link del swp3", ns("sw1")));
    veth(&ns("sw1"), "swp2", &ns("sw3"), "swp1");
    d.wait_for("the drift to clear", Duration::from_secs(30), || {
        devices(&d)
            .iter()
            .all(|x| x["problems"].as_array().is_some_and(|p| p.is_empty()))
            .then_some(())
    });
    assert!(d.metrics().contains("ztpd_topology_drift_devices 0"));

    // sw2's agent stops: unreachable, and no link is called missing.
    snmpds[1].stop();
    d.wait_for("sw2 unreachable", Duration::from_secs(30), || {
        (device(&d, "sw2")["snmp"]["reachable"] == false).then_some(())
    });
    let sw2 = device(&d, "sw2");
    assert_eq!(sw2["problems"], json!([]), "{sw2}");
    assert!(sw2["snmp"]["last_ok"].is_string(), "{sw2}");

    // The stream carried each step.
    d.wait_for(
        "topology events on the stream",
        Duration::from_secs(10),
        || {
            let text = std::fs::read_to_string(&sse_log).unwrap_or_default();
            let kinds = [
                "\"kind\":\"drift\"",
                "\"kind\":\"restored\"",
                "\"kind\":\"snmp_unreachable\"",
            ];
            (text.contains("event: topology") && kinds.iter().all(|k| text.contains(k)))
                .then_some(())
        },
    );

    // SNMP v3 (USM, SHA and AES): with a wrong authentication key the agents
    // stop answering ztpd; with the right one sw1 is read again. A poller
    // that kept using v2c would pass neither step.
    let plan_v3 = |auth_key: &str| {
        PLAN.replace(
            "version = \"2c\"\ncommunity = \"ztpt-ro\"",
            &format!(
                "version = \"3\"\nuser = \"{V3_USER}\"\nauth = \"sha\"\nauth_key = \"{auth_key}\"\n\
                 priv = \"aes\"\npriv_key = \"{V3_PRIV}\""
            ),
        )
    };
    let plan_file = root.join("plans/lab.toml");
    let before = d.api("/api/v1/status").1["snapshot_version"]
        .as_u64()
        .unwrap();
    for (version, (auth_key, reachable)) in
        (before + 1..).zip([("not-the-auth-key", false), (V3_AUTH, true)])
    {
        std::fs::write(&plan_file, plan_v3(auth_key)).unwrap();
        d.signal(libc::SIGHUP);
        d.wait_for("the v3 plan to serve", Duration::from_secs(20), || {
            (d.api("/api/v1/status").1["snapshot_version"] == version).then_some(())
        });
        d.wait_for(
            &format!("sw1 reachable = {reachable} over SNMP v3 with auth key {auth_key}"),
            Duration::from_secs(30),
            || (device(&d, "sw1")["snmp"]["reachable"] == reachable).then_some(()),
        );
    }
    let sw1 = device(&d, "sw1");
    assert_eq!(sw1["problems"], json!([]), "{sw1}");
    drop(lldpds);
    drop(snmpds);
}
