//! Groups, durable actions and rollouts (SPEC §7, §8) against the real binary.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::Daemon;

const FIXTURE: &str = "good";

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn groups_list_create_refuse_export_and_survive_a_restart() {
    let mut d = Daemon::start(FIXTURE, "", &[]);
    let (code, v) = d.api("/api/v1/groups");
    assert_eq!(code, 200, "{v}");
    assert_eq!(names(&v), ["leafs-floor1"]);
    assert_eq!(v[0]["source"], "plan");
    assert_eq!(v[0]["model"], "access-24");
    assert_eq!(v[0]["devices"], json!(["leaf1", "leaf2"]));
    assert_eq!(v[0]["policy"]["canary"], 1);
    assert_eq!(v[0]["policy"]["pause_between"], "5m");
    assert_eq!(v[0]["policy"]["device_timeout"], "30m");

    // Without the token: refused, nothing made.
    let (code, _) = d.post("/api/v1/groups", r#"{"name":"x","devices":["leaf1"]}"#, &[]);
    assert_eq!(code, 401);
    for (method, path) in [
        ("GET", "/api/v1/groups"),
        ("GET", "/api/v1/groups/leafs-floor1"),
        ("GET", "/api/v1/groups/leafs-floor1/toml"),
        ("DELETE", "/api/v1/groups/leafs-floor1"),
        ("GET", "/api/v1/rollouts"),
        ("GET", "/api/v1/rollouts/r1-000000"),
        ("POST", "/api/v1/rollouts/r1-000000/pause"),
        ("POST", "/api/v1/rollouts/r1-000000/abort"),
    ] {
        let (code, body) = d.request(method, path, &[], None);
        assert_eq!(code, 401, "{method} {path} without a token: {body}");
    }

    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"mixed","devices":["leaf1","spine1"]}"#,
    );
    assert_eq!(code, 400, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("leaf1") && e.contains("spine1"),
        "names a device of each model: {e}"
    );
    let (code, v) = d.api_post("/api/v1/groups", r#"{"name":"g","devices":["leaf9"]}"#);
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("unknown device `leaf9`"),
        "{v}"
    );
    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"g","devices":["leaf1"],"colour":1}"#,
    );
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{v}"
    );
    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"g","devices":["leaf1"],"policy":{"max_failures":"101%"}}"#,
    );
    assert_eq!(code, 400, "{v}");
    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"g","devices":["leaf1"],"policy":{"window":"Mon 25:00-01:00"}}"#,
    );
    assert_eq!(code, 400, "{v}");
    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"g","devices":["leaf1"],"policy":{"device_timeout":"later"}}"#,
    );
    assert_eq!(code, 400, "{v}");
    let (_, v) = d.api("/api/v1/groups");
    assert_eq!(names(&v), ["leafs-floor1"], "refusals changed nothing");

    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"leafs-floor1","devices":["leaf1"]}"#,
    );
    assert_eq!(code, 409, "{v}");
    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"leafs","select":{"model":"access-24","name":"leaf*"},"policy":{"batch_size":2,"max_failures":"50%","window":"Sat,Sun 01:00-05:00"}}"#,
    );
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["source"], "runtime");
    assert_eq!(v["devices"], json!(["leaf1", "leaf2"]));
    assert_eq!(v["policy"]["max_failures"], "50%");

    let (code, text) = d.request(
        "GET",
        "/api/v1/groups/leafs/toml",
        &[("Authorization", &format!("Bearer {}", d.token()))],
        None,
    );
    assert_eq!(code, 200, "{text}");
    assert!(
        text.starts_with("[groups.leafs]\ndevices = [\"leaf1\", \"leaf2\"]\n"),
        "{text}"
    );
    assert!(
        text.contains("batch_size = 2") && text.contains("window = \"Sat,Sun 01:00-05:00\""),
        "{text}"
    );
    let parsed: toml::Table = toml::from_str(&text).expect("the export is TOML");
    assert!(parsed["groups"]["leafs"]["policy"].is_table());

    let (code, v) = d.api_delete("/api/v1/groups/leafs-floor1");
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("lab.toml"),
        "names its file: {v}"
    );

    d.restart();
    let (_, v) = d.api("/api/v1/groups");
    assert_eq!(
        names(&v),
        ["leafs-floor1", "leafs"],
        "the runtime group survived"
    );
    let (code, _) = d.api_delete("/api/v1/groups/leafs");
    assert_eq!(code, 200);
    let (code, _) = d.api_delete("/api/v1/groups/leafs");
    assert_eq!(code, 404);
    d.restart();
    let (_, v) = d.api("/api/v1/groups");
    assert_eq!(names(&v), ["leafs-floor1"]);
}

#[test]
fn validate_reports_a_plan_group_that_mixes_models() {
    let dir = support::fixtures::temp_root_with_plan(FIXTURE, |t| {
        t.replace(
            "devices = [\"leaf1\", \"leaf2\"]",
            "devices = [\"leaf1\", \"spine1\"]",
        )
    });
    let plans = dir.path().join("plans");
    let out = support::ztpd(&["validate", "--format", "json", plans.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(78),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["ztpd::plan::group_mixed_models"], "{v}");
}

fn leaf_hello(d: &Daemon, serial: &str, port: &str, version: &str) -> u16 {
    let body = json!({
        "serial": serial, "model": "DCS-7050SX-64", "version": version,
        "neighbors": [{"local_port": "Ethernet49", "remote_device": "spine1", "remote_port": port}]
    });
    d.post("/ztp/v1/hello", &body.to_string(), &[]).0
}

/// leaf1 and leaf2 of the fixture say hello (so their reports count).
fn leaves_hello(d: &Daemon) {
    assert_eq!(leaf_hello(d, "JPE87654321", "Ethernet1", "4.29"), 200);
    assert_eq!(leaf_hello(d, "JPE87654322", "Ethernet2", "4.29"), 200);
}

fn actions(d: &Daemon, serial: &str, wait: u32) -> Vec<Value> {
    let (code, text) = d.get(&format!("/ztp/v1/devices/{serial}/actions?wait={wait}"));
    assert_eq!(code, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["actions"].as_array().unwrap().clone()
}

fn progress(d: &Daemon, serial: &str, body: Value) -> (u16, Value) {
    d.post(
        &format!("/ztp/v1/devices/{serial}/progress"),
        &body.to_string(),
        &[],
    )
}

fn rollout(d: &Daemon, id: &str) -> Value {
    let (code, v) = d.api(&format!("/api/v1/rollouts/{id}"));
    assert_eq!(code, 200, "{v}");
    v
}

fn wait_rollout(d: &Daemon, id: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    d.wait_for(what, std::time::Duration::from_secs(30), || {
        let v = rollout(d, id);
        f(&v).then_some(v)
    })
}

fn device_state(r: &Value, name: &str) -> String {
    r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .map(|x| x["state"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn a_rollout_pushes_durable_actions_batch_by_batch_and_survives_a_kill() {
    let mut d = Daemon::start(FIXTURE, "", &[]);
    leaves_hello(&d);
    let (code, _) = d.post(
        "/api/v1/rollouts",
        r#"{"group":"leafs-floor1","kind":"software"}"#,
        &[],
    );
    assert_eq!(code, 401, "the token is needed");
    let (code, r) = d.api_post(
        "/api/v1/rollouts",
        r#"{"group":"leafs-floor1","kind":"software","policy":{"pause_between":"0s"}}"#,
    );
    assert_eq!(code, 201, "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    assert_eq!(
        r["target"],
        json!({"version": "4.30.1F", "image": "images/EOS-4.30.1F.swi"})
    );
    assert_eq!(
        r["batches"].as_array().unwrap().len(),
        2,
        "every batch planned at creation: {r}"
    );
    assert_eq!(r["batches"][0]["devices"], json!(["leaf1"]));
    assert_eq!(r["batches"][0]["canary"], true);
    assert_eq!(r["policy"]["canary"], 1, "the group's policy: {r}");

    // The canary gets an upgrade on its long-poll; leaf2 nothing yet.
    let got = actions(&d, "JPE87654321", 10);
    assert_eq!(got.len(), 1, "{got:?}");
    let a = &got[0];
    assert_eq!(a["type"], "upgrade");
    assert_eq!(a["rollout"], id.as_str());
    assert_eq!(a["image_version"], "4.30.1F");
    assert_eq!(
        a["image_url"],
        format!(
            "http://10.10.0.1:{}/files/images/EOS-4.30.1F.swi",
            d.http.port()
        )
    );
    assert!(actions(&d, "JPE87654322", 0).is_empty());
    // Reading does not acknowledge; a restart loses nothing.
    d.kill9();
    d.restart();
    assert_eq!(
        actions(&d, "JPE87654321", 0),
        got,
        "the same action after a restart"
    );
    let aid = a["id"].as_str().unwrap();

    // leaf2 cannot acknowledge leaf1's action; nothing changes.
    let (code, v) = progress(
        &d,
        "JPE87654322",
        json!({"stage": "downloading", "action": aid}),
    );
    assert_eq!(code, 403, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("not an action of leaf2"),
        "{v}"
    );
    let (code, v) = progress(
        &d,
        "JPE87654322",
        json!({"stage": "downloading", "action": "act-0000"}),
    );
    assert_eq!(code, 400, "{v}");
    let (_, devs) = d.api("/api/v1/devices");
    let leaf2 = devs
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "leaf2")
        .unwrap();
    assert_eq!(
        leaf2["state"], "approved",
        "refused reports change nothing: {leaf2}"
    );
    assert_eq!(actions(&d, "JPE87654321", 0).len(), 1);

    // The canary upgrades: progress naming the action, hello, deployed.
    assert_eq!(
        progress(
            &d,
            "JPE87654321",
            json!({"stage": "downloading", "action": aid})
        )
        .0,
        200
    );
    assert_eq!(leaf_hello(&d, "JPE87654321", "Ethernet1", "4.30.1F"), 200);
    let (code, v) = progress(
        &d,
        "JPE87654321",
        json!({"stage": "deployed", "version": "4.30.1F", "action": aid}),
    );
    assert_eq!(code, 200, "{v}");
    assert!(actions(&d, "JPE87654321", 0).is_empty(), "acknowledged");
    let r = wait_rollout(&d, &id, "the second batch to start", |r| {
        r["batches"][1]["state"] == "running"
    });
    assert_eq!(device_state(&r, "leaf1"), "succeeded");
    assert_eq!(r["batches"][0]["state"], "done");
    assert!(r["batches"][0]["finished_at"].is_string());

    // Killed between the notification and the report: leaf2 keeps its one
    // action, leaf1 gets nothing again.
    let a2 = actions(&d, "JPE87654322", 10);
    assert_eq!(a2.len(), 1);
    d.kill9();
    d.restart();
    assert!(
        actions(&d, "JPE87654321", 0).is_empty(),
        "not delivered twice"
    );
    assert_eq!(actions(&d, "JPE87654322", 0), a2);
    let aid2 = a2[0]["id"].as_str().unwrap();
    let (code, _) = progress(
        &d,
        "JPE87654322",
        json!({"stage": "deployed", "version": "4.30.1F", "action": aid2}),
    );
    assert_eq!(code, 200);
    let r = wait_rollout(&d, &id, "the rollout to finish", |r| r["state"] == "done");
    assert_eq!(
        r["counts"],
        json!({"pending": 0, "in_progress": 0, "succeeded": 2, "failed": 0})
    );
    let (_, list) = d.api("/api/v1/rollouts");
    assert_eq!(list.as_array().unwrap().len(), 1);
    // The daemon's log tells the rollout's story at info (this run's part:
    // the second batch ending, and the rollout).
    let story = format!("rollout {id} of group leafs-floor1: ");
    d.wait_log(&format!("{story}done"), 1);
    assert!(
        d.log().contains(&format!("{story}batch 2/2 finished")),
        "{}",
        d.log()
    );
}

#[test]
fn bad_rollouts_get_400_overlaps_409_and_nothing_changes() {
    let d = Daemon::start(FIXTURE, "", &[]);
    leaves_hello(&d);
    let bad = [
        (
            r#"{"group":"nope","kind":"software"}"#,
            "unknown group `nope`",
        ),
        (
            r#"{"group":"leafs-floor1","kind":"firmware"}"#,
            "expected \"software\", \"config\" or \"method\"",
        ),
        (
            r#"{"group":"leafs-floor1","kind":"software","colour":1}"#,
            "unknown field `colour`",
        ),
        (
            r#"{"group":"leafs-floor1","kind":"software","policy":{"max_failures":"120%"}}"#,
            "0% to 100%",
        ),
        (
            r#"{"group":"leafs-floor1","kind":"software","policy":{"pause_between":"5 parsecs"}}"#,
            "pause_between",
        ),
        (
            r#"{"group":"leafs-floor1","kind":"software","policy":{"window":"Mon 9-17"}}"#,
            "window",
        ),
        (
            r#"{"group":"leafs-floor1","kind":"software","policy":{"batches":2}}"#,
            "unknown field `batches`",
        ),
        (
            r#"{"group":"leafs-floor1","kind":"software","software":{"image":"images/none.swi","version":"5"}}"#,
            "not a file",
        ),
        (
            r#"{"group":"leafs-floor1","kind":"software","software":{"image":"../ztpd.toml","version":"5"}}"#,
            "without `..`",
        ),
    ];
    for (body, msg) in bad {
        let (code, v) = d.api_post("/api/v1/rollouts", body);
        assert_eq!(code, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(msg), "{body}: {v}");
    }
    // A model without software: no image to give.
    let (code, _) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"spines","devices":["spine1"]}"#,
    );
    assert_eq!(code, 201);
    let (code, v) = d.api_post(
        "/api/v1/rollouts",
        r#"{"group":"spines","kind":"software"}"#,
    );
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("no image to give"),
        "{v}"
    );
    let (_, list) = d.api("/api/v1/rollouts");
    assert_eq!(list, json!([]), "no bad request stored anything");

    // Overlap: leaf1 is held by the first rollout.
    let (code, r) = d.api_post(
        "/api/v1/rollouts",
        r#"{"group":"leafs-floor1","kind":"software"}"#,
    );
    assert_eq!(code, 201, "{r}");
    let (code, _) = d.api_post("/api/v1/groups", r#"{"name":"one","devices":["leaf2"]}"#);
    assert_eq!(code, 201);
    let (code, v) = d.api_post("/api/v1/rollouts", r#"{"group":"one","kind":"software"}"#);
    assert_eq!(code, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("leaf2"), "{v}");

    // Pause, resume, abort; then it no longer holds its devices.
    let id = r["id"].as_str().unwrap();
    let (code, v) = d.api_post(&format!("/api/v1/rollouts/{id}/pause"), "");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["state"], "paused");
    let (code, _) = d.post(&format!("/api/v1/rollouts/{id}/resume"), "", &[]);
    assert_eq!(code, 401);
    let (code, v) = d.api_post(&format!("/api/v1/rollouts/{id}/resume"), "");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["state"], "running");
    // The canary was notified (no hello: it has not picked its action up).
    assert_eq!(actions(&d, "JPE87654321", 10).len(), 1);
    let (code, v) = d.api_post(&format!("/api/v1/rollouts/{id}/abort"), "");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["state"], "aborted");
    assert!(
        actions(&d, "JPE87654321", 0).is_empty(),
        "abort withdraws a notified device's action"
    );
    let (code, v) = d.api_post(&format!("/api/v1/rollouts/{id}/resume"), "");
    assert_eq!(code, 409, "{v}");
    let (code, v) = d.api_post("/api/v1/rollouts", r#"{"group":"one","kind":"software"}"#);
    assert_eq!(code, 201, "{v}");
    let (code, _) = d.api_post("/api/v1/rollouts/r99-000000/pause", "");
    assert_eq!(code, 404);
}

#[test]
fn rollout_changes_go_out_as_rollout_events() {
    use std::io::{BufRead, BufReader, Write};
    let d = Daemon::start(FIXTURE, "", &[]);
    leaves_hello(&d);
    let mut s = std::net::TcpStream::connect(d.http).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
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
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
    }
    let (code, created) = d.api_post(
        "/api/v1/rollouts",
        r#"{"group":"leafs-floor1","kind":"software"}"#,
    );
    assert_eq!(code, 201);
    let mut event = String::new();
    let mut states = Vec::new();
    while states.len() < 2 {
        line.clear();
        r.read_line(&mut line).unwrap();
        if let Some(e) = line.trim_end().strip_prefix("event: ") {
            event = e.to_string();
        }
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            if event == "rollout" {
                let v: Value = serde_json::from_str(data).unwrap();
                assert_eq!(v["id"], created["id"]);
                states.push(device_state(&v, "leaf1"));
            }
        }
    }
    assert_eq!(
        states,
        ["pending", "notified"],
        "created, then the canary notified"
    );
}

/// A device with a credential (a sensor) gets the same action JSON on its
/// devicebound topic (a real Mosquitto, `telemetry.broker`) as on the long-poll.
#[test]
fn a_sensor_gets_the_same_action_over_mqtt_as_on_the_long_poll() {
    if !support::tools::have_all("sensor actions", &["mosquitto", "mosquitto_sub", "stdbuf"]) {
        return;
    }
    const SENSOR: &str = "24c319455312bcd559b333c986024211";
    let dir = tempfile::tempdir().unwrap();
    let m = support::mqtt::Mosquitto::start(&dir.path().join("mqtt"));
    let root = support::fixtures::temp_root_with_plan(FIXTURE, |t| {
        t.replace(
            "match = \"esp32-gps\"",
            "match = \"esp32-gps\"\nsoftware = { image = \"images/EOS-4.30.1F.swi\", version = \"2.1\" }",
        )
    });
    let d = Daemon::builder()
        .owned_root(root)
        .settings(&format!("[telemetry]\nbroker = \"{}\"\n", m.url()))
        .start();
    let hello = json!({"serial": SENSOR, "model": "esp32-gps", "neighbors": []});
    assert_eq!(d.post("/ztp/v1/hello", &hello.to_string(), &[]).0, 200);
    let sub = support::mqtt::Devicebound::subscribe(m.port, &[], SENSOR, 1);
    let (code, _) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"sensors","devices":["sensor-0001"]}"#,
    );
    assert_eq!(code, 201);
    let (code, r) = d.api_post(
        "/api/v1/rollouts",
        r#"{"group":"sensors","kind":"software"}"#,
    );
    assert_eq!(code, 201, "{r}");
    let (topic, over_mqtt) = sub.next();
    assert_eq!(topic, format!("devices/{SENSOR}/messages/devicebound/"));
    let polled = actions(&d, SENSOR, 10);
    assert_eq!(polled, vec![over_mqtt.clone()], "the same JSON both ways");
    assert_eq!(over_mqtt["type"], "upgrade");
    assert_eq!(over_mqtt["rollout"], r["id"]);
    assert_eq!(over_mqtt["image_version"], "2.1");
}

fn cli_json(d: &Daemon, args: &[&str]) -> Value {
    let out = d.cli(args);
    assert!(
        out.status.success(),
        "ztpd {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn group_and_rollout_commands_drive_the_daemon() {
    let d = Daemon::start(FIXTURE, "", &[]);
    leaves_hello(&d);
    let g = cli_json(
        &d,
        &[
            "group",
            "create",
            "leaves",
            "--select",
            "model=access-24,name=leaf*",
            "--format",
            "json",
        ],
    );
    assert_eq!(g["devices"], json!(["leaf1", "leaf2"]));
    let out = d.cli(&["group", "create", "mixed", "--devices", "leaf1,spine1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("HTTP 400"),
        "{out:?}"
    );
    let list = cli_json(&d, &["group", "list", "--format", "json"]);
    assert_eq!(names(&list), ["leafs-floor1", "leaves"]);
    let out = d.cli(&["group", "export", "leaves"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("[groups.leaves]\n"),
        "{out:?}"
    );
    let out = d.cli(&["group", "list"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("leaves"),
        "{out:?}"
    );

    // A config rollout: `--config` after GROUP is the kind, not a file.
    let r = cli_json(
        &d,
        &[
            "rollout",
            "start",
            "leaves",
            "--batch-size",
            "2",
            "--max-failures",
            "50%",
            "--device-timeout",
            "10m",
            "--format",
            "json",
            "--config",
        ],
    );
    assert_eq!(r["kind"], "config");
    assert_eq!(r["policy"]["batch_size"], 2);
    assert_eq!(r["policy"]["max_failures"], "50%");
    let id = r["id"].as_str().unwrap().to_string();
    let a = actions(&d, "JPE87654321", 10);
    assert_eq!(a[0]["type"], "reconfigure");
    assert!(a[0]["config_url"]
        .as_str()
        .unwrap()
        .ends_with("/files/configs/leaf1.cfg"));
    let out = d.cli(&["rollout", "start", "leaves", "--window", "Someday 1-2"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("window"),
        "{out:?}"
    );

    let v = cli_json(&d, &["rollout", "pause", &id, "--format", "json"]);
    assert_eq!(v["state"], "paused");
    let v = cli_json(&d, &["rollout", "resume", &id, "--format", "json"]);
    assert_eq!(v["state"], "running");
    for (serial, aid) in [
        ("JPE87654321", &a[0]["id"]),
        ("JPE87654322", &actions(&d, "JPE87654322", 10)[0]["id"]),
    ] {
        let (code, v) = progress(&d, serial, json!({"stage": "deployed", "action": aid}));
        assert_eq!(code, 200, "{v}");
    }
    // --watch follows it to the end (plain lines: not a TTY).
    let out = d.cli(&["rollout", "status", &id, "--watch"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.trim_end().ends_with("failed 0)"), "{text}");
    assert!(text.contains(": done"), "{text}");
    let v = cli_json(&d, &["rollout", "status", &id, "--format", "json"]);
    assert_eq!(v["counts"]["succeeded"], 2);
    let list = cli_json(&d, &["rollout", "list", "--format", "json"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let out = d.cli(&["rollout", "abort", &id]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a done rollout cannot be aborted: {out:?}"
    );
}

/// 400 `*` then `x`: exponential for a backtracking matcher (issue 25).
fn stars_glob() -> String {
    format!("{}x", "*".repeat(400))
}

/// 1 MiB of `*`: overflowed the stack of a recursive matcher (issue 25).
fn huge_glob() -> String {
    "*".repeat(1 << 20)
}

/// A plan group selecting `access-24` devices by `name`.
fn plan_with_glob(text: &str, glob: &str) -> String {
    format!("{text}\n[groups.globbed]\nselect = {{ model = \"access-24\", name = \"{glob}\" }}\n")
}

#[test]
fn hostile_group_globs_are_matched_in_linear_time_or_refused_by_length() {
    let d = Daemon::start(FIXTURE, "", &[]);
    // Matched, in no time, against every device: none ends in `x`.
    let body = json!({"name": "stars", "select": {"model": "access-24", "name": stars_glob()}});
    let (code, v) = d.api_post("/api/v1/groups", &body.to_string());
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("matches no device"),
        "{v}"
    );
    let body = json!({"name": "stars", "select": {"model": "access-24", "name": format!("{}1", "*".repeat(400))}});
    let (code, v) = d.api_post("/api/v1/groups", &body.to_string());
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["devices"], json!(["leaf1"]));
    // Longer than the cap: 400 saying so, and the daemon still answers.
    let body = json!({"name": "huge", "select": {"model": "access-24", "name": huge_glob()}});
    let (code, v) = d.api_post("/api/v1/groups", &body.to_string());
    assert_eq!(code, 400, "{v}");
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("1048576 bytes") && e.contains("at most 1024"),
        "{e}"
    );
    let (code, _) = d.get("/healthz");
    assert_eq!(code, 200);

    // The same globs in the plan, on reload: the first loads, the second is
    // refused with its code, and the last good plan keeps serving.
    let plan = d.root.join("plans/lab.toml");
    let good = std::fs::read_to_string(&plan).unwrap();
    let version = |d: &Daemon| {
        d.api("/api/v1/status").1["snapshot_version"]
            .as_u64()
            .unwrap()
    };
    std::fs::write(&plan, plan_with_glob(&good, &stars_glob())).unwrap();
    d.wait_for(
        "the 401-byte glob reloaded",
        Duration::from_secs(30),
        || {
            let (_, s) = d.api("/api/v1/status");
            (s["snapshot_version"] == 2 && s["last_reload"]["ok"] == true).then_some(())
        },
    );
    let (_, v) = d.api("/api/v1/groups/globbed");
    assert_eq!(v["devices"], json!([]), "{v}");
    std::fs::write(&plan, plan_with_glob(&good, &huge_glob())).unwrap();
    let s = d.wait_for("the 1 MiB glob refused", Duration::from_secs(30), || {
        let (_, s) = d.api("/api/v1/status");
        (s["last_reload"]["ok"] == false).then_some(s)
    });
    assert!(s.to_string().contains("ztpd::plan::glob_too_long"), "{s}");
    assert_eq!(version(&d), 2, "the last good snapshot keeps serving");
    std::fs::write(&plan, &good).unwrap();
    d.wait_for("a later good edit applied", Duration::from_secs(30), || {
        let (_, s) = d.api("/api/v1/status");
        (s["snapshot_version"] == 3 && s["last_reload"]["ok"] == true).then_some(())
    });
}

#[test]
fn validate_matches_a_long_glob_and_refuses_a_huge_one_with_its_span() {
    let dir =
        support::fixtures::temp_root_with_plan(FIXTURE, |t| plan_with_glob(&t, &stars_glob()));
    let plans = dir.path().join("plans");
    let out = support::ztpd(&["validate", "--format", "json", plans.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let dir = support::fixtures::temp_root_with_plan(FIXTURE, |t| plan_with_glob(&t, &huge_glob()));
    let plans = dir.path().join("plans");
    let out = support::ztpd(&["validate", "--format", "json", plans.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(78),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = &v["errors"][0];
    assert_eq!(e["code"], "ztpd::plan::glob_too_long", "{v}");
    let text = std::fs::read_to_string(plans.join("lab.toml")).unwrap();
    let start = text.find(&huge_glob()).unwrap();
    assert_eq!(e["line"], text[..start].lines().count(), "{e}");
    let span = e["span"].as_array().unwrap();
    // The span is the string value (with or without its quotes).
    assert!(
        (span[0].as_u64().unwrap() as usize).abs_diff(start) <= 1,
        "{e}"
    );
}

/// The `good` plan with `n` more devices of a model `probe` (no template, no
/// address): a 10,000-device site that starts in seconds.
fn plan_with_probes(text: &str, n: usize) -> String {
    let mut out = format!("{text}\n[models.probe]\nvendor = \"generic\"\nmatch = \"probe\"\n");
    for i in 0..n {
        out.push_str(&format!(
            "\n[[devices]]\nname = \"probe{i:05}\"\nmodel = \"probe\"\nserial = \"PRB{i:05}\"\n"
        ));
    }
    out
}

/// Issue 25 defect 6: creating a 10,000-device group took 1-3 s, and two
/// at once held `/healthz` 8.6 s: every member was looked up by a scan of
/// the plan, on the runtime's threads.
#[test]
fn ten_thousand_device_groups_are_made_while_healthz_answers() {
    const N: usize = 10_000;
    let dir = support::fixtures::temp_root_with_plan(FIXTURE, |t| plan_with_probes(&t, N));
    let d = Daemon::builder().owned_root(dir).start();
    let names: Vec<String> = (0..N).map(|i| format!("probe{i:05}")).collect();
    let by_list = json!({"name": "listed", "devices": names}).to_string();
    let by_select = json!({"name": "selected", "select": {"model": "probe"}}).to_string();
    let done = std::sync::atomic::AtomicBool::new(false);
    let slowest = std::thread::scope(|s| {
        let watch = s.spawn(|| {
            let mut slowest = Duration::ZERO;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let t = std::time::Instant::now();
                let (code, _) = d.get("/healthz");
                assert_eq!(code, 200);
                slowest = slowest.max(t.elapsed());
                std::thread::sleep(Duration::from_millis(20));
            }
            slowest
        });
        let a = s.spawn(|| d.api_post("/api/v1/groups", &by_list));
        let b = s.spawn(|| d.api_post("/api/v1/groups", &by_select));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(a.0, 201, "{}", a.1);
        assert_eq!(b.0, 201, "{}", b.1);
        assert_eq!(a.1["devices"].as_array().unwrap().len(), N);
        assert_eq!(b.1["devices"].as_array().unwrap().len(), N);
        watch.join().unwrap()
    });
    eprintln!("slowest /healthz during the creates: {slowest:?}");
    // Generous: the issue saw 8.6 s; a loaded debug build answers in well
    // under a second.
    assert!(
        slowest < Duration::from_secs(5),
        "/healthz took {slowest:?}"
    );
    let (code, v) = d.api("/api/v1/groups/listed");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["devices"].as_array().unwrap().len(), N);
}

/// Issue 25 7e: runtime groups and finished rollouts grew without end
/// (5,000 groups made `GET /api/v1/groups` 2.9 MB). `limits.runtime_groups`
/// caps the first (409 past it) and `limits.finished_rollouts` keeps the
/// newest finished rollouts, across a restart.
#[test]
fn runtime_groups_are_capped_and_finished_rollouts_are_kept_newest_first() {
    let mut d = Daemon::start(
        FIXTURE,
        "[limits]\nruntime_groups = 2\nfinished_rollouts = 2\n",
        &[],
    );
    leaves_hello(&d);
    for name in ["g1", "g2"] {
        let body = json!({"name": name, "devices": ["leaf1"]}).to_string();
        let (code, v) = d.api_post("/api/v1/groups", &body);
        assert_eq!(code, 201, "{v}");
    }
    let (code, v) = d.api_post("/api/v1/groups", r#"{"name":"g3","devices":["leaf1"]}"#);
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("limits.runtime_groups"),
        "{v}"
    );
    let (code, _) = d.api_delete("/api/v1/groups/g2");
    assert_eq!(code, 200);
    let (code, v) = d.api_post("/api/v1/groups", r#"{"name":"g3","devices":["leaf1"]}"#);
    assert_eq!(code, 201, "{v}");

    let mut ids = Vec::new();
    for _ in 0..4 {
        let (code, r) = d.api_post(
            "/api/v1/rollouts",
            r#"{"group":"leafs-floor1","kind":"software"}"#,
        );
        assert_eq!(code, 201, "{r}");
        let id = r["id"].as_str().unwrap().to_string();
        let (code, v) = d.api_post(&format!("/api/v1/rollouts/{id}/abort"), "");
        assert_eq!(code, 200, "{v}");
        ids.push(id);
    }
    let kept = |d: &Daemon| -> Vec<String> {
        let (_, list) = d.api("/api/v1/rollouts");
        list.as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(kept(&d), ids[2..], "the newest two finished rollouts");
    d.restart();
    assert_eq!(kept(&d), ids[2..], "the others are gone from the store too");
    // A new rollout still sorts after the kept ones.
    let (code, r) = d.api_post(
        "/api/v1/rollouts",
        r#"{"group":"leafs-floor1","kind":"software"}"#,
    );
    assert_eq!(code, 201, "{r}");
    let mut want = ids[2..].to_vec();
    want.push(r["id"].as_str().unwrap().to_string());
    assert_eq!(kept(&d), want);
}
