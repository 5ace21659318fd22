//! `ztpd device simulate`, `ztpd status` and `ztpd approve` against the real
//! daemon: simulated switches reach `deployed` (config, image and patch
//! fetched through /files with the access hook), faults are refused with the
//! problem printed, and the operator commands find the daemon from settings.

mod support;

use std::process::Output;

use support::tools::text;
use support::Daemon;

const FIXTURE: &str = "good";

fn ztpd(d: &Daemon, args: &[&str]) -> Output {
    d.cli(args)
}

fn state_of(d: &Daemon, name: &str) -> String {
    let (_, v) = d.api("/api/v1/devices");
    v.as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .map(|x| x["state"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn simulated_switches_deploy_and_faults_are_refused() {
    let d = Daemon::start(FIXTURE, "", &[]);
    let server = format!("http://{}", d.http);
    let o = ztpd(
        &d,
        &["device", "simulate", "--switch", "all", "--server", &server],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("2 switch(es): 2 deployed"),
        "{}",
        text(&o)
    );
    assert_eq!(state_of(&d, "leaf1"), "deployed");
    assert_eq!(state_of(&d, "leaf2"), "deployed");
    // The daemon's log tells the story at info: where the GUI is, then one
    // line per stage change with the device's address.
    d.wait_log("device leaf1 at 127.0.0.1: rebooting -> deployed", 1);
    let log = d.log();
    assert!(
        log.contains(&format!("topology GUI at http://{}/", d.http))
            && log.contains("operator.token"),
        "{log}"
    );
    assert!(
        log.contains("device leaf1 at 127.0.0.1: planned -> hello"),
        "{log}"
    );
    assert!(
        !log.contains(" WARN "),
        "a default start warns of nothing: {log}"
    );
    let o = ztpd(
        &d,
        &[
            "device",
            "simulate",
            "--switch",
            "JPE87654322",
            "--server",
            &server,
            "--fault",
            "wrong-model",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("wrong_model"), "{}", text(&o));
    assert_eq!(state_of(&d, "leaf2"), "topology_mismatch");
    let o = ztpd(
        &d,
        &[
            "device",
            "simulate",
            "--switch",
            "leaf1",
            "--server",
            &server,
            "--fault",
            "move-port",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("wrong_port"), "{}", text(&o));
    let o = ztpd(
        &d,
        &[
            "device", "simulate", "--switch", "leaf1", "--server", &server, "--fault", "swap",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(78),
        "one uplink cannot be swapped: {}",
        text(&o)
    );
}

#[test]
fn configs_follow_the_access_table() {
    let d = Daemon::start(FIXTURE, "", &[]);
    // Not approved, not leased: refused.
    let (code, _) = d.get("/files/configs/leaf1.cfg");
    assert_eq!(code, 403);
    let hello = r#"{"serial":"JPE87654321","model":"DCS-7050SX-64","neighbors":[{"local_port":"Ethernet49","remote_device":"spine1","remote_port":"Ethernet1"}]}"#;
    assert_eq!(d.post("/ztp/v1/hello", hello, &[]).0, 200);
    let (code, body) = d.get("/files/configs/leaf1.cfg");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("leaf1"), "{body}");
    // The ledger saw the fetch: the approved device is downloading.
    d.wait_for(
        "downloading from the ledger",
        std::time::Duration::from_secs(10),
        || (state_of(&d, "leaf1") == "downloading").then_some(()),
    );
    // Another device's config stays closed to this address.
    assert_eq!(d.get("/files/configs/leaf2.cfg").0, 403);
    // Bootstrap scripts are open and rendered with the site's server URL.
    let (code, body) = d.get("/files/bootstrap/generic");
    assert_eq!(code, 200);
    assert!(
        body.contains(&format!("http://10.10.0.1:{}", d.http.port())),
        "{body}"
    );
    let (code, body) = d.get("/files/bootstrap/cisco-nxos");
    assert_eq!(code, 200);
    assert!(
        body.lines().nth(1).unwrap().starts_with("#md5sum=\""),
        "{body}"
    );
}

/// A daemon with the default `access.hello = "leased"` counts none of the
/// simulator's hellos (they all come from 127.0.0.1): the simulator says,
/// once, what to change and where.
#[test]
fn simulated_switches_refused_by_access_hello_say_what_to_change() {
    let d = Daemon::builder().fixture(FIXTURE).hello("leased").start();
    let server = format!("http://{}", d.http);
    let o = ztpd(
        &d,
        &["device", "simulate", "--switch", "all", "--server", &server],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stdout.contains("leaf1: hello not counted (access.hello)"),
        "{stdout}"
    );
    assert!(!stdout.contains('{'), "no raw JSON: {stdout}");
    assert_eq!(
        stderr
            .matches("`[access] hello = \"any\"` in the ztpd.toml")
            .count(),
        1,
        "{stderr}"
    );
}

#[test]
fn approve_in_auto_mode_says_it_changes_nothing() {
    let d = Daemon::start(FIXTURE, "", &[]);
    let o = ztpd(&d, &["approve", "leaf1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o)
            .contains("approval.mode is \"auto\" in site lab: leaf1 is approved by its own hello")
            && text(&o).contains("this changes nothing"),
        "{}",
        text(&o)
    );
    assert_eq!(state_of(&d, "leaf1"), "planned");
    // the root of the plan is deployed from the start (SPEC §3)
    assert_eq!(state_of(&d, "spine1"), "deployed");
}

#[test]
fn status_and_approve_talk_to_the_running_daemon() {
    let dir = support::fixtures::temp_root_with_plan(FIXTURE, |t| {
        t.replace("mode = \"auto\"", "mode = \"manual\"")
    });
    let d = Daemon::builder().owned_root(dir).start();
    let hello = r#"{"serial":"JPE87654321","model":"DCS-7050SX-64","neighbors":[{"local_port":"Ethernet49","remote_device":"spine1","remote_port":"Ethernet1"}]}"#;
    assert_eq!(d.post("/ztp/v1/hello", hello, &[]).0, 202);
    let o = ztpd(&d, &["status"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("leaf1 "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("pending_approval"), "{out}");
    let o = ztpd(&d, &["status", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["devices"].as_array().unwrap().len(), 4);
    let o = ztpd(&d, &["approve", "leaf1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("approved leaf1 (state: approved)"),
        "{}",
        text(&o)
    );
    assert_eq!(state_of(&d, "leaf1"), "approved");
    let o = ztpd(&d, &["approve", "nosuch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("HTTP 404"), "{}", text(&o));
    let o = ztpd(&d, &["approve", "../x"]);
    assert_eq!(o.status.code(), Some(78));
}

/// Issue 25 7a: a progress message forged a line in the operator's terminal.
#[test]
fn control_characters_from_a_device_are_refused_and_never_printed() {
    let d = Daemon::builder().fixture(FIXTURE).start();
    let hello = r#"{"serial":"JPE87654321","model":"DCS-7050SX-64","neighbors":[{"local_port":"Ethernet49","remote_device":"spine1","remote_port":"Ethernet1"}]}"#;
    assert_eq!(d.post("/ztp/v1/hello", hello, &[]).0, 200);
    let forged = serde_json::json!({
        "stage": "downloading",
        "message": "\u{1b}]0;pwned\u{7}\r\nleaf9 FAKE deployed",
    })
    .to_string();
    let (code, v) = d.post("/ztp/v1/devices/JPE87654321/progress", &forged, &[]);
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("control character"),
        "{v}"
    );
    let bad_version = r#"{"serial":"JPE87654321","model":"DCS-7050SX-64","version":"4.30\r\nleaf9","neighbors":[]}"#;
    let (code, v) = d.post("/ztp/v1/hello", bad_version, &[]);
    assert_eq!(code, 400, "{v}");
    let o = ztpd(&d, &["status"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(!out.contains('\u{1b}') && !out.contains('\r'), "{out:?}");
    assert!(!out.lines().any(|l| l.starts_with("leaf9")), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("leaf1 ") && l.contains("approved")),
        "{out}"
    );
}

#[test]
fn simulated_switches_lease_through_a_relay_first() {
    if !support::tools::root_or_skip("simulated DHCP", "binding the relay's port 67") {
        return;
    }
    let d = Daemon::start(FIXTURE, "", &[]);
    let server = format!("http://{}", d.http);
    let dhcp = d.dhcp.to_string();
    let o = ztpd(
        &d,
        &[
            "device",
            "simulate",
            "--switch",
            "all",
            "--server",
            &server,
            "--dhcp",
            &dhcp,
            "--relay",
            "127.0.0.77",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("2 switch(es): 2 deployed"),
        "{}",
        text(&o)
    );
    // The simulator fails a switch whose lease is not its planned address.
    let (_, v) = d.api("/api/v1/devices");
    for name in ["leaf1", "leaf2"] {
        let dev = v
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .unwrap();
        assert_eq!(dev["state"], "deployed", "{v}");
    }
}

/// `--dhcp6`: each switch leases its planned `ip6` through a simulated
/// DHCPv6 relay (RELAY-FORW from [::1]:547), then runs the flow against an
/// IPv6-only HTTP listener: the whole flow over IPv6.
#[test]
fn simulated_switches_lease_over_dhcpv6_and_deploy_over_ipv6() {
    if !support::tools::root_or_skip("simulated DHCPv6", "binding the relay's port 547") {
        return;
    }
    let root = support::fixtures::temp_root(FIXTURE);
    let plan = root.path().join("plans/lab.toml");
    let text6 = std::fs::read_to_string(&plan)
        .unwrap()
        .replace(
            "server_ip = \"10.10.0.1\"\n",
            "server_ip = \"10.10.0.1\"\nserver_ip6 = \"2001:db8:10::1\"\n\n[dhcp6]\n\
             subnet = \"2001:db8:10::/64\"\npool = \"2001:db8:10::1000-2001:db8:10::10ff\"\n",
        )
        .replace(
            "ip = \"10.10.0.11\"\n",
            "ip = \"10.10.0.11\"\nip6 = \"2001:db8:10::11\"\n",
        )
        .replace(
            "ip = \"10.10.0.12\"\n",
            "ip = \"10.10.0.12\"\nip6 = \"2001:db8:10::12\"\n",
        );
    assert_eq!(text6.matches("ip6 = ").count(), 3, "plan edited");
    std::fs::write(&plan, text6).unwrap();
    let http = format!("[::1]:{}", support::ports::free_tcp());
    let dhcp6 = format!("[::1]:{}", support::ports::free_udp());
    let d = Daemon::builder()
        .owned_root(root)
        .http(&http)
        .tftp(&format!("[::1]:{}", support::ports::free_udp()))
        .dhcp6(&dhcp6)
        .start();
    d.wait_log("dhcpv6 listening", 1);
    let server = format!("http://{http}");
    let o = ztpd(
        &d,
        &[
            "device", "simulate", "--switch", "all", "--server", &server, "--dhcp6", &dhcp6,
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("2 switch(es): 2 deployed"),
        "{}",
        text(&o)
    );
    for name in ["leaf1", "leaf2"] {
        assert_eq!(state_of(&d, name), "deployed");
    }
    // The simulator fails a switch whose lease is not its planned ip6: a
    // plan that moves leaf2's ip6 (daemon not told) makes it fail.
    let plan = d.path("plans/lab.toml");
    let moved = std::fs::read_to_string(&plan)
        .unwrap()
        .replace("2001:db8:10::12", "2001:db8:10::99");
    let sim_plan = d.path("sim-plan.toml");
    std::fs::write(&sim_plan, moved).unwrap();
    let o = ztpd(
        &d,
        &[
            "device",
            "simulate",
            "--switch",
            "leaf2",
            "--server",
            &server,
            "--dhcp6",
            &dhcp6,
            "--plan",
            sim_plan.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("leased 2001:db8:10::12, planned Some(2001:db8:10::99)"),
        "{}",
        text(&o)
    );
}
