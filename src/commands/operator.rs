//! `ztpd status` and `ztpd approve DEVICE`: operator actions against a
//! running daemon through the operator API (SPEC §8). The URL comes from the
//! settings (`listen.api`, else `listen.http`; an unspecified address means
//! this host), the token from the state directory.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use super::Format;
use crate::http_client;
use crate::settings::Resolved;

const TIMEOUT: Duration = Duration::from_secs(10);

fn base_url(r: &Resolved) -> String {
    let mut addr = r.settings.listen.api.unwrap_or(r.settings.listen.http);
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}

fn token(r: &Resolved) -> Result<String, String> {
    let path = r.state_dir().join(&r.settings.api.token_file);
    crate::limits::read_capped_string(&path, crate::limits::SECRET_BYTES, "token file")
        .map(|t| t.trim().to_string())
        .map_err(|e| {
            format!(
                "cannot read the operator token {}: {e} (is ztpd running with this root?)",
                path.display()
            )
        })
}

fn call(r: &Resolved, method: &str, path: &str) -> Result<http_client::Response, String> {
    let body = (method == "POST").then_some("");
    call_with(r, method, path, body)
}

/// An operator API request with a JSON body (or none).
pub fn call_with(
    r: &Resolved,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<http_client::Response, String> {
    let token = token(r)?;
    let url = format!("{}{path}", base_url(r));
    let auth = format!("Bearer {token}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let mut headers = vec![("Authorization", auth.as_str())];
    if body.is_some_and(|b| !b.is_empty()) {
        headers.push(("Content-Type", "application/json"));
    }
    rt.block_on(http_client::request(
        method,
        &url,
        &headers,
        body.map(str::as_bytes),
        TIMEOUT,
    ))
    .map_err(|e| format!("{e:#}; is `ztpd run` up at {}?", base_url(r)))
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// Device name or serial.
    pub device: String,
}

pub fn status(r: &Resolved, format: Format) -> ExitCode {
    let (st, devs) = match (
        call(r, "GET", "/api/v1/status"),
        call(r, "GET", "/api/v1/devices"),
    ) {
        (Ok(a), Ok(b)) if a.status == 200 && b.status == 200 => (a.json(), b.json()),
        (Ok(a), _) if a.status != 200 => return fail(&a),
        (_, Ok(b)) if b.status != 200 => return fail(&b),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        _ => return ExitCode::FAILURE,
    };
    match format {
        Format::Json => println!("{:#}", serde_json::json!({"status": st, "devices": devs})),
        Format::Text => {
            println!(
                "ztpd {}  snapshot {}  last reload: {}",
                st["version"].as_str().unwrap_or("?"),
                st["snapshot_version"],
                if st["last_reload"]["ok"] == true {
                    "ok"
                } else {
                    "failed"
                }
            );
            println!(
                "{:<20} {:<24} {:<16} {:<18} {:>4}  LAST EVENT",
                "DEVICE", "SERIAL", "IP", "STATE", "%"
            );
            for d in devs.as_array().into_iter().flatten() {
                let s = |k: &str| d[k].as_str().unwrap_or("-").to_string();
                let pct = d["progress"].as_u64().map_or("-".into(), |p| p.to_string());
                let last = d["last_event"]["message"].as_str().unwrap_or("");
                println!(
                    "{:<20} {:<24} {:<16} {:<18} {:>4}  {last}",
                    s("name"),
                    s("serial"),
                    s("ip"),
                    s("state"),
                    pct
                );
                for p in d["problems"].as_array().into_iter().flatten() {
                    println!(
                        "    {}: {}",
                        p["kind"].as_str().unwrap_or("?"),
                        p["fix"].as_str().unwrap_or("")
                    );
                }
            }
        }
    }
    ExitCode::SUCCESS
}

pub fn approve(r: &Resolved, device: &str) -> ExitCode {
    if !crate::identifier::is_identifier(device) {
        eprintln!("error: {device:?} is not a device name or serial ([A-Za-z0-9._-]+)");
        return ExitCode::from(super::EXIT_INVALID);
    }
    match call(r, "POST", &format!("/api/v1/devices/{device}/approve")) {
        Ok(resp) if resp.status == 200 => {
            let v = resp.json();
            println!(
                "approved {} (state: {})",
                v["device"].as_str().unwrap_or(device),
                v["state"].as_str().unwrap_or("?")
            );
            ExitCode::SUCCESS
        }
        Ok(resp) => fail(&resp),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ReplaceArgs {
    /// The planned device whose place the new box takes.
    pub device: String,
    /// The new box's serial.
    pub serial: String,
}

/// `ztpd replace DEVICE SERIAL`.
pub fn replace(r: &Resolved, device: &str, serial: &str) -> ExitCode {
    for (what, v) in [("device name", device), ("serial", serial)] {
        if !crate::identifier::is_identifier(v) {
            eprintln!("error: {v:?} is not a {what} ([A-Za-z0-9._-]+)");
            return ExitCode::from(super::EXIT_INVALID);
        }
    }
    let body = serde_json::json!({ "serial": serial }).to_string();
    request(
        r,
        "POST",
        &format!("/api/v1/devices/{device}/replace"),
        Some(&body),
        200,
        Format::Text,
        |v| match v["replaces"].as_str() {
            Some(old) => println!(
                "{device}: serial {serial} replaces {old}; the device starts again from planned"
            ),
            None => {
                println!("{device}: serial {serial} bound; the device starts again from planned")
            }
        },
    )
}

/// `ztpd plan bindings`: per binding, a comment naming the plan file and
/// device, then the line to put in that device's `[[devices]]` entry.
pub fn bindings(r: &Resolved, format: Format) -> ExitCode {
    request(r, "GET", "/api/v1/bindings", None, 200, format, |v| {
        let list = v.as_array().map(Vec::as_slice).unwrap_or_default();
        if list.is_empty() {
            println!("# no bindings: every serial is in the plans");
        }
        for b in list {
            let s = |k: &str| b[k].as_str().unwrap_or("?").to_string();
            let (how, put) = match b["replaces"].as_str() {
                Some(old) => (
                    format!("replacement of {old}"),
                    format!("in place of serial = \"{old}\""),
                ),
                None => (s("kind"), "add".to_string()),
            };
            println!(
                "# {}: [[devices]] name = \"{}\" (bound by {how} since {}); {put}:",
                s("file"),
                s("device"),
                s("since")
            );
            println!("serial = \"{}\"", s("serial"));
            if let Some(mac) = b["mac"].as_str() {
                println!("# the box's MAC, for its DHCP reservation: mac = \"{mac}\"");
            }
        }
    })
}

pub fn fail(resp: &http_client::Response) -> ExitCode {
    let v = resp.json();
    let msg = v["error"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string());
    eprintln!("error: HTTP {}: {msg}", resp.status);
    ExitCode::FAILURE
}

/// Run an operator API request; on status `ok` print its JSON (`--format json`)
/// or `text`, else the error. Shared by `group` and `rollout`.
pub fn request(
    r: &Resolved,
    method: &str,
    path: &str,
    body: Option<&str>,
    ok: u16,
    format: Format,
    text: impl FnOnce(&Value),
) -> ExitCode {
    match call_with(r, method, path, body) {
        Ok(resp) if resp.status == ok => {
            let v = resp.json();
            match format {
                Format::Json => println!("{v:#}"),
                Format::Text => text(&v),
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
