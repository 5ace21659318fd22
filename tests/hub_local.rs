//! The local hub of `ztpd run` (SPEC §1b `[broker]`, §9), with the real
//! binary on free loopback ports: who gets in (rumqttc as the client),
//! what a device may publish and subscribe to, malformed CONNECTs from a
//! raw socket, telemetry from `ztpd device simulate` and `mosquitto_pub`
//! into the embedded store with nothing else installed, and a
//! refresh_credential event reaching a device's `mosquitto_sub`.
//! (The Azure IoT device SDK over TLS: `hub_azure_sdk.rs`; a crash under
//! load: `hub_crash.rs`.)

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

/// Does a CONNECT get a successful CONNACK within 5 s?
fn connects(port: u16, client_id: &str, login: Option<Login>) -> bool {
    rt().block_on(async {
        let (_client, mut events) = client(port, client_id, login);
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

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn client(
    port: u16,
    client_id: &str,
    login: Option<Login>,
) -> (rumqttc::AsyncClient, rumqttc::EventLoop) {
    let mut o = rumqttc::MqttOptions::new(client_id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(5));
    if let Some((u, p)) = login {
        o.set_credentials(u, p);
    }
    rumqttc::AsyncClient::new(o, 16)
}

/// Poll until `want` picks an event, the connection fails (`Err`), or 5 s pass (`Err`).
async fn until<T>(
    events: &mut rumqttc::EventLoop,
    mut want: impl FnMut(&rumqttc::Event) -> Option<T>,
) -> Result<T, String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, events.poll()).await {
            Ok(Ok(e)) => {
                if let Some(t) = want(&e) {
                    return Ok(t);
                }
            }
            Ok(Err(e)) => return Err(format!("connection ended: {e}")),
            Err(_) => return Err("nothing within 5 s".into()),
        }
    }
}

/// SUBSCRIBE to `filter` at QoS 1 and return the SUBACK's codes.
async fn subscribe(
    c: &rumqttc::AsyncClient,
    events: &mut rumqttc::EventLoop,
    filter: &str,
) -> Vec<rumqttc::SubscribeReasonCode> {
    c.subscribe(filter, rumqttc::QoS::AtLeastOnce)
        .await
        .unwrap();
    until(events, |e| match e {
        rumqttc::Event::Incoming(rumqttc::Packet::SubAck(s)) => Some(s.return_codes.clone()),
        _ => None,
    })
    .await
    .unwrap()
}

fn have(bin: &str) -> bool {
    support::tools::have_all("embedded broker", &[bin])
}

#[test]
fn only_devices_with_their_own_valid_sas_token_get_in() {
    let lab = Lab::start("");
    let user = device_user(SENSOR);
    let good = lab.token(SENSOR, now() + 600);
    let p = lab.port;

    assert!(
        connects(p, SENSOR, Some((&user, &good))),
        "a correct SAS token"
    );

    let forged = {
        let k = device_key(&EnrollmentKey::generate(), SENSOR);
        sas::generate("localhost", SENSOR, &k, now() + 600)
    };
    let expired = lab.token(SENSOR, now() - 60);
    let theirs = lab.token("another-device", now() + 600);
    let sdk_user = format!("localhost/{SENSOR}/{API}&DeviceClientType=azure-iot-device%2F2.14.0");
    let refused: [(&str, &str, Option<Login>); 6] = [
        ("wrong signature", SENSOR, Some((&user, &forged))),
        ("expired token", SENSOR, Some((&user, &expired))),
        ("another device's token", SENSOR, Some((&user, &theirs))),
        (
            "valid token, other client id",
            "another-device",
            Some((&user, &good)),
        ),
        (
            "a service-account login",
            "ops-console",
            Some(("ops", "secret")),
        ),
        ("anonymous", "anon", None),
    ];
    for (what, id, login) in refused {
        assert!(!connects(p, id, login), "{what} was let in");
    }
    // the username form the Azure IoT device SDKs send
    assert!(
        connects(p, SENSOR, Some((&sdk_user, &good))),
        "SDK username"
    );
    // the other device gets in with its own token (keys derive from the
    // enrollment key, as in Azure DPS group enrollment)
    let theirs_user = device_user("another-device");
    assert!(connects(p, "another-device", Some((&theirs_user, &theirs))));

    lab.d.wait_for("hub counters", WAIT, || {
        (lab.metric("ztpd_broker_connects_total{outcome=\"refused\"}") >= 6).then_some(())
    });
    assert_eq!(
        lab.metric("ztpd_broker_connects_total{outcome=\"refused\"}"),
        6
    );
    assert_eq!(
        lab.metric("ztpd_broker_connects_total{outcome=\"device\"}"),
        3
    );
    let log = lab.d.log();
    assert!(log.contains("local hub refused a client"), "{log}");
    for secret in [&good, &forged, &theirs] {
        let sig = secret.split("sig=").nth(1).unwrap_or(secret);
        assert!(!log.contains(sig), "a secret reached the log");
    }
}

/// Devices reach only their own topics: A's publish to B's telemetry or
/// devicebound topic ends A's connection and reaches nobody; A's
/// subscription to B's topics gets the failure return code.
#[test]
fn a_device_cannot_publish_or_subscribe_to_another_devices_topics() {
    use rumqttc::{Event, Packet, QoS, SubscribeReasonCode};
    let lab = Lab::start("");
    let (a, b) = ("iso-dev-a", "iso-dev-b");
    let (ua, ub) = (device_user(a), device_user(b));
    let (ta, tb) = (lab.token(a, now() + 600), lab.token(b, now() + 600));
    rt().block_on(async {
        // B listens on its own devicebound topic.
        let (bc, mut be) = client(lab.port, b, Some((&ub, &tb)));
        let codes = subscribe(&bc, &mut be, &format!("devices/{b}/messages/devicebound/#")).await;
        assert_eq!(codes, [SubscribeReasonCode::Success(QoS::AtLeastOnce)]);

        // A subscribes to B's topics and to everything: refused, one by one.
        let (ac, mut ae) = client(lab.port, a, Some((&ua, &ta)));
        for filter in [
            format!("devices/{b}/messages/devicebound/#"),
            "devices/+/messages/events/#".to_string(),
            "#".to_string(),
        ] {
            let codes = subscribe(&ac, &mut ae, &filter).await;
            assert_eq!(codes, [SubscribeReasonCode::Failure], "{filter}");
        }
        // A publishes a spoofed refresh to B's devicebound topic: A is cut off.
        let spoof = r#"{"type":"refresh_credential","url":"http://attacker.example/x.json"}"#;
        ac.publish(
            format!("devices/{b}/messages/devicebound/"),
            QoS::AtLeastOnce,
            false,
            spoof,
        )
        .await
        .unwrap();
        let ended = until(&mut ae, |e| match e {
            Event::Incoming(Packet::PubAck(_)) => Some("acknowledged"),
            _ => None,
        })
        .await;
        assert!(ended.is_err(), "the spoofed publish was {ended:?}");
        // ... and B got nothing, on a connection that stayed open (its
        // keep-alive pings went on for the 5 s).
        let got = until(&mut be, |e| match e {
            Event::Incoming(Packet::Publish(p)) => Some(p.topic.clone()),
            _ => None,
        })
        .await;
        assert_eq!(
            got,
            Err("nothing within 5 s".to_string()),
            "B received something or was cut off"
        );

        // A publishes telemetry on B's topic: cut off, nothing stored for B.
        let (ac, mut ae) = client(lab.port, a, Some((&ua, &ta)));
        ac.publish(topic(b), QoS::AtLeastOnce, false, reading_json(b, 1, 1))
            .await
            .unwrap();
        let ended = until(&mut ae, |e| match e {
            Event::Incoming(Packet::PubAck(_)) => Some("acknowledged"),
            _ => None,
        })
        .await;
        assert!(ended.is_err(), "telemetry on B's topic was {ended:?}");
    });
    assert!(lab.metric("ztpd_hub_refused_total{what=\"publish\"}") >= 2);
    assert_eq!(lab.metric("ztpd_hub_refused_total{what=\"subscribe\"}"), 3);
    assert_eq!(lab.count_of(b), None);
}

/// Raw bytes on the plain listener: a CONNECT with the reserved flag bit
/// set gets no CONNACK and is closed (MQTT 3.1.1 §3.1.2.3), garbage and
/// truncated packets are closed too, and the hub keeps serving.
#[test]
fn malformed_connects_from_a_raw_socket_are_closed_and_the_hub_keeps_serving() {
    use std::io::{Read, Write};
    let lab = Lab::start("");
    let good = {
        let mut c = rumqttc::mqttbytes::v4::Connect::new(SENSOR);
        c.set_login(device_user(SENSOR), lab.token(SENSOR, now() + 600));
        let mut b = bytes::BytesMut::new();
        c.write(&mut b).unwrap();
        b.to_vec()
    };
    let mut reserved = good.clone();
    // flags byte: fixed header (1 + 2-byte remaining length) + name (6) + level (1)
    let flags_at = if good[1] & 0x80 != 0 { 3 } else { 2 } + 7;
    reserved[flags_at] |= 0x01;
    let mut v5 = good.clone();
    v5[flags_at - 1] = 5;
    let cases: [(&str, Vec<u8>, &[u8]); 5] = [
        ("reserved flag", reserved, b""),
        ("garbage", b"GET / HTTP/1.1\r\n\r\n".to_vec(), b""),
        (
            "a PUBLISH first",
            vec![0x30, 0x05, 0x00, 0x01, b't', b'x', b'y'],
            b"",
        ),
        (
            "a huge remaining length",
            vec![0x10, 0xff, 0xff, 0xff, 0x7f],
            b"",
        ),
        // level 5: "unacceptable protocol version" (return code 1), then closed
        ("MQTT 5", v5, &[0x20, 0x02, 0x00, 0x01]),
    ];
    for (what, bytes, want) in cases {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", lab.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        s.write_all(&bytes).unwrap();
        let mut got = Vec::new();
        let r = s.read_to_end(&mut got);
        assert!(
            r.is_ok(),
            "{what}: the hub did not close the connection: {r:?}"
        );
        assert_eq!(got, want, "{what}");
    }
    assert!(
        connects(
            lab.port,
            SENSOR,
            Some((&device_user(SENSOR), &lab.token(SENSOR, now() + 600)))
        ),
        "the hub stopped serving"
    );
    let malformed = lab.metric("ztpd_broker_connects_total{outcome=\"malformed\"}");
    assert!(malformed >= 5, "{malformed}\n{}", lab.d.log());
}

#[test]
fn broker_users_are_refused_naming_telemetry_broker() {
    let (status, err) = Daemon::builder()
        .fixture("good")
        .broker("users = [{ name = \"ops\", password_file = \"ops.pass\" }]\n")
        .expect_exit(WAIT);
    assert!(!status.success());
    assert!(
        err.contains("users") && err.contains("telemetry.broker"),
        "{err}"
    );
}

#[test]
fn with_nothing_installed_telemetry_lands_in_the_embedded_store() {
    if !have("mosquitto_pub") {
        return;
    }
    let lab = Lab::start("");
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
    // device in its payload and must be rejected by the store's validation
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
fn a_refresh_credential_event_reaches_the_device_on_the_local_hub() {
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
fn a_taken_hub_port_is_an_error_naming_its_setting() {
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
    let (status, err) = Daemon::builder()
        .fixture("good")
        .broker(&format!("tls_listen = \"{addr}\"\n"))
        .expect_exit(WAIT);
    assert!(!status.success());
    assert!(
        err.contains("broker.tls_listen") && err.contains(&addr.port().to_string()),
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

/// One connection per device, as on IoT Hub: a second CONNECT of the same
/// device closes the first (MQTT 3.1.1 §3.1.4), and the newer one serves.
#[test]
fn a_second_connection_of_a_device_takes_over_from_the_first() {
    use rumqttc::{Event, Packet, QoS};
    let lab = Lab::start("");
    let (user, token) = (device_user(SENSOR), lab.token(SENSOR, now() + 600));
    rt().block_on(async {
        let (_c1, mut e1) = client(lab.port, SENSOR, Some((&user, &token)));
        until(&mut e1, |e| {
            matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
        })
        .await
        .unwrap();
        let (c2, mut e2) = client(lab.port, SENSOR, Some((&user, &token)));
        until(&mut e2, |e| {
            matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
        })
        .await
        .unwrap();
        let first = until(&mut e1, |_| None::<()>).await;
        assert!(
            first
                .as_ref()
                .is_err_and(|e| e.starts_with("connection ended")),
            "the first connection is still open: {first:?}"
        );
        c2.publish(
            topic(SENSOR),
            QoS::AtLeastOnce,
            false,
            reading_json(SENSOR, 1, 1),
        )
        .await
        .unwrap();
        until(&mut e2, |e| {
            matches!(e, Event::Incoming(Packet::PubAck(_))).then_some(())
        })
        .await
        .unwrap();
    });
}

/// Devicebound messages for an offline device wait in the state store:
/// the device-function change happens while the sensor is away, ztpd
/// restarts, and the sensor still gets its refresh_credential once it
/// connects and subscribes; after it acknowledged, a reconnect gets nothing.
#[test]
fn devicebound_messages_wait_for_an_offline_device_across_a_restart() {
    use rumqttc::{Event, Packet, QoS};
    let mut lab = Lab::start("");
    let cred = lab
        .root()
        .join(format!("device_credentials/device_{SENSOR}.json"));
    lab.d.wait_for("the sensor's credential", WAIT, || {
        cred.is_file().then_some(())
    });
    let before = std::fs::read_to_string(&cred).unwrap();
    let f = lab.root().join("templates/device_function/default.toml");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text.replace("drain_max = 0.03", "drain_max = 0.04")).unwrap();
    lab.d
        .wait_for("the credential to be regenerated", WAIT, || {
            (std::fs::read_to_string(&cred).ok()? != before).then_some(())
        });
    lab.d.wait_log("device told to refresh it", 1);
    lab.d.stop(false);
    lab.d.restart();
    lab.port = lab.d.broker.unwrap();

    let (user, token) = (device_user(SENSOR), lab.token(SENSOR, now() + 600));
    let receive = |expect_one: bool| {
        rt().block_on(async {
            let (c, mut e) = client(lab.port, SENSOR, Some((&user, &token)));
            c.subscribe(
                format!("devices/{SENSOR}/messages/devicebound/#"),
                QoS::AtLeastOnce,
            )
            .await
            .unwrap();
            let got = until(&mut e, |e| match e {
                Event::Incoming(Packet::Publish(p)) => Some(p.payload.clone()),
                _ => None,
            })
            .await;
            if expect_one {
                let body: serde_json::Value = serde_json::from_slice(&got.unwrap()).unwrap();
                assert_eq!(body["type"], "refresh_credential", "{body}");
                // let rumqttc send its PUBACK before the client goes away
                // (it writes on a later poll than the one reporting it)
                let _ = tokio::time::timeout(Duration::from_millis(500), async {
                    loop {
                        if e.poll().await.is_err() {
                            return;
                        }
                    }
                })
                .await;
            } else {
                assert_eq!(
                    got,
                    Err("nothing within 5 s".to_string()),
                    "an acknowledged message came again, or the connection ended"
                );
            }
        })
    };
    receive(true);
    receive(false);
}

/// As on IoT Hub, a connection lasts as long as its SAS token: the hub
/// closes it when the token expires (the SDKs reconnect with a new one).
#[test]
fn a_connection_ends_when_its_token_expires() {
    use rumqttc::{Event, Packet};
    let lab = Lab::start("");
    let short = lab.token(SENSOR, now() + 3);
    rt().block_on(async {
        let (_c, mut e) = client(lab.port, SENSOR, Some((&device_user(SENSOR), &short)));
        until(&mut e, |e| {
            matches!(e, Event::Incoming(Packet::ConnAck(_))).then_some(())
        })
        .await
        .unwrap();
        // keep-alive pings keep it open until then; the hub closes it after
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let ended = loop {
            match tokio::time::timeout_at(deadline, e.poll()).await {
                Ok(Ok(_)) => continue,
                Ok(Err(_)) => break true,
                Err(_) => break false,
            }
        };
        assert!(ended, "the connection outlived its token by 17 s");
    });
}

/// `[broker] enabled = false` turns off both listeners, and a standalone
/// `ztpd bridge` without `telemetry.broker` says what to set.
#[test]
fn a_disabled_hub_listens_nowhere_and_a_bridge_needs_telemetry_broker() {
    let plain = support::ports::loopback_tcp();
    let tls = support::ports::loopback_tcp();
    let d = Daemon::builder()
        .fixture("good")
        .broker_at(plain, &format!("tls_listen = \"{tls}\"\nenabled = false\n"))
        .start();
    for addr in [plain, tls] {
        assert!(
            std::net::TcpStream::connect(addr).is_err(),
            "{addr} answers with the hub disabled"
        );
    }
    let out = d.cli(&["bridge"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("telemetry.broker"), "{err}");
}

/// `VmRSS` of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Issue 25 defect 3: connections that ask for a 30 KB twin again and again
/// and never read held their slots (and the answers, in memory) for good,
/// and another device could not connect. Each is closed once nothing could
/// be written to it for 10 s (`session::WRITE_TIMEOUT`), its output queue
/// stays bounded, and the device waiting for a slot gets in.
#[test]
fn devices_that_never_read_are_closed_and_their_slots_freed() {
    use rumqttc::mqttbytes::v4::{Connect, Publish, Subscribe};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const STALLED: usize = 20;
    let d = Daemon::builder()
        .fixture("good")
        .broker("")
        .settings(&format!("[limits]\nhub_connections = {STALLED}\n"))
        .start();
    let port = d.broker.unwrap();
    let key = {
        let text = std::fs::read_to_string(d.root.join("state/hub.key")).unwrap();
        EnrollmentKey::from_base64(&text).unwrap()
    };
    let packets = move |id: &str, gets: usize| {
        let mut b = bytes::BytesMut::new();
        let mut c = Connect::new(id);
        c.keep_alive = 0;
        c.set_login(
            device_user(id),
            sas::generate("localhost", id, &device_key(&key, id), now() + 3600),
        );
        c.write(&mut b).unwrap();
        let mut s = Subscribe::new("$iothub/twin/res/#", rumqttc::QoS::AtMostOnce);
        s.pkid = 1;
        s.write(&mut b).unwrap();
        let reported = format!("{{\"blob\":\"{}\"}}", "x".repeat(30_000));
        Publish::new(
            "$iothub/twin/PATCH/properties/reported/?$rid=1",
            rumqttc::QoS::AtMostOnce,
            reported,
        )
        .write(&mut b)
        .unwrap();
        for rid in 0..gets {
            Publish::new(
                format!("$iothub/twin/GET/?$rid={rid}"),
                rumqttc::QoS::AtMostOnce,
                "",
            )
            .write(&mut b)
            .unwrap();
        }
        b.to_vec()
    };
    let before = rss_kib(d.pid());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut held = Vec::new();
        for i in 0..STALLED {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            // 300 answers of 30 KB: more than the kernel's socket buffers
            // take, so the hub's writes really block.
            s.write_all(&packets(&format!("stall-{i:02}"), 300))
                .await
                .unwrap();
            let mut ack = [0u8; 4];
            s.read_exact(&mut ack).await.unwrap();
            assert_eq!(ack, [0x20, 0x02, 0x00, 0x00], "CONNACK accepted");
            held.push(s); // never read again
        }
        let http = d.http;
        let connected = || {
            let (_, text) = support::api::get(http, "/metrics", None).expect("/metrics");
            support::api::metric(&text, "ztpd_hub_devices_connected")
        };
        // (The first may be closed already on a slow machine.)
        assert!(tokio::task::block_in_place(connected) > 0);
        // The slots are held: this device waits in the backlog until the
        // stalled ones are closed.
        let mut late = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        late.write_all(&packets("late", 0)).await.unwrap();
        let mut ack = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(60), late.read_exact(&mut ack))
            .await
            .expect("a slot freed within 60 s")
            .unwrap();
        assert_eq!(ack, [0x20, 0x02, 0x00, 0x00]);
        let grew = rss_kib(d.pid()).saturating_sub(before);
        assert!(
            grew < 64 * 1024,
            "RSS grew {grew} KiB with {STALLED} stalled connections"
        );
        // Every stalled connection is closed (10 s after its last write):
        // the late device is left alone.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let n = tokio::task::block_in_place(connected);
            if n == 1 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} connections still open 60 s after the last stalled one began"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        drop(held);
        drop(late);
    });
}

/// Issue 25 7c: a TLS client that finishes its handshake and sends no
/// CONNECT was held 19.5 s (10 s for the handshake, then 10 s more); the
/// documented 10 s run from accept. `openssl s_client` is the client.
#[test]
fn a_tls_client_without_a_connect_is_closed_within_ten_seconds_of_accept() {
    if !support::tools::have_all("TLS idle client", &["openssl"]) {
        return;
    }
    let d = Daemon::builder().fixture("good").broker("").start();
    let tls = d.broker_tls.expect("the TLS listener runs");
    let ca = d.root.join("state/hub-ca.pem");
    let started = std::time::Instant::now();
    let mut client = std::process::Command::new("openssl")
        .args(["s_client", "-quiet", "-verify_return_error", "-CAfile"])
        .arg(&ca)
        .args(["-connect", &format!("127.0.0.1:{tls}")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl s_client");
    // stdin stays open: s_client sends nothing after the handshake.
    let ended = support::poll::poll(Duration::from_secs(30), || client.try_wait().ok().flatten());
    let took = started.elapsed();
    if ended.is_none() {
        let _ = client.kill();
    }
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(client.stderr.as_mut().unwrap(), &mut err);
    assert!(ended.is_some(), "still open after 30 s: {err}");
    assert!(
        !err.contains("verify error"),
        "the handshake itself failed: {err}"
    );
    // 10 s documented, plus room for a loaded machine; 20 s before the fix.
    assert!(
        took < Duration::from_secs(15),
        "closed after {took:?}: {err}"
    );
    // Not refused at once: the handshake was made and the hub waited.
    assert!(
        took >= Duration::from_secs(5),
        "closed after {took:?}: {err}"
    );
}

/// Issue 25 7g: 2,200 idle sockets from one address filled every slot
/// before any CONNECT. At most `UNAUTHENTICATED_PER_ADDRESS` (64) wait for
/// their CONNECT per address; the next is closed at once, and a device from
/// another address still gets in.
#[test]
fn one_address_cannot_hold_every_slot_before_connect() {
    use std::io::{Read, Write};
    let d = Daemon::builder()
        .fixture("good")
        .broker("")
        .settings("[limits]\nhub_connections = 100\n")
        .start();
    let port = d.broker.unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut idle = Vec::new();
    for _ in 0..64 {
        idle.push(std::net::TcpStream::connect(addr).unwrap());
    }
    // The 65th from the same address: closed without a byte.
    let mut extra = std::net::TcpStream::connect(addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 1];
    let n = extra.read(&mut b);
    assert!(
        matches!(n, Ok(0))
            || n.as_ref()
                .is_err_and(|e| e.kind() != std::io::ErrorKind::WouldBlock),
        "the 65th idle connection was kept: {n:?}"
    );
    // Another address connects and is CONNACKed.
    let text = std::fs::read_to_string(d.root.join("state/hub.key")).unwrap();
    let key = EnrollmentKey::from_base64(&text).unwrap();
    let mut c = rumqttc::mqttbytes::v4::Connect::new("other-host");
    c.keep_alive = 0;
    c.set_login(
        device_user("other-host"),
        sas::generate(
            "localhost",
            "other-host",
            &device_key(&key, "other-host"),
            now() + 600,
        ),
    );
    let mut packet = bytes::BytesMut::new();
    c.write(&mut packet).unwrap();
    let mut s = support::api::connect_from("127.0.0.2", addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&packet).unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).unwrap();
    assert_eq!(ack, [0x20, 0x02, 0x00, 0x00]);
    drop(idle);
}

/// Issue 25 7h: 7,500 twin GETs a second from one device were all served
/// (and slowed every hello). Past `TWIN_BURST` (200) at once, and 50 a
/// second after, the answer is status 429, as IoT Hub throttles.
#[test]
fn twin_requests_past_the_per_device_rate_get_429() {
    use rumqttc::mqttbytes::v4::{Connect, Packet, Publish, Subscribe};
    use std::io::{Read, Write};
    let d = Daemon::builder().fixture("good").broker("").start();
    let port = d.broker.unwrap();
    let text = std::fs::read_to_string(d.root.join("state/hub.key")).unwrap();
    let key = EnrollmentKey::from_base64(&text).unwrap();
    let id = "twin-loop";
    let mut b = bytes::BytesMut::new();
    let mut c = Connect::new(id);
    c.keep_alive = 0;
    c.set_login(
        device_user(id),
        sas::generate("localhost", id, &device_key(&key, id), now() + 600),
    );
    c.write(&mut b).unwrap();
    let mut sub = Subscribe::new("$iothub/twin/res/#", rumqttc::QoS::AtMostOnce);
    sub.pkid = 1;
    sub.write(&mut b).unwrap();
    const GETS: usize = 400;
    for rid in 0..GETS {
        Publish::new(
            format!("$iothub/twin/GET/?$rid={rid}"),
            rumqttc::QoS::AtMostOnce,
            "",
        )
        .write(&mut b)
        .unwrap();
    }
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(&b).unwrap();
    let (mut ok, mut throttled) = (0, 0);
    let mut buf = bytes::BytesMut::new();
    let mut chunk = vec![0u8; 1 << 16];
    while ok + throttled < GETS {
        match Packet::read(&mut buf, 1 << 20) {
            Ok(Packet::Publish(p)) if p.topic.starts_with("$iothub/twin/res/200/") => ok += 1,
            Ok(Packet::Publish(p)) if p.topic.starts_with("$iothub/twin/res/429/") => {
                throttled += 1
            }
            Ok(_) => {}
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {
                let n = s.read(&mut chunk).expect("answers keep coming");
                assert!(n > 0, "closed after {ok} answers and {throttled} refusals");
                buf.extend_from_slice(&chunk[..n]);
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(ok >= 200, "the burst is served: {ok}");
    assert!(
        throttled >= GETS / 4,
        "{throttled} of {GETS} throttled, {ok} served"
    );
}
