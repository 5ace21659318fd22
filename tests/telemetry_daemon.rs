//! `ztpd run` with `telemetry.broker` set runs the bridge: messages published
//! to a real Mosquitto land in the embedded store, and the bridge's counters
//! are on `/metrics`.

mod common;
mod telemetry_support;

use std::time::Duration;

use common::Daemon;
use telemetry_support::{reading_json, topic, Mosquitto};

#[test]
fn the_daemon_runs_the_bridge_into_the_embedded_store() {
    if telemetry_support::components().is_none() {
        return;
    }
    let mq = tempfile::tempdir().unwrap();
    let m = Mosquitto::start(mq.path());
    let extra = format!("[telemetry]\nbroker = \"{}\"\n", m.url());
    let d = Daemon::start("tests/fixtures/good", &extra, &[]);
    d.wait_for("the bridge to subscribe", Duration::from_secs(20), || {
        d.log().contains("bridge subscribed").then_some(())
    });
    let lines: Vec<String> = (0..50).map(|n| reading_json("run-dev", 7, n)).collect();
    m.publish_lines(&topic("run-dev"), &lines);
    m.publish_lines(&topic("run-dev"), &["not json".to_string()]);
    let metric = |name: &str| -> Option<u64> {
        let (_, body) = d.get("/metrics");
        body.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    };
    d.wait_for("50 stored and 1 rejected", Duration::from_secs(30), || {
        (metric("ztpd_bridge_messages_total{outcome=\"stored\"}") == Some(50)
            && metric("ztpd_bridge_messages_total{outcome=\"rejected\"}") == Some(1))
        .then_some(())
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ztpd"))
        .arg("--config")
        .arg(d.root.join("ztpd.toml"))
        .args(["analyze", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["device_id"], "run-dev");
    assert_eq!(v[0]["count"], 50);
}
