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
    /// Wait up to DUR for a daemon that is still starting (no token file yet,
    /// nothing listening) before giving up, e.g. right after `ztpd run &`.
    #[arg(long, value_name = "DUR", value_parser = super::arg::duration)]
    pub wait: Option<Duration>,
}

#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// Device name or serial.
    pub device: String,
    /// The address approved, for a device with neither `mac` nor `ip`:
    /// the `pending_address` its pending hello came from. Without it, the
    /// pending address the daemon shows is printed and approved.
    #[arg(long)]
    pub address: Option<std::net::Ipv4Addr>,
}

/// How often `status --wait` asks a starting daemon again.
const WAIT_POLL: Duration = Duration::from_millis(200);

/// Until the operator API answers at all (any HTTP status), or `limit` passed.
fn wait_for_daemon(r: &Resolved, limit: Duration) {
    let end = std::time::Instant::now() + limit;
    while call(r, "GET", "/api/v1/status").is_err() && std::time::Instant::now() < end {
        std::thread::sleep(WAIT_POLL);
    }
}

pub fn status(r: &Resolved, args: &StatusArgs) -> ExitCode {
    if let Some(limit) = args.wait {
        wait_for_daemon(r, limit);
    }
    let format = args.format;
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
            if let Some(since) = st["reloading"]["since"].as_str() {
                println!("a reload is running since {since}");
            }
            print!(
                "{}",
                device_table(devs.as_array().map_or(&[][..], Vec::as_slice))
            );
        }
    }
    ExitCode::SUCCESS
}

/// The device lines of `ztpd status`: each column as wide as its widest
/// value (serials of sensors run to 32 characters and more), the last event
/// and the problems' fixes after them.
fn device_table(devs: &[Value]) -> String {
    use std::fmt::Write;
    const HEAD: [&str; 5] = ["DEVICE", "SERIAL", "IP", "STATE", "%"];
    let rows: Vec<[String; 5]> = devs
        .iter()
        .map(|d| {
            let s = |k: &str| printable(d[k].as_str().unwrap_or("-")).to_string();
            let pct = d["progress"].as_u64().map_or("-".into(), |p| p.to_string());
            [s("name"), s("serial"), s("ip"), s("state"), pct]
        })
        .collect();
    let mut width = HEAD.map(str::len);
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 5], last: &str| {
        let [a, b, c, d, e] = cells;
        let [wa, wb, wc, wd, we] = width;
        format!("{a:<wa$}  {b:<wb$}  {c:<wc$}  {d:<wd$}  {e:>we$}  {last}")
            .trim_end()
            .to_string()
    };
    let mut out = line(HEAD, "LAST EVENT") + "\n";
    for (d, row) in devs.iter().zip(&rows) {
        let last = printable(d["last_event"]["message"].as_str().unwrap_or(""));
        let cells = [&row[0], &row[1], &row[2], &row[3], &row[4]].map(String::as_str);
        let _ = writeln!(out, "{}", line(cells, &last));
        for p in d["problems"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "    {}: {}",
                printable(p["kind"].as_str().unwrap_or("?")),
                printable(p["fix"].as_str().unwrap_or(""))
            );
        }
    }
    out
}

pub fn approve(r: &Resolved, args: &ApproveArgs) -> ExitCode {
    let device = args.device.as_str();
    if !crate::identifier::is_identifier(device) {
        eprintln!("error: {device:?} is not a device name or serial ([A-Za-z0-9._-]+)");
        return ExitCode::from(super::EXIT_INVALID);
    }
    let address = match args.address {
        Some(a) => Some(a.to_string()),
        None => match pending_address(r, device) {
            Ok(a) => a,
            Err(code) => return code,
        },
    };
    let body = address
        .as_ref()
        .map(|a| serde_json::json!({ "address": a }).to_string());
    let path = format!("/api/v1/devices/{device}/approve");
    match call_with(r, "POST", &path, Some(body.as_deref().unwrap_or(""))) {
        Ok(resp) if resp.status == 200 => {
            let v = resp.json();
            if let Some(note) = v["note"].as_str() {
                println!("{note}");
                return ExitCode::SUCCESS;
            }
            let at = v["address"]
                .as_str()
                .map(|a| format!(" at {a}"))
                .unwrap_or_default();
            println!(
                "approved {}{at} (state: {})",
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

/// The address an approval of `device` must name, shown to the operator:
/// the `pending_address` of a device whose approval needs one (no `mac`,
/// no `ip`), None for any other device.
fn pending_address(r: &Resolved, device: &str) -> Result<Option<String>, ExitCode> {
    let resp = call(r, "GET", "/api/v1/devices").map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })?;
    if resp.status != 200 {
        return Err(fail(&resp));
    }
    let devs = resp.json();
    let Some(d) = devs
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["name"] == device || d["serial"] == device)
    else {
        return Ok(None);
    };
    if d["approve_with_address"] != true {
        return Ok(None);
    }
    let Some(a) = d["pending_address"].as_str() else {
        return Ok(None);
    };
    let name = printable(d["name"].as_str().unwrap_or(device));
    println!("{name}: pending hello from {a}");
    if let Some(claims) = d["pending_claims"].as_array() {
        let all: Vec<&str> = claims.iter().filter_map(Value::as_str).collect();
        println!(
            "warning: {} addresses said hello as {name} while it was pending: {}",
            all.len(),
            all.join(", ")
        );
    }
    Ok(Some(a.to_string()))
}

/// `s` with every control character escaped (`\x1b` is printed `\u{1b}`):
/// strings a device reported must not move the operator's cursor, retitle
/// the terminal or forge a line of the table.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
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
        |v| match v["replaces"].as_str().map(printable) {
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
            // Serials and MACs came from devices: printed, never obeyed.
            let s = |k: &str| printable(b[k].as_str().unwrap_or("?"));
            let (how, put) = match b["replaces"].as_str().map(printable) {
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
            if let Some(mac) = b["mac"].as_str().map(printable) {
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

#[cfg(test)]
mod tests {
    use super::device_table;
    use serde_json::json;

    /// A 32-character sensor serial widens its column; every column after
    /// it still starts at the same offset on every line.
    #[test]
    fn status_columns_stay_aligned_with_long_serials() {
        let devs = [
            json!({"name": "leaf1", "serial": "JPE87654321", "ip": "10.10.0.11",
                   "state": "deployed", "progress": 100,
                   "last_event": {"message": "deployed"}}),
            json!({"name": "sensor-0001", "serial": "a94a8fe5ccb19ba61c4c0873d391e987",
                   "ip": null, "state": "planned", "last_event": {}}),
        ];
        let out = device_table(&devs);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        let ip_col = lines[0].find("IP").unwrap();
        let state_col = lines[0].find("STATE").unwrap();
        assert_eq!(lines[1].find("10.10.0.11"), Some(ip_col), "{out}");
        assert_eq!(lines[2].find("- "), Some(ip_col), "{out}");
        assert_eq!(lines[1].find("deployed"), Some(state_col), "{out}");
        assert_eq!(lines[2].find("planned"), Some(state_col), "{out}");
        assert!(
            lines[2].contains("a94a8fe5ccb19ba61c4c0873d391e987  "),
            "{out}"
        );
    }

    #[test]
    fn printable_escapes_what_a_terminal_would_obey() {
        assert_eq!(
            super::printable("\u{1b}]0;pwned\u{7}\r\nleaf9 FAKE"),
            "\\u{1b}]0;pwned\\u{7}\\r\\nleaf9 FAKE"
        );
        assert_eq!(super::printable("leaf1 ok"), "leaf1 ok");
    }
}
