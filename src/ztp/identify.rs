//! Hellos whose serial no planned device has (SPEC §12): a box known by its
//! place (bound by position), a new box at a known device's place
//! (`replacement_pending`, or bound at once under `replacement = "auto"`), a
//! replaced box (refused), or a stranger (404, naming the nearest place when
//! one cable differs). And the operator's side: accepting a replacement.
//!
//! Who may bind: under `access.hello = "leased"` only a hello from the
//! address ztpd leased to the MAC it names; from anywhere else it is
//! answered with what would happen and changes nothing, or
//! `replacement = "auto"` would let anyone take a device's place.

use std::net::{IpAddr, SocketAddr};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::api::{commit, err, known_hello, peer_ip};
use super::bindings::Binding;
use super::hello::{self, Hello};
use super::position::{self, Placed};
use super::state::{Change, ChangeError, PendingReplacement, Stage};
use super::Ztp;
use crate::dhcp::leases::LeaseState;
use crate::plan::model::{ApprovalMode, BindKind};
use crate::settings::HelloAccess;
use crate::snapshot::Snapshot;
use crate::topology::PlannedDevice;

impl Ztp {
    /// Whether a hello from `ip` naming `mac` may bind a serial: always
    /// under `access.hello = "any"`, else only from a live lease ztpd gave
    /// to that MAC.
    pub fn may_bind(&self, mac: Option<&str>, ip: Option<IpAddr>) -> bool {
        if self.snapshot.load().resolved.settings.access.hello == HelloAccess::Any {
            return true;
        }
        let (Some(ip), Some(mac)) = (ip, mac.and_then(crate::mac::Mac::parse)) else {
            return false;
        };
        let now = crate::clock::unix_now();
        match crate::addr::canonical(ip) {
            IpAddr::V4(ip) => {
                let Some(leases) = &self.leases else {
                    return false;
                };
                let Ok(table) = leases.table.lock() else {
                    return false;
                };
                table.get(ip).is_some_and(|l| {
                    l.state == LeaseState::Bound && l.expires > now && l.mac == Some(mac.octets())
                })
            }
            // A DHCPv6 lease names the MAC when the client's DUID or its
            // relay gave one; one that does not vouches for no MAC.
            IpAddr::V6(ip) => {
                let Some(leases) = self.leases6.get() else {
                    return false;
                };
                let Ok(table) = leases.table.lock() else {
                    return false;
                };
                table
                    .get(ip)
                    .is_some_and(|l| l.live(now) && l.mac == Some(mac.octets()))
            }
        }
    }

    /// Accept `serial` as the box at `name`'s place (`ztpd replace`, the
    /// API, the GUI). The device starts again from `planned`; its DHCP
    /// reservation follows `mac`, else the MAC of the pending hello.
    pub async fn accept_replacement(
        &self,
        name: &str,
        serial: &str,
        mac: Option<String>,
    ) -> Result<Value, (StatusCode, String)> {
        hello::check_serial(serial).map_err(|e| (StatusCode::BAD_REQUEST, e))?;
        let snap = self.snapshot.load();
        let Some((_, d)) = snap.model.devices().find(|(_, d)| d.name == name) else {
            return Err((
                StatusCode::NOT_FOUND,
                format!("{name} is not a planned device"),
            ));
        };
        if d.serial == serial {
            return Err((
                StatusCode::CONFLICT,
                format!("{name} already has serial {serial}"),
            ));
        }
        if let Some((_, other)) = snap.model.devices().find(|(_, o)| o.serial == serial) {
            return Err((
                StatusCode::CONFLICT,
                format!("serial {serial} belongs to {}", other.name),
            ));
        }
        if let Some(was) = self.bindings.replaced(serial) {
            return Err((
                StatusCode::CONFLICT,
                format!("serial {serial} is a box replaced at {was}; it cannot come back"),
            ));
        }
        let pending = self
            .tracker
            .get(name)
            .and_then(|r| r.replacement)
            .filter(|p| p.serial == serial);
        let old = d.has_serial().then(|| d.serial.clone());
        let binding = Binding {
            device: name.to_string(),
            serial: serial.to_string(),
            kind: BindKind::Replacement,
            since: crate::clock::rfc3339_millis(),
            mac: mac.or_else(|| pending.and_then(|p| p.mac)),
            replaces: old.clone(),
        };
        self.bindings
            .bind(binding, &self.snapshot, None)
            .await
            .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, format!("not saved: {e}")))?;
        let why = match &old {
            Some(o) => format!("replaced: serial {serial} accepted at {name}'s place (was {o})"),
            None => format!("serial {serial} bound to {name} by an operator"),
        };
        self.tracker
            .restart(name, serial, why)
            .await
            .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, format!("not saved: {e}")))?;
        self.report_stored(name);
        Ok(json!({
            "device": name,
            "serial": serial,
            "bound": BindKind::Replacement,
            "replaces": old,
            "state": Stage::Planned,
        }))
    }
}

fn model_is(h: &Hello) -> impl Fn(&PlannedDevice) -> bool + '_ {
    |d| d.model_match.trim().eq_ignore_ascii_case(h.model.trim())
}

/// A hello with a serial no planned device has (SPEC §12).
pub(super) async fn unknown_hello(
    ztp: &Ztp,
    snap: &Snapshot,
    h: &Hello,
    peer: SocketAddr,
) -> Response {
    if let Some(device) = ztp.bindings.replaced(&h.serial) {
        return (
            StatusCode::CONFLICT,
            Json(json!({
                "state": "replaced",
                "device": device,
                "error": format!(
                    "serial {} was replaced at {device}'s place; this box is no longer planned",
                    h.serial
                ),
            })),
        )
            .into_response();
    }
    let topo = &snap.topology;
    let model_is = model_is(h);
    let mut near = None;
    // A box known by its place: serial-less, unbound, of the reported model.
    match position::place(topo, &h.neighbors, |d| {
        d.serial.is_empty() && d.mac.is_none() && model_is(d)
    }) {
        Placed::One(name) => return bind_position(ztp, h, peer, &name).await,
        Placed::Ambiguous(c) => return ambiguous(h, c),
        Placed::Near(f) => near = Some(f),
        Placed::None => {}
    }
    // A new box at the place of a device that has a serial: a replacement.
    match position::place(topo, &h.neighbors, |d| !d.serial.is_empty() && model_is(d)) {
        Placed::One(name) => return replacement(ztp, snap, h, peer, &name).await,
        Placed::Ambiguous(c) => return ambiguous(h, c),
        Placed::Near(f) => near = near.or(Some(f)),
        Placed::None => {}
    }
    // Another model at a place is a wrong box, not an identity.
    if let Placed::One(name) = position::place(topo, &h.neighbors, |d| !model_is(d)) {
        if let Some(d) = topo.resolve(&name) {
            return wrong_model(d, h);
        }
    }
    let msg = match near {
        Some(f) => position::near_message(&h.serial, &f),
        None => format!("serial {} is not in the plan", h.serial),
    };
    ztp.strangers.record(snap, h, Some(peer.ip()));
    err(StatusCode::NOT_FOUND, msg)
}

fn ambiguous(h: &Hello, candidates: Vec<String>) -> Response {
    (
        StatusCode::CONFLICT,
        Json(json!({
            "state": "ambiguous_position",
            "candidates": candidates,
            "error": format!(
                "serial {} is not in the plan and its neighbours match the places of {}: \
                 report more neighbours, or put the serial in the plan",
                h.serial,
                candidates.join(", ")
            ),
        })),
    )
        .into_response()
}

fn wrong_model(d: &PlannedDevice, h: &Hello) -> Response {
    let problem = json!({
        "kind": "wrong_model",
        "device": d.name,
        "local_port": null,
        "expected_model": d.model_match,
        "observed_model": h.model,
        "fix": format!(
            "the box at {}'s place (serial {}) reports model {}, but the plan expects {}: \
             replace it with a {}, or change the plan",
            d.name, h.serial, h.model, d.model_match, d.model_match
        ),
    });
    (
        StatusCode::CONFLICT,
        Json(json!({"state": Stage::TopologyMismatch, "device": d.name, "problems": [problem]})),
    )
        .into_response()
}

/// Answer a hello that may not bind with what would happen; record it.
async fn would(ztp: &Ztp, name: &str, peer: SocketAddr, would: &str) -> Response {
    let why = format!(
        "hello from {} would {would}, but changed nothing: a serial is bound only from the \
         address ztpd leased to the MAC the hello names (access.hello = \"leased\")",
        peer.ip()
    );
    // One event a minute per address, as for refused hellos: a hello that
    // may not bind needs no credential, and each event is a row on disk.
    let first = ztp.refusals.admit(
        name,
        peer.ip(),
        "hellos that may not bind",
        std::time::Instant::now(),
    );
    if first {
        if let Err(e) = commit(async { Ok(ztp.tracker.note(name, why.clone()).await?) }).await {
            return e;
        }
    }
    let state = ztp.tracker.get(name).map_or(Stage::Planned, |r| r.stage);
    (
        StatusCode::FORBIDDEN,
        Json(json!({"error": why, "device": name, "state": state, "counted": false})),
    )
        .into_response()
}

fn bound_mac(h: &Hello) -> Option<String> {
    h.mac
        .as_deref()
        .and_then(crate::mac::Mac::parse)
        .map(|m| m.to_string())
}

/// Bind and record `why` as the device's event, in one commit.
async fn bind(ztp: &Ztp, b: Binding, why: String) -> Result<(), Response> {
    let (event_row, event) = ztp.tracker.note_write(&b.device, why);
    let write = ztp.bindings.bind(b, &ztp.snapshot, Some(event_row));
    commit(async { write.await.map_err(ChangeError::from) }).await?;
    ztp.tracker.announce(event);
    Ok(())
}

async fn bind_position(ztp: &Ztp, h: &Hello, peer: SocketAddr, name: &str) -> Response {
    if !ztp.may_bind(h.mac.as_deref(), peer_ip(peer)) {
        return would(
            ztp,
            name,
            peer,
            &format!("bind serial {} to {name}", h.serial),
        )
        .await;
    }
    let b = Binding {
        device: name.to_string(),
        serial: h.serial.clone(),
        kind: BindKind::Position,
        since: crate::clock::rfc3339_millis(),
        mac: bound_mac(h),
        replaces: None,
    };
    let why = format!(
        "serial {} bound to {name} by position (hello from {})",
        h.serial,
        peer.ip()
    );
    if let Err(r) = bind(ztp, b, why).await {
        return r;
    }
    // From now on the box is that device: the normal hello.
    let snap = ztp.snapshot.load();
    known_hello(ztp, &snap, h, peer).await
}

async fn replacement(
    ztp: &Ztp,
    snap: &Snapshot,
    h: &Hello,
    peer: SocketAddr,
    name: &str,
) -> Response {
    let Some((site, d)) = snap.model.devices().find(|(_, d)| d.name == name) else {
        return err(StatusCode::NOT_FOUND, format!("{name} left the plan"));
    };
    let old = d.serial.clone();
    if !ztp.may_bind(h.mac.as_deref(), peer_ip(peer)) {
        let what = format!(
            "put {name} in replacement_pending (new serial {})",
            h.serial
        );
        return would(ztp, name, peer, &what).await;
    }
    if site.replacement == ApprovalMode::Auto {
        if let Err((code, e)) = ztp.accept_replacement(name, &h.serial, bound_mac(h)).await {
            return err(code, e);
        }
        let snap = ztp.snapshot.load();
        return known_hello(ztp, &snap, h, peer).await;
    }
    let pending = PendingReplacement {
        serial: h.serial.clone(),
        mac: bound_mac(h),
        address: peer_ip(peer),
        at: crate::clock::rfc3339_millis(),
    };
    let message = format!(
        "a new box (serial {}) says hello at {name}'s place, replacing {old}: accept it with \
         `ztpd replace {name} {}`",
        h.serial, h.serial
    );
    let change = Change {
        name,
        serial: &old,
        stages: vec![Stage::ReplacementPending],
        percent: None,
        message,
        edit: Box::new(move |r| r.replacement = Some(pending)),
    };
    if let Err(r) = commit(ztp.tracker.apply(change)).await {
        return r;
    }
    (
        StatusCode::ACCEPTED,
        Json(json!({"state": Stage::ReplacementPending, "device": name, "replaces": old})),
    )
        .into_response()
}
