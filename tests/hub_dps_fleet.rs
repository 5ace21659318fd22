//! DPS for a fleet (SPEC §13), with the unmodified Azure IoT device SDK
//! (`.venv-azure`), many devices at once from one python process
//! (`tests/hub/dps_fleet.py`, one thread per device, 25 at a time):
//!
//! - two ztpd hubs sharing one enrollment key and one `[[dps.hubs]]` list
//!   split 100 registrations by weight; each device connects to the hub it
//!   was assigned, and registering again, at the other hub, gives the same;
//! - `kill -9` during a burst of registrations leaves no half identity, and
//!   the devices register again after the restart under their names.
//!
//! The SDK dials port 8883 of the host it is given: each test has a network
//! namespace of its own. The two hubs are two loopback addresses of one
//! namespace (127.0.0.2 and 127.0.0.3, both on port 8883), used as their
//! host names: the SDK checks them against the certificate's IP names.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;
use support::netns::Namespaces;
use support::Daemon;
use ztpd::credentials::dps::{assign, AssignedHub};

/// The enrollment key the two hubs share (a test key, 64 random bytes).
const GROUP_KEY: &str =
    "m9VLw8Y00D6/PgAlyQnhLGxwFNECLpgMel6sXBzQSrhutlGwnpU/ZmNpJU9Hrn/Ii05zgu7MEGhjvBOEfr4mVA==";
const SCOPE: &str = "0ne00F1EE7";
const HUB_A: &str = "127.0.0.2";
const HUB_B: &str = "127.0.0.3";
const WEIGHT_A: u32 = 3;
const WEIGHT_B: u32 = 1;
const DEVICES: usize = 100;

/// `dps_fleet.py ARGS` in namespace `ns`, to its end: whether it ended
/// well, and one JSON value per device it finished.
fn run_fleet(python: &Path, ns: &str, args: &[&str]) -> (bool, Vec<Value>, String) {
    let out = support::azure::run_driver(python, ns, "dps_fleet.py", args);
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let err = format!("({}) {}", out.status, String::from_utf8_lossy(&out.stderr));
    (out.status.success(), lines, err)
}

/// [`run_fleet`], which must end well.
fn fleet(python: &Path, ns: &str, args: &[&str]) -> Vec<Value> {
    let (ok, lines, err) = run_fleet(python, ns, args);
    assert!(ok, "the SDK fleet driver failed: {err}");
    lines
}

/// `hub.toml` of hub `me`: the shared key file, scope and hub list; the
/// provisioning host is the hub itself (DNS for it may name any hub).
fn hub_toml(me: &str, key_file: &Path) -> String {
    format!(
        "hostname = \"{me}\"\nbroker = \"mqtts://{me}:8883\"\n\
         enrollment_key_file = \"{}\"\nid_scope = \"{SCOPE}\"\nprovisioning_host = \"{me}\"\n\
         [[dps.hubs]]\nhostname = \"{HUB_A}\"\nweight = {WEIGHT_A}\n\
         [[dps.hubs]]\nhostname = \"{HUB_B}\"\nweight = {WEIGHT_B}\n",
        key_file.display()
    )
}

fn hub(ns: &str, me: &str, key_file: &Path, ca_from: Option<&Daemon>) -> Daemon {
    let root = support::fixtures::temp_root("good");
    let dir = root.path().join("azure_mqtt_credentials");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hub.toml"), hub_toml(me, key_file)).unwrap();
    // One CA for the fleet: the second hub is given the first one's, so a
    // device trusts every hub it may be sent to.
    if let Some(first) = ca_from {
        let state = root.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        for f in ["hub-ca.pem", "hub-ca.key"] {
            std::fs::copy(first.path(&format!("state/{f}")), state.join(f)).unwrap();
        }
    }
    Daemon::builder()
        .owned_root(root)
        .netns(ns)
        .broker(&format!("tls_listen = \"{me}:8883\"\n"))
        .start()
}

/// Device ids with telemetry stored by `d`.
fn stored_devices(d: &Daemon) -> BTreeSet<String> {
    let out = d.cli(&["analyze", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s["device_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn two_hubs_split_a_fleet_by_weight_and_keep_each_device_on_its_hub() {
    const NS: &str = "ztpt-dps-two";
    let Some(python) = support::azure::sdk_python("two hubs") else {
        return;
    };
    Namespaces::remove_leftovers(NS);
    let mut ns = Namespaces::default();
    ns.add(NS);
    let shared = tempfile::tempdir().unwrap();
    let key_file = shared.path().join("enrollment.key");
    std::fs::write(&key_file, GROUP_KEY).unwrap();
    let a = hub(NS, HUB_A, &key_file, None);
    let b = hub(NS, HUB_B, &key_file, Some(&a));
    let ca = a.path("state/hub-ca.pem");
    let count = DEVICES.to_string();
    // Device i registers at hub i % 2, then again at the other one.
    let results = fleet(
        &python,
        NS,
        &[
            "fleet",
            ca.to_str().unwrap(),
            SCOPE,
            GROUP_KEY,
            "two",
            &count,
            HUB_A,
            HUB_B,
        ],
    );
    assert_eq!(results.len(), DEVICES);
    let hubs = [
        AssignedHub {
            hostname: HUB_A.into(),
            weight: WEIGHT_A,
        },
        AssignedHub {
            hostname: HUB_B.into(),
            weight: WEIGHT_B,
        },
    ];
    let mut on: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for r in &results {
        assert!(r.get("error").is_none(), "{r}");
        let id = r["id"].as_str().unwrap();
        let first = &r["first"];
        assert_eq!(first["status"], "assigned", "{r}");
        assert_eq!(first["device_id"], id, "{r}");
        let hub = first["assigned_hub"].as_str().unwrap();
        // Whichever hub it registered at, the hash every hub computes.
        assert_eq!(Some(hub), assign(&hubs, id), "{r}");
        assert_eq!(r["sent"], true, "{r}");
        assert_eq!(r["second"]["status"], "assigned", "{r}");
        assert_eq!(
            r["second"]["assigned_hub"], hub,
            "registered again at the other hub: {r}"
        );
        on.entry(if hub == HUB_A { HUB_A } else { HUB_B })
            .or_default()
            .insert(id.to_string());
    }
    // The split: hub A's count is binomial(100, 3/4) if the hash behaves as
    // a uniform draw: mean 75, standard deviation sqrt(100 * 3/4 * 1/4) =
    // 4.3. Within 3 of those (62..=88) a right hash passes; a hash that
    // ignored the weights (mean 50) is 5.8 deviations away and fails. The
    // ids are fixed, so the outcome is the same on every run.
    let on_a = on.get(HUB_A).map_or(0, BTreeSet::len);
    assert!((62..=88).contains(&on_a), "{on_a} of {DEVICES} on hub A");
    // Each device's message was stored by the hub it was assigned, and only
    // there: it connected to that hub and was accepted.
    assert_eq!(stored_devices(&a), on[HUB_A]);
    assert_eq!(stored_devices(&b), on[HUB_B]);
}

/// What is half an identity in `device_credentials/` of ids starting with
/// `prefix`: a credential file without its history row (or under another
/// name than its row), a history row without its file. Only whole rows
/// (with their newline) count. Empty when every identity is whole.
fn half_identities(dir: &Path, prefix: &str) -> Vec<String> {
    let history =
        std::fs::read_to_string(dir.join("historical_credentials.csv")).unwrap_or_default();
    let whole = &history[..history.rfind('\n').map_or(0, |i| i + 1)];
    let rows: BTreeMap<String, u64> = whole
        .lines()
        .filter(|l| l.starts_with(prefix))
        .map(|l| {
            let mut f = l.split(',');
            let id = f.next().unwrap().to_string();
            (id, f.next().unwrap().parse().unwrap())
        })
        .collect();
    let mut problems = Vec::new();
    let mut files = BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let Some(id) = name
            .strip_prefix("device_")
            .and_then(|n| n.strip_suffix(".json"))
            .filter(|id| id.starts_with(prefix))
        else {
            continue;
        };
        let v: Value = serde_json::from_slice(&std::fs::read(dir.join(&name)).unwrap())
            .unwrap_or_else(|e| panic!("{name} is not whole: {e}"));
        match rows.get(id) {
            Some(n) if v["device_name"] == *n => {}
            Some(n) => problems.push(format!(
                "{name} has device_name {} but its row {n}",
                v["device_name"]
            )),
            None => problems.push(format!("{name} has no history row")),
        }
        files.insert(id.to_string());
    }
    for id in rows.keys().filter(|id| !files.contains(*id)) {
        problems.push(format!("history row of {id} has no credential file"));
    }
    problems.sort();
    problems
}

#[test]
fn a_half_identity_is_seen() {
    let d = tempfile::tempdir().unwrap();
    let history =
        "device_id,device_name,credential_creation_date\ncr-1,1000001,x\ncr-2,1000002,x\n";
    std::fs::write(d.path().join("historical_credentials.csv"), history).unwrap();
    let file = |id: &str, name: u64| {
        std::fs::write(
            d.path().join(format!("device_{id}.json")),
            format!("{{\"device_id\":\"{id}\",\"device_name\":{name}}}"),
        )
        .unwrap()
    };
    file("cr-1", 1000001);
    file("cr-2", 1000002);
    assert_eq!(half_identities(d.path(), "cr-"), Vec::<String>::new());
    file("cr-3", 1000003);
    file("cr-2", 1000007);
    std::fs::remove_file(d.path().join("device_cr-1.json")).unwrap();
    assert_eq!(
        half_identities(d.path(), "cr-"),
        [
            "device_cr-2.json has device_name 1000007 but its row 1000002",
            "device_cr-3.json has no history row",
            "history row of cr-1 has no credential file"
        ]
    );
}

#[test]
fn kill_9_during_a_burst_of_registrations_leaves_no_half_identity() {
    const NS: &str = "ztpt-dps-crash";
    const BURST: usize = 100;
    let Some(python) = support::azure::sdk_python("DPS crash") else {
        return;
    };
    let (_ns, mut d) = support::azure::hub_in_netns(NS);
    let (ca, scope, key) = support::azure::flashed(&d);
    let count = BURST.to_string();
    let args = ["burst", &ca, &scope, &key, "crash", &count, "localhost"];
    let creds = d.path("device_credentials");
    let history = creds.join("historical_credentials.csv");
    let rows = || {
        std::fs::read_to_string(&history)
            .unwrap_or_default()
            .matches("\ncrash-")
            .count()
    };
    // The kill comes once 30 identities are written, while the rest of
    // the burst is registering.
    let burst = std::thread::scope(|s| {
        let burst = s.spawn(|| run_fleet(&python, NS, &args).1);
        d.wait_for(
            "30 registrations",
            std::time::Duration::from_secs(60),
            || (rows() >= 30).then_some(()),
        );
        d.kill9();
        // The SDK waits out its own timeouts on a dead hub: end the burst.
        support::tools::sh(&format!("ip netns pids {NS} | xargs -r kill -9"));
        burst.join().unwrap()
    });
    let done = burst.iter().filter(|r| r.get("first").is_some()).count();
    assert!(done < BURST, "the kill came after the whole burst");
    d.restart();
    assert_eq!(half_identities(&creds, "crash-"), Vec::<String>::new());
    let before: BTreeMap<String, u64> = std::fs::read_to_string(&history)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("crash-"))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[1].parse().unwrap())
        })
        .collect();
    assert!(before.len() >= 30, "{before:?}");

    // Every device registers again, those with an identity under its name.
    for r in fleet(&python, NS, &args) {
        assert!(r.get("error").is_none(), "{r}");
        assert_eq!(r["first"]["status"], "assigned", "{r}");
    }
    assert_eq!(half_identities(&creds, "crash-"), Vec::<String>::new());
    for (id, name) in &before {
        let v: Value = serde_json::from_slice(
            &std::fs::read(creds.join(format!("device_{id}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(v["device_name"], *name, "{id}");
    }
    assert_eq!(
        std::fs::read_dir(&creds)
            .unwrap()
            .filter(|e| e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("device_crash-"))
            .count(),
        BURST
    );
}
