//! The embedded broker of `ztpd run` (SPEC §1b `[broker]`, §9), with the
//! real binary on free loopback ports: who gets in (rumqttc as the client,
//! since rumqttd answers a refused CONNECT with no CONNACK at all), telemetry
//! from `ztpd device simulate` and `mosquitto_pub` into the embedded store
//! with nothing else installed, and a refresh_credential event reaching a
//! device's `mosquitto_sub`.

mod support;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::mqtt::{publish_lines, reading_json, topic};
use support::Daemon;
use ztpd::credentials::{device_key, sas, EnrollmentKey};

/// The planned sensor of tests/fixtures/good (it has a device function).
const SENSOR: &str = "24c319455312bcd559b333c986024211";
const WAIT: Duration = Duration::from_secs(30);
const API: &str = "?api-version=2021-04-12";

/// A daemon with the embedded broker on a free port.
struct Lab {
    d: Daemon,
    port: u16,
}

impl Lab {
    fn start(broker_keys: &str) -> Lab {
        let d = Daemon::builder()
            .fixture("good")
            .broker(broker_keys)
            .start();
        let port = d.broker.expect("the embedded broker runs");
        Lab { d, port }
    }

    fn root(&self) -> &Path {
        &self.d.root
    }

    /// A SAS token for `id` signed with the key derived from this hub's
    /// enrollment key (what a device's credential holds).
    fn token(&self, id: &str, expiry: u64) -> String {
        let text = std::fs::read_to_string(self.root().join("state/hub.key")).unwrap();
        let key = EnrollmentKey::from_base64(&text).unwrap();
        sas::generate("localhost", id, &device_key(&key, id), expiry)
    }

    fn metric(&self, name: &str) -> u64 {
        self.d.metric(name)
    }

    fn analyze(&self) -> serde_json::Value {
        let out = self.d.cli(&["analyze", "--format", "json"]);
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    fn count_of(&self, id: &str) -> Option<u64> {
        self.analyze()
            .as_array()?
            .iter()
            .find(|s| s["device_id"] == id)?["count"]
            .as_u64()
    }
}

/// MQTT username and password.
type Login<'a> = (&'a str, &'a str);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn device_user(id: &str) -> String {
    format!("localhost/{id}/{API}")
}

/// Does a CONNECT get a successful CONNACK within 5 s? A refused client
/// gets none (rumqttd closes the connection), so false covers both the
/// close and the wait running out.
fn connects(port: u16, client_id: &str, login: Option<Login>) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut o = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
        o.set_keep_alive(Duration::from_secs(5));
        if let Some((u, p)) = login {
            o.set_credentials(u, p);
        }
        let (_client, mut events) = rumqttc::AsyncClient::new(o, 4);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match tokio::time::timeout_at(deadline, events.poll()).await {
                Ok(Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(a)))) => {
                    return a.code == rumqttc::ConnectReturnCode::Success
                }
                Ok(Ok(_)) => continue,
                Ok(Err(_)) | Err(_) => return false,
            }
        }
    })
}

fn have(bin: &str) -> bool {
    support::tools::have_all("embedded broker", &[bin])
}

#[test]
fn only_devices_with_their_own_valid_sas_token_and_service_accounts_get_in() {
    let lab = Lab::start("users = [{ name = \"ops\", password_file = \"ops.pass\" }]\n");
    let ops = std::fs::read_to_string(lab.root().join("state/ops.pass")).unwrap();
    let ops = ops.trim();
    let user = device_user(SENSOR);
    let good = lab.token(SENSOR, now() + 600);
    let p = lab.port;

    assert!(
        connects(p, SENSOR, Some((&user, &good))),
        "a correct SAS token"
    );
    assert!(
        connects(p, "ops-console", Some(("ops", ops))),
        "a service account"
    );

    let forged = {
        let k = device_key(&EnrollmentKey::generate(), SENSOR);
        sas::generate("localhost", SENSOR, &k, now() + 600)
    };
    let expired = lab.token(SENSOR, now() - 60);
    let theirs = lab.token("another-device", now() + 600);
    let refused: [(&str, &str, Option<Login>); 7] = [
        ("wrong signature", SENSOR, Some((&user, &forged))),
        ("expired token", SENSOR, Some((&user, &expired))),
        ("another device's token", SENSOR, Some((&user, &theirs))),
        (
            "valid token, other client id",
            "another-device",
            Some((&user, &good)),
        ),
        ("unknown service account", "x", Some(("nobody", ops))),
        (
            "service account, wrong password",
            "x",
            Some(("ops", "guess")),
        ),
        ("anonymous", "anon", None),
    ];
    for (what, id, login) in refused {
        assert!(!connects(p, id, login), "{what} was let in");
    }
    // the other device gets in with its own token (keys derive from the
    // enrollment key, as in Azure DPS group enrollment)
    let theirs_user = device_user("another-device");
    assert!(connects(p, "another-device", Some((&theirs_user, &theirs))));

    lab.d.wait_for("broker counters", WAIT, || {
        (lab.metric("ztpd_broker_connects_total{outcome=\"refused\"}") >= 6).then_some(())
    });
    // anonymous never reaches the auth hook (rumqttd refuses it first)
    assert_eq!(
        lab.metric("ztpd_broker_connects_total{outcome=\"refused\"}"),
        6
    );
    assert_eq!(
        lab.metric("ztpd_broker_connects_total{outcome=\"device\"}"),
        2
    );
    let log = lab.d.log();
    assert!(log.contains("embedded broker refused a client"), "{log}");
    for secret in [ops, &good, &forged, &theirs] {
        let sig = secret.split("sig=").nth(1).unwrap_or(secret);
        assert!(!log.contains(sig), "a secret reached the log");
    }
}

#[test]
fn with_nothing_installed_telemetry_lands_in_the_embedded_store() {
    if !have("mosquitto_pub") {
        return;
    }
    let lab = Lab::start("");
    lab.d.wait_for("the bridge to subscribe", WAIT, || {
        lab.d.log().contains("bridge subscribed").then_some(())
    });
    let cred = lab
        .root()
        .join(format!("device_credentials/device_{SENSOR}.json"));
    lab.d.wait_for("the sensor's credential", WAIT, || {
        cred.is_file().then_some(())
    });

    // no --broker: the local hub's broker is the embedded one
    let sim = lab.d.cli(&[
        "device",
        "simulate",
        "--credential",
        cred.to_str().unwrap(),
        "--count",
        "40",
        "--interval",
        "5ms",
    ]);
    assert!(
        sim.status.success(),
        "simulate failed: {}",
        String::from_utf8_lossy(&sim.stderr)
    );
    assert!(
        String::from_utf8_lossy(&sim.stdout).contains("sent 40 messages"),
        "{}",
        String::from_utf8_lossy(&sim.stdout)
    );

    // a third-party client in the IoT Hub dialect; one line claims another
    // device in its payload and must be rejected by the bridge
    let id = "mqtt-dev-1";
    let mut lines: Vec<String> = (0..30).map(|n| reading_json(id, 9, n)).collect();
    lines.push(reading_json("someone-else", 9, 31));
    let token = lab.token(id, now() + 600);
    let user = device_user(id);
    publish_lines(
        lab.port,
        &["-i", id, "-u", &user, "-P", &token],
        &topic(id),
        &lines,
    );

    lab.d
        .wait_for("40 + 30 readings stored, 1 rejected", WAIT, || {
            (lab.metric("ztpd_bridge_messages_total{outcome=\"stored\"}") == 70
                && lab.metric("ztpd_bridge_messages_total{outcome=\"rejected\"}") == 1)
                .then_some(())
        });
    assert_eq!(lab.count_of(SENSOR), Some(40));
    assert_eq!(lab.count_of(id), Some(30));
    assert_eq!(lab.count_of("someone-else"), None);
}

#[test]
fn a_refresh_credential_event_reaches_the_device_on_the_embedded_broker() {
    if !have("mosquitto_sub") {
        return;
    }
    let lab = Lab::start("");
    let token = lab.token(SENSOR, now() + 600);
    // the device itself subscribes, with its own credentials
    let user = device_user(SENSOR);
    support::mqtt::edit_device_function_and_expect_refresh(
        lab.port,
        &["-i", SENSOR, "-u", &user, "-P", &token],
        SENSOR,
        lab.root(),
    );
}

#[test]
fn a_taken_broker_port_is_an_error_naming_broker_listen() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let (status, err) = Daemon::builder()
        .fixture("good")
        .broker_at(addr, "")
        .expect_exit(WAIT);
    assert!(!status.success());
    assert!(
        err.contains("broker.listen") && err.contains(&addr.port().to_string()),
        "{err}"
    );
}

/// The auth hook reads the hub as last reloaded: after hub.toml appears,
/// tokens signed for the old local hub are refused and the new hub's are
/// accepted, with no restart.
#[test]
fn device_tokens_follow_a_reloaded_hub() {
    const KEY: &str =
        "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";
    let lab = Lab::start("");
    let p = lab.port;
    let old = lab.token(SENSOR, now() + 600);
    assert!(connects(p, SENSOR, Some((&device_user(SENSOR), &old))));

    let dir = lab.root().join("azure_mqtt_credentials");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("hub.toml"),
        format!("hostname = \"lab.example\"\nbroker = \"mqtt://127.0.0.1:{p}\"\nenrollment_key = \"{KEY}\"\n"),
    )
    .unwrap();
    let cred = lab
        .root()
        .join(format!("device_credentials/device_{SENSOR}.json"));
    lab.d
        .wait_for("the credential to move to the new hub", WAIT, || {
            std::fs::read_to_string(&cred)
                .ok()?
                .contains("HostName=lab.example")
                .then_some(())
        });

    let key = EnrollmentKey::from_base64(KEY).unwrap();
    let new = sas::generate(
        "lab.example",
        SENSOR,
        &device_key(&key, SENSOR),
        now() + 600,
    );
    let new_user = format!("lab.example/{SENSOR}/{API}");
    assert!(
        connects(p, SENSOR, Some((&new_user, &new))),
        "the new hub's token"
    );
    assert!(
        !connects(p, SENSOR, Some((&device_user(SENSOR), &old))),
        "the old local hub's token still works"
    );
    let local = std::fs::read_to_string(lab.root().join("state/hub.key")).unwrap();
    let local = EnrollmentKey::from_base64(&local).unwrap();
    let old_key_new_host = sas::generate(
        "lab.example",
        SENSOR,
        &device_key(&local, SENSOR),
        now() + 600,
    );
    assert!(
        !connects(p, SENSOR, Some((&new_user, &old_key_new_host))),
        "a token signed with the old key"
    );
}
