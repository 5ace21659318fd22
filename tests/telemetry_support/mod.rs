//! Real components for telemetry tests: Mosquitto, the nx-27017 MongoDB-wire
//! server and `ztpd bridge`, each on a free loopback port behind a Drop
//! guard, with readiness by polling.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Poll `f` until it returns Some or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn wait_tcp(port: u16) -> bool {
    wait_for(Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .is_some()
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// nx-27017 from `NX_27017`, the project's `.venv-test`, a local venv under
/// target/, or PATH.
pub fn nx_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NX_27017") {
        return Some(PathBuf::from(p));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for c in [
        ".venv-test/bin/nx-27017",
        "target/venv-telemetry/bin/nx-27017",
    ] {
        if root.join(c).is_file() {
            return Some(root.join(c));
        }
    }
    which("nx-27017")
}

/// Both third-party components, or a printed reason to skip.
pub fn components() -> Option<PathBuf> {
    let Some(nx) = nx_binary() else {
        eprintln!("SKIP: nx-27017 not found (run scripts/install-test-deps.sh, or set NX_27017)");
        return None;
    };
    for b in ["mosquitto", "mosquitto_pub"] {
        if which(b).is_none() && !Path::new("/usr/sbin/mosquitto").is_file() {
            eprintln!("SKIP: {b} not found (apt-get install mosquitto mosquitto-clients)");
            return None;
        }
    }
    Some(nx)
}

fn stop(child: &mut Child) {
    unsafe_sigterm(child.id());
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

pub struct Mosquitto {
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Mosquitto {
    /// Persistent, with no limit on queued messages (a bridge that is down
    /// must not make the broker drop its session's messages) and an
    /// in-flight window as large as the bridge's batch.
    pub fn start(dir: &Path) -> Mosquitto {
        let port = free_port();
        std::fs::create_dir_all(dir).unwrap();
        let conf = dir.join("mosquitto.conf");
        // Started as root, Mosquitto drops to the `mosquitto` user and then
        // cannot write its persistence file into our private temp dir: it
        // would silently lose every queued message on restart.
        let run_as = if is_root() { "user root\n" } else { "" };
        std::fs::write(
            &conf,
            format!(
                "{user}listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nmax_inflight_messages 1000\nmax_queued_messages 0\nlog_dest file {}/mosquitto.log\n",
                dir.display(),
                dir.display(),
                user = run_as,
            ),
        )
        .unwrap();
        let mut m = Mosquitto {
            port,
            dir: dir.to_path_buf(),
            child: None,
        };
        m.restart();
        m
    }

    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop(&mut c);
        }
        let bin = which("mosquitto").unwrap_or_else(|| "/usr/sbin/mosquitto".into());
        self.child = Some(
            Command::new(bin)
                .arg("-c")
                .arg(self.dir.join("mosquitto.conf"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start mosquitto"),
        );
        assert!(
            wait_tcp(self.port),
            "mosquitto did not listen on {}",
            self.port
        );
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop(&mut c);
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Publish lines with QoS 1, one message per line, to `topic`.
    pub fn publish_lines(&self, topic: &str, lines: &[String]) {
        let mut child = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-q",
                "1",
                "-t",
                topic,
                "-l",
            ])
            .stdin(Stdio::piped())
            .spawn()
            .expect("mosquitto_pub");
        {
            let mut stdin = child.stdin.take().unwrap();
            for l in lines {
                stdin.write_all(l.as_bytes()).unwrap();
                stdin.write_all(b"\n").unwrap();
            }
        }
        assert!(child.wait().unwrap().success(), "mosquitto_pub failed");
    }

    /// Publish one message given as a file (arbitrary bytes).
    pub fn publish_bytes(&self, topic: &str, payload: &[u8]) {
        let f = self.dir.join("payload.bin");
        std::fs::write(&f, payload).unwrap();
        let ok = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-q",
                "1",
                "-t",
                topic,
                "-f",
            ])
            .arg(&f)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mosquitto_pub -f failed");
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct Nx {
    pub port: u16,
    bin: PathBuf,
    db: String,
    /// nx-27017 refuses to start while its pid file names a live process,
    /// so each instance gets its own.
    pid_file: PathBuf,
    child: Option<Child>,
}

impl Nx {
    /// `db`: "memory" or a file path.
    pub fn start(bin: &Path, db: &str) -> Nx {
        let port = free_port();
        let mut n = Nx {
            pid_file: std::env::temp_dir()
                .join(format!("ztpt-nx-{port}-{}.pid", std::process::id())),
            port,
            bin: bin.to_path_buf(),
            db: db.to_string(),
            child: None,
        };
        n.restart();
        n
    }

    pub fn restart(&mut self) {
        self.stop();
        self.child = Some(
            Command::new(&self.bin)
                .args(["--db", &self.db, "-p", &self.port.to_string()])
                .arg("--pid-file")
                .arg(&self.pid_file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start nx-27017"),
        );
        assert!(
            wait_tcp(self.port),
            "nx-27017 did not listen on {}",
            self.port
        );
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop(&mut c);
        }
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nx {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.pid_file);
    }
}

/// A root directory with a `ztpd.toml` for the bridge.
pub fn write_settings(root: &Path, broker: Option<&str>, mongodb_uri: Option<&str>) -> PathBuf {
    std::fs::create_dir_all(root).unwrap();
    let mut s = String::from("[telemetry]\n");
    if let Some(b) = broker {
        s.push_str(&format!("broker = \"{b}\"\n"));
    }
    if let Some(m) = mongodb_uri {
        s.push_str(&format!("mongodb_uri = \"{m}\"\n"));
    }
    let p = root.join("ztpd.toml");
    std::fs::write(&p, s).unwrap();
    p
}

pub struct Bridge {
    child: Option<Child>,
}

impl Bridge {
    pub fn start(config: &Path, client_id: &str) -> Bridge {
        Bridge::start_with(config, client_id, &[])
    }

    pub fn start_with(config: &Path, client_id: &str, extra: &[&str]) -> Bridge {
        let log = config.with_file_name(format!("bridge-{client_id}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_ztpd"))
            .arg("--config")
            .arg(config)
            .args(["bridge", "--client-id", client_id])
            .args(extra)
            .env("ZTPD_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start ztpd bridge");
        Bridge { child: Some(child) }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            stop(&mut c);
        }
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

pub fn topic(id: &str) -> String {
    format!("devices/{id}/messages/events/")
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
    use std::io::BufRead;
    // -d prints the SUBACK, so we know the subscription is in place.
    // stdbuf: mosquitto_sub's stdout is block-buffered into a pipe.
    let mut sub = Command::new("stdbuf")
        .args([
            "-oL",
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "1",
        ])
        .args(login)
        .args(["-C", "1", "-W", "60", "-v", "-d"])
        .args(["-t", &format!("devices/{device}/messages/devicebound/#")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = sub.stdout.take().unwrap();
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

    let f = root.join("templates/device_function/default.toml");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, text.replace("drain_max = 0.03", "drain_max = 0.05")).unwrap();

    let line = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("no devicebound message");
        if line.starts_with("devices/") {
            break line;
        }
    };
    let _ = sub.wait();
    let (topic, payload) = line.trim().split_once(' ').expect("topic and payload");
    assert_eq!(topic, format!("devices/{device}/messages/devicebound/"));
    let event: serde_json::Value = serde_json::from_str(payload).unwrap();
    assert_eq!(event["type"], "refresh_credential");
    assert!(
        event["url"]
            .as_str()
            .unwrap_or_default()
            .ends_with(&format!("/files/credentials/device_{device}.json")),
        "{event}"
    );
}
