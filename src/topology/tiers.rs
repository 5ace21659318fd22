//! Tiers of the planned network: each device's distance (in hops over
//! planned links) from the nearest `role = "root"` device, and its
//! **uplinks**, the planned neighbours one hop closer to a root (SPEC §8).
//! Rollouts order by tier and keep batches from taking a device down with
//! its uplink, or every uplink of a dual-homed device at once.

use std::collections::{HashMap, VecDeque};

use super::PlannedTopology;

#[derive(Debug, Clone, Default)]
pub struct Tiers {
    distance: HashMap<String, u32>,
    uplinks: HashMap<String, Vec<String>>,
    dependents: HashMap<String, Vec<String>>,
}

impl Tiers {
    /// Breadth-first from every root at once.
    pub fn new(topo: &PlannedTopology, roots: &[&str]) -> Tiers {
        let mut t = Tiers::default();
        let mut queue = VecDeque::new();
        for r in roots {
            if t.distance.insert(r.to_string(), 0).is_none() {
                queue.push_back(r.to_string());
            }
        }
        while let Some(d) = queue.pop_front() {
            let here = t.distance[&d];
            for n in topo.neighbours(&d) {
                if !t.distance.contains_key(n) {
                    t.distance.insert(n.to_string(), here + 1);
                    queue.push_back(n.to_string());
                }
            }
        }
        for pd in topo.devices() {
            let Some(&mine) = t.distance.get(&pd.name) else {
                continue;
            };
            let ups: Vec<String> = topo
                .neighbours(&pd.name)
                .into_iter()
                .filter(|n| t.distance.get(*n).is_some_and(|&x| x < mine))
                .map(str::to_string)
                .collect();
            for u in &ups {
                t.dependents
                    .entry(u.clone())
                    .or_default()
                    .push(pd.name.clone());
            }
            t.uplinks.insert(pd.name.clone(), ups);
        }
        t
    }

    /// Hops from the nearest root; `None` when no planned path reaches one.
    pub fn distance(&self, device: &str) -> Option<u32> {
        self.distance.get(device).copied()
    }

    /// The device's planned neighbours closer to a root.
    pub fn uplinks(&self, device: &str) -> &[String] {
        self.uplinks.get(device).map_or(&[], Vec::as_slice)
    }

    /// The devices that have `device` as an uplink.
    pub fn dependents(&self, device: &str) -> &[String] {
        self.dependents.get(device).map_or(&[], Vec::as_slice)
    }
}
