//! Message routing end to end (SPEC §14): `ztpd run` with a routes.toml,
//! the unmodified Azure IoT device SDK (`.venv-azure`, driver
//! `tests/hub/routed_device.py`) sending through the local hub's TLS
//! listener, and real endpoints: nx-27017 (MongoDB wire) for the `mongodb`
//! endpoints and the telemetry collection, a real HTTP server as the
//! webhook, and Mosquitto with a real `mosquitto_sub` for the `mqtt`
//! endpoint.
//!
//! The SDK dials port 8883 of `localhost` and has no port setting, so this
//! daemon's TLS listener is on 127.0.0.1:8883 (test binaries run one after
//! another; hub_azure_sdk uses the same port).

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::mqtt::{Devicebound, Mosquitto};
use support::{mongo, Daemon};

/// The planned sensor of tests/fixtures/good (it has a device function).
const SENSOR: &str = "24c319455312bcd559b333c986024211";
const DB: &str = "routing_sdk";
const EVENTS: &str = "readings";
const ROUNDS: usize = 5;
const WAIT: Duration = Duration::from_secs(60);

/// Both tests listen on 8883: one at a time.
static PORT_8883: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn routes(hook: &str) -> String {
    // The receiver's user and password in the URL, as operators write
    // them: sent as Basic authorization, never as part of the host.
    let hook_with_password = hook.replacen("http://", "http://ingest:s3cret@", 1);
    format!(
        r#"[endpoints.alerts]
kind = "mongodb"
collection = "battery_alerts"

[endpoints.ops]
kind = "mqtt"
topic = "ztpd/alerts/{{deviceId}}/{{route}}"

[endpoints.hook]
kind = "webhook"
url = "{hook_with_password}"

[endpoints.twins]
kind = "mongodb"
collection = "twin_changes"

[endpoints.connections]
kind = "mongodb"
collection = "connections"

[endpoints.lifecycle]
kind = "mongodb"
collection = "identities"

[[routes]]
name = "low-battery"
source = "DeviceMessages"
condition = "$body.device_battery_level < 0.2"
endpoints = ["alerts", "events"]

[[routes]]
name = "alarms"
source = "DeviceMessages"
condition = "alarm = 'high'"
endpoints = ["hook", "ops", "events"]

[[routes]]
name = "twin"
source = "TwinChangeEvents"
condition = "true"
endpoints = ["twins"]

[[routes]]
name = "connections"
source = "DeviceConnectionStateEvents"
condition = "$body.opType = 'deviceDisconnected'"
endpoints = ["connections"]

[[routes]]
name = "identities"
source = "DeviceLifecycleEvents"
condition = "opType = 'createDeviceIdentity'"
endpoints = ["lifecycle"]

[fallback]
enabled = true

[[enrichments]]
key = "site"
value = "lab-1"
endpoints = ["alerts"]

[[enrichments]]
key = "hub"
value = "$iothubname"
endpoints = ["alerts"]

[[enrichments]]
key = "planned_as"
value = "$twin.tags.name"
endpoints = ["alerts"]
"#
    )
}

/// Run the SDK driver to its end; its JSON lines.
fn run_device(python: &Path, cred: &Path, ca: &Path, run: u32) -> Vec<Value> {
    let mut child = support::tools::ChildGuard::spawn(
        Command::new("timeout")
            .arg("120")
            .arg(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hub/routed_device.py"))
            .args([cred.to_str().unwrap(), ca.to_str().unwrap()])
            .arg(ROUNDS.to_string())
            .arg(run.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stdout = child.child().stdout.take().unwrap();
    let lines: Vec<Value> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str(&l).ok())
        .collect();
    let status = child.child().wait().unwrap();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.child().stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        panic!("the SDK device failed ({status}): {lines:?}\n{err}");
    }
    lines
}

fn kinds(docs: &[mongodb::bson::Document]) -> Vec<String> {
    let mut k: Vec<String> = docs
        .iter()
        .map(|d| {
            d.get_document("properties")
                .ok()
                .and_then(|p| p.get_str("kind").ok())
                .unwrap_or("?")
                .to_string()
        })
        .collect();
    k.sort();
    k
}

#[test]
fn the_sdk_s_messages_reach_the_endpoints_their_routes_name() {
    let _port = PORT_8883.lock().unwrap_or_else(|e| e.into_inner());
    let Some(python) = support::azure::sdk_python("routing") else {
        return;
    };
    let Some(nx_bin) = support::mqtt::components() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mqtt = Mosquitto::start(&dir.path().join("mqtt"));
    let nx = mongo::Nx::start(&nx_bin, &dir.path().join("nx"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (hook, mut posted) =
        rt.block_on(support::webhook::webhook(Arc::new(AtomicBool::new(true))));

    // routes.toml is there from the start: the sensor's identity, created
    // by the daemon at start, is a lifecycle event its route takes.
    let root = support::fixtures::temp_root("good");
    let file = root.path().join("azure_mqtt_credentials/routes.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, routes(&hook)).unwrap();
    let d = Daemon::builder()
        .owned_root(root)
        .broker("tls_listen = \"127.0.0.1:8883\"\n")
        .settings(&format!(
            "[telemetry]\nbroker = \"{}\"\nmongodb_uri = \"{}\"\ndatabase = \"{DB}\"\ncollection = \"{EVENTS}\"\n",
            mqtt.url(),
            nx.uri()
        ))
        .start();
    let (_, s) = d.api("/api/v1/status");
    assert_eq!(s["routes"]["names"].as_array().unwrap().len(), 5, "{s}");
    let cred = d.path(&format!("device_credentials/device_{SENSOR}.json"));
    d.wait_for("the sensor's credential", WAIT, || {
        cred.is_file().then_some(())
    });
    let sub = Devicebound::subscribe_filter(mqtt.port, &[], "ztpd/alerts/#", ROUNDS);

    let lines = run_device(&python, &cred, &d.path("state/hub-ca.pem"), 0);
    assert!(lines.iter().any(|l| l["sent"] == 4 * ROUNDS), "{lines:?}");
    assert!(lines.iter().any(|l| l["done"] == true), "{lines:?}");

    // Every message was acknowledged, so the mongodb endpoints already hold
    // it: `events` has all of them (by their route or the fallback).
    let uri = nx.uri();
    assert_eq!(
        mongo::count(&uri, DB, EVENTS),
        Some(4 * ROUNDS as u64),
        "collections: {:?}, rejected: {:?}",
        mongo::collection_names(&uri, DB),
        mongo::docs(&uri, DB, &format!("{EVENTS}_rejected")).first()
    );
    // The $body route took the low-battery readings that said they are
    // JSON, not the same reading sent without a content type.
    let alerts = mongo::docs(&uri, DB, "battery_alerts");
    assert_eq!(
        kinds(&alerts),
        vec!["low".to_string(); ROUNDS],
        "{alerts:?}"
    );
    for a in &alerts {
        let props = a.get_document("properties").expect("properties");
        assert_eq!(props.get_str("site"), Ok("lab-1"), "{a}");
        // $twin.tags.* reads the plan: the sensor's device name.
        assert_eq!(props.get_str("planned_as"), Ok("sensor-0001"), "{a}");
        assert!(props.get_str("hub").is_ok_and(|h| !h.is_empty()), "{a}");
        assert_eq!(a.get_str("device_id"), Ok(SENSOR));
        assert_eq!(a.get_str("source"), Ok("DeviceMessages"));
        let sys = a
            .get_document("system_properties")
            .expect("system_properties");
        assert_eq!(sys.get_str("contentType"), Ok("application/json"), "{a}");
        assert!(a.get_str("_id").unwrap().starts_with(&format!("{SENSOR}:")));
    }

    // The property route: webhook and MQTT topic, alarms only.
    for _ in 0..ROUNDS {
        let (topic, v) = sub.next();
        assert_eq!(topic, format!("ztpd/alerts/{SENSOR}/alarms"));
        assert_eq!(v["properties"]["alarm"], "high", "{v}");
        assert_eq!(v["properties"]["kind"], "alarm", "{v}");
    }
    let mut hooked = Vec::new();
    while hooked.len() < ROUNDS {
        let body = rt
            .block_on(async { tokio::time::timeout(WAIT, posted.recv()).await })
            .expect("the webhook got every alarm")
            .unwrap();
        hooked.push(serde_json::from_slice::<Value>(&body).expect("an envelope"));
    }
    assert!(
        hooked
            .iter()
            .all(|v| v["properties"]["kind"] == "alarm" && v["properties"]["alarm"] == "high"),
        "{hooked:?}"
    );

    // The twin change and the disconnect went where their routes say.
    let twins = d.wait_for("the twin change event", WAIT, || {
        let t = mongo::docs(&uri, DB, "twin_changes");
        (!t.is_empty()).then_some(t)
    });
    assert_eq!(
        twins[0].get_str("source"),
        Ok("TwinChangeEvents"),
        "{:?}",
        twins[0]
    );
    let firmware = twins[0]
        .get_document("body")
        .and_then(|b| b.get_document("properties"))
        .and_then(|p| p.get_document("reported"))
        .and_then(|r| r.get_str("firmware"));
    assert_eq!(firmware, Ok("routed-1"), "{:?}", twins[0]);
    let conns = d.wait_for("the disconnect event", WAIT, || {
        let c = mongo::docs(&uri, DB, "connections");
        (!c.is_empty()).then_some(c)
    });
    assert!(
        conns
            .iter()
            .all(|c| c.get_document("body").and_then(|b| b.get_str("opType"))
                == Ok("deviceDisconnected")),
        "the condition kept connects out: {conns:?}"
    );

    // The identity the daemon created for the planned sensor at start.
    let ids = d.wait_for("the identity created event", WAIT, || {
        let c = mongo::docs(&uri, DB, "identities");
        (!c.is_empty()).then_some(c)
    });
    assert!(
        ids.iter().any(|c| c.get_str("device_id") == Ok(SENSOR)
            && c.get_str("source") == Ok("DeviceLifecycleEvents")),
        "{ids:?}"
    );

    // The API counts what each route matched and delivered.
    let (code, r) = d.api("/api/v1/routes");
    assert_eq!(code, 200);
    let route = |name: &str| {
        r["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {r}"))
    };
    assert_eq!(route("low-battery")["matched"], ROUNDS, "{r}");
    assert_eq!(route("alarms")["matched"], ROUNDS, "{r}");
    d.wait_for("the alarms' deliveries counted", WAIT, || {
        let (_, r) = d.api("/api/v1/routes");
        let alarms = r["routes"]
            .as_array()?
            .iter()
            .find(|x| x["name"] == "alarms")?
            .clone();
        // hook, ops and events for each alarm
        (alarms["delivered"].as_u64()? >= 3 * ROUNDS as u64).then_some(())
    });

    // A bad edit (a syntax error in one condition) is refused whole, and
    // the routes in force keep routing: a second run of the device lands
    // in the alerts collection and the webhook as the first did.
    std::fs::write(&file, routes(&hook).replace("< 0.2\"", "< 0.2 AND\"")).unwrap();
    d.signal(libc::SIGHUP);
    let s = d.wait_for("the bad routes edit refused", WAIT, || {
        let (_, s) = d.api("/api/v1/status");
        (s["last_reload"]["ok"] == false).then_some(s)
    });
    let errors = s["last_reload"]["diagnostics"]["errors"]
        .as_array()
        .unwrap();
    assert!(
        errors.iter().any(|e| e["code"] == "ztpd::routes::syntax"),
        "{s}"
    );
    assert_eq!(s["routes"]["names"].as_array().unwrap().len(), 5, "{s}");
    let sub = Devicebound::subscribe_filter(mqtt.port, &[], "ztpd/alerts/#", ROUNDS);
    let lines = run_device(&python, &cred, &d.path("state/hub-ca.pem"), 1);
    assert!(lines.iter().any(|l| l["sent"] == 4 * ROUNDS), "{lines:?}");
    assert_eq!(
        mongo::count(&uri, DB, "battery_alerts"),
        Some(2 * ROUNDS as u64)
    );
    assert_eq!(mongo::count(&uri, DB, EVENTS), Some(8 * ROUNDS as u64));
    for _ in 0..ROUNDS {
        let (topic, _) = sub.next();
        assert_eq!(topic, format!("ztpd/alerts/{SENSOR}/alarms"));
    }
    drop(d);
    drop(rt);
}

/// The crash test of SPEC §14's delivery: `kill -9` of ztpd while an SDK
/// device sends at QoS 1 and the webhook is down. After the restart and
/// the webhook's return, every acknowledged message is in each `mongodb`
/// endpoint its route names exactly once, and reached the webhook at least
/// once.
#[test]
fn a_kill_9_while_the_webhook_is_down_loses_no_acknowledged_message() {
    const COUNT: usize = 150;
    let _port = PORT_8883.lock().unwrap_or_else(|e| e.into_inner());
    let Some(python) = support::azure::sdk_python("routing") else {
        return;
    };
    let Some(nx_bin) = mongo::nx_binary() else {
        eprintln!("SKIP: nx-27017 not found");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nx = mongo::Nx::start(&nx_bin, &dir.path().join("nx"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let up = Arc::new(AtomicBool::new(false));
    let (hook, mut posted) = rt.block_on(support::webhook::webhook(up.clone()));

    let mut d = Daemon::builder()
        .fixture("good")
        .broker("tls_listen = \"127.0.0.1:8883\"\n")
        .settings(&format!(
            "[telemetry]\nmongodb_uri = \"{}\"\ndatabase = \"{DB}\"\ncollection = \"{EVENTS}\"\n",
            nx.uri()
        ))
        .start();
    let file = d.path("azure_mqtt_credentials/routes.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(
        &file,
        format!(
            "[endpoints.copy]\nkind = \"mongodb\"\ncollection = \"copies\"\n\n\
             [endpoints.hook]\nkind = \"webhook\"\nurl = \"{hook}\"\n\n\
             [[routes]]\nname = \"all\"\nsource = \"DeviceMessages\"\ncondition = \"true\"\n\
             endpoints = [\"copy\", \"hook\", \"events\"]\n"
        ),
    )
    .unwrap();
    d.signal(libc::SIGHUP);
    d.wait_for("the route in force", WAIT, || {
        let (_, s) = d.api("/api/v1/status");
        (s["routes"]["names"].as_array()?.len() == 1).then_some(())
    });
    let cred = d.path(&format!("device_credentials/device_{SENSOR}.json"));
    d.wait_for("the sensor's credential", WAIT, || {
        cred.is_file().then_some(())
    });

    let mut child = support::tools::ChildGuard::spawn(
        Command::new("timeout")
            .arg("180")
            .arg(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hub/crash_device.py"))
            .args([
                cred.to_str().unwrap(),
                d.path("state/hub-ca.pem").to_str().unwrap(),
            ])
            .arg(COUNT.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit()),
    );
    let stdout = child.child().stdout.take().unwrap();
    let (tx, lines) = std::sync::mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v.get("error").is_some() {
                    eprintln!("crash_device: {v}");
                }
                let _ = tx.send(v);
            }
        }
    });
    // Kill while messages are acknowledged and their webhook copies wait in
    // the outbox (the webhook answers 503).
    loop {
        let v = lines
            .recv_timeout(WAIT)
            .expect("the device acknowledges messages");
        if v["acked"].as_u64().is_some_and(|n| n >= 40) {
            break;
        }
    }
    d.kill9();
    d.restart();
    let mut last = None;
    while last.is_none() {
        let v = lines
            .recv_timeout(Duration::from_secs(120))
            .expect("the device finishes after the restart");
        last = v["sent"].as_u64();
    }
    assert_eq!(last, Some(COUNT as u64));

    // Every message was acknowledged: each mongodb endpoint has each once.
    let uri = nx.uri();
    assert_eq!(mongo::count(&uri, DB, EVENTS), Some(COUNT as u64), "events");
    let copies = mongo::docs(&uri, DB, "copies");
    let mut seqs: Vec<u64> = copies
        .iter()
        .map(|c| {
            c.get_document("properties")
                .and_then(|p| p.get_str("seq"))
                .expect("seq")
                .parse()
                .unwrap()
        })
        .collect();
    seqs.sort();
    assert_eq!(
        seqs,
        (0..COUNT as u64).collect::<Vec<_>>(),
        "each copy once"
    );

    // The webhook comes back: every message reaches it at least once.
    up.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut seen = std::collections::BTreeSet::new();
    rt.block_on(async {
        while seen.len() < COUNT {
            let body = tokio::time::timeout(WAIT, posted.recv())
                .await
                .unwrap_or_else(|_| panic!("the webhook got {} of {COUNT}", seen.len()))
                .unwrap();
            let v: Value = serde_json::from_slice(&body).expect("an envelope");
            seen.insert(
                v["properties"]["seq"]
                    .as_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap(),
            );
        }
    });
    assert_eq!(seen.len(), COUNT);
    drop(d);
    drop(rt);
}
