//! The IoT hub devices publish to: `azure_mqtt_credentials/hub.toml`
//! (SPEC §9), or a local hub created in `state/` when that file is absent
//! (SPEC §1b).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;

use crate::settings::Resolved;

/// File name of the local hub's key under `paths.state`.
pub const LOCAL_KEY_FILE: &str = "hub.key";
/// Hostname of the local hub in connection strings.
pub const LOCAL_HOSTNAME: &str = "localhost";
/// Size of a generated enrollment key; Azure's generated keys are 64 bytes.
const GENERATED_KEY_LEN: usize = 64;
/// Shortest enrollment key accepted. Azure keys are 32 or 64 bytes; anything
/// under 16 bytes is a typo or a placeholder, not a key.
const MIN_KEY_LEN: usize = 16;

/// The hub's group enrollment key (decoded). Debug and Display never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollmentKey(Vec<u8>);

impl EnrollmentKey {
    /// A fresh random key for a local hub.
    pub fn generate() -> EnrollmentKey {
        let mut bytes = vec![0u8; GENERATED_KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        EnrollmentKey(bytes)
    }

    /// Parse a key as written in `hub.toml` (base64), refusing placeholders.
    /// Error messages never quote the text (it may be a real key with a typo).
    pub fn from_base64(text: &str) -> Result<EnrollmentKey, String> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        // Words long enough that a random base64 key contains them with
        // negligible probability (`<` is not in the base64 alphabet at all).
        const PLACEHOLDERS: [&str; 4] = ["replace", "placeholder", "changeme", "<"];
        if text.is_empty() || PLACEHOLDERS.iter().any(|p| lower.contains(p)) {
            return Err(
                "the enrollment key is a placeholder; put the hub's group enrollment \
                 key (base64, from the Azure portal) in hub.toml, or delete hub.toml to \
                 use a local hub"
                    .into(),
            );
        }
        let bytes = STANDARD.decode(text).map_err(|_| {
            "the enrollment key is not valid base64; expected the group enrollment key \
             exactly as the Azure portal shows it"
                .to_string()
        })?;
        if bytes.len() < MIN_KEY_LEN {
            return Err(format!(
                "the enrollment key decodes to {} bytes; expected at least {MIN_KEY_LEN} \
                 (Azure keys are 32 or 64 bytes)",
                bytes.len()
            ));
        }
        Ok(EnrollmentKey(bytes))
    }

    pub fn raw(&self) -> &[u8] {
        &self.0
    }

    fn to_base64(&self) -> String {
        STANDARD.encode(&self.0)
    }
}

impl std::fmt::Debug for EnrollmentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnrollmentKey(<redacted>)")
    }
}

impl std::fmt::Display for EnrollmentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted enrollment key>")
    }
}

/// Where the hub settings came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubSource {
    /// `hub.toml` at this path.
    File(PathBuf),
    /// A local hub whose key is kept at this path.
    Local(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Hub {
    /// `HostName=` in connection strings; the SAS resource's host.
    pub hostname: String,
    /// URL devices publish to.
    pub broker: String,
    pub key: EnrollmentKey,
    pub source: HubSource,
    /// Its provisioning service (SPEC §13).
    pub dps: super::dps::Dps,
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid hub settings in {path}{line}: {message}")]
    Parse {
        path: PathBuf,
        /// ` line N` when known.
        line: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("cannot create the local hub key {path}: {source}")]
    CreateKey {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The file as written. No Debug: it may hold the key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHub {
    hostname: String,
    broker: String,
    enrollment_key: Option<String>,
    enrollment_key_env: Option<String>,
    enrollment_key_file: Option<PathBuf>,
    id_scope: Option<String>,
    provisioning_host: Option<String>,
    #[serde(default)]
    dps: super::dps::RawDps,
}

/// Load the hub for these settings: `paths.hub` when it exists, else the
/// local hub (created on first use).
pub fn load(resolved: &Resolved) -> Result<Hub, HubError> {
    load_from(
        &resolved.hub_file(),
        &resolved.state_dir(),
        &local_broker_url(resolved),
    )
}

/// The hub as a device sees it, without its key: `(hostname, broker)` from
/// `paths.hub`, or the local hub (`localhost`, the embedded broker) when the
/// file is absent. `None` when hub.toml cannot be read or lacks either key
/// (the caller falls back to the credential's HostName). Reads nothing
/// secret and creates nothing, so a device simulator can call it.
pub fn device_view(resolved: &Resolved) -> Option<(String, String)> {
    #[derive(Deserialize)]
    struct Public {
        hostname: String,
        broker: String,
    }
    match read_hub_toml(&resolved.hub_file()) {
        Ok(text) => {
            let p: Public = toml::from_str(&text).ok()?;
            Some((p.hostname.trim().to_string(), p.broker))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some((LOCAL_HOSTNAME.to_string(), local_broker_url(resolved)))
        }
        Err(_) => None,
    }
}

/// The embedded broker's URL for devices on this machine (loopback when it
/// listens on all addresses).
fn local_broker_url(resolved: &Resolved) -> String {
    let listen = resolved.settings.broker.listen;
    let ip = match listen.ip() {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => {
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        }
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => {
            std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        }
        ip => ip,
    };
    format!("mqtt://{}", std::net::SocketAddr::new(ip, listen.port()))
}

/// [`load`] with explicit paths: `local_broker` is the embedded broker's URL.
/// `paths.hub` when the file exists (`None` when it does not), read and
/// checked; creates nothing. The plan loader's reader: a bad hub.toml is a
/// `validate` error and refuses a reload whole.
pub fn read_file(resolved: &Resolved) -> Result<Option<Hub>, HubError> {
    let path = resolved.hub_file();
    match read_hub_toml(&path) {
        Ok(text) => parse_hub(&path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(HubError::Read { path, source }),
    }
}

/// The local hub (`localhost`, the embedded broker), its key kept under
/// `paths.state` and created on first use.
pub fn local(resolved: &Resolved) -> Result<Hub, HubError> {
    local_hub(&resolved.state_dir(), &local_broker_url(resolved))
}

pub fn load_from(hub_file: &Path, state_dir: &Path, local_broker: &str) -> Result<Hub, HubError> {
    match read_hub_toml(hub_file) {
        Ok(text) => parse_hub(hub_file, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => local_hub(state_dir, local_broker),
        Err(source) => Err(HubError::Read {
            path: hub_file.to_path_buf(),
            source,
        }),
    }
}

fn read_hub_toml(path: &Path) -> std::io::Result<String> {
    crate::limits::read_capped_string(path, crate::limits::SETTINGS_BYTES, "hub settings file")
}

fn read_key_file(path: &Path) -> std::io::Result<String> {
    crate::limits::read_capped_string(path, crate::limits::SECRET_BYTES, "key file")
}

fn parse_hub(path: &Path, text: &str) -> Result<Hub, HubError> {
    // Only the message and line: toml's full Display quotes the source line,
    // which may be the key itself.
    let raw: RawHub = toml::from_str(text).map_err(|e| HubError::Parse {
        path: path.to_path_buf(),
        line: e
            .span()
            .map(|s| format!(" line {}", text[..s.start].matches('\n').count() + 1))
            .unwrap_or_default(),
        message: e.message().to_string(),
    })?;
    let key_error = |message: String| HubError::Key {
        path: path.to_path_buf(),
        message,
    };
    let sources = [
        raw.enrollment_key.is_some(),
        raw.enrollment_key_env.is_some(),
        raw.enrollment_key_file.is_some(),
    ];
    match sources.iter().filter(|s| **s).count() {
        0 => {
            return Err(key_error(
                "no enrollment key; set one of `enrollment_key`, `enrollment_key_env` \
                 (an environment variable name) or `enrollment_key_file`"
                    .into(),
            ))
        }
        1 => {}
        _ => {
            return Err(key_error(
                "more than one of `enrollment_key`, `enrollment_key_env`, \
                 `enrollment_key_file` is set; keep exactly one"
                    .into(),
            ))
        }
    }
    let key_text = if let Some(k) = raw.enrollment_key {
        k
    } else if let Some(var) = raw.enrollment_key_env {
        std::env::var(&var).map_err(|_| {
            key_error(format!(
                "`enrollment_key_env = \"{var}\"` but the environment variable {var} is not set \
                 (or not UTF-8)"
            ))
        })?
    } else {
        let file = raw.enrollment_key_file.unwrap_or_default();
        // Relative to the directory of hub.toml, where the operator keeps it.
        let file = match path.parent() {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file,
        };
        read_key_file(&file).map_err(|e| {
            key_error(format!(
                "cannot read `enrollment_key_file` {}: {e}",
                file.display()
            ))
        })?
    };
    let key = EnrollmentKey::from_base64(&key_text).map_err(key_error)?;
    let hostname = raw.hostname.trim().to_string();
    if hostname.is_empty() || hostname.contains(['/', ' ', ';']) {
        return Err(key_error(format!(
            "`hostname = \"{}\"` is not a host name; expected e.g. \"myhub.azure-devices.net\"",
            hostname.escape_debug()
        )));
    }
    let dps = super::dps::Dps::from_raw(raw.id_scope, raw.provisioning_host, raw.dps)
        .map_err(key_error)?;
    Ok(Hub {
        hostname,
        broker: raw.broker,
        key,
        source: HubSource::File(path.to_path_buf()),
        dps,
    })
}

/// The local hub: its key lives in `state/hub.key`, created 0600 on first use.
fn local_hub(state_dir: &Path, broker: &str) -> Result<Hub, HubError> {
    let path = state_dir.join(LOCAL_KEY_FILE);
    let key = match read_key_file(&path) {
        Ok(text) => read_local_key(&path, &text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_local_key(&path)?,
        Err(source) => return Err(HubError::Read { path, source }),
    };
    Ok(Hub {
        hostname: LOCAL_HOSTNAME.into(),
        broker: broker.into(),
        key,
        source: HubSource::Local(path),
        dps: Default::default(),
    })
}

fn read_local_key(path: &Path, text: &str) -> Result<EnrollmentKey, HubError> {
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %path.display(), "local hub key is readable by others; chmod 600 it");
        }
    }
    EnrollmentKey::from_base64(text).map_err(|message| HubError::Key {
        path: path.to_path_buf(),
        message: format!("{message}; delete the file to create a new local hub key"),
    })
}

/// Write a new key to a 0600 temp file, then hard-link it into place: the
/// link fails if another process won the race, and then we use its key. No
/// reader ever sees a half-written key.
fn create_local_key(path: &Path) -> Result<EnrollmentKey, HubError> {
    let err = |source| HubError::CreateKey {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(err)?;
    let key = EnrollmentKey::generate();
    match crate::secret_file::create_new(path, format!("{}\n", key.to_base64()).as_bytes()) {
        Ok(true) => {
            tracing::info!(path = %path.display(), "created a local hub enrollment key");
            Ok(key)
        }
        // Another process created it first: use that one.
        Ok(false) => {
            let text = read_key_file(path).map_err(err)?;
            read_local_key(path, &text)
        }
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==";

    fn write_hub(dir: &Path, body: &str) -> PathBuf {
        let p = dir.join("hub.toml");
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn reads_inline_key() {
        let d = tempfile::tempdir().unwrap();
        let p = write_hub(
            d.path(),
            &format!("hostname = \"h.azure-devices.net\"\nbroker = \"mqtts://h.azure-devices.net:8883\"\nenrollment_key = \"{KEY}\"\n"),
        );
        let hub = load_from(&p, &d.path().join("state"), "mqtt://x").unwrap();
        assert_eq!(hub.hostname, "h.azure-devices.net");
        assert_eq!(hub.broker, "mqtts://h.azure-devices.net:8883");
        assert_eq!(hub.key, EnrollmentKey::from_base64(KEY).unwrap());
        assert!(!format!("{hub:?}").contains(&KEY[..20]));
        assert!(
            !d.path().join("state").exists(),
            "no local key for a real hub"
        );
    }

    #[test]
    fn reads_key_from_file_and_env() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("key.b64"), format!("{KEY}\n")).unwrap();
        let p = write_hub(
            d.path(),
            "hostname = \"h\"\nbroker = \"mqtt://b\"\nenrollment_key_file = \"key.b64\"\n",
        );
        let hub = load_from(&p, d.path(), "mqtt://x").unwrap();
        assert_eq!(hub.key, EnrollmentKey::from_base64(KEY).unwrap());

        let var = format!("ZTPD_TEST_HUB_KEY_{}", std::process::id());
        std::env::set_var(&var, KEY);
        let p = write_hub(
            d.path(),
            &format!("hostname = \"h\"\nbroker = \"mqtt://b\"\nenrollment_key_env = \"{var}\"\n"),
        );
        assert!(load_from(&p, d.path(), "mqtt://x").is_ok());
        std::env::remove_var(&var);
        let e = load_from(&p, d.path(), "mqtt://x").unwrap_err().to_string();
        assert!(e.contains("is not set"), "{e}");
    }

    #[test]
    fn placeholder_and_bad_keys_are_refused_without_echoing_them() {
        let d = tempfile::tempdir().unwrap();
        for (key, expect) in [
            ("REPLACE_WITH_YOUR_KEY", "placeholder"),
            ("<enrollment key>", "placeholder"),
            ("this is not base64!", "not valid base64"),
            ("c2hvcnQ=", "at least 16"),
        ] {
            let p = write_hub(
                d.path(),
                &format!("hostname = \"h\"\nbroker = \"mqtt://b\"\nenrollment_key = \"{key}\"\n"),
            );
            let e = load_from(&p, d.path(), "mqtt://x").unwrap_err().to_string();
            assert!(e.contains(expect), "{key}: {e}");
            assert!(!e.contains(key), "error echoes the key: {e}");
        }
        let p = write_hub(d.path(), "hostname = \"h\"\nbroker = \"mqtt://b\"\n");
        let e = load_from(&p, d.path(), "mqtt://x").unwrap_err().to_string();
        assert!(e.contains("no enrollment key"), "{e}");
        let p = write_hub(
            d.path(),
            &format!("hostname = \"h\"\nbroker = \"b\"\nenrollment_key = \"{KEY}\"\nenrollment_key_env = \"X\"\n"),
        );
        let e = load_from(&p, d.path(), "mqtt://x").unwrap_err().to_string();
        assert!(e.contains("exactly one"), "{e}");
    }

    #[test]
    fn syntax_error_does_not_quote_the_key_line() {
        let d = tempfile::tempdir().unwrap();
        let p = write_hub(
            d.path(),
            &format!("hostname = \"h\"\nbroker = \"b\"\nenrollment_key = \"{KEY}\n"),
        );
        let e = load_from(&p, d.path(), "mqtt://x").unwrap_err().to_string();
        assert!(e.contains("line 3"), "{e}");
        assert!(!e.contains(&KEY[..20]), "{e}");
    }

    #[test]
    fn devices_see_the_hub_broker_without_the_key() {
        let d = tempfile::tempdir().unwrap();
        let mut settings = crate::settings::Settings::default();
        settings.broker.listen = "0.0.0.0:1999".parse().unwrap();
        let r = Resolved {
            root: d.path().to_path_buf(),
            file: None,
            settings,
        };
        assert_eq!(
            device_view(&r),
            Some(("localhost".into(), "mqtt://127.0.0.1:1999".into()))
        );
        assert!(!d.path().join("state").exists(), "no key is created");
        std::fs::create_dir_all(r.hub_file().parent().unwrap()).unwrap();
        std::fs::write(
            r.hub_file(),
            "hostname = \"h.example\"\nbroker = \"mqtt://10.0.0.5:1883\"\nenrollment_key_env = \"UNSET_ON_DEVICES\"\n",
        )
        .unwrap();
        assert_eq!(
            device_view(&r),
            Some(("h.example".into(), "mqtt://10.0.0.5:1883".into()))
        );
        std::fs::write(r.hub_file(), "hostname = \"h.example\"\n").unwrap();
        assert_eq!(device_view(&r), None);
    }

    #[test]
    fn absent_hub_creates_a_local_key_0600_once() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("state");
        let missing = d.path().join("azure_mqtt_credentials/hub.toml");
        let a = load_from(&missing, &state, "mqtt://127.0.0.1:1883").unwrap();
        assert_eq!(a.hostname, "localhost");
        assert_eq!(a.broker, "mqtt://127.0.0.1:1883");
        assert_eq!(a.key.raw().len(), 64);
        let key_file = state.join(LOCAL_KEY_FILE);
        assert_eq!(a.source, HubSource::Local(key_file.clone()));
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let b = load_from(&missing, &state, "mqtt://127.0.0.1:1883").unwrap();
        assert_eq!(a.key, b.key, "the local key is kept, not regenerated");
        let leftovers: Vec<_> = std::fs::read_dir(&state).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp files left behind");
    }
}
