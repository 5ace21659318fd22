//! The daemon keeps credentials in step: created on start for planned
//! devices with a device function, regenerated (same name) when the device
//! function or the hub changes, created for devices added by a reload.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use support::Daemon;

const SENSOR: &str = "24c319455312bcd559b333c986024211";
const WAIT: Duration = Duration::from_secs(20);

fn cred(d: &Daemon, id: &str) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(d.root.join(format!("device_credentials/device_{id}.json")))
        .ok()?;
    serde_json::from_str(&text).ok()
}

fn history_rows(d: &Daemon) -> usize {
    std::fs::read_to_string(d.root.join("device_credentials/historical_credentials.csv"))
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

#[test]
fn credentials_follow_plan_function_and_hub() {
    let d = Daemon::start("good", "", &[]);
    let first = d.wait_for("credential created on start", WAIT, || cred(&d, SENSOR));
    let path = d
        .root
        .join(format!("device_credentials/device_{SENSOR}.json"));
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(first["device_name"], 1000001);
    assert_eq!(first["device_function"]["name"], "default");
    assert_eq!(first["device_function"]["interval"], "1s");
    let conn = first["CONNECTION_STR_PUB"].as_str().unwrap();
    assert!(
        conn.starts_with(&format!(
            "HostName=localhost;DeviceId={SENSOR};SharedAccessKey="
        )),
        "{conn}"
    );
    assert_eq!(history_rows(&d), 1);
    let key = conn.split_once("SharedAccessKey=").unwrap().1;
    assert!(key.len() > 20);
    assert!(
        !d.log().contains(key),
        "the device key must never be logged"
    );

    // The sensor says hello (it has no planned cables: approved at once), so
    // it may read its actions from this address.
    let hello = format!(
        r#"{{"serial":"{SENSOR}","mac":"02:00:00:00:00:01","model":"esp32-gps","version":"1.0","neighbors":[]}}"#
    );
    let (code, body) = d.post("/ztp/v1/hello", &hello, &[]);
    assert_eq!(code, 200, "{body}");

    // A device-function edit regenerates exactly the affected credential.
    let f = d.root.join("templates/device_function/default.toml");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text.replace("interval = \"1s\"", "interval = \"5s\"")).unwrap();
    let second = d.wait_for("regenerated after function edit", WAIT, || {
        cred(&d, SENSOR).filter(|c| c["device_function"]["interval"] == "5s")
    });
    assert_eq!(second["device_name"], 1000001, "the device keeps its name");
    assert_eq!(
        second["CONNECTION_STR_PUB"], first["CONNECTION_STR_PUB"],
        "same hub, same key"
    );
    assert_eq!(history_rows(&d), 2);
    // ... and the device is told to re-download it.
    let (code, body) = d.get(&format!("/ztp/v1/devices/{SENSOR}/actions?wait=10"));
    assert_eq!(code, 200, "{body}");
    let actions: serde_json::Value = serde_json::from_str(&body).unwrap();
    let a = &actions["actions"][0];
    assert_eq!(a["type"], "refresh_credential", "{actions}");
    assert!(
        a["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/files/credentials/device_{SENSOR}.json")),
        "{a}"
    );

    // A new hub (hostname and key) regenerates it again.
    std::fs::create_dir_all(d.root.join("azure_mqtt_credentials")).unwrap();
    std::fs::write(
        d.root.join("azure_mqtt_credentials/hub.toml"),
        "hostname = \"lab-hub.azure-devices.net\"\nbroker = \"mqtts://lab-hub.azure-devices.net:8883\"\nenrollment_key = \"8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==\"\n",
    )
    .unwrap();
    let third = d.wait_for("regenerated after hub change", WAIT, || {
        cred(&d, SENSOR).filter(|c| {
            c["CONNECTION_STR_PUB"]
                .as_str()
                .unwrap()
                .starts_with("HostName=lab-hub")
        })
    });
    assert_eq!(third["device_name"], 1000001);
    assert_eq!(history_rows(&d), 3);
    assert!(
        !d.log().contains("8isrFI1sGsIlvvFSSFRiMf"),
        "the enrollment key must never be logged"
    );

    // A sensor added to the plan gets the next name.
    let plan = d.root.join("plans/lab.toml");
    let mut p = std::fs::read_to_string(&plan).unwrap();
    p.push_str("\n[[devices]]\nname = \"sensor-0002\"\nmodel = \"sensor\"\nserial = \"sn-new-0002\"\ndevice_function = \"default\"\n");
    std::fs::write(&plan, p).unwrap();
    let new = d.wait_for("credential for an added device", WAIT, || {
        cred(&d, "sn-new-0002")
    });
    assert_eq!(new["device_name"], 1000002);
    assert_eq!(history_rows(&d), 4);
    // Nothing else was rewritten.
    assert_eq!(
        cred(&d, SENSOR).unwrap()["credential_creation_date"],
        third["credential_creation_date"]
    );
}

/// SPEC §5: an IoT device without a ztpd lease re-downloads its credential
/// with a SAS token for itself; no token, another device's token, or an
/// expired one is refused.
#[test]
fn a_credential_downloads_with_its_devices_sas_token_only() {
    let d = Daemon::start("good", "", &[]);
    let path = format!("/files/credentials/device_{SENSOR}.json");
    d.wait_for("credential created on start", WAIT, || cred(&d, SENSOR));
    let hub = ztpd::credentials::hub::load_from(
        &d.root.join("azure_mqtt_credentials/hub.toml"),
        &d.root.join("state"),
        "mqtt://127.0.0.1:1883",
    )
    .expect("the daemon's local hub");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let get = |auth: Option<String>| {
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| ("Authorization", a))
            .into_iter()
            .collect();
        support::api::request(d.http, "GET", &path, &headers, None).unwrap()
    };
    assert_eq!(get(None).0, 403, "no token, no lease: refused");
    assert_eq!(get(Some(hub.sas_token("another-device", now + 600))).0, 403);
    assert_eq!(get(Some(hub.sas_token(SENSOR, now - 10))).0, 403, "expired");
    let (code, body) = get(Some(hub.sas_token(SENSOR, now + 600)));
    assert_eq!(code, 200, "{body}");
    let served: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(served, cred(&d, SENSOR).unwrap());
}

/// SPEC §6/§9: a regenerated credential's device gets `{type:
/// "refresh_credential", url}` on its devicebound topic, seen here by a real
/// `mosquitto_sub` on a real Mosquitto (the broker of `telemetry.broker`).
#[test]
fn a_regenerated_credential_is_announced_over_mqtt() {
    if !support::tools::have_all("mqtt refresh", &["mosquitto", "mosquitto_sub"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = support::mqtt::Mosquitto::start(&dir.path().join("mqtt"));
    let extra = format!("[telemetry]\nbroker = \"{}\"\n", m.url());
    let d = Daemon::start("good", &extra, &[]);
    d.wait_for("credential created on start", WAIT, || cred(&d, SENSOR));

    support::mqtt::edit_device_function_and_expect_refresh(m.port, &[], SENSOR, &d.root);
}

/// The refresh end to end, with the default origin: a simulated sensor given
/// only the daemon's settings (no `--server`) takes the refresh the daemon
/// announces, since its URL is `http://<server_ip>:<listen.http port>`, and
/// fetches the new credential with its SAS token (it has no lease).
#[test]
fn a_simulated_device_takes_the_daemons_refresh_from_its_default_origin() {
    if !support::tools::have_all("daemon refresh", &["mosquitto", "mosquitto_sub"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = support::mqtt::Mosquitto::start(&dir.path().join("mqtt"));
    // the daemon's URLs name the site's server_ip: make it reachable here
    let root = support::fixtures::temp_root_with_plan("good", |t| {
        t.replace("server_ip = \"10.10.0.1\"", "server_ip = \"127.0.0.1\"")
    });
    let d = Daemon::builder()
        .owned_root(root)
        .settings(&format!("[telemetry]\nbroker = \"{}\"\n", m.url()))
        .start();
    d.wait_for("credential created on start", WAIT, || cred(&d, SENSOR));
    // the device keeps its own copy, as a real one would
    let own = dir.path().join("sensor.json");
    std::fs::copy(
        d.root
            .join(format!("device_credentials/device_{SENSOR}.json")),
        &own,
    )
    .unwrap();
    let simulate = |count: &str| {
        let o = d.cli(&[
            "device",
            "simulate",
            "--credential",
            own.to_str().unwrap(),
            "--broker",
            &m.url(),
            "--count",
            count,
            "--interval",
            "10ms",
        ]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "simulate failed: {text}");
        text
    };
    // a first run leaves a persistent session subscribed to devicebound, so
    // Mosquitto keeps the event for the device while it is offline
    simulate("1");
    support::mqtt::edit_device_function_and_expect_refresh(m.port, &[], SENSOR, &d.root);
    let new = cred(&d, SENSOR).unwrap();
    assert_eq!(new["device_function"]["battery"]["drain_max"], 0.05);

    let out = simulate("100");
    assert!(out.contains("credential refreshed 1x"), "{out}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&own).unwrap()).unwrap();
    assert_eq!(saved, new, "the device saved the daemon's new credential");
}
