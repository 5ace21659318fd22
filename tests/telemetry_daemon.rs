//! `ztpd run` with `telemetry.broker` set runs the bridge: messages published
//! to a real Mosquitto land in the embedded store, and the bridge's counters
//! are on `/metrics`.

mod support;

use std::time::Duration;

use support::mqtt::{components, reading_json, topic, Mosquitto};
use support::Daemon;

#[test]
fn the_daemon_runs_the_bridge_into_the_embedded_store() {
    if components().is_none() {
        return;
    }
    let mq = tempfile::tempdir().unwrap();
    let m = Mosquitto::start(mq.path());
    let extra = format!("[telemetry]\nbroker = \"{}\"\n", m.url());
    let d = Daemon::start("good", &extra, &[]);
    d.wait_for("the bridge to subscribe", Duration::from_secs(20), || {
        d.log().contains("bridge subscribed").then_some(())
    });
    let lines: Vec<String> = (0..50).map(|n| reading_json("run-dev", 7, n)).collect();
    m.publish_lines(&topic("run-dev"), &lines);
    m.publish_lines(&topic("run-dev"), &["not json".to_string()]);
    d.wait_metrics("50 stored and 1 rejected", 30, |d| {
        d.metric("ztpd_bridge_messages_total{outcome=\"stored\"}") == 50
            && d.metric("ztpd_bridge_messages_total{outcome=\"rejected\"}") == 1
    });
    let out = d.cli(&["analyze", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["device_id"], "run-dev");
    assert_eq!(v[0]["count"], 50);
}
