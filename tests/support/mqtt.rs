//! Telemetry's real components on free loopback ports, each behind a guard:
//! Eclipse Mosquitto, its `mosquitto_pub`/`mosquitto_sub` clients, and
//! `ztpd bridge`. (The MongoDB side is [`super::mongo`].)

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::daemon::BIN;
use super::tools::{have_all, is_root, which, ChildGuard};
use super::{mongo, poll, ports};

/// Mosquitto, its clients and nx-27017, or a printed reason to skip: the
/// nx-27017 binary when all are there.
pub fn components() -> Option<PathBuf> {
    let Some(nx) = mongo::nx_binary() else {
        eprintln!("SKIP: nx-27017 not found (run scripts/install-test-deps.sh, or set NX_27017)");
        return None;
    };
    have_all(
        "telemetry",
        &["mosquitto", "mosquitto_pub", "mosquitto_sub"],
    )
    .then_some(nx)
}

/// A real Mosquitto and a real nx-27017 in their own temporary directory,
/// and a settings file pointing a bridge at both (`extra` added to
/// `[telemetry]`). `None`, after a SKIP line, when a component is missing.
pub struct Stack {
    pub mqtt: Mosquitto,
    pub nx: mongo::Nx,
    pub cfg: PathBuf,
    /// Dropped last: the servers stop before their directories go.
    pub dir: tempfile::TempDir,
}

impl Stack {
    pub fn start(extra: &str) -> Option<Stack> {
        let nx_bin = components()?;
        let dir = tempfile::tempdir().unwrap();
        let mqtt = Mosquitto::start(&dir.path().join("mqtt"));
        let nx = mongo::Nx::start(&nx_bin, &dir.path().join("nx"));
        let cfg = write_settings(
            &dir.path().join("root"),
            Some(&mqtt.url()),
            Some(&nx.uri()),
            extra,
        );
        Some(Stack { mqtt, nx, cfg, dir })
    }
}

pub struct Mosquitto {
    pub port: u16,
    pub dir: PathBuf,
    child: ChildGuard,
}

impl Mosquitto {
    /// Persistent, with no limit on queued messages (a bridge that is down
    /// must not make the broker drop its session's messages) and an
    /// in-flight window as large as the bridge's batch.
    pub fn start(dir: &Path) -> Mosquitto {
        let port = ports::free_tcp();
        std::fs::create_dir_all(dir).expect("mkdir mosquitto dir");
        // Started as root, Mosquitto drops to the `mosquitto` user and then
        // cannot write its persistence file into our private temp dir: it
        // would silently lose every queued message on restart.
        let run_as = if is_root() { "user root\n" } else { "" };
        std::fs::write(
            dir.join("mosquitto.conf"),
            format!(
                "{run_as}listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {d}/\nmax_inflight_messages 1000\nmax_queued_messages 0\nlog_dest file {d}/mosquitto.log\n",
                d = dir.display(),
            ),
        )
        .expect("write mosquitto.conf");
        let mut m = Mosquitto {
            port,
            dir: dir.to_path_buf(),
            child: ChildGuard(None),
        };
        m.restart();
        m
    }

    /// Stop (SIGTERM: it saves sessions and queues) and start again.
    pub fn restart(&mut self) {
        self.child.stop();
        let bin = which("mosquitto").expect("mosquitto installed");
        self.child = ChildGuard::spawn(
            Command::new(bin)
                .arg("-c")
                .arg(self.dir.join("mosquitto.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        assert!(
            poll::wait_tcp(SocketAddr::from(([127, 0, 0, 1], self.port))),
            "mosquitto did not listen on {}",
            self.port
        );
    }

    pub fn stop(&mut self) {
        self.child.stop();
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Publish lines with QoS 1, one message per line, to `topic`.
    pub fn publish_lines(&self, topic: &str, lines: &[String]) {
        publish_lines(self.port, &[], topic, lines)
    }

    /// Publish one message given as a file (arbitrary bytes).
    pub fn publish_bytes(&self, topic: &str, payload: &[u8]) {
        let f = self.dir.join("payload.bin");
        std::fs::write(&f, payload).expect("write payload");
        let ok = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-q", "1", "-t", topic, "-f"])
            .arg(&f)
            .status()
            .expect("mosquitto_pub")
            .success();
        assert!(ok, "mosquitto_pub -f failed");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.child.stop();
    }
}

/// `mosquitto_pub -l` with QoS 1 to the broker on `port`, logging in with
/// `login` (e.g. `-i ID -u USER -P TOKEN`): one message per line.
pub fn publish_lines(port: u16, login: &[&str], topic: &str, lines: &[String]) {
    let mut child = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(login)
        .args(["-t", topic, "-l"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for l in lines {
            writeln!(stdin, "{l}").expect("write to mosquitto_pub");
        }
    }
    assert!(
        child.wait().expect("wait").success(),
        "mosquitto_pub failed"
    );
}

/// A root directory with a `ztpd.toml` for the bridge: `[telemetry]` with
/// the broker and MongoDB URI given, then `extra` keys of that section.
pub fn write_settings(
    root: &Path,
    broker: Option<&str>,
    mongodb_uri: Option<&str>,
    extra: &str,
) -> PathBuf {
    std::fs::create_dir_all(root).expect("mkdir root");
    let mut s = String::from("[telemetry]\n");
    if let Some(b) = broker {
        s.push_str(&format!("broker = \"{b}\"\n"));
    }
    if let Some(m) = mongodb_uri {
        s.push_str(&format!("mongodb_uri = \"{m}\"\n"));
    }
    s.push_str(extra);
    let p = root.join("ztpd.toml");
    std::fs::write(&p, s).expect("write ztpd.toml");
    p
}

/// `ztpd bridge` on the settings in `config`; SIGTERM on drop.
pub struct Bridge {
    child: ChildGuard,
    log: PathBuf,
}

impl Bridge {
    pub fn start(config: &Path, client_id: &str) -> Bridge {
        Bridge::start_with(config, client_id, &[])
    }

    pub fn start_with(config: &Path, client_id: &str, extra: &[&str]) -> Bridge {
        let log = config.with_file_name(format!("bridge-{client_id}.log"));
        // Appended to: a bridge restarted under its client id keeps the
        // earlier run's lines (and its "bridge stopped" summary).
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("bridge log");
        let child = ChildGuard::spawn(
            Command::new(BIN)
                .arg("--config")
                .arg(config)
                .args(["bridge", "--client-id", client_id])
                .args(extra)
                .env("ZTPD_LOG", "info")
                // The summary line is parsed: no colour codes in it.
                .env("NO_COLOR", "1")
                .stdout(Stdio::null())
                .stderr(log_file),
        );
        Bridge { child, log }
    }

    /// SIGTERM and wait for the exit (SIGKILL after 10 s): the bridge writes
    /// its "bridge stopped" summary on the way out.
    pub fn stop(&mut self) {
        self.child.stop();
    }

    /// What each finished run of this bridge reported on exit, oldest first.
    pub fn runs(&self) -> Vec<BridgeRun> {
        self.log().lines().filter_map(BridgeRun::parse).collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the bridge's subscription is in place (20 s at most).
    pub fn wait_subscribed(&self) {
        let ok = poll::poll(Duration::from_secs(20), || {
            self.log().contains("bridge subscribed").then_some(())
        });
        assert!(ok.is_some(), "the bridge never subscribed:\n{}", self.log());
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.child.stop();
    }
}

/// One run's counters from the bridge's exit line
/// (`bridge stopped: 10 received, 9 stored, 1 duplicates, 0 rejected, 10 acknowledged`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BridgeRun {
    pub received: u64,
    pub stored: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub acknowledged: u64,
}

impl BridgeRun {
    fn parse(line: &str) -> Option<BridgeRun> {
        let (_, counts) = line.split_once("bridge stopped: ")?;
        let mut run = BridgeRun::default();
        for part in counts.split(", ") {
            let (n, what) = part.trim().split_once(' ')?;
            let n: u64 = n.parse().ok()?;
            match what {
                "received" => run.received = n,
                "stored" => run.stored = n,
                "duplicates" => run.duplicates = n,
                "rejected" => run.rejected = n,
                "acknowledged" => run.acknowledged = n,
                _ => return None,
            }
        }
        Some(run)
    }
}

/// A prototype-shaped reading for device `id`, message number `n`.
pub fn reading_json(id: &str, name: i64, n: usize) -> String {
    let lat = -37.0 + (n % 500) as f64 * 0.001;
    let lon = -68.0 + (n % 700) as f64 * 0.001;
    let battery = 1.0 - (n / 10) as f64 * 0.001;
    format!(
        r#"{{"device_id":"{id}","device_name":{name},"device_latitude":{lat:.6},"device_longitude":{lon:.6},"device_battery_level":{battery:.3},"signal_date":"2024-05-01 00:00:00.{n:06}"}}"#
    )
}

/// The device-to-cloud topic of the IoT Hub dialect.
pub fn topic(id: &str) -> String {
    format!("devices/{id}/messages/events/")
}

/// The `_id` the bridge gives [`reading_json`]'s reading `n` of device `id`.
pub fn reading_id(id: &str, n: usize) -> String {
    format!("{id}:2024-05-01T00:00:00.{n:06}Z")
}

/// Publish readings `range` of each device (id, name) through `m`, one
/// `mosquitto_pub -l` per device; returns the `_id`s they must be stored as.
pub fn publish_readings(
    m: &Mosquitto,
    devices: &[(&str, i64)],
    range: std::ops::Range<usize>,
) -> Vec<String> {
    let mut ids = Vec::new();
    for (id, name) in devices {
        let lines: Vec<String> = range.clone().map(|n| reading_json(id, *name, n)).collect();
        m.publish_lines(&topic(id), &lines);
        ids.extend(range.clone().map(|n| reading_id(id, n)));
    }
    ids
}

/// A real `mosquitto_sub` on `device`'s devicebound topic, subscribed (its
/// SUBACK seen) when [`Devicebound::subscribe`] returns.
pub struct Devicebound {
    pub sub: ChildGuard,
    rx: std::sync::mpsc::Receiver<String>,
    /// What the topics of messages start with (`-d` lines do not).
    prefix: String,
}

impl Devicebound {
    /// Log in with `login` (e.g. `-i ID -u USER -P TOKEN`) on the broker at
    /// `port`; receive up to `count` messages.
    pub fn subscribe(port: u16, login: &[&str], device: &str, count: usize) -> Devicebound {
        let filter = format!("devices/{device}/messages/devicebound/#");
        Devicebound::subscribe_filter(port, login, &filter, count)
    }

    /// [`Devicebound::subscribe`] to any topic filter (e.g. a route's
    /// `ztpd/alerts/#`).
    pub fn subscribe_filter(port: u16, login: &[&str], filter: &str, count: usize) -> Devicebound {
        let prefix = filter.split(['+', '#']).next().unwrap_or("").to_string();
        // -d prints the SUBACK, so we know the subscription is in place.
        // stdbuf: mosquitto_sub's stdout is block-buffered into a pipe.
        let mut sub = ChildGuard::spawn(
            Command::new("stdbuf")
                .args(["-oL", "mosquitto_sub", "-h", "127.0.0.1"])
                .args(["-p", &port.to_string(), "-q", "1"])
                .args(login)
                .args(["-C", &count.to_string(), "-W", "60", "-v", "-d"])
                .args(["-t", filter])
                .stdout(Stdio::piped()),
        );
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout = sub.child().stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("mosquitto_sub never got its SUBACK");
            if line.contains("SUBACK") {
                break;
            }
        }
        Devicebound { sub, rx, prefix }
    }

    /// The next message: topic and JSON payload.
    pub fn next(&self) -> (String, serde_json::Value) {
        let line = loop {
            let line = self
                .rx
                .recv_timeout(Duration::from_secs(60))
                .expect("no message for the subscriber");
            if line.starts_with(&self.prefix) {
                break line;
            }
        };
        let (topic, payload) = line.trim().split_once(' ').expect("topic and payload");
        let v = serde_json::from_str(payload).expect("a JSON payload");
        (topic.to_string(), v)
    }
}

/// SPEC §6/§9 from the device's side: a real `mosquitto_sub` on the broker at
/// `port` (logging in with `login`, e.g. `-i ID -u USER -P TOKEN`) subscribes
/// to `device`'s devicebound topic; once its SUBACK is in, the default device
/// function under `root` is edited, which regenerates the credential; the
/// `{type: "refresh_credential", url}` event must then reach the subscriber.
pub fn edit_device_function_and_expect_refresh(
    port: u16,
    login: &[&str],
    device: &str,
    root: &Path,
) {
    let mut sub = Devicebound::subscribe(port, login, device, 1);

    let f = root.join("templates/device_function/default.toml");
    let text = std::fs::read_to_string(&f).expect("device function");
    std::fs::write(&f, text.replace("drain_max = 0.03", "drain_max = 0.05"))
        .expect("edit device function");

    let (topic, event) = sub.next();
    let _ = sub.sub.child().wait();
    assert_eq!(topic, format!("devices/{device}/messages/devicebound/"));
    assert_eq!(event["type"], "refresh_credential");
    assert!(
        event["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!("/files/credentials/device_{device}.json")),
        "{event}"
    );
}
