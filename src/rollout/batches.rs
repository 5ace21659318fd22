//! Planning a rollout's batches, all at creation (SPEC §8): order the group
//! (by tier, farthest from a root first, or by plan), then cut it into a
//! canary batch and batches of `batch_size`, closing a batch early rather
//! than break uplink safety:
//!
//! - a batch never holds a device together with one of its uplinks;
//! - a batch never holds every uplink of a device that has two or more.
//!
//! Closing early (never skipping ahead) keeps ties within a tier in plan
//! order, and makes a batch smaller, never bigger.

use super::model::{Batch, BatchState, DeviceRun, DeviceState};
use super::policy::Policy;
use crate::plan::model::Order;
use crate::topology::{PlannedTopology, Tiers};

/// A group member: name and serial.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub serial: String,
}

/// The group in rollout order.
pub fn order(
    policy: &Policy,
    members: &[Member],
    topo: &PlannedTopology,
    tiers: &Tiers,
) -> Vec<Member> {
    let mut out = members.to_vec();
    let pos = |m: &Member| topo.position(&m.name).unwrap_or(usize::MAX);
    match policy.order {
        Order::Plan => out.sort_by_key(pos),
        Order::Topology => out.sort_by_key(|m| {
            // No planned path to a root: treated as farthest.
            let far = tiers.distance(&m.name).unwrap_or(u32::MAX);
            (std::cmp::Reverse(far), pos(m))
        }),
    }
    out
}

/// Whether adding `c` to `batch` would break an uplink-safety rule.
pub fn conflicts(batch: &[String], c: &str, tiers: &Tiers) -> bool {
    let together = batch.iter().any(|b| {
        tiers.uplinks(c).iter().any(|u| u == b) || tiers.uplinks(b).iter().any(|u| u == c)
    });
    if together {
        return true;
    }
    tiers.dependents(c).iter().any(|x| {
        let ups = tiers.uplinks(x);
        ups.len() >= 2 && ups.iter().all(|u| u == c || batch.contains(u))
    })
}

/// Every batch of the rollout, and a pending run per device.
pub fn plan(
    policy: &Policy,
    members: &[Member],
    topo: &PlannedTopology,
    tiers: &Tiers,
    now: u64,
) -> (Vec<Batch>, Vec<DeviceRun>) {
    let mut rest = order(policy, members, topo, tiers).into_iter().peekable();
    let mut batches: Vec<Batch> = Vec::new();
    let mut runs = Vec::new();
    while rest.peek().is_some() {
        let canary = batches.is_empty() && policy.canary > 0;
        let size = if canary {
            policy.canary
        } else {
            policy.batch_size.max(1)
        } as usize;
        let mut names: Vec<String> = Vec::new();
        while names.len() < size {
            let Some(c) = rest.peek() else { break };
            if !names.is_empty() && conflicts(&names, &c.name, tiers) {
                break;
            }
            let Some(m) = rest.next() else { break };
            runs.push(DeviceRun {
                name: m.name.clone(),
                serial: m.serial,
                batch: batches.len(),
                state: DeviceState::Pending,
                stage: None,
                version: None,
                message: None,
                at: now,
                action: None,
                notified_at: None,
                response: None,
            });
            names.push(m.name);
        }
        batches.push(Batch {
            index: batches.len(),
            canary,
            devices: names,
            state: BatchState::Pending,
            started_at: None,
            finished_at: None,
        });
    }
    (batches, runs)
}
