//! Hellos from boxes that are no planned device and fit no place (SPEC §12):
//! listed on `GET /api/v1/unplanned` with `source: "hello"`, beside the DHCP
//! clients, each with the `[[devices]]` entry that would plan it.
//!
//! Kept in memory only, bounded: a stranger says hello again after a restart.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use serde::Serialize;

use super::hello::Hello;
use crate::snapshot::Snapshot;
use crate::topology::Neighbor;

/// Strangers remembered at most; the least recently seen go first. Hellos
/// are cheap to send, so the register must not grow with a flood.
pub const CAP: usize = 1024;

#[derive(Debug, Clone, Serialize)]
pub struct Stranger {
    pub source: &'static str,
    pub serial: String,
    pub model: String,
    pub mac: Option<String>,
    pub address: Option<IpAddr>,
    pub neighbors: Vec<Neighbor>,
    pub first_seen: String,
    pub last_seen: String,
    pub count: u64,
    /// The `[[devices]]` entry to add to a plan for this box.
    pub entry: String,
    #[serde(skip)]
    seq: u64,
}

#[derive(Default)]
pub struct Strangers {
    inner: Mutex<(HashMap<String, Stranger>, u64)>,
}

impl Strangers {
    pub fn record(&self, snap: &Snapshot, h: &Hello, address: Option<IpAddr>) {
        let Ok(mut g) = self.inner.lock() else { return };
        let (map, seq) = &mut *g;
        *seq += 1;
        let now = crate::clock::rfc3339_millis();
        let s = map.entry(h.serial.clone()).or_insert_with(|| Stranger {
            source: "hello",
            serial: h.serial.clone(),
            model: h.model.clone(),
            mac: None,
            address,
            neighbors: Vec::new(),
            first_seen: now.clone(),
            last_seen: now.clone(),
            count: 0,
            entry: String::new(),
            seq: 0,
        });
        s.model = h.model.clone();
        s.mac = h
            .mac
            .as_deref()
            .and_then(crate::mac::Mac::parse)
            .map(|m| m.to_string());
        s.address = address;
        s.neighbors = h.neighbors.clone();
        s.last_seen = now;
        s.count += 1;
        s.seq = *seq;
        s.entry = entry(snap, Some(&h.model), Some(&h.serial), s.mac.as_deref());
        if map.len() > CAP {
            if let Some(oldest) = map.values().min_by_key(|s| s.seq).map(|s| s.serial.clone()) {
                map.remove(&oldest);
            }
        }
    }

    /// Most recently seen first.
    pub fn list(&self) -> Vec<Stranger> {
        let mut out: Vec<Stranger> = self
            .inner
            .lock()
            .map(|g| g.0.values().cloned().collect())
            .unwrap_or_default();
        out.sort_by_key(|s| std::cmp::Reverse(s.seq));
        out
    }
}

/// The plan lines for an unplanned box: its model as the plan names it
/// (the `[models.*]` whose `match` it reports), serial and MAC.
pub fn entry(
    snap: &Snapshot,
    model: Option<&str>,
    serial: Option<&str>,
    mac: Option<&str>,
) -> String {
    let reported = model.unwrap_or("").trim();
    let planned = snap
        .model
        .sites
        .iter()
        .flat_map(|s| s.models.values())
        .find(|m| !reported.is_empty() && m.match_model.trim().eq_ignore_ascii_case(reported));
    let model = match planned {
        Some(m) => format!("{:?}", m.name),
        None => format!("\"CHANGE-ME\"  # no [models.*] matches {reported:?} yet"),
    };
    let mut out = format!("[[devices]]\nname = \"CHANGE-ME\"\nmodel = {model}\n");
    if let Some(s) = serial {
        out.push_str(&format!("serial = {s:?}\n"));
    }
    if let Some(m) = mac {
        out.push_str(&format!("mac = {m:?}\n"));
    }
    out
}
