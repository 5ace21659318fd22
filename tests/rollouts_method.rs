//! Rollouts of kind "method" (SPEC §8, §13): a direct method called on every
//! device of a group under the group's policy, against the unmodified Azure
//! IoT device SDK (`.venv-azure`, driver `tests/hub/dps_device.py answer`:
//! one process, one `IoTHubDeviceClient` per device answering through
//! `on_method_request_received`).
//!
//! The SDK dials port 8883 of `localhost` and has no port setting, so ztpd
//! and the SDK run in a network namespace of this test run's own
//! (`ztpt-mro-<pid>`), where 127.0.0.1:8883 is free whatever else runs.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::Daemon;

/// The group `sensors`: sensor-0001 of tests/fixtures/good and two more.
const SENSORS: [(&str, &str); 3] = [
    ("sensor-0001", "24c319455312bcd559b333c986024211"),
    ("sensor-0002", "sn-mro-0002"),
    ("sensor-0003", "sn-mro-0003"),
];
/// Planned and in the group `sensors-all`, never connected.
const OFFLINE: (&str, &str) = ("sensor-0004", "sn-mro-0004");

/// The good fixture's plan with the sensors and their groups.
fn plan(mut text: String) -> String {
    for (i, (name, serial)) in SENSORS[1..].iter().chain([&OFFLINE]).enumerate() {
        text.push_str(&format!(
            "\n[[devices]]\nname = \"{name}\"\nmodel = \"sensor\"\nserial = \"{serial}\"\n\
             tags = {{ rack = \"r{}\" }}\n",
            i + 2
        ));
    }
    text.push_str(
        "\n[groups.sensors]\ndevices = [\"sensor-0001\", \"sensor-0002\", \"sensor-0003\"]\n\
         \n[groups.sensors-all]\n\
         devices = [\"sensor-0001\", \"sensor-0002\", \"sensor-0003\", \"sensor-0004\"]\n",
    );
    text
}

fn start(d: &Daemon, body: Value) -> String {
    let (code, r) = d.api_post("/api/v1/rollouts", &body.to_string());
    assert_eq!(code, 201, "{r}");
    assert_eq!(r["kind"], "method", "{r}");
    assert_eq!(r["method"]["name"], body["method"]["name"], "{r}");
    r["id"].as_str().unwrap().to_string()
}

/// The rollout once `f` holds (at most 30 s).
fn wait_rollout(d: &Daemon, id: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    d.wait_for(what, Duration::from_secs(30), || {
        let (code, r) = d.api(&format!("/api/v1/rollouts/{id}"));
        (code == 200 && f(&r)).then_some(r)
    })
}

fn step<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {r}"))
}

#[test]
fn a_method_rollout_calls_every_device_and_keeps_each_answer() {
    let Some(python) = support::azure::sdk_python("rollouts_method") else {
        return;
    };
    let ns = format!("ztpt-mro-{}", std::process::id());
    let root = support::fixtures::temp_root_with_plan("good", plan);
    let (_ns, mut d) = support::azure::hub_in_netns_at(&ns, root);
    let (ca, _scope, key) = support::azure::flashed(&d);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hub/dps_device.py");
    let mut devices = support::tools::ChildGuard::spawn(
        Command::new("timeout")
            .args(["120", "ip", "netns", "exec", &ns])
            .arg(&python)
            .arg(script)
            .args(["answer", &ca, "localhost", "-", &key])
            .args(SENSORS.map(|(_, id)| id))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    );
    let mut lines = BufReader::new(devices.child().stdout.take().unwrap()).lines();
    for _ in SENSORS {
        let l = lines.next().expect("the SDK clients ended early").unwrap();
        assert!(l.contains("ready"), "{l}");
    }
    // The SDK subscribes to methods just after connect() returns: until it
    // has, a call is 404 (not subscribed).
    for (_, id) in SENSORS {
        d.wait_for(
            "the SDK's method subscription",
            Duration::from_secs(20),
            || {
                let path = format!("/api/v1/hub/devices/{id}/methods/ping");
                let (code, _) = d.api_post(&path, r#"{"timeout": "5s"}"#);
                (code == 200).then_some(())
            },
        );
    }

    // Every device answers 200: done, each answer kept on its step.
    let out = d.cli(&[
        "rollout",
        "start",
        "sensors",
        "--method",
        "configure",
        "--payload",
        r#"{"interval": 5}"#,
        "--batch-size",
        "2",
        "--format",
        "json",
    ]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{r}");
    assert_eq!(
        r["method"],
        json!({"name": "configure", "payload": {"interval": 5}}),
        "{r}"
    );
    let id = r["id"].as_str().unwrap().to_string();
    let r = wait_rollout(&d, &id, "the method rollout to finish", |r| {
        r["state"] == "done"
    });
    assert_eq!(r["counts"]["succeeded"], 3, "{r}");
    assert_eq!(r["batches"].as_array().unwrap().len(), 2, "{r}");
    for (name, serial) in SENSORS {
        let s = step(&r, name);
        assert_eq!(s["state"], "succeeded", "{s}");
        assert_eq!(s["response"]["status"], 200, "{s}");
        assert_eq!(
            s["response"]["payload"],
            json!({"name": "configure", "got": {"interval": 5}, "device": serial}),
            "{s}"
        );
    }

    // One device answers 500 and no failure is tolerated: the rollout
    // pauses there, the device after it never called.
    let mut status = serde_json::Map::new();
    status.insert(SENSORS[1].1.into(), 500.into());
    let id = start(
        &d,
        json!({"group": "sensors", "kind": "method",
               "method": {"name": "configure", "payload": {"status": status}},
               "policy": {"batch_size": 1, "order": "plan", "max_failures": 0}}),
    );
    let r = wait_rollout(&d, &id, "the 500 to pause the rollout", |r| {
        r["state"] == "paused"
    });
    assert!(
        r["reason"].as_str().unwrap().contains("max_failures"),
        "{r}"
    );
    let failed = step(&r, SENSORS[1].0);
    assert_eq!(failed["state"], "failed", "{failed}");
    assert_eq!(failed["response"]["status"], 500, "{failed}");
    assert_eq!(failed["response"]["payload"]["device"], SENSORS[1].1);
    assert_eq!(step(&r, SENSORS[0].0)["state"], "succeeded", "{r}");
    assert_eq!(step(&r, SENSORS[2].0)["state"], "pending", "{r}");
    let (code, r) = d.api_post(&format!("/api/v1/rollouts/{id}/abort"), "");
    assert_eq!(code, 200, "{r}");

    // A device not connected fails with 404; a silent one times out with
    // 504 after the policy's device_timeout; the others succeed.
    let id = start(
        &d,
        json!({"group": "sensors-all", "kind": "method",
               "method": {"name": "reboot", "payload": {"silent": [SENSORS[2].1]}},
               "policy": {"batch_size": 4, "max_failures": 2, "device_timeout": "2s"}}),
    );
    let r = wait_rollout(&d, &id, "the third rollout to finish", |r| {
        r["state"] == "done"
    });
    let offline = step(&r, OFFLINE.0);
    assert_eq!(offline["state"], "failed", "{offline}");
    assert_eq!(offline["response"]["status"], 404, "{offline}");
    let silent = step(&r, SENSORS[2].0);
    assert_eq!(silent["state"], "timed_out", "{silent}");
    assert_eq!(silent["response"]["status"], 504, "{silent}");
    assert_eq!(r["counts"]["succeeded"], 2, "{r}");

    // A plan tag is in the twin the operator reads.
    let (code, twin) = d.api(&format!("/api/v1/hub/devices/{}/twin", SENSORS[1].1));
    assert_eq!(code, 200, "{twin}");
    assert_eq!(twin["tags"]["rack"], "r2", "{twin}");
    assert_eq!(twin["tags"]["name"], SENSORS[1].0, "{twin}");

    // Calls in flight when ztpd is killed are lost: their devices fail
    // after the restart instead of being called twice.
    let silent: Vec<&str> = SENSORS.iter().map(|(_, id)| *id).collect();
    let lost = start(
        &d,
        json!({"group": "sensors", "kind": "method",
               "method": {"name": "slow", "payload": {"silent": silent}},
               "policy": {"batch_size": 3, "max_failures": 3, "device_timeout": "60s"}}),
    );
    wait_rollout(&d, &lost, "the calls to go out", |r| {
        r["counts"]["in_progress"] == 3
    });

    // The steps survive a restart, and the CLI lists the rollout's answers.
    drop(devices.child().stdin.take());
    assert!(devices.child().wait().unwrap().success());
    d.restart();
    let r4 = wait_rollout(&d, &lost, "the lost calls to fail", |r| {
        r["state"] == "done"
    });
    for (name, _) in SENSORS {
        let s = step(&r4, name);
        assert_eq!(s["state"], "failed", "{s}");
        assert!(s["message"].as_str().unwrap().contains("lost"), "{s}");
        assert!(s["response"].is_null(), "never answered: {s}");
    }
    let (code, after) = d.api(&format!("/api/v1/rollouts/{id}"));
    assert_eq!(code, 200, "{after}");
    assert_eq!(after["devices"], r["devices"], "kept across the restart");
    assert_eq!(after["method"], r["method"]);
    let out = d.cli(&["rollout", "status", &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("answered 200") && text.contains("no answer within 2s"),
        "{text}"
    );
}

/// A member known only by its MAC: no hub device id.
const NAMELESS: &str = "\n[[devices]]\nname = \"sensor-0009\"\nmodel = \"sensor\"\n\
                        mac = \"02:00:00:00:00:09\"\n\
                        \n[groups.nameless]\ndevices = [\"sensor-0009\"]\n";

#[test]
fn bad_method_rollouts_get_400_saying_what_was_expected() {
    let root = support::fixtures::temp_root_with_plan("good", |t| plan(t) + NAMELESS);
    let d = Daemon::builder().owned_root(root).broker("").start();
    let method = |m: Value| json!({"group": "sensors", "kind": "method", "method": m});
    let cases = [
        (
            json!({"group": "sensors", "kind": "method"}),
            "expected \"method\": {\"name\": NAME, \"payload\": JSON}",
        ),
        (method(json!({"payload": 1})), "the method has no name"),
        (method(json!({"name": ""})), "the method has no name"),
        (method(json!({"name": "a/b"})), "expected [A-Za-z0-9._-]+"),
        (
            method(json!({"name": "m", "payload": "x".repeat(130 * 1024)})),
            "expected at most 131072 (128 KB)",
        ),
        (
            json!({"group": "nameless", "kind": "method", "method": {"name": "m"}}),
            "`sensor-0009` has no hub device id",
        ),
        (
            json!({"group": "sensors", "kind": "software", "method": {"name": "m"}}),
            "takes no `method`",
        ),
        (
            json!({"group": "sensors", "kind": "reboot"}),
            "expected \"software\", \"config\" or \"method\"",
        ),
    ];
    for (body, needle) in cases {
        let (code, v) = d.api_post("/api/v1/rollouts", &body.to_string());
        assert_eq!(code, 400, "{body}: {v}");
        let e = v["error"].as_str().unwrap();
        assert!(e.contains(needle), "{body}: `{e}` lacks `{needle}`");
    }
    let (_, all) = d.api("/api/v1/rollouts");
    assert_eq!(all, json!([]), "nothing was stored");

    // Without the local hub there is nothing to call through.
    let root = support::fixtures::temp_root_with_plan("good", plan);
    let d = Daemon::builder().owned_root(root).start();
    let (code, v) = d.api_post(
        "/api/v1/rollouts",
        &method(json!({"name": "m"})).to_string(),
    );
    assert_eq!(code, 400, "{v}");
    assert!(v["error"].as_str().unwrap().contains("local hub"), "{v}");
}
