//! The local hub as an Azure Device Provisioning Service (SPEC §13), with
//! the unmodified Azure IoT device SDK (`azure-iot-device==2.14.0`, in
//! `.venv-azure`): `ProvisioningDeviceClient.create_from_symmetric_key`
//! registers with a key derived from the enrollment key, then
//! `IoTHubDeviceClient` connects to the hub it was assigned and sends
//! telemetry. The driver is `tests/hub/dps_device.py`.
//!
//! The SDK dials port 8883 of the host it is given and has no setting for
//! the port, so ztpd and the SDK run in a network namespace of their own
//! (`ztpt-dps`), where 127.0.0.1:8883 is free whatever else runs.

mod support;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::Daemon;

const NS: &str = "ztpt-dps";
/// The planned sensor of tests/fixtures/good.
const PLANNED: &str = "24c319455312bcd559b333c986024211";
const OTHER_KEY: &str =
    "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";

/// Run the driver inside the namespace; its JSON lines.
fn driver(python: &Path, args: &[&str]) -> Vec<Value> {
    let out = support::azure::run_driver(python, NS, "dps_device.py", args);
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        out.status.success(),
        "the SDK driver failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    lines
}

fn line<'a>(lines: &'a [Value], key: &str) -> &'a Value {
    lines
        .iter()
        .find_map(|l| l.get(key))
        .unwrap_or_else(|| panic!("no `{key}` line in {lines:?}"))
}

fn device_name(d: &Daemon, id: &str) -> u64 {
    let path = d.path(&format!("device_credentials/device_{id}.json"));
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    v["device_name"].as_u64().unwrap()
}

#[test]
fn the_azure_sdk_registers_through_dps_then_sends_to_its_assigned_hub() {
    let Some(python) = support::azure::sdk_python("hub_dps") else {
        return;
    };
    let (_ns, d) = support::azure::hub_in_netns(NS);
    let (ca, scope, group_key) = support::azure::flashed(&d);
    let (ca, scope, group_key) = (ca.as_str(), scope.as_str(), group_key.as_str());
    let id = "sn-dps-0001";

    let lines = driver(
        &python,
        &[
            "full",
            ca,
            "localhost",
            scope,
            group_key,
            OTHER_KEY,
            id,
            "20",
        ],
    );
    // A new identity, written within the request: assigned at once.
    let first = line(&lines, "registered");
    assert_eq!(first["status"], "assigned", "{first}");
    assert_eq!(first["assigned_hub"], "localhost", "{first}");
    assert_eq!(first["device_id"], id, "{first}");
    assert_eq!(first["sub_status"], "initialAssignment", "{first}");
    assert_eq!(line(&lines, "sent"), 20);
    // A known device: answered at once, keeping its name.
    let again = line(&lines, "reregistered");
    assert_eq!(again["status"], "assigned", "{again}");
    assert_eq!(
        again["sub_status"], "reprovisionedToInitialAssignment",
        "{again}"
    );
    // A key derived from another enrollment key: refused at CONNECT.
    let forged = line(&lines, "forged");
    assert_ne!(forged, "registered", "{lines:?}");

    // The identity as `ztpd credentials create` writes it: 0600 file and
    // one history row per write, the name kept.
    let cred = d.path(&format!("device_credentials/device_{id}.json"));
    let mode = std::fs::metadata(&cred).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let name = device_name(&d, id);
    let history =
        std::fs::read_to_string(d.path("device_credentials/historical_credentials.csv")).unwrap();
    let rows: Vec<&str> = history.lines().filter(|l| l.contains(id)).collect();
    assert_eq!(rows.len(), 2, "two registrations, two rows:\n{history}");
    assert!(
        rows.iter().all(|r| r.contains(&name.to_string())),
        "{rows:?}"
    );

    // The 20 messages are stored.
    let out = d.cli(&["analyze", "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let stored = v
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["device_id"] == id)
        .map(|s| s["count"].clone());
    assert_eq!(stored, Some(Value::from(20)), "{v}");

    // The operator sees the identity and the last payload; others do not.
    let (code, devices) = d.api("/api/v1/hub/devices");
    assert_eq!(code, 200, "{devices}");
    let me = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["device_id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not in {devices}"));
    assert_eq!(me["registration_payload"]["fw"], "1.1", "{me}");
    assert_eq!(me["device_name"], name, "{me}");
    assert_eq!(me["connected"], false, "{me}");
    assert!(me["registered_at"].is_string(), "{me}");
    assert!(me["planned"].is_null(), "{me}");
    let planned = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["device_id"] == PLANNED)
        .unwrap();
    assert_eq!(planned["planned"], "sensor-0001", "{planned}");
    let (code, _) = d.get("/api/v1/hub/devices");
    assert_eq!(code, 401, "the hub's devices need the operator token");

    registration_waits_for_a_locked_credentials_directory(&d, &python, [ca, scope, group_key]);

    // allow = "planned": an unplanned id is refused, a planned one registers.
    std::fs::create_dir_all(d.path("azure_mqtt_credentials")).unwrap();
    std::fs::write(
        d.path("azure_mqtt_credentials/hub.toml"),
        format!(
            "hostname = \"localhost\"\nbroker = \"mqtt://127.0.0.1:1883\"\n\
             enrollment_key = \"{group_key}\"\nid_scope = \"{scope}\"\n[dps]\nallow = \"planned\"\n"
        ),
    )
    .unwrap();
    let refused = poll_refusal(&d, &python, [ca, "localhost", scope, group_key]);
    assert!(
        !d.path(&format!("device_credentials/device_{refused}.json"))
            .exists(),
        "a refused registration writes no identity"
    );
    let ok = driver(
        &python,
        &["register", ca, "localhost", scope, group_key, PLANNED],
    );
    let r = line(&ok, "result");
    assert_eq!(r["status"], "assigned", "{r}");
    assert_eq!(r["device_id"], PLANNED, "{r}");

    desired_properties_reach_the_sdk(&d, &python, [ca, scope, group_key], id);
}

/// SPEC §13 desired properties: an API PATCH reaches a connected SDK
/// client; a reconnecting client's get_twin() shows it; the plan's keys
/// are refused with 409 naming the plan file.
fn desired_properties_reach_the_sdk(
    d: &Daemon,
    python: &Path,
    [ca, scope, key]: [&str; 3],
    id: &str,
) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hub/dps_device.py");
    let mut child = support::tools::ChildGuard::spawn(
        Command::new("timeout")
            .args(["120", "ip", "netns", "exec", NS])
            .arg(python)
            .arg(script)
            .args(["twin", ca, "localhost", scope, key, id, "interval"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    );
    let mut lines = BufReader::new(child.child().stdout.take().unwrap()).lines();
    let mut next = |what: &str| -> Value {
        let l = lines
            .next()
            .unwrap_or_else(|| panic!("the SDK client ended before `{what}`"))
            .unwrap();
        let v: Value = serde_json::from_str(&l).unwrap();
        v.get(what)
            .cloned()
            .unwrap_or_else(|| panic!("wanted `{what}`, got {v}"))
    };
    assert_eq!(next("ready"), true);
    direct_methods_reach_the_sdk(d, id);
    let path = format!("/api/v1/hub/devices/{id}/twin");
    let (code, twin) = d.api_patch(
        &path,
        r#"{"desired": {"interval": 5, "limits": {"hi": 3}}}"#,
    );
    assert_eq!(code, 200, "{twin}");
    assert_eq!(twin["desired"]["interval"], 5, "{twin}");
    let patch = next("desired");
    assert_eq!(patch["interval"], 5, "{patch}");
    assert_eq!(
        patch["$version"], twin["desired"]["$version"],
        "{patch} {twin}"
    );
    let reread = next("twin");
    assert_eq!(reread["desired"]["interval"], 5, "{reread}");
    assert_eq!(reread["desired"]["limits"]["hi"], 3, "{reread}");
    assert!(child.child().wait().unwrap().success());

    // null deletes; the operator's view has versions
    let (code, twin) = d.api_patch(&path, r#"{"desired": {"limits": {"hi": null}}}"#);
    assert_eq!(code, 200, "{twin}");
    assert_eq!(twin["desired"]["limits"], serde_json::json!({}), "{twin}");
    assert!(twin["reported"]["$version"].is_u64(), "{twin}");

    // the plan owns device_function and tags: 409 naming the plan file
    let planned = format!("/api/v1/hub/devices/{PLANNED}/twin");
    let (code, body) = d.api_patch(&planned, r#"{"desired": {"device_function": {}}}"#);
    assert_eq!(code, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains(".toml"), "{body}");
    let (code, body) = d.api_patch(&planned, r#"{"tags": {"site": "x"}}"#);
    assert_eq!(code, 409, "{body}");
    let (code, twin) = d.api(&planned);
    assert_eq!(code, 200, "{twin}");
    assert_eq!(twin["tags"]["name"], "sensor-0001", "{twin}");
    assert_eq!(twin["tags"]["rack"], "r12", "a plan tag: {twin}");
    assert!(twin["desired"]["device_function"].is_object(), "{twin}");
    // unknown devices, bad bodies, and callers without the operator token
    let (code, _) = d.api_patch("/api/v1/hub/devices/nobody/twin", r#"{"desired": {}}"#);
    assert_eq!(code, 404);
    let (code, _) = d.api_patch(&path, r#"{"desired": 1}"#);
    assert_eq!(code, 400);
    let (code, _) = d.request("PATCH", &path, &[], Some(r#"{"desired": {"x": 1}}"#));
    assert_eq!(code, 401);
    let (code, _) = d.get(&path);
    assert_eq!(code, 401);

    // The client is gone: a method call finds nobody.
    let (code, body) = d.api_post(&format!("/api/v1/hub/devices/{id}/methods/echo"), "{}");
    assert_eq!(code, 404, "{body}");

    // The same through `ztpd hub`.
    let (ok, info) = hub_cli(d, &["info", "--format", "json"]);
    assert!(ok, "{info}");
    assert_eq!(info["id_scope"], scope, "{info}");
    assert_eq!(info["provisioning_host"], "localhost", "{info}");
    assert!(
        info["ca"].as_str().unwrap().ends_with("hub-ca.pem"),
        "{info}"
    );
    let (ok, devices) = hub_cli(d, &["devices", "--format", "json"]);
    assert!(
        ok && devices
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["device_id"] == id),
        "{devices}"
    );
    let (ok, twin) = hub_cli(d, &["twin", id, "--set", "interval=9", "--format", "json"]);
    assert!(ok, "{twin}");
    assert_eq!(twin["desired"]["interval"], 9, "{twin}");
    let (ok, _) = hub_cli(d, &["invoke", id, "echo", "--timeout", "5s"]);
    assert!(!ok, "a method on a disconnected device fails");
}

/// `ztpd hub ARGS` inside the daemon's namespace: success, and its JSON.
fn hub_cli(d: &Daemon, args: &[&str]) -> (bool, Value) {
    let out = Command::new("ip")
        .args(["netns", "exec", NS, env!("CARGO_BIN_EXE_ztpd"), "--config"])
        .arg(d.path("ztpd.toml"))
        .arg("hub")
        .args(args)
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), v)
}

/// SPEC §13 direct methods against the connected SDK client of `id`.
fn direct_methods_reach_the_sdk(d: &Daemon, id: &str) {
    let echo = format!("/api/v1/hub/devices/{id}/methods/echo");
    // The SDK subscribes to methods just after connect() returns: until it
    // has, a call is 404 (not subscribed).
    let (code, body) = d.wait_for(
        "the SDK's method subscription",
        Duration::from_secs(20),
        || {
            let (code, body) = d.api_post(&echo, r#"{"payload": {"n": 7}, "timeout": "10s"}"#);
            (code != 404).then_some((code, body))
        },
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], 201, "{body}");
    assert_eq!(
        body["payload"],
        serde_json::json!({"name": "echo", "got": {"n": 7}})
    );
    let started = std::time::Instant::now();
    let silent = format!("/api/v1/hub/devices/{id}/methods/silent");
    let (code, body) = d.api_post(&silent, r#"{"payload": 1, "timeout": "5s"}"#);
    assert_eq!(code, 504, "{body}");
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "answered before its timeout"
    );
    let big = format!(r#"{{"payload": "{}"}}"#, "x".repeat(130 * 1024));
    let (code, _) = d.api_post(&echo, &big);
    assert_eq!(code, 413);
    let (code, _) = d.api_post(&echo, r#"{"timeout": "1s"}"#);
    assert_eq!(code, 400, "a timeout under 5 s is refused");
    let (code, _) = d.post(&echo, "{}", &[]);
    assert_eq!(code, 401, "methods need the operator token");
}

/// The `assigning` path (SPEC §13): while another writer (`ztpd
/// credentials create`, say) holds the credentials directory's lock, a
/// registration cannot be written within the request: it is answered `202
/// assigning`, the SDK polls after `retry-after`, and once the lock is
/// released its poll gets `assigned`.
fn registration_waits_for_a_locked_credentials_directory(
    d: &Daemon,
    python: &Path,
    [ca, scope, group_key]: [&str; 3],
) {
    use std::os::unix::io::AsRawFd;
    let id = "sn-dps-waits";
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(d.path("device_credentials/.lock"))
        .unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0);
    let registering = std::thread::spawn({
        let python = python.to_path_buf();
        let args: Vec<String> = ["register", ca, "localhost", scope, group_key, id]
            .map(String::from)
            .into();
        move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            driver(&python, &args)
        }
    });
    d.wait_log("identity not written yet: answered assigning", 1);
    assert!(
        !d.path(&format!("device_credentials/device_{id}.json"))
            .exists(),
        "written while the directory was locked"
    );
    drop(lock);
    let lines = registering.join().unwrap();
    let r = line(&lines, "result");
    assert_eq!(r["status"], "assigned", "{r}");
    assert_eq!(r["device_id"], id, "{r}");
    assert_eq!(r["sub_status"], "initialAssignment", "{r}");
    assert!(d
        .path(&format!("device_credentials/device_{id}.json"))
        .exists());
}

/// Register a new unplanned id each time until one is refused (the
/// reloaded hub.toml applies), at most 30 s: the refused id.
fn poll_refusal(d: &Daemon, python: &Path, args: [&str; 4]) -> String {
    let mut n = 0;
    d.wait_for("allow = planned to apply", Duration::from_secs(30), || {
        n += 1;
        let id = format!("sn-dps-late-{n}");
        let mut argv = vec!["register"];
        argv.extend_from_slice(&args);
        argv.push(&id);
        let lines = driver(python, &argv);
        let v = lines.first().cloned().unwrap_or_default();
        v.get("error").is_some().then_some(id)
    })
}
