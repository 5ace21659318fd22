//! `ztpd device simulate` against a real Mosquitto, read back with
//! mosquitto_sub: the prototype's battery behaviour, coordinates in the box,
//! the IoT Hub dialect, and a credential refresh pushed on `devicebound` —
//! taken only from ztpd's own origin and only when it is the device's own.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use support::mqtt::{components, Mosquitto};

fn credential(dir: &Path, id: &str, function: Value) -> std::path::PathBuf {
    let c = json!({
        "device_id": id,
        "device_name": 1000007,
        "credential_creation_date": "2026-11-25 12:00:00.000000",
        "device_function": function,
        "CONNECTION_STR_PUB": format!("HostName=localhost;DeviceId={id};SharedAccessKey=dGVzdGtleXRlc3RrZXl0ZXN0a2V5dGVzdGtleTEyMzQ="),
    });
    let p = dir.join(format!("device_{id}.json"));
    std::fs::write(&p, serde_json::to_string_pretty(&c).unwrap()).unwrap();
    p
}

fn function(drain_max: f64, fields: &[&str]) -> Value {
    json!({
        "name": "test", "interval": "1s", "fields": fields,
        "location": {"latitude": [-37.36, -32.04], "longitude": [-68.22, -61.69], "precision": 6},
        "battery": {"initial": 1.0, "drain_every": 10, "drain_max": drain_max},
    })
}

const ALL: [&str; 6] = [
    "device_id",
    "device_name",
    "device_latitude",
    "device_longitude",
    "device_battery_level",
    "signal_date",
];

/// A persistent mosquitto_sub session that queues the events until read.
fn open_session(m: &Mosquitto, sub_id: &str) {
    let ok = Command::new("mosquitto_sub")
        .args([
            "-p",
            &m.port.to_string(),
            "-c",
            "-i",
            sub_id,
            "-q",
            "1",
            "-t",
            "devices/+/messages/events/#",
            "-E",
        ])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

fn read_session(m: &Mosquitto, sub_id: &str, n: u64) -> Vec<Value> {
    let out = Command::new("mosquitto_sub")
        .args([
            "-p",
            &m.port.to_string(),
            "-c",
            "-i",
            sub_id,
            "-q",
            "1",
            "-t",
            "devices/+/messages/events/#",
            "-C",
            &n.to_string(),
            "-W",
            "30",
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn simulate(cred: &Path, m: &Mosquitto, extra: &[&str]) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ztpd"))
        .args(["device", "simulate", "--credential"])
        .arg(cred)
        .args(["--broker", &m.url()])
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "simulate failed: {stdout}{stderr}");
    (stdout, stderr)
}

fn sent_count(stdout: &str) -> u64 {
    stdout
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stdout:?}"))
}

#[test]
fn simulated_battery_drains_like_the_prototype_and_stops_at_zero() {
    if components().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = Mosquitto::start(&dir.path().join("mqtt"));
    open_session(&m, "t-sim-reader");
    // a steep drain so the battery empties within a few hundred messages
    let cred = credential(dir.path(), "sim-dev-1", function(0.3, &ALL));
    let (stdout, _) = simulate(&cred, &m, &["--interval", "1ms", "--count", "5000"]);
    assert!(stdout.contains("battery empty: stopped"), "{stdout}");
    let n = sent_count(&stdout);
    assert!(
        n < 5000,
        "the device must stop at 0 before --count: {stdout}"
    );
    let msgs = read_session(&m, "t-sim-reader", n);
    assert_eq!(msgs.len() as u64, n);

    let levels: Vec<f64> = msgs
        .iter()
        .map(|v| v["device_battery_level"].as_f64().unwrap())
        .collect();
    assert_eq!(levels[0], 1.0);
    assert_eq!(*levels.last().unwrap(), 0.0);
    assert!(
        levels[..levels.len() - 1].iter().all(|&b| b > 0.0),
        "stops at the first 0"
    );
    for (i, w) in levels.windows(2).enumerate() {
        let k = i + 1;
        assert!(w[1] <= w[0], "battery rose at message {k}");
        if k % 10 != 0 {
            assert_eq!(w[0], w[1], "battery changed at message {k}, not a 10th");
        }
        assert!(w[0] - w[1] <= 0.3 + 1e-9);
    }
    let mut dates = std::collections::HashSet::new();
    for v in &msgs {
        let lat = v["device_latitude"].as_f64().unwrap();
        let lon = v["device_longitude"].as_f64().unwrap();
        assert!((-37.36..=-32.04).contains(&lat), "{lat}");
        assert!((-68.22..=-61.69).contains(&lon), "{lon}");
        assert_eq!(v["device_id"], "sim-dev-1");
        assert_eq!(v["device_name"], 1000007);
        assert!(
            dates.insert(v["signal_date"].as_str().unwrap().to_string()),
            "repeated date"
        );
    }
    // the IoT Hub dialect, as the broker saw it
    let log = std::fs::read_to_string(m.dir.join("mosquitto.log")).unwrap();
    assert!(
        log.contains("as sim-dev-1")
            && log.contains("u'localhost/sim-dev-1/?api-version=2021-04-12'"),
        "client id / username not seen in the broker log:\n{log}"
    );
}

/// One-shot HTTP server answering the first request with `body`; the
/// thread returns that request's head.
fn serve_once(body: String) -> (u16, std::thread::JoinHandle<String>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let Ok((mut s, _)) = l.accept() else {
            return String::new();
        };
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap_or(0);
        let _ = write!(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    (port, h)
}

/// A `refresh_credential` event for `id` pointing at `url`, retained on the
/// real broker so the device gets it as soon as it subscribes. Anyone may
/// publish it: Mosquitto here allows anonymous clients.
fn retain_refresh(m: &Mosquitto, id: &str, url: &str) {
    let event = json!({"type": "refresh_credential", "url": url});
    let ok = Command::new("mosquitto_pub")
        .args(["-p", &m.port.to_string(), "-q", "1", "-r"])
        .args(["-t", &format!("devices/{id}/messages/devicebound/ztp")])
        .args(["-m", &event.to_string()])
        .stdin(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn a_refresh_event_downloads_the_new_credential_and_applies_its_function() {
    if components().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = Mosquitto::start(&dir.path().join("mqtt"));
    open_session(&m, "t-sim-refresh");
    let cred = credential(dir.path(), "sim-dev-2", function(0.0, &ALL));
    // the refreshed credential drops the coordinates
    let new_dir = dir.path().join("new");
    std::fs::create_dir_all(&new_dir).unwrap();
    let new_cred = credential(
        &new_dir,
        "sim-dev-2",
        function(0.0, &["device_id", "device_battery_level", "signal_date"]),
    );
    let new_text = std::fs::read_to_string(&new_cred).unwrap();
    let (port, server) = serve_once(new_text.clone());
    let own = format!("http://127.0.0.1:{port}");
    retain_refresh(
        &m,
        "sim-dev-2",
        &format!("{own}/ztp/v1/devices/sim-dev-2/credential"),
    );
    let args = ["--interval", "10ms", "--count", "150", "--server", &own];
    let (stdout, stderr) = simulate(&cred, &m, &args);
    let request = server.join().unwrap();
    assert!(
        request.contains("Authorization: SharedAccessSignature sr="),
        "the device proves who it is to ztpd: {request}"
    );
    assert!(
        stdout.contains("credential refreshed 1x"),
        "{stdout}{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&cred).unwrap(),
        new_text,
        "credential saved over the file"
    );
    let msgs = read_session(&m, "t-sim-refresh", 150);
    assert_eq!(msgs.len(), 150);
    let last = msgs.last().unwrap();
    assert!(
        last.get("device_latitude").is_none(),
        "new function not applied: {last}"
    );
    assert!(last.get("device_battery_level").is_some());
    // never in the other direction: once dropped, coordinates stay dropped
    let first_without = msgs
        .iter()
        .position(|v| v.get("device_latitude").is_none())
        .unwrap();
    assert!(msgs[first_without..]
        .iter()
        .all(|v| v.get("device_latitude").is_none()));
}

/// A run of device `id` against `--server own` with a refresh to
/// `event_url` retained: its credential file must not change and no refresh
/// must be counted. Returns the simulator's log.
fn assert_refresh_refused(
    m: &Mosquitto,
    dir: &Path,
    id: &str,
    own: &str,
    event_url: &str,
) -> String {
    let cred = credential(dir, id, function(0.0, &ALL));
    let before = std::fs::read_to_string(&cred).unwrap();
    retain_refresh(m, id, event_url);
    let args = ["--interval", "10ms", "--count", "150", "--server", own];
    let (stdout, stderr) = simulate(&cred, m, &args);
    assert!(!stdout.contains("credential refreshed"), "{stdout}{stderr}");
    assert_eq!(
        std::fs::read_to_string(&cred).unwrap(),
        before,
        "the credential file changed"
    );
    stderr
}

#[test]
fn a_spoofed_refresh_from_a_foreign_url_fetches_nothing_and_changes_nothing() {
    if components().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = Mosquitto::start(&dir.path().join("mqtt"));
    // ztpd's own origin (nothing must be asked of it either)...
    let own = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let own_url = format!("http://{}", own.local_addr().unwrap());
    // ...and a foreign one: a bare listener, where a connection from the
    // device would wait in the backlog
    let foreign = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let foreign_url = format!(
        "http://{}/files/credentials/device_spoof-1.json",
        foreign.local_addr().unwrap()
    );
    let stderr = assert_refresh_refused(&m, dir.path(), "spoof-1", &own_url, &foreign_url);
    assert!(
        stderr.contains("not ztpd's own origin") && stderr.contains(&own_url),
        "the spoofed event must be seen and refused: {stderr}"
    );
    // a connection would sit in the backlog: none was attempted
    for l in [&own, &foreign] {
        l.set_nonblocking(true).unwrap();
        assert_eq!(
            l.accept().map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock,
            "the device connected to {}",
            l.local_addr().unwrap()
        );
    }
}

#[test]
fn a_refresh_serving_another_devices_credential_changes_nothing() {
    if components().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = Mosquitto::start(&dir.path().join("mqtt"));
    let other_dir = dir.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other = credential(&other_dir, "someone-else", function(0.0, &ALL));
    let (port, server) = serve_once(std::fs::read_to_string(other).unwrap());
    let own = format!("http://127.0.0.1:{port}");
    let url = format!("{own}/files/credentials/device_spoof-2.json");
    let stderr = assert_refresh_refused(&m, dir.path(), "spoof-2", &own, &url);
    let request = server.join().unwrap();
    assert!(
        request.starts_with("GET /files/credentials/device_spoof-2.json"),
        "{request}"
    );
    assert!(
        stderr.contains("device `someone-else`'s credential"),
        "the fetched credential must be seen and refused: {stderr}"
    );
}

#[test]
fn a_fleet_runs_every_device_concurrently() {
    if components().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = Mosquitto::start(&dir.path().join("mqtt"));
    open_session(&m, "t-sim-fleet");
    let creds = dir.path().join("creds");
    std::fs::create_dir_all(&creds).unwrap();
    for i in 0..3 {
        credential(&creds, &format!("fleet-{i}"), function(0.03, &ALL));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ztpd"))
        .args(["device", "simulate", "--credentials"])
        .arg(&creds)
        .args([
            "--fleet",
            "3",
            "--count",
            "20",
            "--interval",
            "5ms",
            "--broker",
            &m.url(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert_eq!(stdout.matches("sent 20 messages").count(), 3, "{stdout}");
    let msgs = read_session(&m, "t-sim-fleet", 60);
    for i in 0..3 {
        let id = format!("fleet-{i}");
        assert_eq!(
            msgs.iter()
                .filter(|v| v["device_id"] == id.as_str())
                .count(),
            20
        );
    }
    // asking for more devices than there are credentials is a clear error
    let out = Command::new(env!("CARGO_BIN_EXE_ztpd"))
        .args(["device", "simulate", "--credentials"])
        .arg(&creds)
        .args(["--fleet", "4", "--broker", &m.url()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds only 3"));
}

/// A run without `--count` goes on until the battery is empty: its progress
/// lines say what was sent, acknowledged and the battery, and Ctrl-C
/// (SIGINT) ends it with a summary of the same.
#[test]
fn progress_lines_and_a_summary_on_ctrl_c() {
    if components().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = Mosquitto::start(&dir.path().join("mqtt"));
    // no drain: it would run for ever
    let cred = credential(dir.path(), "sim-progress", function(0.0, &ALL));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ztpd"))
        .args(["device", "simulate", "--credential"])
        .arg(&cred)
        .args(["--interval", "20ms", "--broker", &m.url()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut progress = String::new();
    // the first progress line (after 2 s of sending)
    while progress.is_empty() {
        let mut line = String::new();
        if std::io::BufRead::read_line(&mut stderr, &mut line).unwrap() == 0 {
            break;
        }
        if line.starts_with("1 device(s): ") {
            progress = line;
        }
    }
    assert!(
        progress.contains(" sent, ") && progress.contains(" acknowledged, battery 1.00"),
        "{progress:?}"
    );
    assert!(
        progress.contains("until the battery is empty"),
        "{progress:?}"
    );
    // SAFETY: a plain kill(2) of the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(
        stdout.starts_with("interrupted: 1 device(s): ")
            && stdout.contains(" acknowledged, battery "),
        "{stdout}"
    );
}
