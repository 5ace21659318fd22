//! The bridge against a real Mosquitto and a real MongoDB-wire server
//! (nx-27017): messages land once with their content, invalid ones are
//! rejected with a reason, and restarting either side mid-stream loses and
//! duplicates nothing.

mod support;

use std::time::Duration;

use mongodb::bson::Document;
use support::mongo::{self, int, nx_binary, Nx};
use support::mqtt::*;
use support::poll::poll;

/// ztpd's defaults: these tests set no `[telemetry] database`/`collection`.
const DB: &str = mongo::DEFAULT_DATABASE;
const COLL: &str = mongo::DEFAULT_COLLECTION;

fn count(uri: &str, name: &str) -> Option<u64> {
    mongo::count(uri, DB, name)
}

fn all_docs(uri: &str, name: &str) -> Vec<Document> {
    mongo::docs(uri, DB, name)
}

/// Wait until the collection holds `n` documents (or fail with what it holds).
fn wait_count(uri: &str, name: &str, n: u64, limit: Duration) {
    mongo::wait_count(uri, DB, name, n, limit)
}

/// Publish readings `range` for each device; returns the expected ids.
fn publish(m: &Mosquitto, devices: &[(&str, i64)], range: std::ops::Range<usize>) -> Vec<String> {
    publish_readings(m, devices, range)
}

fn assert_exactly(uri: &str, expected: &[String]) {
    mongo::assert_ids_exactly(uri, DB, COLL, expected)
}

#[test]
fn published_messages_land_once_with_their_content_and_bad_ones_are_rejected() {
    let Some(stack) = Stack::start("") else {
        return;
    };
    let (m, nx, cfg) = (&stack.mqtt, &stack.nx, &stack.cfg);
    let _b = Bridge::start(cfg, "t-content");

    // The bridge subscribes asynchronously: publish a probe until it lands.
    let probe = poll(Duration::from_secs(20), || {
        m.publish_lines(&topic("probe"), &[reading_json("probe", 1, 0)]);
        (count(&nx.uri(), COLL) == Some(1)).then_some(())
    });
    assert!(probe.is_some(), "the bridge never stored the probe");

    let mut ids = publish(m, &[("dev-a", 1000001), ("dev-b", 1000002)], 0..300);
    ids.push("probe:2024-05-01T00:00:00.000000Z".into());
    // invalid (6): bad JSON, out of range, wrong device, not UTF-8, oversized,
    // and far oversized
    m.publish_lines(&topic("dev-a"), &["{oops".to_string()]);
    m.publish_lines(
        &topic("dev-a"),
        &[reading_json("dev-a", 1, 999_999)
            .replace("\"device_latitude\":-36.501000", "\"device_latitude\":95")],
    );
    m.publish_lines(&topic("dev-b"), &[reading_json("dev-a", 1, 5)]);
    m.publish_bytes(&topic("dev-a"), &[0xff, 0xfe, 0x00]);
    m.publish_bytes(&topic("dev-a"), &vec![b' '; 256 * 1024 + 1]);
    // far above the hub limit: read and rejected, not a wedged session
    m.publish_bytes(&topic("dev-b"), &vec![b'x'; 1024 * 1024]);

    wait_count(&nx.uri(), COLL, 601, Duration::from_secs(60));
    wait_count(
        &nx.uri(),
        &format!("{COLL}_rejected"),
        6,
        Duration::from_secs(30),
    );
    assert_exactly(&nx.uri(), &ids);

    // content: one document checked field by field against what was sent
    let docs = all_docs(&nx.uri(), COLL);
    let d = docs
        .iter()
        .find(|d| d.get_str("_id") == Ok("dev-b:2024-05-01T00:00:00.000042Z"))
        .expect("dev-b #42 stored");
    let sent: serde_json::Value =
        serde_json::from_str(&reading_json("dev-b", 1000002, 42)).unwrap();
    assert_eq!(d.get_str("device_id").unwrap(), "dev-b");
    assert_eq!(int(d, "device_name"), Some(1000002));
    assert_eq!(
        d.get_f64("device_latitude").unwrap(),
        sent["device_latitude"].as_f64().unwrap()
    );
    assert_eq!(
        d.get_f64("device_longitude").unwrap(),
        sent["device_longitude"].as_f64().unwrap()
    );
    assert_eq!(
        d.get_f64("device_battery_level").unwrap(),
        sent["device_battery_level"].as_f64().unwrap()
    );
    let date = d
        .get_datetime("signal_date")
        .expect("signal_date stored as a date");
    assert_eq!(date.timestamp_millis(), 1_714_521_600_000);

    let rejected = all_docs(&nx.uri(), &format!("{COLL}_rejected"));
    let reasons: Vec<&str> = rejected
        .iter()
        .map(|d| d.get_str("reason").unwrap())
        .collect();
    for want in [
        "not JSON",
        "device_latitude is 95",
        "differs from the topic",
        "not UTF-8",
        "at most 262144",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(want)),
            "no rejection with {want:?}: {reasons:?}"
        );
    }
    assert!(rejected.iter().all(|d| d.get_str("topic").is_ok()));
    let big = rejected
        .iter()
        .find(|d| int(d, "payload_size") == Some(1024 * 1024))
        .expect("the 1 MiB message is rejected with its size");
    assert_eq!(
        big.get_str("payload").unwrap().len(),
        4096,
        "payload kept truncated"
    );
}

/// Start broker, store and bridge; wait until the bridge is subscribed.
fn setup(dir: &std::path::Path, bridges: &[&str], extra: &[&str]) -> (Mosquitto, Nx, Vec<Bridge>) {
    let nx_bin = nx_binary().unwrap();
    let m = Mosquitto::start(&dir.join("mqtt"));
    // Its data directory survives a restart of the server.
    let nx = Nx::start(&nx_bin, &dir.join("nx"));
    let cfg = write_settings(&dir.join("root"), Some(&m.url()), Some(&nx.uri()), "");
    let b: Vec<Bridge> = bridges
        .iter()
        .map(|id| Bridge::start_with(&cfg, id, extra))
        .collect();
    let probe = poll(Duration::from_secs(20), || {
        m.publish_lines(&topic("probe"), &[reading_json("probe", 1, 0)]);
        (count(&nx.uri(), COLL) == Some(1)).then_some(())
    });
    assert!(probe.is_some(), "the bridge never stored the probe");
    (m, nx, b)
}

// This test once failed in about half the full-suite runs (e.g. 3664 of 8001
// stored, the bridge idle): after the reconnect the bridge's reader awaited
// its SUBSCRIBE in an MQTT request queue full of acks that only the reader
// itself drains. The bridge now subscribes and acks from other tasks.
#[test]
fn restarting_mosquitto_mid_stream_loses_and_duplicates_nothing() {
    if components().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A direct (not shared) subscription: Mosquitto 2.0 restores persistent
    // sessions and their queued messages on restart, but not shared
    // subscriptions, so messages published after a restart and before a
    // shared-subscription bridge re-subscribes are dropped by the broker
    // (docs/telemetry.md). The persistent single-bridge setup loses nothing.
    let (mut m, nx, _b) = setup(dir.path(), &["t-mqtt-restart"], &["--no-share"]);
    let mut ids = vec!["probe:2024-05-01T00:00:00.000000Z".to_string()];
    ids.extend(publish(&m, &[("r1", 1), ("r2", 2)], 0..3000));
    let before = count(&nx.uri(), COLL).unwrap();
    m.restart(); // SIGTERM: Mosquitto saves its persistent sessions and queues
    eprintln!("restarted mosquitto with {before} of {} stored", ids.len());
    ids.extend(publish(&m, &[("r1", 1), ("r2", 2)], 3000..4000));
    wait_count(&nx.uri(), COLL, ids.len() as u64, Duration::from_secs(120));
    assert_exactly(&nx.uri(), &ids);
}

#[test]
fn restarting_the_database_mid_stream_loses_and_duplicates_nothing() {
    if components().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (m, mut nx, _b) = setup(dir.path(), &["t-db-restart"], &[]);
    let mut ids = vec!["probe:2024-05-01T00:00:00.000000Z".to_string()];
    ids.extend(publish(&m, &[("d1", 1), ("d2", 2)], 0..2000));
    let before = count(&nx.uri(), COLL).unwrap();
    nx.stop();
    // while the database is down the bridge holds its acks; the broker keeps
    // the rest in the bridge's persistent session
    ids.extend(publish(&m, &[("d1", 1), ("d2", 2)], 2000..3000));
    nx.restart();
    eprintln!(
        "restarted nx-27017 with {before} of {} stored before",
        ids.len()
    );
    wait_count(&nx.uri(), COLL, ids.len() as u64, Duration::from_secs(120));
    assert_exactly(&nx.uri(), &ids);
}

#[test]
fn two_bridges_on_one_shared_subscription_store_each_message_once() {
    if components().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (m, nx, _b) = setup(dir.path(), &["t-share-1", "t-share-2"], &[]);
    let mut ids = vec!["probe:2024-05-01T00:00:00.000000Z".to_string()];
    ids.extend(publish(&m, &[("s1", 1), ("s2", 2), ("s3", 3)], 0..1000));
    wait_count(&nx.uri(), COLL, ids.len() as u64, Duration::from_secs(120));
    assert_exactly(&nx.uri(), &ids);
}
