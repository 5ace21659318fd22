//! `ztpd device simulate --credential FILE` / `--credentials DIR --fleet N`:
//! devices publishing telemetry in the Azure IoT Hub MQTT dialect (SPEC §9)
//! from their credential file, and refreshing that credential when the hub
//! tells them to.
//!
//! Anyone who can publish on a device's devicebound topic (on a broker like
//! Mosquitto with anonymous access, anyone) can send a `refresh_credential`
//! event, so a device trusts neither its URL nor what it fetches:
//! - it fetches only from ztpd's own HTTP origin ([`RefreshOrigins`]):
//!   `--server URL` when given, else `http://<server_ip>:<listen.http port>`
//!   of each site of the plans the settings name, which is where the
//!   daemon's refresh URLs point (`/files/credentials/device_<id>.json`).
//!   Scheme, host and port must match exactly; any other URL is ignored
//!   with a warning and nothing is fetched. The request carries the
//!   device's SAS token (what ztpd asks of a device without a lease), one
//!   more reason it goes nowhere else;
//! - it keeps a fetched credential only when its device_id (and the
//!   DeviceId of its connection string) is the device's own; else the file
//!   stays as it was.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::device::{DeviceNameValue, SimulatedDevice};
use super::device_function::{self, DeviceFunction};
use super::mqtt::{Backoff, BrokerUrl};
pub use crate::credentials::connection_string::ConnectionString;
use crate::http_client::parse_url;

/// Lifetime of the SAS tokens a simulated device makes; renewed at every
/// (re)connection.
pub const SAS_TTL: Duration = Duration::from_secs(3600);
/// How long a credential refresh may take.
const REFRESH_TIMEOUT: Duration = Duration::from_secs(10);

/// The fields of `device_credentials/device_<id>.json` a device uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Credential {
    pub device_id: String,
    pub device_name: Value,
    #[serde(default)]
    pub credential_creation_date: Option<String>,
    pub device_function: Value,
    #[serde(rename = "CONNECTION_STR_PUB")]
    pub connection: String,
}

/// The broker devices of this hub publish to when `--broker` is not
/// given: the local hub on loopback, else the real hub over TLS.
pub fn default_broker(c: &ConnectionString) -> String {
    if c.host_name == "localhost" {
        "mqtt://127.0.0.1:1883".into()
    } else {
        format!("mqtts://{}:8883", c.host_name)
    }
}

/// A credential read and checked: its connection string and device function.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub credential: Credential,
    pub connection: ConnectionString,
    pub function: DeviceFunction,
}

pub fn parse_credential(text: &str, origin: &str) -> Result<Loaded, String> {
    let credential: Credential = serde_json::from_str(text)
        .map_err(|e| format!("{origin}: not a device credential: {e}"))?;
    let connection =
        ConnectionString::parse(&credential.connection).map_err(|e| format!("{origin}: {e}"))?;
    if connection.device_id != credential.device_id {
        return Err(format!(
            "{origin}: device_id `{}` differs from DeviceId `{}` in CONNECTION_STR_PUB",
            credential.device_id, connection.device_id
        ));
    }
    let function = device_function::from_json(&credential.device_function)
        .map_err(|e| format!("{origin}: {e}"))?;
    Ok(Loaded {
        credential,
        connection,
        function,
    })
}

pub fn load_credential(path: &Path) -> Result<Loaded, String> {
    let text = crate::limits::read_capped_string(
        path,
        crate::limits::CREDENTIAL_BYTES,
        "device credential",
    )
    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse_credential(&text, &path.display().to_string())
}

/// The MQTT password: a SAS token signed with the device key. Made by the
/// credentials module (one implementation of SAS for the whole product).
fn sas_password(c: &ConnectionString) -> Result<String, String> {
    super::sas_bridge::password(c, SAS_TTL)
}

/// The origins (host, port of an `http://` URL) a device accepts
/// `refresh_credential` URLs from: ztpd's own (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshOrigins(Vec<(String, u16)>);

impl RefreshOrigins {
    /// `--server URL`: that origin alone.
    pub fn of_server(url: &str) -> Result<RefreshOrigins, String> {
        let u = parse_url(url).map_err(|e| format!("--server: {e:#}"))?;
        Ok(RefreshOrigins(vec![(u.host.to_ascii_lowercase(), u.port)]))
    }

    /// Where the daemon's refresh URLs point: each site's `server_ip` at
    /// `listen.http`'s port. None when the plans do not load.
    pub fn of_plans(resolved: &crate::settings::Resolved) -> RefreshOrigins {
        let loaded = crate::plan::load(resolved, &[]);
        if loaded.diagnostics.has_errors() {
            return RefreshOrigins::default();
        }
        let port = resolved.settings.listen.http.port();
        let mut v: Vec<(String, u16)> = loaded
            .model
            .sites
            .iter()
            .flat_map(|s| {
                // As parse_url gives URL hosts: IPv6 without its brackets.
                let v4 = s.server_ip.map(|ip| (ip.to_string(), port));
                let v6 = s.server_ip6.map(|ip| (ip.to_string(), port));
                v4.into_iter().chain(v6)
            })
            .collect();
        v.sort();
        v.dedup();
        RefreshOrigins(v)
    }

    /// Whether `url` is on one of these origins.
    pub fn allows(&self, url: &str) -> bool {
        parse_url(url).is_ok_and(|u| {
            self.0
                .iter()
                .any(|(h, p)| h.eq_ignore_ascii_case(&u.host) && *p == u.port)
        })
    }

    /// `http://a:1, http://b:2` (or `none`) for messages.
    fn describe(&self) -> String {
        if self.0.is_empty() {
            return "none known: give --server URL (ztpd's HTTP address)".into();
        }
        let all: Vec<String> = self
            .0
            .iter()
            .map(|(h, p)| match h.parse::<std::net::IpAddr>() {
                Ok(ip) => crate::addr::http_base(ip, *p),
                Err(_) => format!("http://{h}:{p}"),
            })
            .collect();
        all.join(", ")
    }
}

#[derive(Debug, Clone, Default)]
pub struct SimOptions {
    pub count: Option<u64>,
    pub interval: Option<Duration>,
    pub broker: Option<String>,
    /// The hub as hub.toml describes it, `(hostname, broker)`: a credential
    /// of that hub publishes to its `broker` when `broker` is not given.
    pub hub: Option<(String, String)>,
    /// Seed for reproducible readings (tests).
    pub seed: Option<u64>,
    /// Where credential refreshes may come from.
    pub refresh_from: RefreshOrigins,
}

/// What one device did.
#[derive(Debug, Clone, Default)]
pub struct SimReport {
    pub messages: u64,
    pub readings: u64,
    pub acked: u64,
    pub battery: f64,
    pub stopped: bool,
    pub refreshed: u64,
}

fn name_value(v: &Value) -> DeviceNameValue {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(DeviceNameValue::Int)
            .unwrap_or(DeviceNameValue::Text(n.to_string())),
        Value::String(s) => DeviceNameValue::Text(s.clone()),
        other => DeviceNameValue::Text(other.to_string()),
    }
}

/// What a running fleet has done so far: for its progress line and the
/// summary on Ctrl-C.
#[derive(Debug, Default)]
pub struct Progress {
    pub sent: AtomicU64,
    pub acked: AtomicU64,
    /// Device id -> (battery, time left when its run is bounded by `--count`).
    devices: Mutex<std::collections::HashMap<String, (f64, Option<Duration>)>>,
}

impl Progress {
    fn update(&self, id: &str, battery: f64, left: Option<Duration>) {
        if let Ok(mut d) = self.devices.lock() {
            d.insert(id.to_string(), (battery, left));
        }
    }

    /// `40 sent, 38 acknowledged, battery 0.97, about 4 s left`; for a fleet
    /// the lowest battery and the longest time left.
    pub fn line(&self) -> String {
        let sent = self.sent.load(Ordering::Relaxed);
        let acked = self.acked.load(Ordering::Relaxed);
        let mut out = format!("{sent} sent, {acked} acknowledged");
        let devices = self.devices.lock().map(|d| d.clone()).unwrap_or_default();
        let lowest = devices.values().map(|(b, _)| *b).reduce(f64::min);
        if let Some(b) = lowest {
            let which = if devices.len() > 1 {
                "lowest battery"
            } else {
                "battery"
            };
            out.push_str(&format!(", {which} {b:.2}"));
        }
        let left: Option<Vec<Duration>> = devices.values().map(|(_, l)| *l).collect();
        match left.and_then(|l| l.into_iter().max()) {
            Some(l) => out.push_str(&format!(", about {} s left", l.as_secs_f64().ceil())),
            None if !devices.is_empty() => out.push_str(", until the battery is empty"),
            None => {}
        }
        out
    }
}

/// Run one device until `count` messages are sent and acknowledged, or its
/// battery is empty, counting what it does in `progress`.
pub async fn run_device(
    path: PathBuf,
    opts: SimOptions,
    progress: Arc<Progress>,
) -> Result<SimReport, String> {
    let loaded = load_credential(&path)?;
    let broker_url = device_broker(&opts, &loaded.connection);
    let broker = BrokerUrl::parse(&broker_url)?;
    let id = loaded.connection.device_id.clone();
    let mut mqtt = broker.options(&id);
    mqtt.set_credentials(
        loaded.connection.username(),
        sas_password(&loaded.connection)?,
    );
    let (client, eventloop) = AsyncClient::new(mqtt, 100);
    let connection = Arc::new(Mutex::new(loaded.connection.clone()));
    let acked = Arc::new(AtomicU64::new(0));
    let (events_tx, mut events_rx) = mpsc::channel::<Vec<u8>>(16);
    let poller = tokio::spawn(poll(
        eventloop,
        client.clone(),
        connection.clone(),
        acked.clone(),
        progress.clone(),
        events_tx,
    ));

    let mut device = SimulatedDevice::new(
        &id,
        name_value(&loaded.credential.device_name),
        loaded.function,
        opts.seed,
    );
    let mut report = SimReport::default();
    let topic = crate::topics::events(&id);
    let period = |f: &DeviceFunction| opts.interval.unwrap_or(f.interval) * f.batch.max(1);
    let mut ticker = tokio::time::interval(period(&device.function));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while opts.count.is_none_or(|c| report.messages < c) {
        tokio::select! {
            _ = ticker.tick() => {}
            Some(ev) = events_rx.recv() => {
                if let Some(f) = handle_event(&ev, &path, &connection, &opts.refresh_from).await {
                    device.set_function(f);
                    ticker = tokio::time::interval(period(&device.function));
                    report.refreshed += 1;
                }
                continue;
            }
        }
        let Some((payload, n)) = device.next_message(chrono::Utc::now()) else {
            break;
        };
        client
            .publish(topic.clone(), QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| format!("{id}: cannot publish: {e}"))?;
        report.messages += 1;
        report.readings += n as u64;
        progress.sent.fetch_add(1, Ordering::Relaxed);
        let left = opts.count.map(|c| {
            period(&device.function) * u32::try_from(c - report.messages).unwrap_or(u32::MAX)
        });
        progress.update(&id, device.battery(), left);
    }
    // QoS 1: done only when the hub acknowledged every message.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::SeqCst) < report.messages && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    report.acked = acked.load(Ordering::SeqCst);
    report.battery = device.battery();
    report.stopped = device.stopped();
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), poller).await;
    if report.acked < report.messages {
        return Err(format!(
            "{id}: only {} of {} messages acknowledged by the hub",
            report.acked, report.messages
        ));
    }
    Ok(report)
}

/// Where a device publishes: `--broker`; else hub.toml's `broker` when the
/// credential is for that hub; else from its HostName.
pub fn device_broker(opts: &SimOptions, c: &ConnectionString) -> String {
    if let Some(b) = &opts.broker {
        return b.clone();
    }
    match &opts.hub {
        Some((host, broker)) if host.eq_ignore_ascii_case(&c.host_name) => broker.clone(),
        _ => default_broker(c),
    }
}

async fn poll(
    mut eventloop: EventLoop,
    client: AsyncClient,
    connection: Arc<Mutex<ConnectionString>>,
    acked: Arc<AtomicU64>,
    progress: Arc<Progress>,
    events: mpsc::Sender<Vec<u8>>,
) {
    let mut backoff = Backoff::default();
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                let id = eventloop.mqtt_options.client_id();
                let _ = client
                    .subscribe(crate::topics::devicebound_filter(&id), QoS::AtLeastOnce)
                    .await;
            }
            Ok(Event::Incoming(Packet::PubAck(_))) => {
                acked.fetch_add(1, Ordering::SeqCst);
                progress.acked.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let _ = events.try_send(p.payload.to_vec());
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                // a fresh SAS token (and a refreshed key) for the next attempt
                let c = connection.lock().ok().map(|c| c.clone());
                if let Some(c) = c {
                    if let Ok(pw) = sas_password(&c) {
                        eventloop.mqtt_options.set_credentials(c.username(), pw);
                    }
                }
                let delay = backoff.next_delay();
                tracing::warn!("device lost the hub ({e}); reconnecting in {delay:?}");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// A ZTP event on `devicebound`: `refresh_credential` re-downloads the
/// credential from ztpd's own origin, and when it is this device's, saves it
/// over the file and returns its device function (see the module docs).
async fn handle_event(
    payload: &[u8],
    path: &Path,
    connection: &Mutex<ConnectionString>,
    origins: &RefreshOrigins,
) -> Option<DeviceFunction> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    if v.get("type").and_then(Value::as_str) != Some("refresh_credential") {
        tracing::info!("ignoring devicebound event {v}");
        return None;
    }
    let url = v.get("url").and_then(Value::as_str)?;
    if !origins.allows(url) {
        tracing::warn!(
            "ignoring a credential refresh from {url}: not ztpd's own origin ({})",
            origins.describe()
        );
        return None;
    }
    let current = connection.lock().ok()?.clone();
    let result = async {
        let token = sas_password(&current)?;
        let body = crate::http_client::get_with(
            url,
            &[("Authorization", &token)],
            crate::limits::CREDENTIAL_BYTES as usize,
            REFRESH_TIMEOUT,
        )
        .await
        .map_err(|e| format!("{e:#}"))?;
        let text = String::from_utf8(body).map_err(|_| "credential is not UTF-8".to_string())?;
        let loaded = parse_credential(&text, url)?;
        if loaded.credential.device_id != current.device_id {
            return Err(format!(
                "it is device `{}`'s credential, not this device's (`{}`); kept the old one",
                loaded.credential.device_id, current.device_id
            ));
        }
        crate::secret_file::write(path, text.as_bytes()).map_err(|e| e.to_string())?;
        Ok::<_, String>(loaded)
    }
    .await;
    match result {
        Ok(l) => {
            if let Ok(mut c) = connection.lock() {
                *c = l.connection;
            }
            tracing::info!(function = %l.function.name, "credential refreshed");
            Some(l.function)
        }
        Err(e) => {
            tracing::warn!("credential refresh from {url} refused: {e}");
            None
        }
    }
}

/// The first `n` credential files of `dir` (sorted), or why not.
pub fn fleet_files(dir: &Path, n: usize) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| f.starts_with("device_") && f.ends_with(".json"))
        })
        .collect();
    files.sort();
    if files.len() < n {
        return Err(format!(
            "--fleet {n}: {} holds only {} device_*.json credentials; create more with `ztpd credentials create --new`",
            dir.display(),
            files.len()
        ));
    }
    files.truncate(n);
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_line_has_the_lowest_battery_and_the_longest_time_left() {
        let p = Progress::default();
        assert_eq!(p.line(), "0 sent, 0 acknowledged");
        p.sent.store(40, Ordering::Relaxed);
        p.acked.store(38, Ordering::Relaxed);
        p.update("a", 0.97, Some(Duration::from_millis(3_200)));
        assert_eq!(
            p.line(),
            "40 sent, 38 acknowledged, battery 0.97, about 4 s left"
        );
        p.update("b", 0.5, Some(Duration::from_secs(1)));
        assert_eq!(
            p.line(),
            "40 sent, 38 acknowledged, lowest battery 0.50, about 4 s left"
        );
        p.update("c", 0.9, None);
        assert_eq!(
            p.line(),
            "40 sent, 38 acknowledged, lowest battery 0.50, until the battery is empty"
        );
    }

    #[test]
    fn connection_strings() {
        let c = ConnectionString::parse(
            "HostName=hub.azure-devices.net;DeviceId=dev-1;SharedAccessKey=YWJj+/==",
        )
        .unwrap();
        assert_eq!(c.shared_access_key, "YWJj+/==");
        assert_eq!(
            c.username(),
            "hub.azure-devices.net/dev-1/?api-version=2021-04-12"
        );
        assert_eq!(default_broker(&c), "mqtts://hub.azure-devices.net:8883");
        assert!(ConnectionString::parse("HostName=h;DeviceId=d")
            .unwrap_err()
            .contains("SharedAccessKey"));
        assert!(ConnectionString::parse("garbage").is_err());
    }

    #[test]
    fn refreshes_come_only_from_the_exact_origin() {
        let o = RefreshOrigins::of_server("http://10.0.0.1:8080").unwrap();
        assert!(o.allows("http://10.0.0.1:8080/files/credentials/device_d.json"));
        for foreign in [
            "http://10.0.0.1:8081/files/credentials/device_d.json",
            "http://10.0.0.2:8080/files/credentials/device_d.json",
            "http://10.0.0.1/files/credentials/device_d.json",
            "http://10.0.0.1:8080@evil.example:8080/x",
            "https://10.0.0.1:8080/x",
            "file:///etc/passwd",
            "",
        ] {
            assert!(!o.allows(foreign), "{foreign}");
        }
        assert!(!RefreshOrigins::default().allows("http://127.0.0.1:8080/"));
        assert!(RefreshOrigins::of_server("ftp://x").is_err());
    }

    #[test]
    fn the_broker_is_the_flag_then_the_hubs_then_the_hostnames() {
        let c = ConnectionString::parse("HostName=localhost;DeviceId=d;SharedAccessKey=k").unwrap();
        let local = Some(("localhost".to_string(), "mqtt://127.0.0.1:2883".to_string()));
        let mut o = SimOptions {
            hub: local,
            ..Default::default()
        };
        assert_eq!(device_broker(&o, &c), "mqtt://127.0.0.1:2883");
        o.broker = Some("mqtt://10.1.1.1:1".into());
        assert_eq!(device_broker(&o, &c), "mqtt://10.1.1.1:1");
        o.broker = None;
        o.hub = Some(("other.example".into(), "mqtt://10.2.2.2:1883".into()));
        assert_eq!(device_broker(&o, &c), "mqtt://127.0.0.1:1883");
        let azure =
            ConnectionString::parse("HostName=Other.example;DeviceId=d;SharedAccessKey=k").unwrap();
        assert_eq!(device_broker(&o, &azure), "mqtt://10.2.2.2:1883");
    }
}
