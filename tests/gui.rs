//! The topology GUI (SPEC §8): its session cookie, headers and refusals
//! with curl, and the page itself in real headless Chromium (Debian's
//! `chromium`, driven by Playwright from the test venv). As root, the main
//! page test runs in a network namespace with a real Azure SDK sensor
//! (`.venv-azure`, `tests/hub/dps_device.py serve`) on the hub's port 8883,
//! for the twin, desired properties and methods in a device's details.

mod support;

use std::time::Duration;

use serde_json::json;
use support::curl::{fetch, header};
use support::Daemon;

const FIXTURE: &str = "good";
const MARKUP: &str = "<img src=x onerror=window.__xss=1>";

#[test]
fn the_page_and_its_session_cookie() {
    let d = Daemon::start(FIXTURE, "", &[]);
    let url = |p: &str| d.http_url(p);

    // The page needs no token, holds no data, and forbids everything foreign.
    let (code, headers, body) = fetch(&url("/"), &[]);
    assert_eq!(code, 200);
    let csp = header(&headers, "content-security-policy").unwrap_or_default();
    assert!(csp.starts_with("default-src 'self'"), "{headers}");
    assert!(String::from_utf8_lossy(&body).contains("name=\"token\""));
    let (code, _, js) = fetch(&url("/assets/vendor/cytoscape.min.js"), &[]);
    assert_eq!((code, js.len() > 100_000), (200, true));
    assert_eq!(
        fetch(&url("/assets/../ztpd.toml"), &["--path-as-is"]).0,
        404
    );

    // A session costs the token itself: none, a wrong one, or a cookie will not do.
    let session = url("/api/v1/session");
    assert_eq!(fetch(&session, &["-X", "POST"]).0, 401);
    assert_eq!(
        fetch(
            &session,
            &["-X", "POST", "-H", "Authorization: Bearer wrong"]
        )
        .0,
        401
    );
    let auth = format!("Authorization: Bearer {}", d.token());
    let (code, headers, _) = fetch(&session, &["-X", "POST", "-H", &auth]);
    assert_eq!(code, 204);
    let set = header(&headers, "set-cookie").expect("a session cookie");
    assert!(
        set.contains("httponly") && set.contains("samesite=strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    assert!(
        cookie.starts_with("ztpd_session=") && cookie.len() > 60,
        "{cookie}"
    );
    assert_eq!(
        fetch(&session, &["-X", "POST", "-b", &cookie]).0,
        401,
        "a cookie buys no new session"
    );

    // The cookie reads the API and its event stream in the token's place.
    assert_eq!(fetch(&url("/api/v1/devices"), &["-b", &cookie]).0, 200);
    assert_eq!(fetch(&url("/api/v1/devices"), &[]).0, 401);
    let (code, headers, _) = fetch(&url("/api/v1/events"), &["-b", &cookie, "-m", "1"]);
    assert_eq!(code, 200);
    assert!(header(&headers, "content-type")
        .unwrap_or_default()
        .starts_with("text/event-stream"));

    // A change made with the cookie must be JSON: a cross-site form cannot post.
    let approve = url("/api/v1/devices/leaf1/approve");
    let form = ["-X", "POST", "-b", &cookie, "-d", "x=1"];
    assert_eq!(fetch(&approve, &form).0, 415);
    let json_post = [
        "-X",
        "POST",
        "-b",
        &cookie,
        "-H",
        "content-type: application/json",
        "-d",
        "{}",
    ];
    let (code, _, _) = fetch(&approve, &json_post);
    assert_ne!(code, 415, "a JSON change passes the cookie check");
    assert_ne!(code, 401);
    // So for the hub's twin and methods; and nothing at all without a session.
    let twin = url(&format!("/api/v1/hub/devices/{SENSOR_ID}/twin"));
    let method = url(&format!("/api/v1/hub/devices/{SENSOR_ID}/methods/reboot"));
    for (verb, path) in [("PATCH", &twin), ("POST", &method)] {
        let form = ["-X", verb, "-b", &cookie, "-d", "x=1"];
        assert_eq!(fetch(path, &form).0, 415, "{verb} {path} as a form");
        let json = [
            "-X",
            verb,
            "-H",
            "content-type: application/json",
            "-d",
            "{}",
        ];
        assert_eq!(fetch(path, &json).0, 401, "{verb} {path} without a session");
    }
    assert_eq!(fetch(&twin, &[]).0, 401);

    // Logout clears the cookie and forgets the session.
    assert_eq!(fetch(&session, &["-X", "DELETE", "-b", &cookie]).0, 415);
    let (code, headers, _) = fetch(
        &session,
        &[
            "-X",
            "DELETE",
            "-b",
            &cookie,
            "-H",
            "content-type: application/json",
        ],
    );
    assert_eq!(code, 204);
    assert!(header(&headers, "set-cookie")
        .unwrap_or_default()
        .contains("max-age=0"));
    assert_eq!(fetch(&url("/api/v1/devices"), &["-b", &cookie]).0, 401);
}

/// Issue 25 7b: an event stream opened with a session cookie kept
/// delivering after that session logged out.
#[test]
fn an_event_stream_ends_when_its_session_logs_out() {
    use std::io::{BufRead, BufReader, Write};
    let d = Daemon::start(FIXTURE, "", &[]);
    let session = d.http_url("/api/v1/session");
    let auth = format!("Authorization: Bearer {}", d.token());
    let (code, headers, _) = fetch(&session, &["-X", "POST", "-H", &auth]);
    assert_eq!(code, 204);
    let cookie = header(&headers, "set-cookie")
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let mut s = std::net::TcpStream::connect(d.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    assert!(status.contains(" 200 "), "{status}");
    // Logged out elsewhere (another tab): this stream must end.
    let json = "content-type: application/json";
    let (code, _, _) = fetch(&session, &["-X", "DELETE", "-b", &cookie, "-H", json]);
    assert_eq!(code, 204);
    // Something to deliver if the stream were still open.
    let hello = r#"{"serial":"JPE87654321","model":"DCS-7050SX-64","neighbors":[]}"#;
    d.post("/ztp/v1/hello", hello, &[]);
    let mut rest = String::new();
    let read = std::io::Read::read_to_string(&mut r, &mut rest);
    assert!(
        read.is_ok(),
        "the stream stayed open after logout: {read:?} {rest}"
    );
    assert!(
        !rest.contains("event: device"),
        "delivered after logout: {rest}"
    );
}

/// Where Playwright and Chromium are; `None` (with the reason) when this
/// machine has not installed them and is not root, so cannot.
fn browser() -> Option<std::path::PathBuf> {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python");
    let ready = python.is_file()
        && std::path::Path::new("/usr/bin/chromium").is_file()
        && std::process::Command::new(&python)
            .args(["-c", "import playwright"])
            .status()
            .is_ok_and(|s| s.success());
    if ready {
        return Some(python);
    }
    assert!(
        !support::tools::is_root(),
        "chromium or playwright missing: run scripts/install-test-deps.sh"
    );
    eprintln!("SKIP the GUI in Chromium: run `sudo scripts/install-test-deps.sh` first");
    None
}

#[test]
fn the_topology_gui_in_chromium() {
    let Some(python) = browser() else { return };
    // With root, the daemon and the browser run in a namespace where the
    // hub's TLS listener has port 8883 (the SDK dials no other): the page
    // then shows a real SDK sensor's twin and calls its methods.
    let sdk = support::azure::sdk_python("the twin in the GUI");
    let mut namespaces = support::netns::Namespaces::default();
    let d = match &sdk {
        Some(_) => {
            let ns = namespaces.add(&own_netns());
            Daemon::builder()
                .fixture(FIXTURE)
                .netns(&ns)
                .hello("any")
                .broker("tls_listen = \"127.0.0.1:8883\"\n")
                .start()
        }
        None => Daemon::start(FIXTURE, "", &[]),
    };
    // leaf2 says hello reporting a model with markup in it.
    let hello = json!({
        "serial": "JPE87654322", "mac": "00:1c:73:aa:bb:12", "model": MARKUP, "version": "4.29",
        "neighbors": [{"local_port": "Ethernet49", "remote_device": "spine1", "remote_port": "Ethernet2"}]
    });
    let (code, v) = d.post("/ztp/v1/hello", &hello.to_string(), &[]);
    assert_eq!(code, 409, "a wrong model is a mismatch: {v}");

    let models = planned_models(&d);
    let mut expected = json!({
        "devices": models,
        "markup_device": "leaf2",
        "markup": MARKUP,
        "mixed": ["spine1", "leaf1"],
        "search": "JPE87654321",
    });
    let Some(sdk) = sdk else {
        check_in_chromium(&python, &d, GUI_CHECK, &expected, "gui-lab.png");
        return;
    };
    let ns = d.netns().unwrap().to_string();
    let reported = json!({"firmware": "gui-1.0", "battery": {"level": 0.8}});
    let mut device = support::azure::ServingDevice::start(&sdk, &ns, &d, SENSOR_ID, &reported);
    let twin_path = format!("/api/v1/hub/devices/{SENSOR_ID}/twin");
    let (code, twin) = d.api_patch(&twin_path, r#"{"desired": {"gui_api": {"from": "api"}}}"#);
    assert_eq!(code, 200, "{twin}");
    assert_eq!(twin["reported"]["firmware"], "gui-1.0", "{twin}");
    // An identity no plan has (as DPS or `ztpd credentials create` makes).
    let out = d.cli(&["credentials", "create", OUTSIDE_ID]);
    assert!(out.status.success(), "{out:?}");
    expected["twin"] = json!({
        "device": "sensor-0001",
        "device_id": SENSOR_ID,
        "desired": {"gui_api": {"from": "api"}},
        "desired_version": twin["desired"]["$version"],
        "reported": reported,
        "reported_version": twin["reported"]["$version"],
        "set": {"key": "interval", "value": 7},
        "method": {"name": "echo", "payload": {"n": 7},
                   "answer": {"name": "echo", "got": {"n": 7}}},
        "other_origin": d.http_url("/").replace("127.0.0.1", "localhost"),
        "outside": OUTSIDE_ID,
    });
    check_in_chromium(&python, &d, GUI_CHECK, &expected, "gui-lab.png");

    // What the page set reached the device, the page's call was the
    // device's, and the other origin's attempt never came.
    let within = Duration::from_secs(10);
    let patch = device.wait_for(within, |v| v["desired"].get("interval").is_some());
    assert_eq!(patch["desired"]["interval"], 7, "{patch}");
    let call = device.wait_for(within, |v| v["method"]["name"] == "echo");
    assert_eq!(call["method"]["payload"], json!({"n": 7}), "{call}");
    let printed = device.printed();
    assert!(
        !printed
            .iter()
            .any(|v| v["method"]["name"] == "from_elsewhere"),
        "another origin called a method: {printed:?}"
    );
    let (_, twin) = d.api(&twin_path);
    assert_eq!(twin["desired"]["interval"], 7, "{twin}");
    assert!(twin["desired"].get("device_function").is_some(), "{twin}");
}

/// The planned sensor of tests/fixtures/good (its serial is its hub id).
const SENSOR_ID: &str = "24c319455312bcd559b333c986024211";
/// A hub identity outside the plan.
const OUTSIDE_ID: &str = "sn-gui-outside";

/// A namespace name of this test process; those of runs that were killed
/// (their process gone) are removed, never another live run's.
fn own_netns() -> String {
    const PREFIX: &str = "ztpt-gui-";
    let list = support::tools::sh("ip netns list");
    for name in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        let dead = name
            .strip_prefix(PREFIX)
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
        if dead {
            support::netns::remove(name);
        }
    }
    format!("{PREFIX}{}", std::process::id())
}

/// Issue 25 defect 2 in the page: a sensor (no mac, no ip) said hello from
/// two addresses; the page shows the pending one and both claims, and its
/// "Approve" approves the address shown.
#[test]
fn a_pending_sensor_is_approved_at_the_address_shown_in_the_gui() {
    let Some(python) = browser() else { return };
    let dir =
        support::fixtures::temp_root_with_plan(FIXTURE, |t| t.replace("10.10.0.", "127.0.0."));
    let d = Daemon::builder().owned_root(dir).hello("leased").start();
    let sensor = "24c319455312bcd559b333c986024211";
    let hello = json!({"serial": sensor, "model": "esp32-gps", "neighbors": []}).to_string();
    for from in ["127.0.0.50", "127.0.0.99"] {
        let (code, body) =
            support::api::request_from(from, d.http, "POST", "/ztp/v1/hello", &[], Some(&hello))
                .unwrap();
        assert_eq!(code, 202, "{body}");
    }
    let expected = json!({
        "devices": planned_models(&d),
        "mixed": ["spine1", "leaf1"],
        "approve": {"device": "sensor-0001", "address": "127.0.0.99",
                    "claims": ["127.0.0.50", "127.0.0.99"]},
    });
    check_in_chromium(&python, &d, GUI_CHECK, &expected, "gui-approve.png");
    let (_, devices) = d.api("/api/v1/devices");
    let s = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "sensor-0001")
        .unwrap();
    assert_eq!(
        (s["state"].as_str(), s["ip"].as_str()),
        (Some("approved"), Some("127.0.0.99")),
        "{s}"
    );
}

/// Create a group from two leaves in the page and start a rollout there,
/// then follow it live to done, against simulated switch agents.
#[test]
fn a_rollout_started_and_followed_in_the_gui() {
    let Some(python) = browser() else { return };
    let d = Daemon::start("rollout_fabric", "", &[]);
    let _agents = support::agents::Agents::start(&d, &[]);
    let models = planned_models(&d);
    let expected = json!({
        "devices": models,
        "mixed": ["spine1", "leaf1"],
        "rollout": {"group": "pair", "devices": ["leaf1", "leaf2"], "version": "2.0"},
        "graph_click": "leaf5",
    });
    check_in_chromium(&python, &d, GUI_CHECK, &expected, "gui-rollout.png");
    // What the page did is what the API holds: one done rollout of `pair`.
    let (_, rollouts) = d.api("/api/v1/rollouts");
    let r = &rollouts.as_array().unwrap()[0];
    assert_eq!(
        (r["group"].as_str(), r["state"].as_str()),
        (Some("pair"), Some("done")),
        "{r}"
    );
}

/// The example plan (plans/lab.toml, with its templates and files) as the
/// GUI draws it: both spines on top although only spine1 is the root, the
/// leaves, oob1 and the borders below, host1 under its leaf pair, and the
/// two sensors (no cables) on a row of their own.
#[test]
fn the_example_plan_is_drawn_in_tiers_with_links_clear_of_other_devices() {
    let Some(python) = browser() else { return };
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = tempfile::tempdir().unwrap();
    for dir in ["plans", "templates", "files"] {
        support::fixtures::copy_tree(&repo.join(dir), &root.path().join(dir));
    }
    let d = Daemon::builder().owned_root(root).start();
    let rows = json!({"rows": [
        ["spine1", "spine2"],
        ["leaf1", "leaf2", "leaf3", "leaf4", "oob1", "border1", "border2"],
        ["host1"],
        ["sensor-0001", "sensor-0002"],
    ]});
    check_in_chromium(&python, &d, LAYOUT_CHECK, &rows, "gui-layout-lab.png");
}

#[test]
fn a_two_spine_fabric_is_drawn_with_both_spines_on_top() {
    let Some(python) = browser() else { return };
    let mut f = Fabric::default();
    f.device("spine1", "spine", true);
    f.device("spine2", "spine", false);
    f.device("oob1", "oob", false);
    f.link("spine1", "spine2");
    let leaves: Vec<String> = (1..=8).map(|i| format!("leaf{i}")).collect();
    for (i, leaf) in leaves.iter().enumerate() {
        f.device(leaf, "leaf", false);
        f.link("spine1", leaf);
        f.link("spine2", leaf);
        f.link("oob1", leaf);
        if i % 2 == 1 {
            f.link(&leaves[i - 1], leaf);
        }
    }
    f.link("oob1", "spine1");
    f.link("oob1", "spine2");
    let d = f.start();
    let mut second: Vec<&str> = leaves.iter().map(String::as_str).collect();
    second.push("oob1");
    let rows = json!({"rows": [["spine1", "spine2"], second]});
    check_in_chromium(&python, &d, LAYOUT_CHECK, &rows, "gui-layout-two-spine.png");
}

#[test]
fn a_three_tier_fabric_is_drawn_core_aggregation_access() {
    let Some(python) = browser() else { return };
    let mut f = Fabric::default();
    f.device("core1", "core", true);
    f.device("core2", "core", false);
    f.link("core1", "core2");
    for a in 1..=4 {
        let agg = format!("agg{a}");
        f.device(&agg, "agg", false);
        f.link("core1", &agg);
        f.link("core2", &agg);
        if a % 2 == 0 {
            f.link(&format!("agg{}", a - 1), &agg);
        }
    }
    for x in 1..=8 {
        let access = format!("access{x}");
        f.device(&access, "access", false);
        let pair = if x <= 4 { (1, 2) } else { (3, 4) };
        f.link(&format!("agg{}", pair.0), &access);
        f.link(&format!("agg{}", pair.1), &access);
    }
    let d = f.start();
    let rows = json!({"rows": [
        ["core1", "core2"],
        ["agg1", "agg2", "agg3", "agg4"],
        (1..=8).map(|x| format!("access{x}")).collect::<Vec<_>>(),
    ]});
    check_in_chromium(
        &python,
        &d,
        LAYOUT_CHECK,
        &rows,
        "gui-layout-three-tier.png",
    );
}

/// A generated plan of generic switches: devices, their models and cables
/// (each on the next free port of both ends).
#[derive(Default)]
struct Fabric {
    plan: String,
    models: Vec<String>,
    ports: std::collections::HashMap<String, u32>,
}

impl Fabric {
    fn device(&mut self, name: &str, model: &str, root: bool) {
        if !self.models.iter().any(|m| m == model) {
            self.models.push(model.to_string());
        }
        let role = if root { "role = \"root\"\n" } else { "" };
        self.plan.push_str(&format!(
            "[[devices]]\nname = \"{name}\"\nmodel = \"{model}\"\nserial = \"SN-{name}\"\n{role}\n"
        ));
    }

    fn port(&mut self, device: &str) -> String {
        let n = self.ports.entry(device.to_string()).or_insert(0);
        *n += 1;
        format!("{device}:swp{n}")
    }

    fn link(&mut self, a: &str, b: &str) {
        let (a, b) = (self.port(a), self.port(b));
        self.plan
            .push_str(&format!("[[links]]\na = \"{a}\"\nb = \"{b}\"\n\n"));
    }

    /// The daemon serving this plan.
    fn start(&self) -> Daemon {
        let mut text = String::from("[site]\nname = \"fabric\"\nserver_ip = \"10.40.0.1\"\n\n");
        for m in &self.models {
            text.push_str(&format!(
                "[models.{m}]\nvendor = \"generic\"\nmatch = \"SIM-{m}\"\nports = [\"swp1-64\"]\n\n"
            ));
        }
        text.push_str(&self.plan);
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("plans")).unwrap();
        std::fs::write(root.path().join("plans/fabric.toml"), text).unwrap();
        Daemon::builder().owned_root(root).start()
    }
}

/// The state filter offers every stage the API can report (from the one
/// stage list) and each selects its devices; a device waiting for approval
/// is approved from the page.
#[test]
fn every_stage_filters_and_approve_works_in_chromium() {
    let Some(python) = browser() else { return };
    let dir = support::fixtures::temp_root_with_plan(FIXTURE, |p| {
        p.replace("mode = \"auto\"", "mode = \"manual\"")
            + "\n[[devices]]\nname = \"leaf3\"\nmodel = \"access-24\"\nserial = \"JPE87654323\"\n\
               ip = \"10.10.0.13\"\nvars = { loopback = \"10.255.0.13\", asn = 65013 }\n\n\
               [[links]]\na = \"spine1:Ethernet3\"\nb = \"leaf3:Ethernet49\"\n"
    });
    let d = Daemon::builder().owned_root(dir).start();
    let hello = json!({
        "serial": "JPE87654321", "mac": "00:1c:73:aa:bb:11", "model": "DCS-7050SX-64",
        "neighbors": [{"local_port": "Ethernet49", "remote_device": "spine1", "remote_port": "Ethernet1"}]
    });
    let (code, v) = d.post("/ztp/v1/hello", &hello.to_string(), &[]);
    assert_eq!(
        (code, v["state"].as_str()),
        (202, Some("pending_approval")),
        "{v}"
    );
    // leaf2 died: a new box at its place waits to be accepted as its replacement.
    let new_box = json!({
        "serial": "NEWLEAF2", "mac": "02:00:00:00:00:12", "model": "DCS-7050SX-64",
        "neighbors": [{"local_port": "Ethernet49", "remote_device": "spine1", "remote_port": "Ethernet2"}]
    });
    let (code, v) = d.post("/ztp/v1/hello", &new_box.to_string(), &[]);
    assert_eq!(
        (code, v["state"].as_str()),
        (202, Some("replacement_pending")),
        "{v}"
    );
    // leaf3 is deployed, then its cable is moved by hand: it reports its own
    // ports (as an SNMP read would show them), and that is drift.
    let hello3 = json!({"serial": "JPE87654323", "model": "DCS-7050SX-64", "neighbors": [
        {"local_port": "Ethernet49", "remote_device": "spine1", "remote_port": "Ethernet3"}]});
    assert_eq!(d.post("/ztp/v1/hello", &hello3.to_string(), &[]).0, 202);
    assert_eq!(d.api_post("/api/v1/devices/leaf3/approve", "{}").0, 200);
    let (code, v) = d.post(
        "/ztp/v1/devices/JPE87654323/progress",
        r#"{"stage":"deployed"}"#,
        &[],
    );
    assert_eq!(code, 200, "{v}");
    let moved = json!({"reporter": "JPE87654323", "neighbors": [
        {"local_port": "Ethernet50", "remote_device": "spine1", "remote_port": "Ethernet3"}]});
    let (code, v) = d.post("/ztp/v1/neighbors", &moved.to_string(), &[]);
    assert_eq!(code, 200, "{v}");
    // A stranger cabled at no planned place: 404, listed as unplanned.
    let stranger = json!({
        "serial": "STRANGER1", "mac": "02:00:00:00:00:99", "model": "DCS-7050SX-64",
        "neighbors": [{"local_port": "Ethernet1", "remote_device": "spine1", "remote_port": "Ethernet40"}]
    });
    let (code, v) = d.post("/ztp/v1/hello", &stranger.to_string(), &[]);
    assert_eq!(code, 404, "{v}");
    let (_, unplanned) = d.api("/api/v1/unplanned");
    assert_eq!(unplanned[0]["source"], "hello", "{unplanned}");
    assert_eq!(unplanned[0]["serial"], "STRANGER1", "{unplanned}");

    // Only with the operator token.
    assert_eq!(d.get("/api/v1/stages").0, 401);
    let (code, stages) = d.api("/api/v1/stages");
    assert_eq!(code, 200, "{stages}");
    let stages: Vec<String> = stages
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        stages.contains(&"pending_approval".to_string()),
        "{stages:?}"
    );
    let (_, devices) = d.api("/api/v1/devices");
    let states: serde_json::Map<String, serde_json::Value> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap().to_string(), x["state"].clone()))
        .collect();
    let expected = json!({
        "devices": planned_models(&d),
        "stages": stages,
        "states": states,
        "approve_selected": "leaf1",
        "drift": {"device": "leaf3", "kind": "wrong_port"},
        "replace": {"device": "leaf2", "old": "JPE87654322", "new": "NEWLEAF2"},
        "unplanned": {"serial": "STRANGER1",
                      "entry": "[[devices]]\nname = \"CHANGE-ME\"\nmodel = \"access-24\"\nserial = \"STRANGER1\"\nmac = \"02:00:00:00:00:99\"\n"},
    });
    check_in_chromium(&python, &d, GUI_CHECK, &expected, "gui-stages.png");
    let (_, devices) = d.api("/api/v1/devices");
    let leaf1 = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "leaf1")
        .unwrap()
        .clone();
    assert_eq!(leaf1["state"], "approved", "{leaf1}");
    let (_, bindings) = d.api("/api/v1/bindings");
    assert_eq!(bindings[0]["serial"], "NEWLEAF2", "{bindings}");
    assert_eq!(bindings[0]["replaces"], "JPE87654322", "{bindings}");
}

/// Every planned device's model, by name, as the API gives them.
fn planned_models(d: &Daemon) -> serde_json::Map<String, serde_json::Value> {
    let (_, devices) = d.api("/api/v1/devices");
    devices
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["name"].as_str().unwrap().to_string(), x["model"].clone()))
        .collect()
}

/// The page's behaviour: login, list, details, groups, rollouts, search.
const GUI_CHECK: &str = "tests/gui/gui_check.py";
/// The drawing: rows, links clear of other nodes, label size.
const LAYOUT_CHECK: &str = "tests/gui/layout_check.py";

/// Run `script` (under tests/gui/) against `d` (bounded in time); the
/// screenshot goes to target/NAME.
fn check_in_chromium(
    python: &std::path::Path,
    d: &Daemon,
    script: &str,
    expected: &serde_json::Value,
    name: &str,
) {
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("expected.json");
    std::fs::write(&exp, expected.to_string()).unwrap();
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(name);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    // In the daemon's namespace when it has one: the page's address is there.
    let mut cmd = match d.netns() {
        Some(ns) => {
            let mut c = std::process::Command::new("ip");
            c.args(["netns", "exec", ns]).arg(python);
            c
        }
        None => std::process::Command::new(python),
    };
    let mut child = cmd
        .arg(&script)
        .arg(d.http_url("/"))
        .arg(d.token())
        .arg(&exp)
        .arg(&shot)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the GUI check");
    // Bounded: a hung browser fails the test instead of the whole run.
    let deadline = std::time::Instant::now() + Duration::from_secs(150);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the GUI check did not finish within 150 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "GUI check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shot.is_file(), "no screenshot at {}", shot.display());
}
