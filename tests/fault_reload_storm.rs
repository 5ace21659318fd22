//! Fault suite (issue #15): a reload storm. 100 saves of the plan within
//! one second (by default), good and broken ones mixed, written the ways editors
//! and scripts write (in place, half-written, temp + rename, emptied).
//!
//! - Ending with a good save: the daemon ends up serving exactly that plan
//!   (leaf1's config over HTTP carries its ASN) and its reload status says
//!   the last reload was good, with no error left over from the storm.
//! - Ending with a broken save: a plan from the storm (or the original)
//!   keeps serving, the status reports the error, and the next good save
//!   clears it.
//!
//! The pacing sleeps below space the saves of the storm (they are the
//! fault); every wait for the daemon is a poll.

mod support;

use std::path::Path;
use std::time::Duration;

use support::Daemon;

/// Saves per storm and the storm's length: 100 in one second by default;
/// `benches/faults/run_faults.sh` sets `ZTPD_FAULT_SAVES` and
/// `ZTPD_FAULT_STORM_MS` for a longer storm.
fn saves() -> u32 {
    std::env::var("ZTPD_FAULT_SAVES").map_or(100, |v| v.parse().expect("ZTPD_FAULT_SAVES"))
}

fn pace() -> Duration {
    let ms: u64 = std::env::var("ZTPD_FAULT_STORM_MS")
        .map_or(1000, |v| v.parse().expect("ZTPD_FAULT_STORM_MS"));
    Duration::from_micros(ms * 1000 / u64::from(saves()))
}
const WAIT: Duration = Duration::from_secs(30);
/// leaf1's ASN in the fixture.
const ORIGINAL_ASN: u32 = 65011;

fn status(d: &Daemon) -> serde_json::Value {
    let (code, v) = d.api("/api/v1/status");
    assert_eq!(code, 200, "{v}");
    v
}

fn with_asn(good: &str, asn: u32) -> String {
    let from = "vars = { loopback = \"10.255.0.11\", asn = 65011 }";
    assert!(good.contains(from), "fixture changed: leaf1's vars");
    good.replace(
        from,
        &format!("vars = {{ loopback = \"10.255.0.11\", asn = {asn} }}"),
    )
}

/// Broken variants of the plan, by kind.
fn broken(good: &str, i: u32) -> String {
    match i % 4 {
        // A save caught half-way (in-place writers truncate first).
        0 => good[..good.len() / 2].to_string(),
        1 => good.replace("model = \"spine\"", "model = \"spline\""),
        2 => format!("{good}\n[colour]\nred = 1\n"),
        _ => String::new(),
    }
}

fn save(p: &Path, text: &str, i: u32) {
    if i % 2 == 0 {
        std::fs::write(p, text).expect("write plan in place");
    } else {
        let tmp = p.with_file_name(".lab.toml.tmp");
        std::fs::write(&tmp, text).expect("write temp");
        std::fs::rename(&tmp, p).expect("rename into place");
    }
}

fn leaf1_asn(d: &Daemon) -> Option<u32> {
    let (code, cfg) = d.get("/files/configs/leaf1.cfg");
    assert_eq!(code, 200, "leaf1's config must always be served: {cfg}");
    let at = cfg.find("router bgp ")? + "router bgp ".len();
    cfg[at..].split_whitespace().next()?.parse().ok()
}

/// Save [`saves`] times; save `i` is good (ASN 66000 + i) when `good_at(i)`.
/// Returns the ASNs of the good saves.
fn storm(d: &Daemon, good: &str, good_at: impl Fn(u32) -> bool) -> Vec<u32> {
    let p = d.root.join("plans/lab.toml");
    let mut asns = Vec::new();
    let (n, pace) = (saves(), pace());
    for i in 0..n {
        if good_at(i) {
            asns.push(66000 + i);
            save(&p, &with_asn(good, 66000 + i), i);
        } else {
            save(&p, &broken(good, i), i);
        }
        std::thread::sleep(pace);
    }
    asns
}

#[test]
fn a_storm_of_saves_ends_with_the_last_good_plan_and_no_error() {
    let d = Daemon::builder()
        .fixture("good")
        .access("configs = \"open\"")
        .start();
    let good = std::fs::read_to_string(d.root.join("plans/lab.toml")).unwrap();
    assert_eq!(leaf1_asn(&d), Some(ORIGINAL_ASN));
    let before = status(&d)["snapshot_version"].as_u64().unwrap();

    // 1. Good and broken saves alternate in runs; the last one is good.
    let n = saves();
    let started = std::time::Instant::now();
    let asns = storm(&d, &good, |i| i == n - 1 || (i / 3) % 2 == 0);
    let last = *asns.last().unwrap();
    // The last good plan serves, and the status has caught up with the
    // snapshot that serves it (it is written just after the swap).
    // The config first, then the status: a status read before the last
    // swap still shows the refusal before it, of the version it served.
    let s = d.wait_for("the last good save to serve", WAIT, || {
        if leaf1_asn(&d) != Some(last) {
            return None;
        }
        let s = status(&d);
        (s["last_reload"]["version"] == s["snapshot_version"]).then_some(s)
    });
    assert_eq!(s["last_reload"]["ok"], true, "an error is left over: {s}");
    assert_eq!(
        s["last_reload"]["diagnostics"]["errors"],
        serde_json::json!([]),
        "{s}"
    );
    let after = s["snapshot_version"].as_u64().unwrap();
    assert!(after > before, "{s}");
    assert_eq!(d.get("/healthz").0, 200);
    let broken_seen = d.log().matches("reload refused").count();
    // Read by benches/faults/run_faults.sh.
    eprintln!(
        "FAULT storm: {n} saves ({} good) paced over {:.2} s; last good plan served {:.2} s after the first save; {} reloads swapped in, {broken_seen} refused",
        asns.len(),
        pace().as_secs_f64() * f64::from(n),
        started.elapsed().as_secs_f64(),
        after - before
    );
    // The CLI reports the same state.
    let out = d.cli(&["status", "--format", "json"]);
    assert!(out.status.success(), "{}", support::tools::text(&out));
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    assert_eq!(cli["status"]["last_reload"]["ok"], true, "{cli}");

    // 2. A storm that ends broken: something good keeps serving, the error
    //    is reported, and the next good save clears it.
    let asns = storm(&d, &good, |i| i != n - 1 && (i / 3) % 2 == 0);
    let s = d.wait_for("the broken last save to be reported", WAIT, || {
        let s = status(&d);
        (s["last_reload"]["ok"] == false && s["last_reload"]["at"] != "").then_some(s)
    });
    let serving = leaf1_asn(&d).expect("a config serves");
    assert!(
        asns.contains(&serving) || serving == last,
        "serving ASN {serving} was never a good save"
    );
    assert!(
        !s["last_reload"]["diagnostics"]["errors"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{s}"
    );
    assert_eq!(d.get("/healthz").0, 200);
    save(&d.root.join("plans/lab.toml"), &with_asn(&good, 67000), 1);
    let s = d.wait_for("the repair to serve", WAIT, || {
        let s = status(&d);
        (leaf1_asn(&d) == Some(67000) && s["last_reload"]["version"] == s["snapshot_version"])
            .then_some(s)
    });
    assert_eq!(s["last_reload"]["ok"], true, "{s}");
}
