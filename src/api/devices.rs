//! Operator API for ZTP (SPEC §8, §10): `GET /api/v1/devices`,
//! `GET /api/v1/topology`, `POST /api/v1/devices/<name>/approve`,
//! `GET /api/v1/events` (server-sent events).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::OperatorApi;
use crate::plan::model::ApprovalMode;
use crate::topology::{self, Reported};
use crate::ztp::state::{Change, ChangeError, Stage};

pub async fn devices(State(api): State<Arc<OperatorApi>>) -> Json<Value> {
    let snap = api.snapshot.load();
    let records = api.ztp.tracker.all();
    let out: Vec<Value> = snap
        .model
        .devices()
        .map(|(_, d)| {
            let rec = records.get(&d.name);
            // A pending hello's address is not the device's until approved:
            // it is shown apart, as `pending_address`.
            let pending = rec.filter(|r| !r.approved && r.stage == Stage::PendingApproval);
            let hello_ip = rec
                .and_then(|r| r.hello_ip)
                .filter(|_| pending.is_none());
            let ip = d
                .ip
                .map(std::net::IpAddr::V4)
                .or(d.ip6.map(std::net::IpAddr::V6))
                .or_else(|| rec.and_then(|r| r.leased_ip.map(Into::into)).or(hello_ip))
                .map(|a| a.to_string());
            let mut v = json!({
                "name": d.name,
                "serial": d.serial,
                "model": d.model,
                "ip": ip,
                "state": rec.map_or(Stage::unrecorded(d.role), |r| r.stage),
                "last_event": rec.map(|r| json!({"at": r.at, "stage": r.stage, "message": r.message})),
                "problems": rec.map(|r| r.problems.clone()).unwrap_or_default(),
                "version": rec.and_then(|r| r.software_version.clone()),
            });
            if let Some(a) = pending.and_then(|r| r.hello_ip) {
                v["pending_address"] = a.to_string().into();
                v["approve_with_address"] = api.ztp.approval_needs_address(d).into();
            }
            if let Some(r) = pending.filter(|r| !r.pending_claims.is_empty()) {
                v["pending_claims"] = r
                    .pending_claims
                    .iter()
                    .map(|a| a.to_string())
                    .chain(r.hello_ip.map(|a| a.to_string()))
                    .collect();
            }
            if let Some(p) = rec.and_then(|r| r.percent) {
                v["progress"] = p.into();
            }
            // SPEC §12: drift read over SNMP shows with the device's problems.
            if let Some(drift) = api.ztp.drift.of(&d.name) {
                if let Some(list) = v["problems"].as_array_mut() {
                    list.extend(drift.problems.iter().filter_map(|p| serde_json::to_value(p).ok()));
                }
                if let Some(reachable) = drift.reachable {
                    v["snmp"] = json!({"reachable": reachable, "last_ok": drift.last_ok});
                }
            }
            // SPEC §12: a serial bound at run time says how.
            if let Some(kind) = d.bound {
                v["bound"] = kind.as_str().into();
            }
            if let Some(p) = rec.and_then(|r| r.replacement.as_ref()) {
                if rec.is_some_and(|r| r.stage == Stage::ReplacementPending) {
                    v["replacement"] = json!({"serial": p.serial, "replaces": d.serial, "mac": p.mac, "at": p.at});
                }
            }
            if let Some(r) = api.hub.as_ref().and_then(|h| h.reported(&d.serial)) {
                v["reported"] = r;
            }
            v
        })
        .collect();
    Json(Value::Array(out))
}

/// Reports the daemon holds: each device's last hello and each root's report.
pub fn stored_reports(api: &OperatorApi) -> Vec<Reported> {
    api.ztp.stored_reports(&api.snapshot.load().model)
}

pub async fn topology(State(api): State<Arc<OperatorApi>>) -> Json<Value> {
    let snap = api.snapshot.load();
    let records = api.ztp.tracker.all();
    let placed = crate::topology::layout::layout(&snap.model);
    let devices: Vec<Value> = snap
        .model
        .devices()
        .zip(&placed)
        .map(|((site, d), p)| {
            let rec = records.get(&d.name);
            json!({
                "name": d.name,
                "serial": d.serial,
                "site": site.name,
                "model": d.model,
                "role": d.role,
                "state": rec.map_or(Stage::unrecorded(d.role), |r| r.stage),
                "version": rec.and_then(|r| r.software_version.clone()),
                "tier": p.tier,
                "position": {"x": p.x, "y": p.y},
            })
        })
        .collect();
    let reports = stored_reports(&api);
    let mut problems = match topology::diff(&snap.topology, &reports) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("topology of stored reports: {e}");
            Vec::new()
        }
    };
    // Drift on deployed devices, read over SNMP (SPEC §12).
    for p in api.ztp.drift.problems() {
        if !problems.contains(&p) {
            problems.push(p);
        }
    }
    let reporting: std::collections::HashSet<&str> =
        reports.iter().map(|r| r.device.as_str()).collect();
    let links: Vec<Value> = snap
        .model
        .sites
        .iter()
        .flat_map(|s| s.links.iter())
        .map(|l| {
            json!({"a": l.a.to_string(), "b": l.b.to_string(), "status": link_status(l, &problems, &reporting)})
        })
        .collect();
    let observed: Vec<Value> = reports
        .iter()
        .map(|r| json!({"device": r.device, "model": r.model, "neighbors": r.neighbors}))
        .collect();
    let problems: Vec<Value> = problems
        .iter()
        .filter_map(|p| serde_json::to_value(p).ok())
        .collect();
    Json(json!({
        "planned": {"devices": devices, "links": links},
        "observed": observed,
        "problems": problems,
    }))
}

/// A planned link's check result: the kind of the problem that names one of
/// its ends (`wrong_port`, `wrong_peer`, `swapped`, `missing_link`), `ok`
/// when an end reported and no problem names it, `unchecked` when neither
/// end has reported yet.
fn link_status(
    l: &crate::plan::model::Link,
    problems: &[topology::Problem],
    reporting: &std::collections::HashSet<&str>,
) -> &'static str {
    let names_end = |p: &topology::Problem, e: &crate::plan::model::Endpoint| {
        (p.device == e.device && p.local_port.as_deref() == Some(e.port.as_str()))
            || p.expected.as_ref() == Some(e)
            || p.other.as_ref().is_some_and(|c| {
                (c.device == e.device && c.local_port == e.port) || &c.expected == e
            })
    };
    let hit = problems
        .iter()
        .filter(|p| p.kind != topology::Kind::WrongModel && p.kind != topology::Kind::UnplannedLink)
        .find(|p| names_end(p, &l.a) || names_end(p, &l.b));
    let wrong_box = |device: &str| {
        problems
            .iter()
            .any(|p| p.kind == topology::Kind::WrongModel && p.device == device)
    };
    match hit {
        Some(p) => p.kind.as_str(),
        // A wrong box's cables are not judged until it is replaced.
        None if wrong_box(&l.a.device) || wrong_box(&l.b.device) => "unchecked",
        None if reporting.contains(l.a.device.as_str())
            || reporting.contains(l.b.device.as_str()) =>
        {
            "ok"
        }
        None => "unchecked",
    }
}

/// `POST /api/v1/devices/<name>/approve` body: the address approved, for a
/// device whose approval must name one (see [`approval_address`]).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    /// Either family, as `pending_address` shows it.
    address: Option<std::net::IpAddr>,
}

fn conflict(msg: String) -> Response {
    (StatusCode::CONFLICT, Json(json!({"error": msg}))).into_response()
}

/// The address an approval of `d` binds it to, or the 409 saying which one
/// the operator must name: the device's pending hello's address, exactly.
/// None when `d` needs no address (it has a `mac` or `ip`, or
/// `access.hello = "any"`).
#[allow(clippy::result_large_err)]
fn approval_address(
    api: &OperatorApi,
    d: &crate::plan::model::Device,
    cur: Option<&crate::ztp::state::Record>,
    body: &ApproveBody,
) -> Result<Option<std::net::IpAddr>, Response> {
    if !api.ztp.approval_needs_address(d) {
        return Ok(None);
    }
    let pending = cur
        .filter(|r| !r.approved && r.stage == Stage::PendingApproval)
        .and_then(|r| r.hello_ip);
    let name = &d.name;
    match (pending, body.address) {
        (None, _) => Err(conflict(format!(
            "{name} has no pending hello: it has neither mac nor ip, so it is approved at the \
             address of its pending hello; approve it once it has said hello"
        ))),
        (Some(p), None) => Err(conflict(format!(
            "{name} has neither mac nor ip: approve it with {{\"address\": \"{p}\"}}, the \
             address of its pending hello (pending_address), if that is the device"
        ))),
        (Some(p), Some(a)) if a != p => Err(conflict(format!(
            "{name}'s pending hello is from {p}, not {a}: nothing approved; check which host \
             is the device, then approve with {{\"address\": \"{p}\"}}"
        ))),
        (Some(p), Some(_)) => Ok(Some(p)),
    }
}

pub async fn approve(
    State(api): State<Arc<OperatorApi>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let snap = api.snapshot.load();
    let Some((site, d)) = snap.model.device(&name) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("{name} is not a planned device (name or serial)")})),
        )
            .into_response();
    };
    let body: ApproveBody = if body.iter().all(u8::is_ascii_whitespace) {
        ApproveBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return (
                StatusCode::BAD_REQUEST,
                Json(
                    json!({"error": format!("{e}; expected no body or {{\"address\": \"IPv4\"}}")}),
                ),
            )
                .into_response(),
        }
    };
    let cur = api.ztp.tracker.get(&d.name);
    // In auto mode a matching hello approves a device by itself; only a
    // device with neither mac nor ip needs an operator (SPEC §7).
    if site.approval == ApprovalMode::Auto && (d.mac.is_some() || d.ip.is_some()) {
        return Json(json!({
            "device": d.name,
            "state": cur.map_or(Stage::unrecorded(d.role), |r| r.stage),
            "approved": false,
            "note": format!(
                "approval.mode is \"auto\" in site {}: {} is approved by its own hello once its \
                 cables match the plan, so this changes nothing (set [approval] mode = \"manual\" \
                 in the plan to approve devices by hand)",
                site.name, d.name
            ),
        }))
        .into_response();
    }
    let address = match approval_address(&api, d, cur.as_ref(), &body) {
        Ok(a) => a,
        Err(resp) => return resp,
    };
    let pending = cur
        .as_ref()
        .is_some_and(|r| r.stage == Stage::PendingApproval);
    let message = match address {
        Some(a) => format!("approved by operator at {a}"),
        None => "approved by operator".into(),
    };
    let change = Change {
        name: &d.name,
        serial: &d.serial,
        stages: if pending {
            vec![Stage::Approved]
        } else {
            Vec::new()
        },
        percent: None,
        message,
        // The address approved is the one the operator named, whatever hello
        // came in since it was checked.
        edit: Box::new(move |r| {
            r.approved = true;
            if address.is_some() {
                r.hello_ip = address;
                r.pending_claims.clear();
            }
        }),
    };
    match api.ztp.tracker.apply(change).await {
        Ok((rec, _)) => Json(json!({
            "device": d.name,
            "state": rec.stage,
            "approved": true,
            "address": address.map(|a| a.to_string()),
        }))
        .into_response(),
        Err(ChangeError::Invalid { .. }) => unreachable_conflict(),
        Err(ChangeError::Write(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": format!("approval not saved: {e}")})),
        )
            .into_response(),
    }
}

fn unreachable_conflict() -> Response {
    (
        StatusCode::CONFLICT,
        Json(json!({"error": "the device changed state meanwhile; retry"})),
    )
        .into_response()
}

/// The next twin change, or never when there is no hub.
async fn next_twin_change(
    twins: &mut Option<tokio::sync::broadcast::Receiver<String>>,
) -> Result<String, tokio::sync::broadcast::error::RecvError> {
    match twins {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// `GET /api/v1/events`: `device` (a stage change), `rollout`, `topology`
/// (drift or its end) and `twin` (`{"device_id"}`: a committed desired or
/// reported change on the local hub) events. A stream opened with a session cookie ends when
/// that session does (logout, or its idle time passing), so a logged-out
/// browser stops receiving events; one opened with the token lasts.
pub async fn events(
    State(api): State<Arc<OperatorApi>>,
    headers: axum::http::HeaderMap,
) -> Sse<impl futures_util::Stream<Item = Result<SseEvent, Infallible>>> {
    use tokio::sync::broadcast::error::RecvError;
    let devices = api.ztp.tracker.subscribe();
    let rollouts = api.rollouts.subscribe();
    let session = (!super::has_token(&api, &headers))
        .then(|| super::session::cookie(&headers).map(str::to_string))
        .flatten();
    let closings = api.sessions.closings();
    let topology = api.ztp.drift.subscribe();
    // Without the hub (`[broker] enabled = false`) there are no twins.
    let twins = api.hub.as_ref().map(|h| h.twin_changes());
    let lagged = |n: u64| {
        SseEvent::default()
            .event("lagged")
            .data(format!("{{\"missed\":{n}}}"))
    };
    let stream = futures_util::stream::unfold(
        (devices, rollouts, closings, topology, twins),
        move |(mut devices, mut rollouts, mut closings, mut topology, mut twins)| {
            let (api, session) = (api.clone(), session.clone());
            async move {
                let live = |api: &OperatorApi| {
                    session.as_deref().is_none_or(|id| api.sessions.is_live(id))
                };
                loop {
                    let ev = tokio::select! {
                        d = devices.recv() => match d {
                            Ok(e) => SseEvent::default()
                                .event("device")
                                .data(serde_json::to_string(&e).unwrap_or_default()),
                            Err(RecvError::Lagged(n)) => lagged(n),
                            Err(RecvError::Closed) => return None,
                        },
                        r = rollouts.recv() => match r {
                            Ok(v) => SseEvent::default().event("rollout").data(v.to_string()),
                            Err(RecvError::Lagged(n)) => lagged(n),
                            Err(RecvError::Closed) => return None,
                        },
                        t = topology.recv() => match t {
                            Ok(v) => SseEvent::default().event("topology").data(v.to_string()),
                            Err(RecvError::Lagged(n)) => lagged(n),
                            Err(RecvError::Closed) => return None,
                        },
                        t = next_twin_change(&mut twins) => match t {
                            Ok(id) => SseEvent::default()
                                .event("twin")
                                .data(serde_json::json!({ "device_id": id }).to_string()),
                            Err(RecvError::Lagged(n)) => lagged(n),
                            // The hub is gone (shutdown): the other events go on.
                            Err(RecvError::Closed) => {
                                twins = None;
                                continue;
                            }
                        },
                        c = closings.changed(), if session.is_some() => {
                            if c.is_err() || !live(&api) {
                                return None;
                            }
                            continue;
                        }
                    };
                    // A session can also end by idling out: checked per event.
                    if !live(&api) {
                        return None;
                    }
                    return Some((Ok(ev), (devices, rollouts, closings, topology, twins)));
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
