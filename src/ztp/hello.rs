//! Device protocol requests: strict parsing and the hello decision.
//!
//! Everything here is pure: a body (bytes) and headers in, a typed request or
//! a message saying what was expected out; a snapshot and the tracker's view
//! in, an outcome out.

use serde::Deserialize;

use crate::plan::model::ApprovalMode;
use crate::snapshot::Snapshot;
use crate::topology::{self, Neighbor, PlannedTopology, Reported};

/// Largest body a device may send (a big switch's neighbour table fits).
pub const MAX_BODY: usize = 256 * 1024;
pub const MAX_NEIGHBORS: usize = 1024;
pub const MAX_FIELD: usize = 256;
pub const MAX_MESSAGE: usize = 1024;

/// Vendor headers that carry the device's serial, in the order tried.
pub const SERIAL_HEADERS: [&str; 4] = [
    "serial-number",
    "cumulus-serial",
    "onie-serial-number",
    "x-serial-number",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HelloBody {
    serial: Option<String>,
    mac: Option<String>,
    model: Option<String>,
    version: Option<String>,
    neighbors: Option<Vec<Neighbor>>,
}

#[derive(Debug, Clone)]
pub struct Hello {
    pub serial: String,
    pub mac: Option<String>,
    pub model: String,
    pub version: Option<String>,
    pub neighbors: Vec<Neighbor>,
}

fn json_error(e: serde_json::Error) -> String {
    format!(
        "malformed JSON: {e}; expected {{\"serial\", \"mac\", \"model\", \"version\", \
         \"neighbors\": [{{\"local_port\", \"remote_device\", \"remote_port\"}}]}}"
    )
}

fn field(name: &str, v: &str, max: usize) -> Result<(), String> {
    if v.trim().is_empty() {
        return Err(format!("`{name}` is empty"));
    }
    if v.len() > max {
        return Err(format!(
            "`{name}` is {} bytes; at most {max} allowed",
            v.len()
        ));
    }
    no_control(name, v)
}

/// Device strings are shown in terminals (`ztpd status`) and logs: a
/// control character could move the cursor, retitle the terminal or forge
/// a line, so none is accepted.
fn no_control(name: &str, v: &str) -> Result<(), String> {
    match v.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "`{name}` contains the control character {:?}; send printable text only",
            c
        )),
        None => Ok(()),
    }
}

/// A serial as the plan allows it: `[A-Za-z0-9._-]+`.
pub fn check_serial(s: &str) -> Result<(), String> {
    field("serial", s, 128)?;
    match crate::identifier::check(s) {
        Ok(()) => Ok(()),
        Err(crate::identifier::IdentifierError::Dots) => {
            Err("`serial` cannot be `.` or `..`".into())
        }
        Err(_) => Err("`serial` may contain only letters, digits, `.`, `_` and `-`".into()),
    }
}

pub fn check_neighbors(ns: &[Neighbor]) -> Result<(), String> {
    if ns.len() > MAX_NEIGHBORS {
        return Err(format!(
            "{} neighbors; at most {MAX_NEIGHBORS} allowed",
            ns.len()
        ));
    }
    for (i, n) in ns.iter().enumerate() {
        field(
            &format!("neighbors[{i}].local_port"),
            &n.local_port,
            MAX_FIELD,
        )?;
        field(
            &format!("neighbors[{i}].remote_device"),
            &n.remote_device,
            MAX_FIELD,
        )?;
        field(
            &format!("neighbors[{i}].remote_port"),
            &n.remote_port,
            MAX_FIELD,
        )?;
    }
    Ok(())
}

/// Parse a hello body; `header_serial` is the serial a vendor header gave.
pub fn parse_hello(body: &[u8], header_serial: Option<&str>) -> Result<Hello, String> {
    if body.len() > MAX_BODY {
        return Err(format!(
            "body is {} bytes; at most {MAX_BODY} allowed",
            body.len()
        ));
    }
    let b: HelloBody = serde_json::from_slice(body).map_err(json_error)?;
    let serial = match (b.serial, header_serial) {
        (Some(s), Some(h)) if s != h => {
            return Err(format!(
                "`serial` {s:?} differs from the serial header {h:?}"
            ))
        }
        (Some(s), _) => s,
        (None, Some(h)) => h.to_string(),
        (None, None) => return Err(
            "missing `serial` (or a SERIAL-NUMBER / CUMULUS-SERIAL / ONIE-SERIAL-NUMBER header)"
                .into(),
        ),
    };
    check_serial(&serial)?;
    let model = b
        .model
        .ok_or("missing `model`: the model string the device reports")?;
    field("model", &model, MAX_FIELD)?;
    if let Some(m) = &b.mac {
        field("mac", m, 64)?;
    }
    if let Some(v) = &b.version {
        if v.len() > MAX_FIELD {
            return Err(format!(
                "`version` is {} bytes; at most {MAX_FIELD} allowed",
                v.len()
            ));
        }
        no_control("version", v)?;
    }
    let neighbors = b.neighbors.ok_or(
        "missing `neighbors`: a list (may be empty) of {local_port, remote_device, remote_port}",
    )?;
    check_neighbors(&neighbors)?;
    Ok(Hello {
        serial,
        mac: b.mac,
        model: model.trim().to_string(),
        version: b.version,
        neighbors,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighborsBody {
    pub reporter: String,
    pub neighbors: Vec<Neighbor>,
}

pub fn parse_neighbors(body: &[u8]) -> Result<NeighborsBody, String> {
    let b: NeighborsBody = serde_json::from_slice(body).map_err(|e| {
        format!("malformed JSON: {e}; expected {{\"reporter\": SERIAL, \"neighbors\": [...]}}")
    })?;
    check_serial(&b.reporter).map_err(|e| e.replace("`serial`", "`reporter`"))?;
    check_neighbors(&b.neighbors)?;
    Ok(b)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressBody {
    pub stage: String,
    pub percent: Option<u8>,
    pub message: Option<String>,
    pub version: Option<String>,
    pub action: Option<String>,
}

/// A checked progress report (SPEC §7).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub stage: super::state::Stage,
    pub percent: Option<u8>,
    pub message: String,
    /// The software version the device now runs.
    pub version: Option<String>,
    /// The action the report belongs to (it acknowledges it).
    pub action: Option<String>,
}

pub fn parse_progress(body: &[u8]) -> Result<Progress, String> {
    let b: ProgressBody = serde_json::from_slice(body).map_err(|e| {
        format!(
            "malformed JSON: {e}; expected {{\"stage\", \"percent\"?: 0-100, \"message\"?, \
             \"version\"?, \"action\"?}}"
        )
    })?;
    for (name, v) in [("version", &b.version), ("action", &b.action)] {
        if let Some(v) = v {
            field(name, v, MAX_FIELD)?;
        }
    }
    let stage = super::state::Stage::parse(&b.stage)
        .filter(|s| s.reportable())
        .ok_or_else(|| {
            format!(
                "unknown stage {:?}; expected one of {}",
                b.stage,
                super::state::Stage::reportable_names()
            )
        })?;
    if let Some(p) = b.percent {
        if p > 100 {
            return Err(format!("`percent` is {p}; expected 0-100"));
        }
    }
    let message = b.message.unwrap_or_default();
    if message.len() > MAX_MESSAGE {
        return Err(format!(
            "`message` is {} bytes; at most {MAX_MESSAGE} allowed",
            message.len()
        ));
    }
    no_control("message", &message)?;
    Ok(Progress {
        stage,
        percent: b.percent,
        message,
        version: b.version,
        action: b.action,
    })
}

/// What a hello leads to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Approved,
    Pending,
    Mismatch(Vec<serde_json::Value>),
}

/// Whether a problem (SPEC §10 object) concerns `device`.
pub fn touches(p: &serde_json::Value, device: &str) -> bool {
    let at = |v: &serde_json::Value| v.get("device").and_then(|d| d.as_str()) == Some(device);
    at(p)
        || p.get("expected").is_some_and(at)
        || p.get("observed").is_some_and(at)
        || p.get("other").is_some_and(|o| {
            at(o) || o.get("expected").is_some_and(at) || o.get("observed").is_some_and(at)
        })
}

/// Decide a hello of planned device `name`: the topology engine on its own
/// report plus what other devices reported, keeping the problems that touch it.
pub fn decide(
    topo: &PlannedTopology,
    name: &str,
    hello: &Hello,
    other_reports: &[Reported],
    approved_before: bool,
    mode: ApprovalMode,
) -> Result<Outcome, String> {
    let mut reports = vec![Reported {
        device: name.to_string(),
        model: Some(hello.model.clone()),
        neighbors: hello.neighbors.clone(),
    }];
    reports.extend(other_reports.iter().filter(|r| r.device != name).cloned());
    let problems = topology::diff(topo, &reports).map_err(|e| e.to_string())?;
    let mine: Vec<serde_json::Value> = problems
        .iter()
        .filter_map(|p| serde_json::to_value(p).ok())
        .filter(|p| touches(p, name))
        .collect();
    Ok(if !mine.is_empty() {
        Outcome::Mismatch(mine)
    } else if mode == ApprovalMode::Auto || approved_before {
        Outcome::Approved
    } else {
        Outcome::Pending
    })
}

/// Absolute URLs for an approved device (SPEC §7).
/// The URLs are on ztpd's address of the family the hello came in on.
pub fn approved_body(
    snap: &Snapshot,
    name: &str,
    http_port: u16,
    peer: std::net::IpAddr,
) -> serde_json::Value {
    let mut out = serde_json::json!({ "state": super::state::Stage::Approved, "device": name });
    let Some((site, d)) = snap.model.device(name) else {
        return out;
    };
    let base = crate::addr::files_base(site.server_for(peer), http_port);
    let m = site.model_of(d);
    // Devices whose model has no template (sensors) have no config to fetch.
    if snap.configs.contains_key(&d.name) {
        out["config_url"] = format!("{base}/configs/{}.cfg", d.name).into();
    }
    if let Some(sw) = &m.software {
        out["image_url"] = format!("{base}/{}", sw.image).into();
        out["image_version"] = sw.version.clone().into();
    }
    if let Some(p) = &m.patch {
        out["patch_url"] = format!("{base}/{p}").into();
    }
    if d.device_function.is_some() {
        out["credential_url"] = format!("{base}/credentials/device_{}.json", d.serial).into();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_needs_serial_model_and_neighbors() {
        let ok = br#"{"serial":"S1","mac":"00:11:22:33:44:55","model":"M","version":"1","neighbors":[]}"#;
        assert_eq!(parse_hello(ok, None).unwrap().serial, "S1");
        let e = parse_hello(br#"{"model":"M","neighbors":[]}"#, None).unwrap_err();
        assert!(e.contains("missing `serial`"), "{e}");
        assert_eq!(
            parse_hello(br#"{"model":"M","neighbors":[]}"#, Some("H1"))
                .unwrap()
                .serial,
            "H1"
        );
        let e =
            parse_hello(br#"{"serial":"S1","model":"M","neighbors":[]}"#, Some("H1")).unwrap_err();
        assert!(e.contains("differs"), "{e}");
        let e = parse_hello(br#"{"serial":"S1","neighbors":[]}"#, None).unwrap_err();
        assert!(e.contains("missing `model`"), "{e}");
        let e = parse_hello(br#"{"serial":"S1","model":"M"}"#, None).unwrap_err();
        assert!(e.contains("missing `neighbors`"), "{e}");
        let e =
            parse_hello(br#"{"serial":"S1","model":"M","neighbors":[],"x":1}"#, None).unwrap_err();
        assert!(e.contains("unknown field `x`"), "{e}");
        let e = parse_hello(br#"{"serial":"../x","model":"M","neighbors":[]}"#, None).unwrap_err();
        assert!(e.contains("letters, digits"), "{e}");
        // `..` is made of allowed characters but names a directory.
        let e = parse_hello(br#"{"serial":"..","model":"M","neighbors":[]}"#, None).unwrap_err();
        assert!(e.contains("cannot be `.` or `..`"), "{e}");
        let big = format!(
            r#"{{"serial":"S1","model":"{}","neighbors":[]}}"#,
            "m".repeat(300)
        );
        assert!(parse_hello(big.as_bytes(), None)
            .unwrap_err()
            .contains("at most 256"));
        let e = parse_hello(
            br#"{"serial":"S1","model":"M","neighbors":[{"local_port":"e1"}]}"#,
            None,
        )
        .unwrap_err();
        assert!(e.contains("missing field `remote_device`"), "{e}");
        assert!(parse_hello(b"not json", None)
            .unwrap_err()
            .starts_with("malformed JSON"));
    }

    #[test]
    fn progress_stages_and_percent_are_checked() {
        let p = parse_progress(br#"{"stage":"installing","percent":40}"#).unwrap();
        assert_eq!(
            (p.stage, p.percent),
            (super::super::state::Stage::Installing, Some(40))
        );
        let p =
            parse_progress(br#"{"stage":"deployed","version":"4.31","action":"act-1"}"#).unwrap();
        assert_eq!(p.version.as_deref(), Some("4.31"));
        assert_eq!(p.action.as_deref(), Some("act-1"));
        assert!(parse_progress(br#"{"stage":"deployed","action":""}"#)
            .unwrap_err()
            .contains("`action` is empty"));
        assert!(parse_progress(br#"{"stage":"approved"}"#)
            .unwrap_err()
            .contains("unknown stage"));
        assert!(parse_progress(br#"{"stage":"deployed","percent":101}"#).is_err());
        assert!(parse_progress(br#"{"stage":"deployed","percent":-1}"#).is_err());
    }
}
