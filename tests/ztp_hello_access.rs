//! `access.hello = "leased"` (SPEC §7, issue 15 defect 1): a hello, progress
//! report or action poll changes a device only from the address ztpd leased
//! to it or its planned `ip`. From anywhere else it is answered, changes
//! nothing and is an event on `/api/v1/events`; a device with neither `mac`
//! nor `ip` is approved only by an operator.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use serde_json::{json, Value};
use support::api::request_from;
use support::netns::Lab;
use support::Daemon;

const SENSOR: &str = "24c319455312bcd559b333c986024211";

fn state_of(d: &Daemon, name: &str) -> Value {
    let (code, v) = d.api("/api/v1/devices");
    assert_eq!(code, 200, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .map(|x| x["state"].clone())
        .unwrap_or_else(|| panic!("{name} missing in {v}"))
}

fn post_from(d: &Daemon, src: &str, path: &str, body: &str) -> (u16, Value) {
    let (code, text) = request_from(src, d.http, "POST", path, &[], Some(body))
        .unwrap_or_else(|e| panic!("POST {path} from {src}: {e}"));
    (code, support::api::json(text))
}

fn get_from(d: &Daemon, src: &str, path: &str) -> u16 {
    request_from(src, d.http, "GET", path, &[], None)
        .unwrap_or_else(|e| panic!("GET {path} from {src}: {e}"))
        .0
}

/// The event stream, read until its headers are past.
fn events(d: &Daemon) -> BufReader<std::net::TcpStream> {
    let mut s = std::net::TcpStream::connect(d.http).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        d.token()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            return r;
        }
    }
}

fn next_event(r: &mut BufReader<std::net::TcpStream>) -> Value {
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            return serde_json::from_str(data).unwrap();
        }
    }
}

/// The `good` fixture with its addresses on loopback (leaf1 = 127.0.0.11),
/// under the default `access.hello`.
fn leased_on_loopback() -> Daemon {
    let dir = support::fixtures::temp_root_with_plan("good", |t| t.replace("10.10.0.", "127.0.0."));
    Daemon::builder().owned_root(dir).hello("leased").start()
}

#[test]
fn a_strangers_reports_change_nothing_and_are_events() {
    let d = leased_on_loopback();
    let ok = json!({"serial": "JPE87654321", "model": "DCS-7050SX-64", "neighbors": [
        {"local_port": "Ethernet49", "remote_device": "spine1", "remote_port": "Ethernet1"}]})
    .to_string();
    let bare =
        json!({"serial": "JPE87654321", "model": "DCS-7050SX-64", "neighbors": []}).to_string();
    // leaf1 from its planned address.
    let (code, v) = post_from(&d, "127.0.0.11", "/ztp/v1/hello", &ok);
    assert_eq!(code, 200, "{v}");
    assert_eq!(state_of(&d, "leaf1"), "approved");

    let mut stream = events(&d);
    // The issue's sequence, from a host that holds no lease.
    let (code, v) = post_from(&d, "127.0.0.50", "/ztp/v1/hello", &bare);
    assert_eq!(code, 409, "answered with what is wrong: {v}");
    assert_eq!(v["counted"], false, "{v}");
    assert!(!v["problems"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(state_of(&d, "leaf1"), "approved");
    let e = next_event(&mut stream);
    assert_eq!(e["device"], "leaf1", "{e}");
    assert_eq!(
        (&e["from"], &e["stage"]),
        (&json!("approved"), &json!("approved"))
    );
    assert!(e["message"].as_str().unwrap().contains("127.0.0.50"), "{e}");

    let (code, v) = post_from(
        &d,
        "127.0.0.50",
        "/ztp/v1/devices/JPE87654321/progress",
        r#"{"stage":"failed"}"#,
    );
    assert_eq!(code, 403, "{v}");
    assert_eq!(state_of(&d, "leaf1"), "approved");
    let (code, v) = post_from(&d, "127.0.0.50", "/ztp/v1/hello", &ok);
    assert_eq!(code, 403, "{v}");
    assert_eq!(v["state"], "approved", "{v}");
    assert_eq!(get_from(&d, "127.0.0.50", "/files/configs/leaf1.cfg"), 403);
    assert_eq!(
        get_from(&d, "127.0.0.50", "/ztp/v1/devices/JPE87654321/actions"),
        403
    );
    // leaf1 itself is unaffected.
    assert_eq!(get_from(&d, "127.0.0.11", "/files/configs/leaf1.cfg"), 200);
    let (code, v) = post_from(
        &d,
        "127.0.0.11",
        "/ztp/v1/devices/JPE87654321/progress",
        r#"{"stage":"downloading"}"#,
    );
    assert_eq!(code, 200, "{v}");
}

#[test]
fn a_device_without_mac_and_ip_is_approved_only_by_an_operator() {
    let d = leased_on_loopback();
    let hello = json!({"serial": SENSOR, "model": "esp32-gps", "neighbors": []}).to_string();
    let cred = format!("/files/credentials/device_{SENSOR}.json");
    // The serial alone no longer approves it.
    let (code, v) = post_from(&d, "127.0.0.60", "/ztp/v1/hello", &hello);
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["state"], "pending_approval");
    assert_eq!(get_from(&d, "127.0.0.60", &cred), 403);

    let (code, v) = d.api_post(
        "/api/v1/devices/sensor-0001/approve",
        r#"{"address":"127.0.0.60"}"#,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(get_from(&d, "127.0.0.60", &cred), 200);
    // Once approved, only the address it was approved at counts.
    let (code, v) = post_from(&d, "127.0.0.61", "/ztp/v1/hello", &hello);
    assert_eq!(code, 403, "{v}");
    assert_eq!(get_from(&d, "127.0.0.61", &cred), 403);
    let (code, v) = post_from(&d, "127.0.0.60", "/ztp/v1/hello", &hello);
    assert_eq!(code, 200, "{v}");
    assert_eq!(state_of(&d, "sensor-0001"), "approved");
}

fn device(d: &Daemon, name: &str) -> Value {
    let (code, v) = d.api("/api/v1/devices");
    assert_eq!(code, 200, "{v}");
    v.as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("{name} missing in {v}"))
}

/// Issue 25 defect 2: the sensor says hello from .50, a stranger with the
/// same serial from .99, the operator approves. The approval goes to the
/// address the operator named, never to whoever spoke last.
#[test]
fn an_approval_is_of_the_address_the_operator_saw() {
    let d = leased_on_loopback();
    let hello = json!({"serial": SENSOR, "model": "esp32-gps", "neighbors": []}).to_string();
    let cred = format!("/files/credentials/device_{SENSOR}.json");
    let approve = |body: &str| d.api_post("/api/v1/devices/sensor-0001/approve", body);

    // Before any hello there is nothing to approve.
    let (code, v) = approve("");
    assert_eq!(code, 409, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("no pending hello"),
        "{v}"
    );

    let (code, v) = post_from(&d, "127.0.0.50", "/ztp/v1/hello", &hello);
    assert_eq!(code, 202, "{v}");
    let dev = device(&d, "sensor-0001");
    assert_eq!(dev["pending_address"], "127.0.0.50", "{dev}");
    assert_eq!(
        dev["ip"],
        Value::Null,
        "a pending address is not the device's: {dev}"
    );
    let (code, v) = approve("");
    assert_eq!(code, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("127.0.0.50"), "{v}");

    // A second host claims the serial: an event naming both addresses.
    let mut stream = events(&d);
    let (code, v) = post_from(&d, "127.0.0.99", "/ztp/v1/hello", &hello);
    assert_eq!(code, 202, "{v}");
    let e = next_event(&mut stream);
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("127.0.0.50") && msg.contains("127.0.0.99"),
        "{e}"
    );
    let dev = device(&d, "sensor-0001");
    assert_eq!(dev["pending_address"], "127.0.0.99", "{dev}");
    assert_eq!(
        dev["pending_claims"],
        json!(["127.0.0.50", "127.0.0.99"]),
        "{dev}"
    );

    // The operator approves what they saw (.50): refused, naming .99.
    let (code, v) = approve(r#"{"address":"127.0.0.50"}"#);
    assert_eq!(code, 409, "{v}");
    assert!(v["error"].as_str().unwrap().contains("127.0.0.99"), "{v}");
    assert_eq!(state_of(&d, "sensor-0001"), "pending_approval");
    assert_eq!(get_from(&d, "127.0.0.99", &cred), 403);

    // The sensor says hello again; `ztpd approve` shows and approves it.
    let (code, v) = post_from(&d, "127.0.0.50", "/ztp/v1/hello", &hello);
    assert_eq!(code, 202, "{v}");
    let out = d.cli(&["approve", "sensor-0001"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("pending hello from 127.0.0.50"), "{text}");
    assert!(
        text.contains("approved sensor-0001 at 127.0.0.50"),
        "{text}"
    );
    assert_eq!(device(&d, "sensor-0001")["ip"], "127.0.0.50");
    assert_eq!(get_from(&d, "127.0.0.50", &cred), 200);
    assert_eq!(get_from(&d, "127.0.0.99", &cred), 403);

    // A hello from the other address afterwards changes nothing.
    let (code, v) = post_from(&d, "127.0.0.99", "/ztp/v1/hello", &hello);
    assert_eq!(code, 403, "{v}");
    assert_eq!(get_from(&d, "127.0.0.99", &cred), 403);
    let (code, v) = post_from(&d, "127.0.0.50", "/ztp/v1/hello", &hello);
    assert_eq!(code, 200, "{v}");
    assert_eq!(device(&d, "sensor-0001")["ip"], "127.0.0.50");
}

/// Rows of `device` in the daemon's event table, and of them those whose
/// reason names `addr`.
fn event_rows(d: &Daemon, device: &str, addr: &str) -> (i64, i64) {
    let db = rusqlite::Connection::open(d.root.join("state/ztpd.sqlite")).unwrap();
    let count = |sql: &str| -> i64 {
        db.query_row(sql, rusqlite::params![device, format!("%{addr}%")], |r| {
            r.get(0)
        })
        .unwrap()
    };
    (
        count("SELECT count(*) FROM ztp_device_events WHERE device = ?1 AND ?2 = ?2"),
        count("SELECT count(*) FROM ztp_device_events WHERE device = ?1 AND reason LIKE ?2"),
    )
}

/// Issue 25 defect 4: 83,588 refused hellos from a stranger in 20 s were
/// 83,588 rows, and nothing pruned them.
#[test]
fn a_flood_of_refused_hellos_is_one_event_and_events_are_bounded() {
    let dir = support::fixtures::temp_root_with_plan("good", |t| t.replace("10.10.0.", "127.0.0."));
    let d = Daemon::builder()
        .owned_root(dir)
        .hello("leased")
        .settings("[limits]\ndevice_events = 50\n")
        .start();
    let ok = json!({"serial": "JPE87654321", "model": "DCS-7050SX-64", "neighbors": [
        {"local_port": "Ethernet49", "remote_device": "spine1", "remote_port": "Ethernet1"}]})
    .to_string();
    let bare =
        json!({"serial": "JPE87654321", "model": "DCS-7050SX-64", "neighbors": []}).to_string();
    assert_eq!(post_from(&d, "127.0.0.11", "/ztp/v1/hello", &ok).0, 200);
    for _ in 0..300 {
        let (code, v) = post_from(&d, "127.0.0.50", "/ztp/v1/hello", &bare);
        assert_eq!(code, 409, "each is still answered: {v}");
        assert_eq!(v["counted"], false, "{v}");
    }
    let (_, stranger) = event_rows(&d, "leaf1", "127.0.0.50");
    assert_eq!(stranger, 1, "one event for the minute's refusals");
    // Another address is its own first refusal.
    assert_eq!(post_from(&d, "127.0.0.51", "/ztp/v1/hello", &bare).0, 409);
    assert_eq!(event_rows(&d, "leaf1", "127.0.0.51").1, 1);

    // Retention: at most limits.device_events rows per device.
    for p in 0..80 {
        let body = json!({"stage": "downloading", "percent": p}).to_string();
        let (code, v) = post_from(
            &d,
            "127.0.0.11",
            "/ztp/v1/devices/JPE87654321/progress",
            &body,
        );
        assert_eq!(code, 200, "{v}");
    }
    let (all, _) = event_rows(&d, "leaf1", "");
    assert_eq!(all, 50, "the newest 50 events of leaf1 are kept");
}

#[test]
fn access_hello_any_trusts_every_address() {
    let dir = support::fixtures::temp_root_with_plan("good", |t| t.replace("10.10.0.", "127.0.0."));
    let d = Daemon::builder().owned_root(dir).hello("any").start();
    let hello = json!({"serial": SENSOR, "model": "esp32-gps", "neighbors": []}).to_string();
    let (code, v) = post_from(&d, "127.0.0.60", "/ztp/v1/hello", &hello);
    assert_eq!(code, 200, "{v}");
}

/// The lab plan with a root `sw0` cabled to host1, and a config for host1.
fn cabled_lab_plan() -> String {
    Lab::plan().replace(
        "match = \"linux\"\n",
        "match = \"linux\"\nports = [\"eth0\", \"eth1\"]\ntemplate = \"host.j2\"\n",
    ) + "\n[[devices]]\nname = \"sw0\"\nmodel = \"host\"\nserial = \"SW0\"\nip = \"10.201.0.2\"\n\
         role = \"root\"\n\n[[links]]\na = \"sw0:eth1\"\nb = \"host1:eth0\"\n"
}

#[test]
fn only_the_lease_holder_speaks_for_a_device() {
    let Some(lab) = Lab::with_plan("hello", "os", &cabled_lab_plan()) else {
        return;
    };
    let host = lab.udhcpc("02:00:00:00:01:01", &[]).expect("host1 bound");
    assert_eq!(host["ip"], "10.201.0.11");
    lab.add_client_address("10.201.0.11/24");
    lab.add_client_address("10.201.0.50/24");
    let ok = json!({"serial": "H1", "model": "linux", "neighbors": [
        {"local_port": "eth0", "remote_device": "sw0", "remote_port": "eth1"}]})
    .to_string();
    let bare = json!({"serial": "H1", "model": "linux", "neighbors": []}).to_string();
    let post = [
        "-X",
        "POST",
        "-H",
        "Content-Type: application/json",
        "--data",
    ];
    let with = |body: &str| {
        let mut a = post.to_vec();
        a.push(body);
        a.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let curl = |src: &str, path: &str, args: &[String]| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        lab.curl_from(src, path, &a)
    };
    let state = || {
        lab.api("devices")
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "host1")
            .unwrap()["state"]
            .clone()
    };

    let (code, body) = curl("10.201.0.11", "/ztp/v1/hello", &with(&ok));
    assert_eq!(code, 200, "{body}");
    assert_eq!(state(), "approved");

    let (code, body) = curl("10.201.0.50", "/ztp/v1/hello", &with(&bare));
    assert_eq!(code, 409, "{body}");
    assert_eq!(state(), "approved");
    let failed = with(r#"{"stage":"failed"}"#);
    let (code, body) = curl("10.201.0.50", "/ztp/v1/devices/H1/progress", &failed);
    assert_eq!(code, 403, "{body}");
    assert_eq!(state(), "approved");
    let (code, body) = curl("10.201.0.50", "/ztp/v1/hello", &with(&ok));
    assert_eq!(code, 403, "{body}");
    let (code, _) = curl("10.201.0.50", "/files/configs/host1.cfg", &[]);
    assert_eq!(code, 403);
    let (code, body) = curl("10.201.0.11", "/files/configs/host1.cfg", &[]);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("hostname host1"), "{body}");
}
