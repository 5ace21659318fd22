//! `ztpd run` with `telemetry.broker` set runs the bridge: messages published
//! to a real Mosquitto land in the embedded store, or in MongoDB under the
//! configured database and collection, and the bridge's counters are on
//! `/metrics`.

mod support;

use std::time::Duration;

use support::mongo::{self, Nx, DEFAULT_COLLECTION, DEFAULT_DATABASE};
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

/// `[telemetry] database` and `collection` name where readings go: with a
/// real MongoDB-wire server that keeps databases apart (nx-27017 with
/// `--data-dir`), readings published through Mosquitto and the daemon's
/// bridge land in the configured database and collection (rejections in
/// `<collection>_rejected` beside them), `ztpd analyze` reads them there, and
/// nothing reaches the default names.
#[test]
fn the_configured_database_and_collection_are_where_readings_land() {
    let Some(nx_bin) = components() else {
        return;
    };
    const DB: &str = "ztpt_lab_telemetry";
    const COLL: &str = "ztpt_readings";
    let dir = tempfile::tempdir().unwrap();
    let m = Mosquitto::start(&dir.path().join("mqtt"));
    let nx = Nx::start(&nx_bin, &dir.path().join("nx"));
    let uri = nx.uri();
    let extra = format!(
        "[telemetry]\nbroker = \"{}\"\nmongodb_uri = \"{uri}\"\ndatabase = \"{DB}\"\ncollection = \"{COLL}\"\n",
        m.url()
    );
    let d = Daemon::start("good", &extra, &[]);
    d.wait_for("the bridge to subscribe", Duration::from_secs(20), || {
        d.log().contains("bridge subscribed").then_some(())
    });
    let lines: Vec<String> = (0..20).map(|n| reading_json("named-dev", 7, n)).collect();
    m.publish_lines(&topic("named-dev"), &lines);
    m.publish_lines(&topic("named-dev"), &["not json".to_string()]);
    d.wait_metrics("20 stored and 1 rejected", 30, |d| {
        d.metric("ztpd_bridge_messages_total{outcome=\"stored\"}") == 20
            && d.metric("ztpd_bridge_messages_total{outcome=\"rejected\"}") == 1
    });

    // Read back with a MongoDB client, not through ztpd.
    let where_they_are = || {
        format!(
            "databases {:?}; {DB}: {:?}; {DEFAULT_DATABASE}: {:?}",
            mongo::database_names(&uri),
            mongo::collection_names(&uri, DB),
            mongo::collection_names(&uri, DEFAULT_DATABASE),
        )
    };
    assert_eq!(
        mongo::count(&uri, DB, COLL),
        Some(20),
        "readings not in {DB}.{COLL}: {}",
        where_they_are()
    );
    assert_eq!(
        mongo::count(&uri, DB, &format!("{COLL}_rejected")),
        Some(1),
        "the rejection not in {DB}.{COLL}_rejected: {}",
        where_they_are()
    );
    let stored = mongo::docs(&uri, DB, COLL);
    assert!(
        stored
            .iter()
            .all(|doc| doc.get_str("device_id") == Ok("named-dev")),
        "{stored:?}"
    );
    assert!(
        !mongo::database_names(&uri).contains(&DEFAULT_DATABASE.to_string()),
        "something was written to the default database: {}",
        where_they_are()
    );
    for coll in [
        DEFAULT_COLLECTION,
        &format!("{DEFAULT_COLLECTION}_rejected"),
    ] {
        assert_eq!(
            mongo::count(&uri, DEFAULT_DATABASE, coll),
            Some(0),
            "{DEFAULT_DATABASE}.{coll}: {}",
            where_they_are()
        );
        assert_eq!(mongo::count(&uri, DB, coll), Some(0), "{DB}.{coll}");
    }

    // `ztpd analyze` with the same settings reads the configured names...
    let out = d.cli(&["analyze", "--format", "json"]);
    assert!(out.status.success(), "{}", support::tools::text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["device_id"], "named-dev", "{v}");
    assert_eq!(v[0]["count"], 20, "{v}");
    // ...and with the default names the same server has nothing to show.
    let defaults =
        support::mqtt::write_settings(&dir.path().join("defaults"), None, Some(&uri), "");
    let out = support::daemon::ztpd_with(&defaults, &["analyze", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(
        v.as_array().is_none_or(|rows| rows.is_empty()),
        "analyze on the default names found readings: {v}"
    );
}
