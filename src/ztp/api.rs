//! The device API on the shared HTTP listener (SPEC §7):
//! `POST /ztp/v1/hello`, `POST /ztp/v1/neighbors`,
//! `POST /ztp/v1/devices/<serial>/progress`, `GET /ztp/v1/devices/<serial>/actions`.
//!
//! Bodies are read as bytes (at most [`MAX_BODY`]) and parsed strictly; every
//! refusal is a JSON `{error}` with a 4xx code, decided before any state
//! changes, and a request only ever changes the device it names.

// Refusals are ready responses; they are built once per refused request,
// so their size does not matter.
#![allow(clippy::result_large_err)]

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::actions::AckError;
use super::hello::{self, Outcome, MAX_BODY};
use super::state::{Change, ChangeError, Stage, MAX_CLAIMS};
use super::Ztp;
use crate::plan::model::{ApprovalMode, Role};
use crate::topology::Reported;

/// Longest long-poll of `/actions`.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// A state write that takes longer than this is answered 503.
const WRITE_TIMEOUT: Duration = Duration::from_secs(15);

/// The device API; its state is the ZTP service alone.
pub fn routes() -> Router<Arc<Ztp>> {
    Router::new()
        .route("/ztp/v1/hello", post(hello_handler))
        .route("/ztp/v1/neighbors", post(neighbors_handler))
        .route("/ztp/v1/devices/{serial}/progress", post(progress_handler))
        .route("/ztp/v1/devices/{serial}/actions", get(actions_handler))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

pub(super) fn err(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({ "error": msg.into() }))).into_response()
}

/// The client's address, an IPv4 client of a dual-stack listener as IPv4.
pub(super) fn peer_ip(addr: SocketAddr) -> Option<IpAddr> {
    Some(crate::addr::canonical(addr.ip()))
}

/// Whether `peer` is the device's planned `ip` or `ip6`.
fn planned_address(dev: &crate::plan::model::Device, peer: SocketAddr) -> bool {
    match peer_ip(peer) {
        Some(IpAddr::V4(a)) => dev.ip == Some(a),
        Some(IpAddr::V6(a)) => dev.ip6 == Some(a),
        None => false,
    }
}

fn header_serial(h: &HeaderMap) -> Result<Option<String>, String> {
    for name in hello::SERIAL_HEADERS {
        if let Some(v) = h.get(name) {
            let s = v
                .to_str()
                .map_err(|_| format!("header {name} is not text"))?
                .trim()
                .to_string();
            return Ok(Some(s));
        }
    }
    Ok(None)
}

pub(super) async fn commit<T>(
    f: impl std::future::Future<Output = Result<T, ChangeError>>,
) -> Result<T, Response> {
    match tokio::time::timeout(WRITE_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(ChangeError::Invalid { device, from, to })) => Err(err(
            StatusCode::CONFLICT,
            format!("{device} is {from}; it cannot move to {to}"),
        )),
        Ok(Err(ChangeError::Write(e))) => Err(err(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("state not saved ({e}); retry"),
        )),
        Err(_) => Err(err(
            StatusCode::SERVICE_UNAVAILABLE,
            "state store is slow; retry",
        )),
    }
}

async fn hello_handler(
    State(ztp): State<Arc<Ztp>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(_permit) = ztp.limit.try_acquire() else {
        return err(StatusCode::SERVICE_UNAVAILABLE, "busy; retry");
    };
    let hs = match header_serial(&headers) {
        Ok(h) => h,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let h = match hello::parse_hello(&body, hs.as_deref()) {
        Ok(h) => h,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let snap = ztp.snapshot.load();
    // By the model's index: a scan of the fleet per hello cost 10,000
    // comparisons on a large plan.
    let planned = match snap.model.device(&h.serial) {
        Some((_, d)) if d.serial == h.serial => true,
        // Another device is named what this serial is: look further.
        Some(_) => snap.model.devices().any(|(_, d)| d.serial == h.serial),
        None => false,
    };
    if !planned {
        // Perhaps a box known by its place, or a replacement (SPEC §12).
        let answer = super::identify::unknown_hello(&ztp, &snap, &h, peer).await;
        // A binding served a new snapshot: this may be the old one's last
        // reference.
        crate::snapshot::retire(snap);
        return answer;
    }
    known_hello(&ztp, &snap, &h, peer).await
}

/// A hello naming a planned (or bound) serial: the topology check and its outcome.
pub(super) async fn known_hello(
    ztp: &Ztp,
    snap: &crate::snapshot::Snapshot,
    h: &hello::Hello,
    peer: SocketAddr,
) -> Response {
    let Some((site, dev)) = snap.model.devices().find(|(_, d)| d.serial == h.serial) else {
        return err(
            StatusCode::NOT_FOUND,
            format!("serial {} is not in the plan", h.serial),
        );
    };
    let name = dev.name.clone();
    let ip = peer_ip(peer);
    let rec = ztp.tracker.get(&name);
    let counts = ztp.hello_counts(dev, rec.as_ref(), ip);
    let approved_before = rec.as_ref().is_some_and(|r| r.approved);
    let mode = if ztp.may_auto_approve(dev) {
        site.approval
    } else {
        ApprovalMode::Manual
    };
    let mine = Reported {
        device: name.clone(),
        model: Some(h.model.clone()),
        neighbors: h.neighbors.clone(),
    };
    let others = ztp.reports_for_hello(snap, &mine);
    let outcome = match hello::decide(&snap.topology, &name, h, &others, approved_before, mode) {
        Ok(o) => o,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    if !counts {
        return stranger_hello(ztp, &name, peer, outcome).await;
    }
    let displaced = displaced_claim(ztp, dev, rec.as_ref(), ip);
    // One event a minute per claiming address, as for refusals.
    let noted = |new: IpAddr| {
        let now = std::time::Instant::now();
        ztp.refusals.admit(&name, new, "claims while pending", now)
    };
    if let Some((old, new)) = displaced.zip(ip).filter(|(_, new)| noted(*new)) {
        let why = format!(
            "serial {} of {name} claimed from {new} while its approval is pending from {old}: \
             two addresses say they are this device; an approval names the address it approves",
            h.serial
        );
        if let Err(e) = commit(async { Ok(ztp.tracker.note(&name, why).await?) }).await {
            return e;
        }
    }
    let (stage, message) = match &outcome {
        Outcome::Approved => (Stage::Approved, "topology matches the plan".to_string()),
        Outcome::Pending => (
            Stage::PendingApproval,
            format!("topology matches; waiting for `ztpd approve {name}`"),
        ),
        Outcome::Mismatch(p) => (
            Stage::TopologyMismatch,
            format!("{} topology problem(s)", p.len()),
        ),
    };
    let problems = match &outcome {
        Outcome::Mismatch(p) => p.clone(),
        _ => Vec::new(),
    };
    let observed: Vec<serde_json::Value> = h
        .neighbors
        .iter()
        .filter_map(|n| serde_json::to_value(n).ok())
        .collect();
    let model = h.model.clone();
    let sw_version = h.version.clone();
    let is_approved = stage == Stage::Approved;
    let stored_problems = problems.clone();
    let change = Change {
        name: &name,
        serial: &h.serial,
        stages: vec![Stage::Hello, stage],
        percent: None,
        message,
        edit: Box::new(move |r| {
            if let Some(old) = displaced {
                r.pending_claims.retain(|a| Some(*a) != ip && *a != old);
                r.pending_claims.push(old);
                let over = r.pending_claims.len().saturating_sub(MAX_CLAIMS);
                r.pending_claims.drain(..over);
            }
            if is_approved {
                r.pending_claims.clear();
            }
            r.hello_ip = ip;
            r.reported_model = Some(model);
            r.observed = observed;
            r.problems = stored_problems;
            r.approved = is_approved;
            if sw_version.is_some() {
                r.software_version = sw_version;
            }
        }),
    };
    let stored = commit(ztp.tracker.apply(change)).await;
    ztp.report_stored(&name);
    if let Err(resp) = stored {
        return resp;
    }
    match outcome {
        Outcome::Approved => {
            let port = snap.resolved.settings.listen.http.port();
            (
                StatusCode::OK,
                Json(hello::approved_body(snap, &name, port, peer.ip())),
            )
                .into_response()
        }
        Outcome::Pending => (
            StatusCode::ACCEPTED,
            Json(json!({"state": Stage::PendingApproval, "device": name})),
        )
            .into_response(),
        Outcome::Mismatch(problems) => (
            StatusCode::CONFLICT,
            Json(json!({"state": Stage::TopologyMismatch, "device": name, "problems": problems})),
        )
            .into_response(),
    }
}

/// The pending address a hello from `ip` moves away from: a device whose
/// approval must name an address, pending from another one. Two hosts
/// claiming one serial is what an operator must see before approving.
fn displaced_claim(
    ztp: &Ztp,
    dev: &crate::plan::model::Device,
    rec: Option<&super::state::Record>,
    ip: Option<IpAddr>,
) -> Option<IpAddr> {
    let r = rec.filter(|r| !r.approved && r.stage == Stage::PendingApproval)?;
    let old = r.hello_ip.filter(|old| Some(*old) != ip)?;
    ztp.approval_needs_address(dev).then_some(old)
}

/// A hello that does not count (SPEC §7): answered, so a misplaced device
/// still learns what is wrong, but nothing changes; recorded as an event.
async fn stranger_hello(ztp: &Ztp, name: &str, peer: SocketAddr, outcome: Outcome) -> Response {
    let why = format!(
        "hello for {name} from {} changed nothing: it is accepted only from the address \
         ztpd leased to {name} or its planned ip (access.hello = \"leased\")",
        peer.ip()
    );
    // One event a minute per address (the rest are counted, then summed up):
    // a refusal needs no credential, and each event is a row on disk.
    let first = ztp
        .refusals
        .admit(name, peer.ip(), "refused hellos", std::time::Instant::now());
    if first {
        if let Err(e) = commit(async { Ok(ztp.tracker.note(name, why.clone()).await?) }).await {
            return e;
        }
    }
    let state = ztp.tracker.get(name).map_or(Stage::Planned, |r| r.stage);
    match outcome {
        Outcome::Mismatch(problems) => (
            StatusCode::CONFLICT,
            Json(
                json!({"state": Stage::TopologyMismatch, "device": name, "problems": problems,
                "counted": false, "error": why}),
            ),
        )
            .into_response(),
        _ => (
            StatusCode::FORBIDDEN,
            Json(json!({"error": why, "device": name, "state": state, "counted": false})),
        )
            .into_response(),
    }
}

async fn neighbors_handler(
    State(ztp): State<Arc<Ztp>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let b = match hello::parse_neighbors(&body) {
        Ok(b) => b,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let snap = ztp.snapshot.load();
    let Some((_, dev)) = snap.model.devices().find(|(_, d)| d.serial == b.reporter) else {
        return err(
            StatusCode::NOT_FOUND,
            format!("reporter {} is not in the plan", b.reporter),
        );
    };
    if dev.role != Role::Root {
        return pushed_neighbors(&ztp, &snap, dev, peer, b.neighbors).await;
    }
    if !planned_address(dev, peer) {
        return err(
            StatusCode::FORBIDDEN,
            format!(
                "neighbour reports for {} are accepted only from its planned address",
                dev.name
            ),
        );
    }
    let observed: Vec<serde_json::Value> = b
        .neighbors
        .iter()
        .filter_map(|n| serde_json::to_value(n).ok())
        .collect();
    let count = observed.len();
    let change = Change {
        name: &dev.name,
        serial: &dev.serial,
        stages: Vec::new(),
        percent: None,
        message: format!("reported {count} neighbour(s)"),
        edit: Box::new(move |r| r.observed = observed),
    };
    let stored = commit(ztp.tracker.apply(change)).await;
    ztp.report_stored(&dev.name);
    if let Err(resp) = stored {
        return resp;
    }
    Json(json!({"device": dev.name, "accepted": count})).into_response()
}

/// A deployed device reports its own ports (SPEC §7, §12): accepted from
/// its own address (lease or planned ip), compared with the plan as an
/// SNMP read would be (drift).
async fn pushed_neighbors(
    ztp: &Arc<Ztp>,
    snap: &crate::snapshot::Snapshot,
    dev: &crate::plan::model::Device,
    peer: SocketAddr,
    neighbors: Vec<crate::topology::Neighbor>,
) -> Response {
    let rec = ztp.tracker.get(&dev.name);
    if rec.as_ref().is_none_or(|r| r.stage != Stage::Deployed) {
        return err(
            StatusCode::FORBIDDEN,
            format!(
                "{} is not a root device (role = \"root\") and not deployed: its neighbours \
                 are checked by its hello",
                dev.name
            ),
        );
    }
    if !ztp.progress_counts(dev, rec.as_ref(), peer_ip(peer)) {
        return err(
            StatusCode::FORBIDDEN,
            format!(
                "neighbour reports for {} are accepted only from its own address",
                dev.name
            ),
        );
    }
    let count = neighbors.len();
    super::drift::seen(ztp, snap, &dev.name, neighbors).await;
    Json(json!({"device": dev.name, "accepted": count})).into_response()
}

/// The planned device with `serial`, if the request comes from its leased
/// or hello address.
fn device_from(ztp: &Ztp, serial: &str, peer: SocketAddr) -> Result<(String, String), Response> {
    hello::check_serial(serial).map_err(|e| err(StatusCode::BAD_REQUEST, e))?;
    let snap = ztp.snapshot.load();
    let Some((_, dev)) = snap.model.devices().find(|(_, d)| d.serial == serial) else {
        return Err(err(
            StatusCode::NOT_FOUND,
            format!("serial {serial} is not in the plan"),
        ));
    };
    let rec = ztp.tracker.get(&dev.name);
    if !ztp.progress_counts(dev, rec.as_ref(), peer_ip(peer)) {
        return Err(err(
            StatusCode::FORBIDDEN,
            format!(
                "{} accepts progress only from its leased or hello address",
                dev.name
            ),
        ));
    }
    Ok((dev.name.clone(), dev.serial.clone()))
}

async fn progress_handler(
    State(ztp): State<Arc<Ztp>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(serial): Path<String>,
    body: Bytes,
) -> Response {
    let Ok(_permit) = ztp.limit.try_acquire() else {
        return err(StatusCode::SERVICE_UNAVAILABLE, "busy; retry");
    };
    let p = match hello::parse_progress(&body) {
        Ok(p) => p,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let (name, serial) = match device_from(&ztp, &serial, peer) {
        Ok(d) => d,
        Err(r) => return r,
    };
    // A report naming another device's action (or none known) changes nothing.
    if let Some(id) = &p.action {
        match ztp.actions.check_owner(&name, id) {
            Ok(()) => {}
            Err(e @ AckError::NotYours { .. }) => return err(StatusCode::FORBIDDEN, e.to_string()),
            Err(e) => return err(StatusCode::BAD_REQUEST, e.to_string()),
        }
    }
    let stage = p.stage;
    let message = if p.message.is_empty() {
        format!("device reported {stage}")
    } else {
        p.message
    };
    let (version, action) = (p.version.clone(), p.action.clone());
    let change = Change {
        name: &name,
        serial: &serial,
        stages: vec![stage],
        percent: p.percent,
        message,
        edit: Box::new(move |r| {
            if version.is_some() {
                r.software_version = version;
            }
            if action.is_some() {
                r.last_action = action;
            }
        }),
    };
    let stored = if p.action.is_some() {
        commit(ztp.tracker.apply_for_action(change)).await
    } else {
        commit(ztp.tracker.apply(change)).await
    };
    // The report names the action: it is acknowledged even when the stage
    // cannot follow (a device that came back miscabled must not redo it).
    if let Some(id) = &p.action {
        if let Err(e) = ztp.actions.acknowledge(&name, id).await {
            return err(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("acknowledgement not saved ({e}); retry"),
            );
        }
    }
    match stored {
        Ok((rec, _)) => Json(json!({"device": name, "state": rec.stage})).into_response(),
        Err(r) => r,
    }
}

#[derive(serde::Deserialize)]
struct Wait {
    /// Seconds (`30`) or a duration (`30s`, `1m`); at most [`MAX_WAIT`].
    wait: Option<String>,
}

fn parse_wait(w: Option<&str>) -> Result<Duration, String> {
    let Some(w) = w else {
        return Ok(Duration::ZERO);
    };
    let d = match w.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => crate::duration::parse(w)
            .map_err(|e| format!("wait: {e}; expected seconds or a duration up to 60s"))?,
    };
    Ok(d.min(MAX_WAIT))
}

async fn actions_handler(
    State(ztp): State<Arc<Ztp>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(serial): Path<String>,
    Query(wait): Query<Wait>,
) -> Response {
    let (name, _) = match device_from(&ztp, &serial, peer) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let wait = match parse_wait(wait.wait.as_deref()) {
        Ok(w) => w,
        Err(e) => return err(StatusCode::BAD_REQUEST, e),
    };
    let actions = ztp.actions.wait(&name, wait).await;
    Json(json!({"device": name, "actions": actions})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_takes_seconds_or_a_duration_capped_at_a_minute() {
        assert_eq!(parse_wait(None), Ok(Duration::ZERO));
        assert_eq!(parse_wait(Some("20")), Ok(Duration::from_secs(20)));
        assert_eq!(parse_wait(Some("1500ms")), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_wait(Some("10m")), Ok(MAX_WAIT));
        assert!(parse_wait(Some("soon")).unwrap_err().contains("wait:"));
    }
}
