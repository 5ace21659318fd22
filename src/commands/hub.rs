//! `ztpd hub info|devices|invoke|twin` (SPEC §13): the local hub's
//! provisioning settings (offline), and its devices, direct methods and
//! desired properties through the operator API of a running daemon.

use std::process::ExitCode;

use serde_json::{json, Map, Value};

use super::operator::{call_with, fail};
use super::Format;
use crate::settings::Resolved;

#[derive(Debug, clap::Subcommand)]
pub enum HubCommand {
    /// What a device is given to register: id scope, provisioning host, CA.
    Info {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Every device identity the hub knows (running daemon).
    Devices {
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Call a direct method on a connected device (running daemon).
    Invoke {
        device: String,
        method: String,
        /// The method's payload, JSON.
        #[arg(long, default_value = "null")]
        payload: String,
        /// How long to wait for the answer, 5s to 300s.
        #[arg(long, default_value = "30s")]
        timeout: String,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// Show a device's twin, or set desired properties (`--set KEY=JSON`).
    Twin {
        device: String,
        #[arg(long, value_name = "KEY=JSON")]
        set: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

pub fn run(r: &Resolved, command: HubCommand) -> ExitCode {
    match command {
        HubCommand::Info { format } => info(r, format),
        HubCommand::Devices { format } => api(r, "GET", "/api/v1/hub/devices", None, format),
        HubCommand::Invoke {
            device,
            method,
            payload,
            timeout,
            format,
        } => {
            let Ok(payload) = serde_json::from_str::<Value>(&payload) else {
                eprintln!("error: --payload is not JSON; expected e.g. '{{\"delay\": 5}}'");
                return ExitCode::from(super::EXIT_INVALID);
            };
            let body = json!({"payload": payload, "timeout": timeout}).to_string();
            let path = format!("/api/v1/hub/devices/{device}/methods/{method}");
            api(r, "POST", &path, Some(&body), format)
        }
        HubCommand::Twin {
            device,
            set,
            format,
        } => {
            let path = format!("/api/v1/hub/devices/{device}/twin");
            if set.is_empty() {
                return api(r, "GET", &path, None, format);
            }
            let mut desired = Map::new();
            for kv in &set {
                let parsed = kv
                    .split_once('=')
                    .and_then(|(k, v)| Some((k, serde_json::from_str::<Value>(v).ok()?)));
                let Some((k, v)) = parsed else {
                    eprintln!(
                        "error: --set `{kv}`: expected KEY=JSON, e.g. interval=5 or mode='\"eco\"'"
                    );
                    return ExitCode::from(super::EXIT_INVALID);
                };
                desired.insert(k.to_string(), v);
            }
            let body = json!({ "desired": desired }).to_string();
            api(r, "PATCH", &path, Some(&body), format)
        }
    }
}

/// One operator API call: its JSON with `--format json`; as text, a
/// table of devices, a method's `status<TAB>payload`, or a twin document.
fn api(r: &Resolved, method: &str, path: &str, body: Option<&str>, format: Format) -> ExitCode {
    match call_with(r, method, path, body) {
        Ok(resp) if resp.status == 200 => {
            let v = resp.json();
            match (format, &v) {
                (Format::Json, _) => println!("{v:#}"),
                (Format::Text, Value::Array(devices)) => {
                    println!("DEVICE_ID\tNAME\tCONNECTED\tREGISTERED\tPLANNED");
                    for d in devices {
                        let s = |k: &str| match &d[k] {
                            Value::Null => "-".to_string(),
                            Value::String(x) => x.clone(),
                            x => x.to_string(),
                        };
                        println!(
                            "{}\t{}\t{}\t{}\t{}",
                            s("device_id"),
                            s("device_name"),
                            s("connected"),
                            s("registered_at"),
                            s("planned")
                        );
                    }
                }
                (Format::Text, _) if v.get("status").is_some() && method == "POST" => {
                    println!("{}\t{}", v["status"], v["payload"]);
                }
                (Format::Text, _) => println!("{v:#}"),
            }
            ExitCode::SUCCESS
        }
        Ok(resp) => fail(&resp),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `ztpd hub info`: read from the settings, hub.toml and `state/` (the id
/// scope and the local hub's key are made there when missing, as
/// `ztpd run` makes them).
fn info(r: &Resolved, format: Format) -> ExitCode {
    let hub = match crate::credentials::hub::load(r) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(super::EXIT_INVALID);
        }
    };
    let id_scope = match hub.dps.id_scope.clone() {
        Some(s) => s,
        None => match crate::credentials::dps::local_id_scope(&r.state_dir()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: the id scope in {}: {e}", r.state_dir().display());
                return ExitCode::FAILURE;
            }
        },
    };
    let b = &r.settings.broker;
    let v = json!({
        "id_scope": id_scope,
        "provisioning_host": hub.dps.provisioning_host.clone().unwrap_or_else(|| hub.hostname.clone()),
        "hostname": hub.hostname,
        "listen": b.listen.to_string(),
        "tls_listen": b.tls_listen.map(|a| a.to_string()),
        "ca": r.state_dir().join(crate::broker::tls::CA_CERT_FILE).display().to_string(),
    });
    match format {
        Format::Json => println!("{v:#}"),
        Format::Text => {
            for k in [
                "id_scope",
                "provisioning_host",
                "hostname",
                "listen",
                "tls_listen",
                "ca",
            ] {
                println!("{k}\t{}", v[k].as_str().unwrap_or("-"));
            }
        }
    }
    ExitCode::SUCCESS
}
