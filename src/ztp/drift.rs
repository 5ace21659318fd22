//! Topology after deployment (SPEC §12): deployed devices' LLDP tables are
//! read over SNMP every `topology.poll_interval` and compared with the plan.
//! A problem that appears on a deployed device is **drift** (event
//! `topology_drift` with the fix), its clearing `topology_restored`; an agent
//! that does not answer is `snmp_unreachable`, never "no neighbours". Drift
//! never changes a device's state and never re-provisions it.
//!
//! Polls are bounded: at most [`CONCURRENCY`] walks at once, each within
//! its own timeouts (per request and for the whole read), so a slow agent
//! holds one slot and delays no other.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio::sync::{broadcast, Semaphore};
use tokio_util::sync::CancellationToken;

use super::hello::touches;
use super::state::Stage;
use super::Ztp;
use crate::topology::snmp::Patience;
use crate::topology::{self, Problem, Reported};

/// SNMP walks in flight at once: enough for 1,000 devices per round in a
/// few seconds, few enough to stay a small share of one core and of the
/// management network.
pub const CONCURRENCY: usize = 64;
/// An agent that does not answer one request within this is unreachable
/// (shorter when the interval is).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a device's whole read may take (shorter when the interval is): a
/// 48-port switch's neighbours take a dozen requests, and an agent that
/// answers each, slowly, is reachable. It holds one of [`CONCURRENCY`]
/// slots meanwhile, never the others.
const WALK_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a disabled poller ("0s") looks whether it was enabled.
const IDLE_CHECK: Duration = Duration::from_secs(5);

/// What the poller knows of one deployed device.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceDrift {
    /// Problems seen over SNMP (empty: as planned).
    pub problems: Vec<Problem>,
    /// `None` until the first poll.
    pub reachable: Option<bool>,
    /// When the agent last answered (RFC 3339).
    pub last_ok: Option<String>,
}

pub struct Drift {
    devices: Mutex<HashMap<String, DeviceDrift>>,
    events: broadcast::Sender<serde_json::Value>,
    /// Poll rounds finished since start.
    rounds: AtomicU64,
    /// How long the last finished round took, in milliseconds.
    last_round_ms: AtomicU64,
}

impl Default for Drift {
    fn default() -> Self {
        Drift {
            devices: Mutex::default(),
            events: broadcast::channel(1024).0,
            rounds: AtomicU64::new(0),
            last_round_ms: AtomicU64::new(0),
        }
    }
}

impl Drift {
    pub fn of(&self, device: &str) -> Option<DeviceDrift> {
        self.devices.lock().ok()?.get(device).cloned()
    }

    /// Every device's drift problems.
    pub fn problems(&self) -> Vec<Problem> {
        self.devices
            .lock()
            .map(|m| m.values().flat_map(|d| d.problems.clone()).collect())
            .unwrap_or_default()
    }

    /// SSE `topology` events: `{device, kind, problems}`.
    pub fn subscribe(&self) -> broadcast::Receiver<serde_json::Value> {
        self.events.subscribe()
    }

    /// Deployed devices whose topology differs from the plan now.
    pub fn drifting(&self) -> u64 {
        self.devices
            .lock()
            .map(|m| m.values().filter(|d| !d.problems.is_empty()).count() as u64)
            .unwrap_or(0)
    }
}

impl crate::metrics::MetricsSource for Drift {
    fn write_metrics(&self, out: &mut String) {
        crate::metrics::write_metric(
            out,
            "ztpd_topology_drift_devices",
            "gauge",
            "Deployed devices whose LLDP neighbours (read over SNMP) differ from the plan.",
            &[("", self.drifting())],
        );
        crate::metrics::write_metric(
            out,
            "ztpd_topology_poll_rounds_total",
            "counter",
            "SNMP poll rounds over the deployed devices finished since start.",
            &[("", self.rounds.load(Ordering::Relaxed))],
        );
        crate::metrics::write_metric(
            out,
            "ztpd_topology_poll_round_milliseconds",
            "gauge",
            "How long the last SNMP poll round took, from its first walk to its last answer or timeout.",
            &[("", self.last_round_ms.load(Ordering::Relaxed))],
        );
    }
}

/// Poll deployed devices until `shutdown`.
pub async fn run(ztp: Arc<Ztp>, shutdown: CancellationToken) {
    loop {
        let interval = ztp
            .snapshot
            .load()
            .resolved
            .settings
            .topology
            .poll_interval();
        let wait = if interval.is_zero() {
            IDLE_CHECK
        } else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = poll_round(&ztp, Patience {
                    request: REQUEST_TIMEOUT.min(interval),
                    walk: WALK_TIMEOUT.min(interval),
                }) => {}
            }
            interval
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One round over every deployed device of a site with `[snmp]`.
pub async fn poll_round(ztp: &Arc<Ztp>, patience: Patience) {
    let started = Instant::now();
    let snap = ztp.snapshot.load();
    let targets: Vec<(String, SocketAddr, crate::plan::model::SnmpAccess)> = ztp
        .tracker
        .with_records(|records| {
            snap.model
                .devices()
                .filter_map(|(site, d)| {
                    let snmp = site.snmp.as_ref()?;
                    let r = records.get(&d.name)?;
                    if r.stage != Stage::Deployed {
                        return None;
                    }
                    let ip = (d.ip.or(r.leased_ip).map(std::net::IpAddr::V4))
                        .or(d.ip6.map(std::net::IpAddr::V6))
                        .or(r.hello_ip)?;
                    Some((
                        d.name.clone(),
                        SocketAddr::new(ip, 161),
                        snmp.access.clone(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let mut walks = tokio::task::JoinSet::new();
    for (name, addr, access) in targets {
        let limit = limit.clone();
        walks.spawn(async move {
            let _slot = limit.acquire_owned().await;
            let r = topology::snmp::neighbours(addr, &access, patience).await;
            (name, r)
        });
    }
    let (mut answered, mut silent) = (0usize, 0usize);
    while let Some(done) = walks.join_next().await {
        let Ok((name, result)) = done else { continue };
        match result {
            Ok(neighbors) => {
                answered += 1;
                seen(ztp, &snap, &name, neighbors).await
            }
            Err(e) => {
                silent += 1;
                unreachable(ztp, &name, e.to_string()).await
            }
        }
    }
    let took = started.elapsed();
    ztp.drift
        .last_round_ms
        .store(took.as_millis() as u64, Ordering::Relaxed);
    ztp.drift.rounds.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(answered, silent, ?took, "SNMP poll round");
}

fn emit(ztp: &Ztp, device: &str, kind: &str, problems: &[Problem]) {
    let _ = ztp
        .drift
        .events
        .send(json!({"device": device, "kind": kind, "problems": problems}));
}

async fn unreachable(ztp: &Ztp, name: &str, why: String) {
    let (was, problems) = {
        let Ok(mut m) = ztp.drift.devices.lock() else {
            return;
        };
        let d = m.entry(name.to_string()).or_default();
        let was = d.reachable;
        d.reachable = Some(false);
        (was, d.problems.clone())
    };
    if was != Some(false) {
        let msg = format!("snmp_unreachable: the SNMP agent does not answer ({why}); neighbours unknown, no link judged");
        let _ = ztp.tracker.note(name, msg).await;
        emit(ztp, name, "snmp_unreachable", &problems);
    }
}

/// Compare what `name` sees (read over SNMP, or pushed by the device)
/// with the plan; record drift or its end.
pub(super) async fn seen(
    ztp: &Ztp,
    snap: &crate::snapshot::Snapshot,
    name: &str,
    neighbors: Vec<crate::topology::Neighbor>,
) {
    let report = Reported {
        device: name.to_string(),
        model: None,
        neighbors,
    };
    let problems: Vec<Problem> = match topology::diff(&snap.topology, &[report]) {
        Ok(p) => p
            .into_iter()
            .filter(|p| serde_json::to_value(p).is_ok_and(|v| touches(&v, name)))
            .collect(),
        Err(e) => {
            tracing::warn!(device = %name, "neighbours read over SNMP not checked: {e}");
            return;
        }
    };
    let old = {
        let Ok(mut m) = ztp.drift.devices.lock() else {
            return;
        };
        let d = m.entry(name.to_string()).or_default();
        d.reachable = Some(true);
        d.last_ok = Some(crate::clock::rfc3339_millis());
        std::mem::replace(&mut d.problems, problems.clone())
    };
    if old == problems {
        return;
    }
    let (kind, msg) = if problems.is_empty() {
        (
            "restored",
            "topology_restored: the neighbours read over SNMP match the plan again".to_string(),
        )
    } else {
        let fixes: Vec<String> = problems.iter().map(ToString::to_string).collect();
        ("drift", format!("topology_drift: {}", fixes.join("; ")))
    };
    let _ = ztp.tracker.note(name, msg).await;
    emit(ztp, name, kind, &problems);
}
