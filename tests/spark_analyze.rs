//! The Spark path (examples/spark/analyze.py): real Spark in local mode reads
//! what `ztpd bridge` stored in a MongoDB-wire server (nx-27017) from real
//! MQTT publishes on Mosquitto, and prints the same document as
//! `ztpd analyze --format json` (SPEC §10).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use support::mqtt::*;
use support::poll::poll;

/// Not the defaults: the script must use the names it is given.
const DATABASE: &str = "db_spark_test";
const COLLECTION: &str = "readings_spark_test";

/// Readings of four devices, published out of time order, with what makes
/// the statistics differ from a naive reading: an integer and a text
/// device_name, a name that changes (the latest one counts), readings
/// without coordinates or battery (the latest battery is from the latest
/// reading that has one), and a device with no coordinates at all.
fn dataset() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (d, id) in ["sp-a", "sp-b", "sp-c", "sp-d"].iter().enumerate() {
        for k in 0..41usize {
            let n = (k * 17) % 41; // a permutation: dates not in publish order
            let mut v = json!({
                "device_id": id,
                // milliseconds apart: the stored date keeps milliseconds
                "signal_date": format!("2024-06-0{} 10:{:02}:{:02}.{:03}123", 1 + n / 20, n % 60, (n * 7) % 60, n),
            });
            let lat = -37.0 + ((n * 7919 + d * 13) % 1000) as f64 / 997.0;
            let lon = -68.0 + ((n * 104_729 + d) % 1000) as f64 / 991.0;
            if d != 3 && n % 5 != 1 {
                v["device_latitude"] = json!((lat * 1e6).round() / 1e6);
            }
            if d != 3 && n % 7 != 2 {
                v["device_longitude"] = json!((lon * 1e6).round() / 1e6);
            }
            // the latest reading (n = 40) of sp-b has no battery
            if !(d == 1 && n == 40) {
                v["device_battery_level"] =
                    json!(((1000 - n * 11 - d) as f64 / 10.0).round() / 100.0);
            }
            match d {
                0 => v["device_name"] = json!(3000001),
                1 => v["device_name"] = json!(if n == 40 { "pump-renamed" } else { "pump-3" }),
                2 => {} // no name at all
                _ => v["device_name"] = json!(3000004),
            }
            out.push((id.to_string(), v));
        }
    }
    out
}

fn ztpd_analyze(cfg: &Path) -> Option<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_ztpd"))
        .arg("--config")
        .arg(cfg)
        .args(["analyze", "--format", "json"])
        .output()
        .ok()?;
    out.status.success().then_some(())?;
    serde_json::from_slice(&out.stdout).ok()
}

fn total_count(v: &Value) -> u64 {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|r| r["count"].as_u64().unwrap_or(0))
        .sum()
}

/// `spark` equals `ztpd`, as parsed JSON. The means alone may differ in the
/// last bits: the script's is the correctly rounded sum / count, while the
/// server's `$avg` sums in its own order. Everything else is exact.
fn assert_same(path: &str, spark: &Value, ztpd: &Value) {
    match (spark, ztpd) {
        (Value::Object(a), Value::Object(b)) => {
            let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
            assert_eq!(keys(a), keys(b), "{path}: keys");
            for (k, v) in a {
                assert_same(&format!("{path}.{k}"), v, &b[k]);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: length");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_same(&format!("{path}[{i}]"), x, y);
            }
        }
        (Value::Number(x), Value::Number(y)) if path.ends_with(".mean") => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            if x != y {
                eprintln!("{path}: Spark {x} vs ztpd {y} (within the tolerance)");
            }
            assert!(
                (x - y).abs() <= 1e-12 * y.abs().max(1.0),
                "{path}: Spark {x} vs ztpd {y}"
            );
        }
        (Value::Number(x), Value::Number(y)) => {
            assert_eq!(x.as_f64(), y.as_f64(), "{path}: Spark {x} vs ztpd {y}")
        }
        (a, b) => assert_eq!(a, b, "{path}"),
    }
}

#[test]
fn spark_on_bridged_telemetry_prints_what_ztpd_analyze_prints() {
    let Some(python) = support::spark::python_or_skip("spark_analyze") else {
        return;
    };
    let Some(stack) = Stack::start(&format!(
        "database = \"{DATABASE}\"\ncollection = \"{COLLECTION}\"\n"
    )) else {
        return;
    };
    let (m, nx, cfg) = (&stack.mqtt, &stack.nx, &stack.cfg);
    let b = Bridge::start_with(cfg, "t-spark", &["--no-share"]);
    b.wait_subscribed();
    let data = dataset();
    for id in ["sp-a", "sp-b", "sp-c", "sp-d"] {
        let lines: Vec<String> = data
            .iter()
            .filter(|(d, _)| d == id)
            .map(|(_, v)| v.to_string())
            .collect();
        m.publish_lines(&topic(id), &lines);
    }
    let total = data.len() as u64;
    let want = poll(Duration::from_secs(60), || {
        ztpd_analyze(cfg).filter(|v| total_count(v) == total)
    })
    .unwrap_or_else(|| panic!("the bridge never stored all {total} readings:\n{}", b.log()));

    let (out, took) = support::spark::analyze(
        &python,
        &["--format", "json", &nx.uri(), DATABASE, COLLECTION],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "analyze.py failed:\n{stderr}");
    eprintln!("Spark analysis took {:.1} s", took.as_secs_f64());
    // stdout is the document alone: Spark's log lines went to stderr
    let got: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_same("$", &got, &want);

    // what the comparison rests on, spelled out
    let rows = want.as_array().unwrap();
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["device_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sp-a", "sp-b", "sp-c", "sp-d"]);
    assert_eq!(rows[1]["device_name"], "pump-renamed");
    assert_eq!(rows[2]["device_name"], Value::Null);
    assert_eq!(rows[3]["latitude"], Value::Null);
    assert_eq!(
        rows[1]["last_battery"], 0.57,
        "from the latest reading with one"
    );
}
