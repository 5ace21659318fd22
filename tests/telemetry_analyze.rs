//! `ztpd analyze` on what the bridge stored, in MongoDB (nx-27017) and in the
//! embedded store, agrees with statistics computed here from the published
//! messages.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::mqtt::*;
use support::poll::poll;

/// Readings with irregular values, published out of time order.
fn dataset() -> Vec<(String, i64, Value)> {
    let mut out = Vec::new();
    for (d, (id, name)) in [("an-a", 2000001_i64), ("an-b", 2000002)]
        .iter()
        .enumerate()
    {
        for k in 0..57usize {
            let n = (k * 37) % 57; // a permutation of 0..57: dates not in publish order
            let lat = -37.0 + ((n * 7919 + d * 13) % 1000) as f64 / 997.0;
            let lon = -68.0 + ((n * 104_729 + d) % 1000) as f64 / 991.0;
            let battery = ((1000 - n * 11 - d) as f64 / 1000.0 * 100.0).round() / 100.0;
            let v = serde_json::json!({
                "device_id": id, "device_name": name,
                "device_latitude": (lat * 1e6).round() / 1e6,
                "device_longitude": (lon * 1e6).round() / 1e6,
                "device_battery_level": battery,
                "signal_date": format!("2024-06-0{} 10:{:02}:{:02}.{:06}", 1 + n / 20, n % 60, (n * 7) % 60, n),
            });
            out.push((id.to_string(), *name, v));
        }
    }
    out
}

/// The expected analyze rows, computed directly from the messages.
fn expected(data: &[(String, i64, Value)]) -> BTreeMap<String, (u64, [f64; 6], f64)> {
    let mut by: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for (id, _, v) in data {
        by.entry(id.clone()).or_default().push(v);
    }
    by.into_iter()
        .map(|(id, vs)| {
            let col = |k: &str| {
                vs.iter()
                    .map(|v| v[k].as_f64().unwrap())
                    .collect::<Vec<f64>>()
            };
            let stat = |xs: Vec<f64>| {
                let min = xs.iter().cloned().fold(f64::INFINITY, f64::min);
                let max = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                (min, xs.iter().sum::<f64>() / xs.len() as f64, max)
            };
            let (a, b, c) = stat(col("device_latitude"));
            let (d, e, f) = stat(col("device_longitude"));
            let last = vs
                .iter()
                .max_by_key(|v| v["signal_date"].as_str().unwrap().to_string())
                .unwrap()["device_battery_level"]
                .as_f64()
                .unwrap();
            (id, (vs.len() as u64, [a, b, c, d, e, f], last))
        })
        .collect()
}

fn analyze(cfg: &Path, args: &[&str]) -> (String, bool) {
    let out = Command::new(env!("CARGO_BIN_EXE_ztpd"))
        .arg("--config")
        .arg(cfg)
        .arg("analyze")
        .args(args)
        .output()
        .unwrap();
    (String::from_utf8(out.stdout).unwrap(), out.status.success())
}

fn check(cfg: &Path, data: &[(String, i64, Value)], total: u64) {
    let exp = expected(data);
    // wait until every reading is stored (the bridge batches asynchronously)
    let got = poll(Duration::from_secs(60), || {
        let (out, ok) = analyze(cfg, &["--format", "json"]);
        let v: Value = serde_json::from_str(&out).ok()?;
        let n: u64 = v
            .as_array()?
            .iter()
            .map(|r| r["count"].as_u64().unwrap_or(0))
            .sum();
        (ok && n == total).then_some(v)
    })
    .expect("analyze never saw every reading");
    let rows = got.as_array().unwrap();
    assert_eq!(rows.len(), exp.len());
    for r in rows {
        let id = r["device_id"].as_str().unwrap();
        let (count, stats, last) = exp[id];
        assert_eq!(r["count"].as_u64().unwrap(), count, "{id}");
        let values = [
            &r["latitude"]["min"],
            &r["latitude"]["mean"],
            &r["latitude"]["max"],
            &r["longitude"]["min"],
            &r["longitude"]["mean"],
            &r["longitude"]["max"],
        ];
        for (v, want) in values.iter().zip(stats) {
            let v = v.as_f64().unwrap();
            assert!((v - want).abs() < 1e-9, "{id}: {v} vs {want}");
        }
        assert_eq!(r["last_battery"].as_f64().unwrap(), last, "{id}");
    }
    // --device by name, and CSV
    let (out, ok) = analyze(cfg, &["--device", "2000002", "--format", "csv"]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("device_id,device_name,count,latitude_min"));
    assert!(lines[1].starts_with("an-b,2000002,57,"), "{out}");
    let (out, ok) = analyze(cfg, &["--device", "an-a"]);
    assert!(ok && out.contains("an-a") && !out.contains("an-b"), "{out}");
    let (_, ok) = analyze(cfg, &["--device", "nobody"]);
    assert!(!ok, "an unknown device is an error");
}

fn publish_all(m: &Mosquitto, data: &[(String, i64, Value)]) {
    for id in ["an-a", "an-b"] {
        let lines: Vec<String> = data
            .iter()
            .filter(|d| d.0 == id)
            .map(|d| d.2.to_string())
            .collect();
        m.publish_lines(&topic(id), &lines);
    }
}

#[test]
fn analyze_on_mongodb_agrees_with_independent_values() {
    let Some(stack) = Stack::start("") else {
        return;
    };
    let (m, _nx, cfg) = (&stack.mqtt, &stack.nx, &stack.cfg);
    let b = Bridge::start_with(cfg, "t-analyze-mongo", &["--no-share"]);
    // a persistent direct subscription: publish once the bridge's session exists
    b.wait_subscribed();
    let data = dataset();
    publish_all(m, &data);
    check(cfg, &data, data.len() as u64);
}

#[test]
fn analyze_on_the_embedded_store_agrees_with_independent_values() {
    if components().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = Mosquitto::start(&dir.path().join("mqtt"));
    let cfg = write_settings(&dir.path().join("root"), Some(&m.url()), None, "");
    let b = Bridge::start_with(&cfg, "t-analyze-embedded", &["--no-share"]);
    b.wait_subscribed();
    let data = dataset();
    publish_all(&m, &data);
    check(&cfg, &data, data.len() as u64);
    assert!(dir.path().join("root/state/telemetry.sqlite").is_file());
}
