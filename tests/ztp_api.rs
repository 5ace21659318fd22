//! The ZTP device protocol and operator API against the real binary:
//! approved, pending (manual), mismatch, unknown, malformed, progress,
//! vendor headers, root neighbour reports and a restart keeping state.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::Daemon;

const FIXTURE: &str = "good";

fn leaf_hello(serial: &str, model: &str, local: &str, peer: &str, peer_port: &str) -> String {
    json!({
        "serial": serial, "mac": "00:1c:73:aa:bb:11", "model": model, "version": "4.29",
        "neighbors": [{"local_port": local, "remote_device": peer, "remote_port": peer_port}]
    })
    .to_string()
}

fn leaf1_ok() -> String {
    leaf_hello(
        "JPE87654321",
        "DCS-7050SX-64",
        "Ethernet49",
        "spine1",
        "Ethernet1",
    )
}

fn device(d: &Daemon, name: &str) -> Value {
    let (code, v) = d.api("/api/v1/devices");
    assert_eq!(code, 200, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} missing in {v}"))
}

/// The fixture's daemon with `plan_edit` applied to plans/lab.toml.
fn start_with(plan_edit: impl Fn(String) -> String) -> Daemon {
    let dir = support::fixtures::temp_root_with_plan(FIXTURE, plan_edit);
    Daemon::builder().owned_root(dir).start()
}

#[test]
fn approved_hello_gets_absolute_urls_and_shows_in_devices() {
    let d = Daemon::start(FIXTURE, "", &[]);
    assert_eq!(device(&d, "leaf1")["state"], "planned");
    let (code, v) = d.post("/ztp/v1/hello", &leaf1_ok(), &[]);
    assert_eq!(code, 200, "{v}");
    let port = d.http.port();
    assert_eq!(v["state"], "approved");
    assert_eq!(v["device"], "leaf1");
    assert_eq!(
        v["config_url"],
        format!("http://10.10.0.1:{port}/files/configs/leaf1.cfg")
    );
    assert_eq!(
        v["image_url"],
        format!("http://10.10.0.1:{port}/files/images/EOS-4.30.1F.swi")
    );
    assert_eq!(v["image_version"], "4.30.1F");
    assert_eq!(
        v["patch_url"],
        format!("http://10.10.0.1:{port}/files/patches/hotfix.swix")
    );
    assert!(v.get("credential_url").is_none(), "{v}");
    let dev = device(&d, "leaf1");
    assert_eq!(dev["state"], "approved", "{dev}");
    assert_eq!(dev["serial"], "JPE87654321");
    assert_eq!(dev["ip"], "10.10.0.11");
    assert_eq!(dev["last_event"]["stage"], "approved");
    assert!(dev["last_event"]["at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(dev["problems"], json!([]));
    // Nobody else moved.
    assert_eq!(device(&d, "leaf2")["state"], "planned");
}

#[test]
fn iot_device_gets_a_credential_url() {
    let d = Daemon::start(FIXTURE, "", &[]);
    let body = json!({"serial": "24c319455312bcd559b333c986024211", "model": "esp32-gps", "neighbors": []});
    let (code, v) = d.post("/ztp/v1/hello", &body.to_string(), &[]);
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["credential_url"],
        format!(
            "http://10.10.0.1:{}/files/credentials/device_24c319455312bcd559b333c986024211.json",
            d.http.port()
        )
    );
    assert!(v.get("image_url").is_none());
    assert!(v.get("config_url").is_none(), "a sensor has no config: {v}");
}

#[test]
fn manual_mode_waits_for_approval_then_approves() {
    let d = start_with(|t| t.replace("mode = \"auto\"", "mode = \"manual\""));
    let (code, v) = d.post("/ztp/v1/hello", &leaf1_ok(), &[]);
    assert_eq!(code, 202, "{v}");
    assert_eq!(v, json!({"state": "pending_approval", "device": "leaf1"}));
    assert_eq!(device(&d, "leaf1")["state"], "pending_approval");
    // Progress beyond approval is refused while pending.
    let (code, v) = d.post(
        "/ztp/v1/devices/JPE87654321/progress",
        r#"{"stage":"downloading"}"#,
        &[],
    );
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("pending_approval"),
        "{v}"
    );
    // The operator API needs the token.
    let (code, _) = d.post("/api/v1/devices/leaf1/approve", "", &[]);
    assert_eq!(code, 401);
    let (code, v) = d.api_post("/api/v1/devices/leaf1/approve", "");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["state"], "approved");
    assert_eq!(device(&d, "leaf1")["state"], "approved");
    let (code, v) = d.post("/ztp/v1/hello", &leaf1_ok(), &[]);
    assert_eq!(code, 200, "{v}");
    // Recabled after approval: the mismatch withdraws the approval, and the
    // fixed device waits for the operator again.
    let moved = leaf_hello(
        "JPE87654321",
        "DCS-7050SX-64",
        "Ethernet50",
        "spine1",
        "Ethernet1",
    );
    let (code, v) = d.post("/ztp/v1/hello", &moved, &[]);
    assert_eq!(code, 409, "{v}");
    let (code, v) = d.post("/ztp/v1/hello", &leaf1_ok(), &[]);
    assert_eq!(code, 202, "{v}");
    let (code, v) = d.api_post("/api/v1/devices/leaf1/approve", "");
    assert_eq!((code, v["state"].as_str()), (200, Some("approved")), "{v}");
    let (code, v) = d.api_post("/api/v1/devices/nosuch/approve", "");
    assert_eq!(code, 404, "{v}");
    // Pre-approving a device that has not said hello yet.
    let (code, v) = d.api_post("/api/v1/devices/leaf2/approve", "");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["state"], "planned");
    let h2 = leaf_hello(
        "JPE87654322",
        "DCS-7050SX-64",
        "Ethernet49",
        "spine1",
        "Ethernet2",
    );
    let (code, v) = d.post("/ztp/v1/hello", &h2, &[]);
    assert_eq!(code, 200, "{v}");
}

fn assert_problem_shape(p: &Value) {
    for k in ["kind", "device", "fix"] {
        assert!(p.get(k).is_some(), "problem without {k}: {p}");
    }
    assert!(!p["fix"].as_str().unwrap().is_empty());
}

#[test]
fn mismatch_is_409_with_problems_and_in_topology() {
    let d = Daemon::start(FIXTURE, "", &[]);
    // leaf2's uplink is in Ethernet50 instead of Ethernet49.
    let h = leaf_hello(
        "JPE87654322",
        "DCS-7050SX-64",
        "Ethernet50",
        "spine1",
        "Ethernet2",
    );
    let (code, v) = d.post("/ztp/v1/hello", &h, &[]);
    assert_eq!(code, 409, "{v}");
    assert_eq!(v["state"], "topology_mismatch");
    assert_eq!(v["device"], "leaf2");
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v}");
    assert_eq!(problems[0]["kind"], "wrong_port", "{v}");
    assert_eq!(
        problems[0]["observed"],
        json!({"device": "leaf2", "port": "Ethernet50"})
    );
    assert_eq!(
        problems[0]["expected"],
        json!({"device": "leaf2", "port": "Ethernet49"})
    );
    for p in problems {
        assert_problem_shape(p);
    }
    assert!(
        problems.iter().all(|p| p["device"] == "leaf2"
            || p["expected"]["device"] == "leaf2"
            || p["observed"]["device"] == "leaf2"),
        "{v}"
    );
    let dev = device(&d, "leaf2");
    assert_eq!(dev["state"], "topology_mismatch");
    assert_eq!(&dev["problems"], &v["problems"]);
    let (code, topo) = d.api("/api/v1/topology");
    assert_eq!(code, 200);
    assert_eq!(topo["planned"]["links"].as_array().unwrap().len(), 2);
    assert!(topo["planned"]["devices"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["name"] == "leaf2" && x["state"] == "topology_mismatch"));
    assert!(topo["observed"]
        .as_array()
        .unwrap()
        .iter()
        .any(|o| o["device"] == "leaf2"));
    for p in problems {
        assert!(
            topo["problems"].as_array().unwrap().contains(p),
            "{p} not in {topo}"
        );
    }
    // Progress after a refusal is refused too.
    let (code, _) = d.post(
        "/ztp/v1/devices/JPE87654322/progress",
        r#"{"stage":"installing"}"#,
        &[],
    );
    assert_eq!(code, 409);
    // Cabled right, the same box is approved.
    let h = leaf_hello(
        "JPE87654322",
        "DCS-7050SX-64",
        "Ethernet49",
        "spine1",
        "Ethernet2",
    );
    let (code, v) = d.post("/ztp/v1/hello", &h, &[]);
    assert_eq!(code, 200, "{v}");
    assert_eq!(device(&d, "leaf2")["problems"], json!([]));
}

#[test]
fn wrong_model_is_a_wrong_model_problem() {
    let d = Daemon::start(FIXTURE, "", &[]);
    let h = leaf_hello(
        "JPE87654321",
        "DCS-7280SR-48C6",
        "Ethernet49",
        "spine1",
        "Ethernet1",
    );
    let (code, v) = d.post("/ztp/v1/hello", &h, &[]);
    assert_eq!(code, 409, "{v}");
    let p = &v["problems"][0];
    assert_eq!(p["kind"], "wrong_model", "{v}");
    assert_eq!(p["expected_model"], "DCS-7050SX-64");
    assert_eq!(p["observed_model"], "DCS-7280SR-48C6");
}

#[test]
fn unknown_and_malformed_are_4xx_and_change_nothing() {
    let d = Daemon::start(FIXTURE, "", &[]);
    let (code, _) = d.post("/ztp/v1/hello", &leaf1_ok(), &[]);
    assert_eq!(code, 200);
    let before = d.api("/api/v1/devices").1;

    // Cabled at no planned place (at leaf1's, it would be a replacement).
    let unknown = leaf_hello(
        "NOPE0001",
        "DCS-7050SX-64",
        "Ethernet49",
        "spine1",
        "Ethernet9",
    );
    let (code, v) = d.post("/ztp/v1/hello", &unknown, &[]);
    assert_eq!(code, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("NOPE0001"), "{v}");

    let big_model = "x".repeat(5000);
    let bad: Vec<(String, &str)> = vec![
        ("{".into(), "malformed JSON"),
        ("[]".into(), "malformed JSON"),
        ("".into(), "malformed JSON"),
        (r#"{"model":"DCS-7050SX-64","neighbors":[]}"#.into(), "missing `serial`"),
        (r#"{"serial":"JPE87654321","neighbors":[]}"#.into(), "missing `model`"),
        (r#"{"serial":"JPE87654321","model":"DCS-7050SX-64"}"#.into(), "missing `neighbors`"),
        (r#"{"serial":"JPE87654321","model":"DCS-7050SX-64","neighbors":[],"admin":true}"#.into(), "unknown field `admin`"),
        (format!(r#"{{"serial":"JPE87654321","model":"{big_model}","neighbors":[]}}"#), "at most"),
        (r#"{"serial":"JPE87654321","model":"M","neighbors":[{"local_port":"","remote_device":"a","remote_port":"b"}]}"#.into(), "is empty"),
        (r#"{"serial":"JPE87654321","model":"M","neighbors":{}}"#.into(), "malformed JSON"),
        (r#"{"serial":7,"model":"M","neighbors":[]}"#.into(), "malformed JSON"),
    ];
    for (body, want) in &bad {
        let (code, v) = d.post("/ztp/v1/hello", body, &[]);
        assert_eq!(code, 400, "{body}: {v}");
        assert!(
            v["error"].as_str().unwrap_or("").contains(want),
            "{body}: {v}"
        );
    }
    // Oversized body: refused before parsing.
    let huge = format!(
        r#"{{"serial":"JPE87654321","model":"{}","neighbors":[]}}"#,
        "y".repeat(300_000)
    );
    let (code, _) = d.post("/ztp/v1/hello", &huge, &[]);
    assert_eq!(code, 413);
    for (path, body) in [
        (
            "/ztp/v1/devices/JPE87654321/progress",
            "{\"stage\":\"exploding\"}",
        ),
        (
            "/ztp/v1/devices/JPE87654321/progress",
            "{\"stage\":\"installing\",\"percent\":400}",
        ),
        ("/ztp/v1/devices/JPE87654321/progress", "nope"),
        ("/ztp/v1/neighbors", "{\"reporter\":\"JPE12345678\"}"),
    ] {
        let (code, v) = d.post(path, body, &[]);
        assert_eq!(code, 400, "{path} {body}: {v}");
    }
    let (code, _) = d.post(
        "/ztp/v1/devices/NOPE0001/progress",
        "{\"stage\":\"installing\"}",
        &[],
    );
    assert_eq!(code, 404);
    assert_eq!(
        d.api("/api/v1/devices").1,
        before,
        "a refused request changed state"
    );
}

#[test]
fn vendor_serial_headers_identify_the_device() {
    let d = Daemon::start(FIXTURE, "", &[]);
    let body = json!({"model": "DCS-7050SX-64", "neighbors": [
        {"local_port": "Ethernet49", "remote_device": "spine1", "remote_port": "Ethernet1"}]});
    for header in ["SERIAL-NUMBER", "CUMULUS-SERIAL", "ONIE-SERIAL-NUMBER"] {
        let (code, v) = d.post(
            "/ztp/v1/hello",
            &body.to_string(),
            &[(header, "JPE87654321")],
        );
        assert_eq!(code, 200, "{header}: {v}");
        assert_eq!(v["device"], "leaf1");
    }
    let (code, v) = d.post(
        "/ztp/v1/hello",
        &leaf1_ok(),
        &[("SERIAL-NUMBER", "JPE87654322")],
    );
    assert_eq!(code, 400, "{v}");
}

#[test]
fn progress_moves_forward_and_is_visible() {
    let d = Daemon::start(FIXTURE, "", &[]);
    let prog = "/ztp/v1/devices/JPE87654321/progress";
    // No hello yet: the address is not the device's.
    let (code, v) = d.post(prog, r#"{"stage":"downloading"}"#, &[]);
    assert_eq!(code, 403, "{v}");
    assert_eq!(d.post("/ztp/v1/hello", &leaf1_ok(), &[]).0, 200);
    let (code, v) = d.post(
        prog,
        r#"{"stage":"downloading","percent":30,"message":"image"}"#,
        &[],
    );
    assert_eq!(code, 200, "{v}");
    let dev = device(&d, "leaf1");
    assert_eq!(dev["state"], "downloading");
    assert_eq!(dev["progress"], 30);
    assert_eq!(dev["last_event"]["message"], "image");
    assert_eq!(
        d.post(prog, r#"{"stage":"downloading","percent":80}"#, &[])
            .0,
        200
    );
    assert_eq!(device(&d, "leaf1")["progress"], 80);
    assert_eq!(d.post(prog, r#"{"stage":"installing"}"#, &[]).0, 200);
    let (code, v) = d.post(prog, r#"{"stage":"downloading"}"#, &[]);
    assert_eq!(code, 409, "backwards: {v}");
    assert_eq!(d.post(prog, r#"{"stage":"rebooting"}"#, &[]).0, 200);
    assert_eq!(
        d.post(prog, r#"{"stage":"deployed","percent":100}"#, &[]).0,
        200
    );
    let dev = device(&d, "leaf1");
    assert_eq!(dev["state"], "deployed");
    // Actions: nothing pending; the long-poll returns after its wait.
    let (code, body) =
        support::api::get(d.http, "/ztp/v1/devices/JPE87654321/actions?wait=1", None).unwrap();
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["actions"], json!([]));
}

#[test]
fn restart_keeps_each_devices_state() {
    let mut d = Daemon::start(FIXTURE, "", &[]);
    assert_eq!(d.post("/ztp/v1/hello", &leaf1_ok(), &[]).0, 200);
    assert_eq!(
        d.post(
            "/ztp/v1/devices/JPE87654321/progress",
            r#"{"stage":"installing","percent":50}"#,
            &[]
        )
        .0,
        200
    );
    let h = leaf_hello(
        "JPE87654322",
        "DCS-7050SX-64",
        "Ethernet50",
        "spine1",
        "Ethernet2",
    );
    assert_eq!(d.post("/ztp/v1/hello", &h, &[]).0, 409);
    let before = d.api("/api/v1/devices").1;
    d.kill9();
    d.restart(); // same root, same ports

    let after = d.api("/api/v1/devices").1;
    assert_eq!(before, after);
    assert_eq!(device(&d, "leaf1")["state"], "installing");
    assert_eq!(device(&d, "leaf2")["state"], "topology_mismatch");
    // And the machine continues from there.
    assert_eq!(
        d.post(
            "/ztp/v1/devices/JPE87654321/progress",
            r#"{"stage":"deployed"}"#,
            &[]
        )
        .0,
        200
    );
}

#[test]
fn neighbour_reports_only_from_the_roots_planned_address() {
    let d = Daemon::start(FIXTURE, "", &[]);
    let body = json!({"reporter": "JPE12345678", "neighbors": [
        {"local_port": "Ethernet1", "remote_device": "leaf1", "remote_port": "Ethernet49"}]});
    let (code, v) = d.post("/ztp/v1/neighbors", &body.to_string(), &[]);
    assert_eq!(code, 403, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("planned address"),
        "{v}"
    );
    let body = json!({"reporter": "JPE87654321", "neighbors": []});
    let (code, v) = d.post("/ztp/v1/neighbors", &body.to_string(), &[]);
    assert_eq!(code, 403, "{v}");
    assert!(v["error"].as_str().unwrap().contains("not a root"), "{v}");
}

#[test]
fn events_stream_carries_transitions() {
    use std::io::{BufRead, BufReader, Write};
    let d = Daemon::start(FIXTURE, "", &[]);
    let mut s = std::net::TcpStream::connect(d.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        d.token()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    // Headers are sent: now make a transition.
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
    }
    assert_eq!(d.post("/ztp/v1/hello", &leaf1_ok(), &[]).0, 200);
    let mut stages = Vec::new();
    while stages.len() < 2 {
        line.clear();
        r.read_line(&mut line).unwrap();
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            let e: Value = serde_json::from_str(data).unwrap();
            assert_eq!(e["device"], "leaf1");
            stages.push(e["stage"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(stages, ["hello", "approved"]);
}

/// POST from a chosen loopback source address (127.0.0.0/8 is all local).
fn post_from(src: &str, d: &Daemon, path: &str, body: &str) -> (u16, Value) {
    let (code, text) = support::api::request_from(src, d.http, "POST", path, &[], Some(body))
        .unwrap_or_else(|e| panic!("POST {path} from {src}: {e}"));
    (code, support::api::json(text))
}

#[test]
fn a_roots_report_vouches_for_a_device_without_lldp() {
    // Addresses on loopback so the root's planned address can be used here.
    let d = start_with(|t| t.replace("10.10.0.", "127.0.0."));
    let report = json!({"reporter": "JPE12345678", "neighbors": [
        {"local_port": "Et1", "remote_device": "leaf1", "remote_port": "Ethernet49"}]});
    let (code, v) = post_from("127.0.0.3", &d, "/ztp/v1/neighbors", &report.to_string());
    assert_eq!(code, 403, "{v}");
    let (code, v) = post_from("127.0.0.2", &d, "/ztp/v1/neighbors", &report.to_string());
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["accepted"], 1);
    // leaf1 reports no neighbours itself; the root saw its cable.
    let h = json!({"serial": "JPE87654321", "model": "DCS-7050SX-64", "neighbors": []});
    let (code, v) = post_from("127.0.0.11", &d, "/ztp/v1/hello", &h.to_string());
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["config_url"],
        format!("http://127.0.0.1:{}/files/configs/leaf1.cfg", d.http.port())
    );
    // leaf2 has no cable the root saw, and says nothing: its link is missing.
    let h = json!({"serial": "JPE87654322", "model": "DCS-7050SX-64", "neighbors": []});
    let (code, v) = post_from("127.0.0.12", &d, "/ztp/v1/hello", &h.to_string());
    assert_eq!(code, 409, "{v}");
    // Progress only from the hello address.
    let p = r#"{"stage":"installing"}"#;
    assert_eq!(
        post_from("127.0.0.12", &d, "/ztp/v1/devices/JPE87654321/progress", p).0,
        403
    );
    assert_eq!(
        post_from("127.0.0.11", &d, "/ztp/v1/devices/JPE87654321/progress", p).0,
        200
    );
    let (_, topo) = d.api("/api/v1/topology");
    assert!(
        topo["observed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["device"] == "spine1"),
        "{topo}"
    );
}

#[test]
fn two_exchanged_cables_are_one_swap() {
    let d = Daemon::start(FIXTURE, "", &[]);
    // leaf1's uplink sits in spine1:Ethernet2 and leaf2's in spine1:Ethernet1.
    let h1 = leaf_hello(
        "JPE87654321",
        "DCS-7050SX-64",
        "Ethernet49",
        "spine1",
        "Ethernet2",
    );
    let (code, v) = d.post("/ztp/v1/hello", &h1, &[]);
    assert_eq!(code, 409, "{v}");
    let h2 = leaf_hello(
        "JPE87654322",
        "DCS-7050SX-64",
        "Ethernet49",
        "spine1",
        "Ethernet1",
    );
    let (code, v) = d.post("/ztp/v1/hello", &h2, &[]);
    assert_eq!(code, 409, "{v}");
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{v}");
    assert_eq!(problems[0]["kind"], "swapped", "{v}");
    assert!(problems[0]["other"].is_object(), "{v}");
    let (_, topo) = d.api("/api/v1/topology");
    let kinds: Vec<&str> = topo["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"swapped"), "{topo}");
    // The GUI colours each planned link by its check result, and draws each
    // device where the tier layout puts it: the root on top.
    let links = topo["planned"]["links"].as_array().unwrap();
    assert!(!links.is_empty());
    for l in links {
        assert_eq!(l["status"], "swapped", "{l}");
    }
    let devices = topo["planned"]["devices"].as_array().unwrap();
    let y = |name: &str| {
        devices.iter().find(|x| x["name"] == name).unwrap()["position"]["y"]
            .as_f64()
            .unwrap()
    };
    assert!(y("spine1") < y("leaf1"), "{topo}");
    let tier = |name: &str| devices.iter().find(|x| x["name"] == name).unwrap()["tier"].clone();
    assert_eq!(tier("spine1"), 0);
    assert_eq!(tier("leaf1"), 1);
}
