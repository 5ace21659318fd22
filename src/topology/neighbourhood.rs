//! The stored reports a check of one device needs, so that a hello costs
//! what that device's neighbourhood costs, not what the fleet costs.
//!
//! [`super::diff()`] judges every planned link with a reporting end against
//! every observed cable. A hello only keeps the problems that touch the
//! device saying hello, and those depend only on the cables at a few ports:
//! - `E0`: the device's own ports (planned, reported by it, or seen by others)
//!   and the planned far ends of its links;
//! - `F`: the far ends of the cables seen at `E0` (a wrong peer, a swap
//!   partner, an unplanned neighbour);
//! - `E1`: the planned partners of `F` (whose links may explain, or claim,
//!   those cables; and decide whether such a link is judged at all).
//!
//! The reports needed are those of the devices at `E0 ∪ F ∪ E1` and of every
//! device that reported a cable at one of those ports. Any other report adds
//! cables and links elsewhere, which the engine matches independently, as
//! long as each of those ports has one neighbour. When one has several (a
//! hub), which cable a link consumes can depend on reports further away, so
//! that hello is checked against the whole fleet instead. The equivalence
//! with the whole-fleet check is tested on random plans and cablings
//! (`local_tests.rs`), hubs and wrong boxes included.
//!
//! The index is rebuilt from the tracker when the plan changes (device names
//! resolve differently) and updated after each stored report.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{PlannedTopology, Reported};
use crate::plan::model::Endpoint;

#[derive(Default)]
pub struct ReportIndex {
    /// The snapshot version the index was built for.
    version: Option<u64>,
    /// The last report of each planned device that has one.
    reports: HashMap<String, Reported>,
    /// Each report's cables, as the engine reads them.
    cables: HashMap<String, Vec<(Endpoint, Endpoint)>>,
    /// Endpoint -> the devices whose report has a cable with an end there.
    at: HashMap<Endpoint, BTreeSet<String>>,
    /// Device -> its endpoints in `at` (cables others saw at its ports).
    on: HashMap<String, BTreeSet<Endpoint>>,
    /// Devices whose report names a neighbour other than by its planned
    /// name (a serial, a MAC, an unplanned box): what a binding, which
    /// changes serials and MACs only, may make read differently.
    by_identity: HashSet<String>,
    /// The planned cables the index was built on: the topologies bindings
    /// make share them (the same names and cables).
    plan: Option<std::sync::Arc<Vec<(Endpoint, Endpoint)>>>,
}

/// A report's cables; entries the engine would refuse (empty fields) are
/// left out here and refused by the engine itself.
fn cables_of(topo: &PlannedTopology, r: &Reported) -> Vec<(Endpoint, Endpoint)> {
    let Some(me) = topo.resolve(&r.device) else {
        return Vec::new();
    };
    r.neighbors
        .iter()
        .filter(|n| {
            [&n.local_port, &n.remote_device, &n.remote_port]
                .iter()
                .all(|v| !v.trim().is_empty())
        })
        .map(|n| topo.cable(me, n))
        .collect()
}

impl ReportIndex {
    /// True when built for the plan of snapshot `version`.
    pub fn is_for(&self, version: u64) -> bool {
        self.version == Some(version)
    }

    /// Index `reports` (one per planned device) for snapshot `version`.
    pub fn rebuild(&mut self, topo: &PlannedTopology, version: u64, reports: Vec<Reported>) {
        *self = ReportIndex {
            version: Some(version),
            plan: Some(topo.links.clone()),
            ..ReportIndex::default()
        };
        for r in reports {
            self.set(topo, r);
        }
    }

    /// Replace the report of the device `r` names.
    pub fn set(&mut self, topo: &PlannedTopology, r: Reported) {
        let Some(name) = topo.resolve(&r.device).map(|d| d.name.clone()) else {
            return;
        };
        self.remove(&name);
        let cables = cables_of(topo, &r);
        for (x, y) in &cables {
            for e in [x, y] {
                self.at.entry(e.clone()).or_default().insert(name.clone());
                self.on
                    .entry(e.device.clone())
                    .or_default()
                    .insert(e.clone());
            }
        }
        self.cables.insert(name.clone(), cables);
        let by_name = |n: &super::Neighbor| topo.position(n.remote_device.trim()).is_some();
        if !r.neighbors.iter().all(by_name) {
            self.by_identity.insert(name.clone());
        }
        self.reports.insert(name, r);
    }

    /// Follow snapshot `version` when its topology differs from the one
    /// the index was built on only in serials and MACs (a binding: the
    /// same cables, shared): the reports naming a neighbour by identity
    /// are read again, the others kept. `false`: other cables, rebuild.
    /// A binding made the index be rebuilt from every stored report at
    /// the next hello, each binding hello paying O(fleet).
    pub fn follow(&mut self, topo: &PlannedTopology, version: u64) -> bool {
        let same = self
            .plan
            .as_ref()
            .is_some_and(|p| std::sync::Arc::ptr_eq(p, &topo.links));
        if self.version.is_none() || !same {
            return false;
        }
        let again: Vec<Reported> = self
            .by_identity
            .iter()
            .filter_map(|n| self.reports.get(n).cloned())
            .collect();
        for r in again {
            self.set(topo, r);
        }
        self.version = Some(version);
        true
    }

    /// Forget the report of `name` (a planned device name).
    pub fn remove(&mut self, name: &str) {
        self.reports.remove(name);
        self.by_identity.remove(name);
        for (x, y) in self.cables.remove(name).unwrap_or_default() {
            for e in [x, y] {
                let Some(set) = self.at.get_mut(&e) else {
                    continue;
                };
                set.remove(name);
                if !set.is_empty() {
                    continue;
                }
                self.at.remove(&e);
                if let Some(ends) = self.on.get_mut(&e.device) {
                    ends.remove(&e);
                    if ends.is_empty() {
                        self.on.remove(&e.device);
                    }
                }
            }
        }
    }

    /// The stored reports, other than `mine`'s device's, that a check of
    /// `mine` needs (see the module comment), in plan order; `None` when a
    /// port in that neighbourhood has cables to several neighbours (a hub
    /// between the devices): which cable explains which link then depends on
    /// reports further away, so the caller checks against the whole fleet.
    pub fn near(&self, topo: &PlannedTopology, mine: &Reported) -> Option<Vec<Reported>> {
        let Some(me) = topo.resolve(&mine.device) else {
            return Some(Vec::new());
        };
        let my_cables = cables_of(topo, mine);
        // The far ends of the cables seen at `e`: in `mine` and in every
        // stored report with an end there. More than one: a hub.
        let far_ends = |e: &Endpoint| -> Option<Vec<Endpoint>> {
            let stored = self
                .at
                .get(e)
                .into_iter()
                .flatten()
                .filter(|d| **d != me.name)
                .filter_map(|d| self.cables.get(d))
                .flatten();
            let mut out: Vec<Endpoint> = Vec::new();
            for (x, y) in my_cables.iter().chain(stored) {
                let far = if x == e {
                    y
                } else if y == e {
                    x
                } else {
                    continue;
                };
                if !out.contains(far) {
                    out.push(far.clone());
                }
            }
            (out.len() <= 1).then_some(out)
        };
        let mut e0: Vec<Endpoint> = topo.ends(&me.name).to_vec();
        for e in topo.ends(&me.name) {
            e0.extend(topo.partners(e).iter().cloned());
        }
        e0.extend(my_cables.iter().map(|(local, _)| local.clone()));
        e0.extend(self.on.get(&me.name).into_iter().flatten().cloned());
        let mut f = Vec::new();
        for e in &e0 {
            f.extend(far_ends(e)?);
        }
        let e1: Vec<Endpoint> = f
            .iter()
            .flat_map(|e| topo.partners(e).iter().cloned())
            .collect();
        for e in f.iter().chain(&e1) {
            far_ends(e)?;
        }
        let mut devices: HashSet<&str> = HashSet::new();
        for e in e0.iter().chain(&f).chain(&e1) {
            devices.insert(&e.device);
            devices.extend(self.at.get(e).into_iter().flatten().map(String::as_str));
        }
        let mut out: Vec<(usize, &Reported)> = devices
            .into_iter()
            .filter(|d| *d != me.name)
            .filter_map(|d| Some((topo.position(d)?, self.reports.get(d)?)))
            .collect();
        out.sort_by_key(|(pos, _)| *pos);
        Some(out.into_iter().map(|(_, r)| r.clone()).collect())
    }

    /// Every stored report but `name`'s, in plan order (the whole-fleet check).
    pub fn all_but(&self, topo: &PlannedTopology, name: &str) -> Vec<Reported> {
        let mut out: Vec<(usize, &Reported)> = self
            .reports
            .iter()
            .filter(|(d, _)| *d != name)
            .filter_map(|(d, r)| Some((topo.position(d)?, r)))
            .collect();
        out.sort_by_key(|(pos, _)| *pos);
        out.into_iter().map(|(_, r)| r.clone()).collect()
    }
}

#[cfg(test)]
#[path = "neighbourhood_tests.rs"]
mod tests;
