//! Daemon settings (`ztpd.toml`, every key optional) and how the root is found.
//!
//! SPEC §1: the root is the directory of `--config FILE`; else the current
//! directory when it holds `ztpd.toml`; else the parent of the `plans/`
//! directory holding a plan a command was given; else the current directory.
//! Every `[paths]` entry resolves against the root.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The file name looked for in the current directory.
pub const SETTINGS_FILE: &str = "ztpd.toml";

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub paths: Paths,
    pub listen: Listen,
    pub access: Access,
    pub state: StateSettings,
    pub api: Api,
    pub broker: Broker,
    pub telemetry: Telemetry,
    pub limits: Limits,
    pub topology: TopologySettings,
}

/// `[topology]`: reading deployed devices' LLDP tables (SPEC §12).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TopologySettings {
    /// How often deployed devices are polled over SNMP; "0s": never.
    pub poll_interval: String,
}

impl Default for TopologySettings {
    fn default() -> Self {
        TopologySettings {
            poll_interval: "60s".into(),
        }
    }
}

impl TopologySettings {
    /// The poll interval; an unreadable one is the default (60 s), logged.
    pub fn poll_interval(&self) -> std::time::Duration {
        crate::duration::parse(&self.poll_interval).unwrap_or_else(|e| {
            tracing::warn!("topology.poll_interval: {e}; polling every 60s");
            std::time::Duration::from_secs(60)
        })
    }
}

/// Caps on what a listener holds open (each costs a file descriptor).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open HTTP connections; further ones wait in the kernel's backlog.
    /// Room for 10,000 agents long-polling their actions, the operator's
    /// SSE streams and a fleet booting at once.
    pub http_connections: usize,
    /// Concurrent TFTP transfers; more get "server busy". Each costs a
    /// socket and at most one window of blocks.
    pub tftp_transfers: usize,
    /// Concurrent TFTP transfers from one client address, so one host
    /// cannot take every slot. Room for a host fetching image, config and
    /// patch at once, or a few devices behind one NAT; 32 hosts are needed
    /// to fill the default 1,024 slots.
    pub tftp_transfers_per_client: usize,
    /// Open connections to the local hub, over both of its listeners: room
    /// for 10,000 devices and their reconnects.
    pub hub_connections: usize,
    /// Hub connections from one address that have not sent CONNECT yet
    /// (each is closed 10 s after accept anyway), so idle sockets from one
    /// host cannot fill `hub_connections`. Room for a fleet behind one NAT
    /// reconnecting at once; authenticated connections do not count.
    pub hub_unauthenticated_per_client: usize,
    /// The longest a reload (plans, templates, files) may take before it is
    /// refused and the last good snapshot keeps serving. The 10,000-device
    /// example plan reloads in under a second; a template that loops or
    /// reads a FIFO never would.
    #[serde(deserialize_with = "duration_text")]
    pub reload_timeout: std::time::Duration,
    /// Device events kept per device in the state database (each stage
    /// change, refusal summary, conflict); older ones are deleted. Read at
    /// start.
    pub device_events: usize,
    /// Groups made through the API (plan groups do not count): a bound on
    /// what `GET /api/v1/groups` returns (5,000 made it 2.9 MB).
    pub runtime_groups: usize,
    /// Finished (done or aborted) rollouts kept, newest first; older ones
    /// are deleted as more finish.
    pub finished_rollouts: usize,
}

/// A duration written as text (`"60s"`, `"2m"`).
fn duration_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    let text = String::deserialize(d)?;
    crate::duration::parse(&text).map_err(serde::de::Error::custom)
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            http_connections: 16_384,
            tftp_transfers: 1_024,
            tftp_transfers_per_client: 32,
            hub_connections: 16_384,
            hub_unauthenticated_per_client: 256,
            reload_timeout: std::time::Duration::from_secs(60),
            device_events: crate::ztp::state::EVENTS_KEPT,
            runtime_groups: 256,
            finished_rollouts: 100,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Paths {
    pub plans: PathBuf,
    pub templates: PathBuf,
    pub files: PathBuf,
    pub credentials: PathBuf,
    pub hub: PathBuf,
    /// Message routing (SPEC §14); an absent file routes as before routes
    /// existed: every device message to the telemetry collection.
    pub routes: PathBuf,
    pub state: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            plans: "plans".into(),
            templates: "templates".into(),
            files: "files".into(),
            credentials: "device_credentials".into(),
            hub: "azure_mqtt_credentials/hub.toml".into(),
            routes: "azure_mqtt_credentials/routes.toml".into(),
            state: "state".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    pub dhcp: SocketAddr,
    /// DHCPv6 (SPEC §11); bound only while some plan has `[dhcp6]`.
    pub dhcp6: SocketAddr,
    pub tftp: SocketAddr,
    pub http: SocketAddr,
    /// When set, `/api/v1` and the GUI move here from `http`.
    pub api: Option<SocketAddr>,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            dhcp: "0.0.0.0:67".parse().expect("literal address"),
            dhcp6: "[::]:547".parse().expect("literal address"),
            // Dual-stack (SPEC §1b): IPv4 clients arrive v4-mapped.
            tftp: "[::]:69".parse().expect("literal address"),
            http: "[::]:8080".parse().expect("literal address"),
            api: None,
        }
    }
}

/// Who may fetch rendered configs (SPEC §5).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum ConfigAccess {
    Open,
    #[default]
    Leased,
    Approved,
}

/// Whose hello, progress and neighbour reports change a device's state
/// (SPEC §7).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum HelloAccess {
    /// Only the address ztpd leased to the device, or its planned `ip`.
    #[default]
    Leased,
    /// Any address: labs, simulators, devices behind NAT.
    Any,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Access {
    pub configs: ConfigAccess,
    pub hello: HelloAccess,
}

/// When a reply that depends on a state write may leave.
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// After the write is on disk (group-committed fsync).
    #[default]
    Fsync,
    /// After the write reached the OS, as Kea's memfile does.
    Os,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StateSettings {
    pub durability: Durability,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Api {
    /// Under `paths.state`; created 0600 on first start when absent.
    pub token_file: PathBuf,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            token_file: "operator.token".into(),
        }
    }
}

/// `[broker]`: the local IoT hub (SPEC §9). It is a device endpoint, not a
/// general broker, so it has no service accounts: `users` is refused.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Broker {
    /// Off: neither listener runs.
    pub enabled: bool,
    /// Plain MQTT 3.1.1.
    pub listen: SocketAddr,
    /// MQTT over TLS, what the Azure IoT device SDKs speak; absent: none.
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain and key for `tls_listen`; both absent: a local
    /// CA (`state/hub-ca.pem`) and a certificate it signs.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Always refused when present (see [`NoServiceAccounts`]).
    pub users: Option<NoServiceAccounts>,
}

impl Default for Broker {
    fn default() -> Self {
        Broker {
            enabled: true,
            listen: "127.0.0.1:1883".parse().expect("literal address"),
            tls_listen: Some("127.0.0.1:8883".parse().expect("literal address")),
            tls_cert: None,
            tls_key: None,
            users: None,
        }
    }
}

/// `[broker] users` of earlier versions: refused with what to do instead.
#[derive(Debug, Clone, PartialEq)]
pub struct NoServiceAccounts;

impl<'de> Deserialize<'de> for NoServiceAccounts {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom(
            "the local hub has no service accounts: it is a device endpoint, where each device \
             reaches only its own topics. To watch telemetry, read the store (`ztpd analyze`), or \
             run an external broker (Mosquitto, EMQX) and set telemetry.broker to it; then remove \
             [broker] users",
        ))
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Telemetry {
    /// External broker for the bridge; absent means the embedded broker.
    pub broker: Option<String>,
    /// Absent means the embedded store in `state/`.
    pub mongodb_uri: Option<String>,
    pub database: String,
    pub collection: String,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            broker: None,
            mongodb_uri: None,
            database: "db_elastacloud".into(),
            collection: "collection_elastacloud".into(),
        }
    }
}

/// Settings together with the root they resolve against.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub root: PathBuf,
    /// The settings file that was read, if any.
    pub file: Option<PathBuf>,
    pub settings: Settings,
}

impl Resolved {
    /// Resolve a path from `[paths]` (or any relative path) against the root.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.root.join(p)
        }
    }
    pub fn plans_dir(&self) -> PathBuf {
        self.resolve(&self.settings.paths.plans)
    }
    pub fn templates_dir(&self) -> PathBuf {
        self.resolve(&self.settings.paths.templates)
    }
    pub fn files_dir(&self) -> PathBuf {
        self.resolve(&self.settings.paths.files)
    }
    pub fn credentials_dir(&self) -> PathBuf {
        self.resolve(&self.settings.paths.credentials)
    }
    pub fn hub_file(&self) -> PathBuf {
        self.resolve(&self.settings.paths.hub)
    }
    pub fn routes_file(&self) -> PathBuf {
        self.resolve(&self.settings.paths.routes)
    }
    pub fn state_dir(&self) -> PathBuf {
        self.resolve(&self.settings.paths.state)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid settings in {path}: {message}")]
    Parse {
        path: PathBuf,
        message: String,
        /// Byte range of the offending text, when TOML gave one.
        span: Option<std::ops::Range<usize>>,
        text: String,
    },
}

/// Parse settings text; the error carries the span for a diagnostic.
/// A bind failure that names the setting to change (SPEC §1b).
pub fn bind_error(setting: &str, addr: std::net::SocketAddr, e: std::io::Error) -> anyhow::Error {
    let hint = match e.kind() {
        std::io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        }
        std::io::ErrorKind::AddrInUse => {
            " (another process holds it: a second ztpd, or another server for this protocol)"
        }
        _ => "",
    };
    anyhow::anyhow!(
        "cannot bind {setting} = \"{addr}\": {e}{hint}; change `{setting}` in ztpd.toml"
    )
}

pub fn parse(path: &Path, text: &str) -> Result<Settings, SettingsError> {
    toml::from_str(text).map_err(|e| SettingsError::Parse {
        path: path.to_path_buf(),
        message: e.message().to_string(),
        span: e.span(),
        text: text.to_string(),
    })
}

fn read_settings(path: &Path) -> std::io::Result<String> {
    crate::limits::read_capped_string(path, crate::limits::SETTINGS_BYTES, "settings file")
}

/// Find the root and read the settings as SPEC §1 says.
///
/// `config`: the global `--config FILE`. `plan_args`: plan files or
/// directories the command was given (used only when neither `--config` nor a
/// `ztpd.toml` in the current directory decides).
pub fn resolve(config: Option<&Path>, plan_args: &[PathBuf]) -> Result<Resolved, SettingsError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    if let Some(file) = config {
        let file = absolute(&cwd, file);
        let text = read_settings(&file).map_err(|source| SettingsError::Read {
            path: file.clone(),
            source,
        })?;
        let settings = parse(&file, &text)?;
        let root = file.parent().map(Path::to_path_buf).unwrap_or(cwd);
        return Ok(Resolved {
            root,
            file: Some(file),
            settings,
        });
    }
    let local = cwd.join(SETTINGS_FILE);
    if local.is_file() {
        let text = read_settings(&local).map_err(|source| SettingsError::Read {
            path: local.clone(),
            source,
        })?;
        let settings = parse(&local, &text)?;
        return Ok(Resolved {
            root: cwd,
            file: Some(local),
            settings,
        });
    }
    let root = plan_args
        .iter()
        .find_map(|p| root_from_plan_path(&absolute(&cwd, p)))
        .unwrap_or(cwd);
    // A `ztpd.toml` at a root found through the plan path counts too: the
    // operator ran the command from elsewhere in the repository.
    let beside = root.join(SETTINGS_FILE);
    if beside.is_file() {
        let text = read_settings(&beside).map_err(|source| SettingsError::Read {
            path: beside.clone(),
            source,
        })?;
        let settings = parse(&beside, &text)?;
        return Ok(Resolved {
            root,
            file: Some(beside),
            settings,
        });
    }
    Ok(Resolved {
        root,
        file: None,
        settings: Settings::default(),
    })
}

fn absolute(cwd: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    }
}

/// The parent of the `plans/` directory that holds `p` (a plan file or the
/// `plans` directory itself).
fn root_from_plan_path(p: &Path) -> Option<PathBuf> {
    let mut cur = if p.is_dir() { Some(p) } else { p.parent() };
    while let Some(dir) = cur {
        if dir.file_name().is_some_and(|n| n == "plans") {
            return dir.parent().map(Path::to_path_buf);
        }
        cur = dir.parent();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_spec_defaults() {
        let s = parse(Path::new("ztpd.toml"), "").unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.listen.dhcp.port(), 67);
        assert_eq!(s.listen.tftp.port(), 69);
        assert_eq!(s.listen.http.port(), 8080);
        assert_eq!(s.access.configs, ConfigAccess::Leased);
        assert_eq!(s.access.hello, HelloAccess::Leased);
        assert_eq!(s.state.durability, Durability::Fsync);
        assert_eq!(s.telemetry.database, "db_elastacloud");
        assert_eq!(s.telemetry.collection, "collection_elastacloud");
        assert!(s.broker.enabled);
    }

    #[test]
    fn unknown_key_is_an_error_with_a_span() {
        let text = "[listen]\nhttpp = \"0.0.0.0:1\"\n";
        match parse(Path::new("ztpd.toml"), text) {
            Err(SettingsError::Parse { message, span, .. }) => {
                assert!(message.contains("httpp"), "{message}");
                assert!(span.is_some());
            }
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn root_is_parent_of_plans_dir() {
        let dir = tempfile::tempdir().unwrap();
        let plans = dir.path().join("site/plans");
        std::fs::create_dir_all(&plans).unwrap();
        let plan = plans.join("lab.toml");
        std::fs::write(&plan, "").unwrap();
        assert_eq!(root_from_plan_path(&plan).unwrap(), dir.path().join("site"));
        assert_eq!(
            root_from_plan_path(&plans).unwrap(),
            dir.path().join("site")
        );
        assert_eq!(root_from_plan_path(&dir.path().join("x.toml")), None);
    }
}
