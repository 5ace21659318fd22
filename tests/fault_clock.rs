//! Fault suite (issue #15): the daemon's wall clock jumps forward and back.
//!
//! This is fault injection of the clock: libfaketime is preloaded into the
//! daemon process alone (`support::faketime`), its offset rewritten by the
//! test; the machine's clock is never changed, and the monotonic clock
//! stays real, as in a real jump (NTP stepping, an operator, a board
//! without RTC syncing late).
//!
//! What "behave" means, from SPEC §4, §8, §9 and the code:
//! - **Leases** expire by the wall clock: they are stored as absolute Unix
//!   times so that they survive restarts, as Kea's do. A backward jump
//!   expires nothing and never gives a held address to another client; a
//!   forward jump past a lease's end frees it for others, as wall time says,
//!   and the old holder does not get it back while another holds it.
//! - **SAS tokens** carry an absolute expiry (`se`) set by the device: they
//!   are valid exactly while the daemon's wall clock is before it, in both
//!   directions.
//! - **Rollout timers** (`pause_between`, `device_timeout`) measure time that
//!   really passed: a forward jump fires neither early, a backward jump holds
//!   neither for the size of the jump. **Windows** are times of day in local
//!   time: a batch starts when the wall clock enters the window, not before.
//!
//! The lease test needs root (network namespaces): run the file with
//! `flock /tmp/ztpd-netns.lock cargo test --test fault_clock`.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::faketime::FakeClock;
use support::netns::Lab;
use support::Daemon;

const HOUR: i64 = 3600;
const WAIT: Duration = Duration::from_secs(60);

fn real_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// --- leases ------------------------------------------------------------------

#[test]
fn leases_follow_the_wall_clock_without_double_grants() {
    let dir = tempfile::tempdir().unwrap();
    let Some(clock) = FakeClock::new("lease clock jumps", dir.path()) else {
        return;
    };
    // One pool address: who holds it is the whole question. Lease time 1h.
    let plan = Lab::plan().replace(
        "pool = \"10.201.0.100-10.201.0.104\"",
        "pool = \"10.201.0.100-10.201.0.100\"",
    );
    let Some(lab) = Lab::build("clk", "fsync", &plan, |_, b| clock.apply(b)) else {
        return;
    };
    let (a, b) = ("02:00:00:00:0c:01", "02:00:00:00:0c:02");
    // A refused client gives up after two short tries.
    let short = ["-t", "2", "-T", "1"];
    let exhausted = "ztpd_dhcp_dropped_total{reason=\"pool_exhausted\"}";

    let x = lab.udhcpc(a, &[]).expect("A bound")["ip"].clone();
    assert_eq!(x, "10.201.0.100");
    assert!(lab.udhcpc(b, &short).is_none(), "the pool has one address");
    let refused = lab.daemon.metric(exhausted);
    assert!(refused >= 1);

    // Back two hours: A's lease has not expired, B still gets nothing.
    clock.set(-2 * HOUR);
    assert!(
        lab.udhcpc(b, &short).is_none(),
        "a backward jump gave A's address to B"
    );
    assert!(lab.daemon.metric(exhausted) > refused);
    let again = lab
        .udhcpc(a, &[])
        .expect("A renews after the backward jump");
    assert_eq!(again["ip"], x, "A keeps its address");
    // (A's renewal, at the earlier wall time, now ends at real time - 1h.)

    // Forward to two hours ahead: A's lease has ended by the wall clock;
    // the address goes to B, and A does not get it back while B holds it.
    clock.set(2 * HOUR);
    let got = lab
        .udhcpc(b, &[])
        .expect("B leased once A's lease ended by the wall clock");
    assert_eq!(got["ip"], x);
    let refused = lab.daemon.metric(exhausted);
    assert!(lab.udhcpc(a, &short).is_none(), "A got the address B holds");
    assert!(lab.daemon.metric(exhausted) > refused);
}

// --- SAS tokens --------------------------------------------------------------

const SENSOR: &str = "24c319455312bcd559b333c986024211";

#[test]
fn sas_tokens_expire_as_the_wall_clock_says() {
    let dir = tempfile::tempdir().unwrap();
    let Some(clock) = FakeClock::new("SAS clock jumps", dir.path()) else {
        return;
    };
    let d = clock.apply(Daemon::builder().fixture("good")).start();
    let cred = d.path(&format!("device_credentials/device_{SENSOR}.json"));
    d.wait_for("the sensor's credential", WAIT, || {
        std::fs::metadata(&cred).ok()
    });
    let hub = ztpd::credentials::hub::load_from(
        &d.root.join("azure_mqtt_credentials/hub.toml"),
        &d.root.join("state"),
        "mqtt://127.0.0.1:1883",
    )
    .expect("the daemon's local hub");
    let path = format!("/files/credentials/device_{SENSOR}.json");
    let get = |token: &str| d.request("GET", &path, &[("Authorization", token)], None).0;
    let now = real_now();
    let fresh = hub.sas_token(SENSOR, now + 1800);
    let stale = hub.sas_token(SENSOR, now - 1800);

    assert_eq!(get(&fresh), 200);
    assert_eq!(get(&stale), 403);
    clock.set(HOUR);
    assert_eq!(
        get(&fresh),
        403,
        "an hour later by the wall clock it has expired"
    );
    clock.set(-HOUR);
    assert_eq!(get(&fresh), 200, "an hour earlier it is valid again");
    assert_eq!(
        get(&stale),
        200,
        "and so is one that expires before real time, but after the daemon's"
    );
    clock.set(0);
    assert_eq!(get(&stale), 403);
}

// --- rollouts ----------------------------------------------------------------

const LEAF1: &str = "JPE87654321";
const LEAF2: &str = "JPE87654322";
const SPINE1: &str = "JPE12345678";

fn leaf_hello(d: &Daemon, serial: &str, port: &str, version: &str) -> u16 {
    let body = json!({
        "serial": serial, "model": "DCS-7050SX-64", "version": version,
        "neighbors": [{"local_port": "Ethernet49", "remote_device": "spine1", "remote_port": port}]
    });
    d.post("/ztp/v1/hello", &body.to_string(), &[]).0
}

/// The one pending action of `serial`, waiting for it (long-poll).
fn action(d: &Daemon, serial: &str) -> String {
    let (code, text) = d.get(&format!("/ztp/v1/devices/{serial}/actions?wait=20"));
    assert_eq!(code, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let a = v["actions"].as_array().unwrap();
    assert_eq!(a.len(), 1, "{serial}: {v}");
    a[0]["id"].as_str().unwrap().to_string()
}

fn progress(d: &Daemon, serial: &str, body: Value) {
    let path = format!("/ztp/v1/devices/{serial}/progress");
    let (code, v) = d.post(&path, &body.to_string(), &[]);
    assert_eq!(code, 200, "{serial} {body}: {v}");
}

/// leaf1 upgrades to the target and reports it for `action`.
fn deploy(d: &Daemon, serial: &str, port: &str, action: &str) {
    progress(d, serial, json!({"stage": "downloading", "action": action}));
    assert_eq!(leaf_hello(d, serial, port, "4.30.1F"), 200);
    progress(
        d,
        serial,
        json!({"stage": "deployed", "version": "4.30.1F", "action": action}),
    );
}

fn create(d: &Daemon, body: Value) -> String {
    let (code, r) = d.api_post("/api/v1/rollouts", &body.to_string());
    assert_eq!(code, 201, "{body}: {r}");
    r["id"].as_str().unwrap().to_string()
}

fn rollout(d: &Daemon, id: &str) -> Value {
    let (code, v) = d.api(&format!("/api/v1/rollouts/{id}"));
    assert_eq!(code, 200, "{v}");
    v
}

fn wait_rollout(d: &Daemon, id: &str, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    d.wait_for(what, WAIT, || {
        let v = rollout(d, id);
        f(&v).then_some(v)
    })
}

fn device<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {r}"))
}

fn abort(d: &Daemon, id: &str) {
    let (code, v) = d.api_post(&format!("/api/v1/rollouts/{id}/abort"), "");
    assert_eq!(code, 200, "{v}");
}

/// `HH:MM` of the local time `secs` from now (real time).
fn local_hhmm(secs: i64) -> String {
    (chrono::Local::now() + chrono::Duration::seconds(secs))
        .format("%H:%M")
        .to_string()
}

#[test]
fn rollout_timers_neither_fire_early_nor_hang_and_windows_follow_the_clock() {
    let dir = tempfile::tempdir().unwrap();
    let Some(clock) = FakeClock::new("rollout clock jumps", dir.path()) else {
        return;
    };
    let d = clock.apply(Daemon::builder().fixture("good")).start();
    assert_eq!(leaf_hello(&d, LEAF1, "Ethernet1", "4.29"), 200);
    assert_eq!(leaf_hello(&d, LEAF2, "Ethernet2", "4.29"), 200);
    let spine = json!({
        "serial": SPINE1, "model": "DCS-7280SR-48C6", "version": "4.29",
        "neighbors": [
            {"local_port": "Ethernet1", "remote_device": "leaf1", "remote_port": "Ethernet49"},
            {"local_port": "Ethernet2", "remote_device": "leaf2", "remote_port": "Ethernet49"}]
    });
    let (code, v) = d.post("/ztp/v1/hello", &spine.to_string(), &[]);
    assert_eq!(code, 200, "{v}");

    // A witness: spine1, in a rollout of its own, reports progress on
    // demand. Each report wakes the runner, whose tick judges every active
    // rollout at the same time; the report showing up in the witness's
    // rollout proves that tick ran (no sleeping to "let timers fire").
    let (code, v) = d.api_post(
        "/api/v1/groups",
        r#"{"name":"spines","devices":["spine1"]}"#,
    );
    assert_eq!(code, 201, "{v}");
    let witness = create(
        &d,
        json!({"group": "spines", "kind": "config", "policy": {"device_timeout": "24h"}}),
    );
    let spine_action = action(&d, SPINE1);
    let tick = |stage: &str| {
        progress(&d, SPINE1, json!({"stage": stage, "action": spine_action}));
        wait_rollout(&d, &witness, &format!("the witness's {stage} tick"), |r| {
            device(r, "spine1")["stage"] == stage
        });
    };

    let r1 = create(
        &d,
        json!({"group": "leafs-floor1", "kind": "software", "policy": {
            "batch_size": 1, "canary": 0, "max_failures": 0,
            "pause_between": "1h", "device_timeout": "1h"}}),
    );
    let a1 = action(&d, LEAF1);

    // 1. Forward two hours, past device_timeout: leaf1 has not really had
    //    an hour, so it has not timed out.
    clock.set(2 * HOUR);
    tick("downloading");
    let r = rollout(&d, &r1);
    assert_eq!(
        device(&r, "leaf1")["state"],
        "notified",
        "a forward jump fired device_timeout early: {r}"
    );

    // 2. leaf1 succeeds; the second batch waits pause_between (1h). Forward
    //    two more hours: that pause has not really passed either.
    deploy(&d, LEAF1, "Ethernet1", &a1);
    wait_rollout(&d, &r1, "the first batch to finish", |r| {
        r["batches"][0]["state"] == "done"
    });
    clock.set(4 * HOUR);
    tick("installing");
    let r = rollout(&d, &r1);
    assert_eq!(
        r["batches"][1]["state"], "pending",
        "a forward jump ended pause_between early: {r}"
    );
    assert_eq!(device(&r, "leaf2")["state"], "pending", "{r}");
    abort(&d, &r1);

    // 3. Back eight hours during a 5 s pause: the next batch starts when
    //    the 5 s have really passed, not eight hours later.
    let r3 = create(
        &d,
        json!({"group": "leafs-floor1", "kind": "software", "policy": {
            "batch_size": 1, "canary": 0, "max_failures": 0,
            "pause_between": "5s", "device_timeout": "1h"}}),
    );
    let a3 = action(&d, LEAF1);
    deploy(&d, LEAF1, "Ethernet1", &a3);
    wait_rollout(&d, &r3, "the first batch to finish", |r| {
        r["batches"][0]["state"] == "done"
    });
    clock.set(-4 * HOUR);
    let r = rollout(&d, &r3);
    assert_eq!(
        r["batches"][1]["state"], "pending",
        "the jump must land inside the 5 s pause (machine too slow?): {r}"
    );
    wait_rollout(&d, &r3, "the second batch after a backward jump", |r| {
        r["batches"][1]["state"] == "running"
    });
    abort(&d, &r3);

    // 4. A window that opens one hour from real time: with the clock four
    //    hours back the rollout waits; set forward into the window, it runs.
    let window = format!("{}-{}", local_hhmm(HOUR), local_hhmm(2 * HOUR));
    let r4 = create(
        &d,
        json!({"group": "leafs-floor1", "kind": "software", "policy": {
            "batch_size": 1, "canary": 0, "window": window}}),
    );
    let r = wait_rollout(&d, &r4, "waiting for the window", |r| {
        r["state"] == "waiting_window"
    });
    assert_eq!(r["batches"][0]["state"], "pending", "{r}");
    tick("rebooting");
    assert_eq!(rollout(&d, &r4)["state"], "waiting_window");
    clock.set(HOUR + HOUR / 2);
    let r = wait_rollout(&d, &r4, "the window to open", |r| {
        r["batches"][0]["state"] == "running"
    });
    assert_eq!(r["state"], "running", "{r}");
}
