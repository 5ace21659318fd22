//! Rollouts end to end: the real daemon and a fabric of simulated switch
//! agents (`ztpd device simulate --switch all --agent`) on
//! tests/fixtures/rollout_fabric (two root spines, six dual-homed leaves,
//! group `leaves` in batches of 2, max_failures 0).

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::agents::Agents;
use support::Daemon;

const FIXTURE: &str = "rollout_fabric";
const LONG: Duration = Duration::from_secs(60);

fn start(d: &Daemon, policy: Value) -> String {
    let body = json!({"group": "leaves", "kind": "software", "policy": policy});
    let (code, r) = d.api_post("/api/v1/rollouts", &body.to_string());
    assert_eq!(code, 201, "{r}");
    assert_eq!(r["batches"][0]["devices"][0], "leaf1", "{r}");
    r["id"].as_str().unwrap().to_string()
}

fn rollout(d: &Daemon, id: &str) -> Value {
    let (code, v) = d.api(&format!("/api/v1/rollouts/{id}"));
    assert_eq!(code, 200, "{v}");
    v
}

fn wait_state(d: &Daemon, id: &str, state: &str) -> Value {
    d.wait_for(&format!("rollout {state}"), LONG, || {
        let v = rollout(d, id);
        (v["state"] == state).then_some(v)
    })
}

fn dev<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap()
}

fn states(r: &Value) -> Vec<(String, String)> {
    r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap().to_string(),
                x["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn one_failing_device_pauses_at_the_threshold_with_the_rest_pending() {
    let d = Daemon::start(FIXTURE, "", &[]);
    let _agents = Agents::start(&d, &["upgrade-fails:leaf3"]);
    let id = start(&d, json!({}));
    wait_state(&d, &id, "paused");
    // leaf4 was in flight with leaf3: it finishes.
    let r = d.wait_for("leaf4 to finish", LONG, || {
        let r = rollout(&d, &id);
        (dev(&r, "leaf4")["state"] != "notified" && dev(&r, "leaf4")["state"] != "in_progress")
            .then_some(r)
    });
    assert_eq!(
        states(&r),
        pairs(&[
            ("leaf1", "succeeded"),
            ("leaf2", "succeeded"),
            ("leaf3", "failed"),
            ("leaf4", "succeeded"),
            ("leaf5", "pending"),
            ("leaf6", "pending"),
        ]),
        "{r}"
    );
    let reason = r["reason"].as_str().unwrap();
    assert!(
        reason.contains("exceed max_failures (tolerated: 0)"),
        "{reason}"
    );
    assert!(dev(&r, "leaf3")["message"]
        .as_str()
        .unwrap()
        .contains("upgrade-fails"));
    assert_eq!(dev(&r, "leaf1")["version"], "2.0");
    assert_eq!(r["batches"][2]["state"], "pending");
    // Resume accepts the failure and finishes the rest.
    let (code, v) = d.api_post(&format!("/api/v1/rollouts/{id}/resume"), "");
    assert_eq!(code, 200, "{v}");
    let r = wait_state(&d, &id, "done");
    assert_eq!(
        r["counts"],
        json!({"pending": 0, "in_progress": 0, "succeeded": 5, "failed": 1})
    );
}

#[test]
fn a_silent_device_times_out_and_a_miscabled_one_fails_with_its_problem() {
    let d = Daemon::start(FIXTURE, "", &[]);
    let _agents = Agents::start(&d, &["upgrade-silent:leaf1", "upgrade-miscabled:SIMLEAF2"]);
    let id = start(&d, json!({"max_failures": 2, "device_timeout": "2s"}));
    let r = wait_state(&d, &id, "done");
    let l1 = dev(&r, "leaf1");
    assert_eq!(l1["state"], "timed_out", "{r}");
    assert_eq!(l1["stage"], "rebooting", "last seen rebooting: {l1}");
    let l2 = dev(&r, "leaf2");
    assert_eq!(l2["state"], "failed", "{r}");
    let msg = l2["message"].as_str().unwrap();
    assert!(
        msg.contains("topology mismatch") && msg.contains("leaf2:swp"),
        "{msg}"
    );
    assert_eq!(
        r["counts"],
        json!({"pending": 0, "in_progress": 0, "succeeded": 4, "failed": 2})
    );
    let (_, devices) = d.api("/api/v1/devices");
    let leaf2 = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "leaf2")
        .unwrap();
    assert_eq!(leaf2["state"], "topology_mismatch");
    assert!(!leaf2["problems"].as_array().unwrap().is_empty());
}

#[test]
fn ztpd_killed_between_batches_resumes_the_rollout_to_done() {
    let mut d = Daemon::start(FIXTURE, "", &[]);
    let _agents = Agents::start(&d, &[]);
    let id = start(&d, json!({"pause_between": "2s"}));
    d.wait_for("the first batch done", LONG, || {
        let r = rollout(&d, &id);
        (r["batches"][0]["state"] == "done").then_some(())
    });
    d.kill9();
    d.restart();
    let r = rollout(&d, &id);
    assert_eq!(r["batches"][0]["state"], "done", "persisted: {r}");
    let r = wait_state(&d, &id, "done");
    assert_eq!(r["counts"]["succeeded"], 6, "{r}");
    // One action per device, each acknowledged: nothing left to deliver.
    let ids: std::collections::HashSet<&str> = r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["action"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 6);
    for n in 1..=6 {
        let (code, text) = d.get(&format!("/ztp/v1/devices/SIMLEAF{n}/actions"));
        assert_eq!(code, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["actions"], json!([]), "leaf{n}: {v}");
    }
}

#[test]
fn abort_pause_and_resume_against_agents() {
    let d = Daemon::start(FIXTURE, "", &[]);
    let _agents = Agents::start(&d, &[]);
    let id = start(&d, json!({"batch_size": 1, "pause_between": "1s"}));
    d.wait_for("leaf1 notified", LONG, || {
        let r = rollout(&d, &id);
        (dev(&r, "leaf1")["state"] != "pending").then_some(())
    });
    let (code, v) = d.api_post(&format!("/api/v1/rollouts/{id}/pause"), "");
    assert_eq!(code, 200, "{v}");
    // Paused: in flight finishes, no new batch starts.
    let r = d.wait_for("leaf1 to finish", LONG, || {
        let r = rollout(&d, &id);
        (dev(&r, "leaf1")["state"] == "succeeded").then_some(r)
    });
    assert_eq!(r["state"], "paused");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        dev(&rollout(&d, &id), "leaf2")["state"],
        "pending",
        "nothing starts while paused"
    );
    let (code, _) = d.api_post(&format!("/api/v1/rollouts/{id}/resume"), "");
    assert_eq!(code, 200);
    d.wait_for("leaf2 to succeed", LONG, || {
        let r = rollout(&d, &id);
        (dev(&r, "leaf2")["state"] == "succeeded").then_some(())
    });
    let (code, v) = d.api_post(&format!("/api/v1/rollouts/{id}/abort"), "");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["state"], "aborted");
    std::thread::sleep(Duration::from_millis(1500));
    let r = rollout(&d, &id);
    assert_eq!(r["state"], "aborted");
    let pending = states(&r).iter().filter(|(_, s)| s == "pending").count();
    assert!(pending >= 3, "an aborted rollout starts nothing more: {r}");
}
