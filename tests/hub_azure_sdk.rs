//! The unmodified Azure IoT device SDK (Python `azure-iot-device==2.14.0`,
//! in `.venv-azure`) against the local hub of `ztpd run`, with only what a
//! device is given: the credential file's `CONNECTION_STR_PUB` and the
//! hub's CA (`state/hub-ca.pem`, also served as `bootstrap/hub-ca.pem`).
//!
//! The SDK speaks MQTT over TLS on port 8883 of the connection string's
//! `HostName` (`localhost` for the local hub) and has no setting for the
//! port, so this test's daemon listens on 127.0.0.1:8883; it is the only
//! test that does. The driver is `tests/hub/azure_device.py`.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use support::Daemon;

/// The planned sensor of tests/fixtures/good (it has a device function).
const SENSOR: &str = "24c319455312bcd559b333c986024211";
const WAIT: Duration = Duration::from_secs(60);

fn sdk_python() -> Option<std::path::PathBuf> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-azure/bin/python");
    if py.is_file() {
        return Some(py);
    }
    if support::tools::is_root() {
        panic!(
            "{} is missing: scripts/install-test-deps.sh makes it",
            py.display()
        );
    }
    eprintln!(
        "skip: the Azure IoT device SDK venv {} is missing (run sudo scripts/install-test-deps.sh)",
        py.display()
    );
    None
}

struct Sdk {
    child: support::tools::ChildGuard,
    lines: mpsc::Receiver<Value>,
}

impl Sdk {
    /// The next line the driver printed, or a panic with its stderr.
    fn next(&mut self, what: &str) -> Value {
        match self.lines.recv_timeout(WAIT) {
            Ok(v) => v,
            Err(_) => {
                let _ = self.child.child().kill();
                let mut err = String::new();
                if let Some(mut e) = self.child.child().stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("the SDK device printed no `{what}` line:\n{err}");
            }
        }
    }

    fn expect(&mut self, key: &str) -> Value {
        let v = self.next(key);
        assert!(
            v.get(key).is_some(),
            "wanted `{key}`, the SDK device said {v}"
        );
        v[key].clone()
    }
}

#[test]
fn the_azure_iot_device_sdk_sends_telemetry_reads_its_twin_and_gets_events() {
    let Some(python) = sdk_python() else { return };
    let d = Daemon::builder()
        .fixture("good")
        .broker("tls_listen = \"127.0.0.1:8883\"\n")
        .start();
    let cred = d.path(&format!("device_credentials/device_{SENSOR}.json"));
    d.wait_for("the sensor's credential", WAIT, || {
        cred.is_file().then_some(())
    });
    let ca = d.path("state/hub-ca.pem");
    let (code, served) = d.get("/files/bootstrap/hub-ca.pem");
    assert_eq!(code, 200);
    assert_eq!(
        served,
        std::fs::read_to_string(&ca).unwrap(),
        "bootstrap/hub-ca.pem is the CA"
    );

    let mut child = support::tools::ChildGuard::spawn(
        Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hub/azure_device.py"))
            .args([cred.to_str().unwrap(), ca.to_str().unwrap(), "50", "60"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stdout = child.child().stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let mut sdk = Sdk { child, lines };

    // 50 messages, each acknowledged by the hub, stored exactly once.
    assert_eq!(sdk.expect("sent"), 50);
    let count = || -> Option<u64> {
        let out = d.cli(&["analyze", "--format", "json"]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v.as_array()?.iter().find(|s| s["device_id"] == SENSOR)?["count"].as_u64()
    };
    // acknowledged means stored: no waiting needed
    assert_eq!(count(), Some(50));
    assert_eq!(
        d.metric("ztpd_bridge_messages_total{outcome=\"stored\"}"),
        50
    );

    // The twin's desired properties hold the device function of the credential.
    let twin = sdk.expect("twin");
    let credential: Value = serde_json::from_slice(&std::fs::read(&cred).unwrap()).unwrap();
    assert_eq!(
        twin["desired"]["device_function"], credential["device_function"],
        "{twin}"
    );
    assert!(twin["desired"]["$version"].as_u64().unwrap() >= 1, "{twin}");

    // Reported properties show in the operator API.
    sdk.expect("reported");
    let (code, devices) = d.api("/api/v1/devices");
    assert_eq!(code, 200);
    let sensor = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["serial"] == SENSOR)
        .cloned()
        .unwrap();
    assert_eq!(sensor["reported"]["firmware"], "2.14-sdk", "{sensor}");
    assert_eq!(sensor["reported"]["sensor"]["ok"], true, "{sensor}");

    // A device-function change reaches the running client twice: as a
    // devicebound refresh_credential and as a desired-properties patch.
    sdk.expect("ready");
    let f = d.path("templates/device_function/default.toml");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.contains("drain_max = 0.03"));
    std::fs::write(&f, text.replace("drain_max = 0.03", "drain_max = 0.05")).unwrap();
    let (mut event, mut desired) = (None, None);
    while event.is_none() || desired.is_none() {
        let v = sdk.next("devicebound and desired");
        if let Some(e) = v.get("devicebound") {
            event = Some(e.clone());
        } else if let Some(p) = v.get("desired") {
            desired = Some(p.clone());
        } else {
            panic!("unexpected line from the SDK device: {v}");
        }
    }
    let (event, desired) = (event.unwrap(), desired.unwrap());
    assert_eq!(event["type"], "refresh_credential", "{event}");
    assert!(
        event["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!("/files/credentials/device_{SENSOR}.json")),
        "{event}"
    );
    assert_eq!(
        desired["device_function"]["battery"]["drain_max"], 0.05,
        "{desired}"
    );
    assert!(
        desired["$version"].as_u64() > twin["desired"]["$version"].as_u64(),
        "{desired} after {twin}"
    );
    assert_eq!(sdk.expect("done"), true);
    assert!(sdk.child.child().wait().unwrap().success());
}
