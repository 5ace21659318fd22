//! Where the GUI draws each planned device: by tier, from the planned links.
//! Root devices (`role = "root"`) are tier 0 at the top; every other device
//! is in the tier of its hop distance to the nearest root, except that a
//! device moves up to the highest tier of another device of its model when
//! its links allow it (its only neighbours there are of its own model, the
//! rest one tier down): both spines of a Clos share the top row whichever is
//! the root. Devices with no planned path to a root get a row of their own
//! below the deepest tier, so they stand out. Within a tier a device sits
//! under the mean position of its uplinks (ties in plan order, at least
//! [`X_GAP`] apart), which keeps the cables of a tree or a leaf-spine fabric
//! short and mostly uncrossed. A tier wider than [`ROW_WIDTH`] devices wraps
//! onto more rows.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use serde::Serialize;

use crate::plan::model::{Model, Role};

/// Horizontal distance between neighbours in a row, in GUI pixels.
pub const X_GAP: f64 = 110.0;
/// Vertical distance between rows.
pub const ROW_GAP: f64 = 90.0;
/// Extra space between tiers, so wrapped rows of one tier stay together.
pub const TIER_GAP: f64 = 70.0;
/// Devices per row: a 2,000-leaf tier becomes a block, not a 220,000 px line.
pub const ROW_WIDTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placed {
    pub name: String,
    /// Hops to the nearest root; `None`: no planned path to a root.
    pub tier: Option<u32>,
    pub x: f64,
    pub y: f64,
}

/// Positions of every device of every site, in plan order.
pub fn layout(model: &Model) -> Vec<Placed> {
    let names: Vec<&str> = model.devices().map(|(_, d)| d.name.as_str()).collect();
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut adj: Vec<Vec<usize>> = vec![Vec::new(); names.len()];
    for site in &model.sites {
        for l in site.links.iter() {
            if let (Some(&a), Some(&b)) = (
                index.get(l.a.device.as_str()),
                index.get(l.b.device.as_str()),
            ) {
                if a != b {
                    adj[a].push(b);
                    adj[b].push(a);
                }
            }
        }
    }
    let models: Vec<&str> = model.devices().map(|(_, d)| d.model.as_str()).collect();
    let roots: Vec<usize> = model
        .devices()
        .enumerate()
        .filter(|(_, (_, d))| d.role == Role::Root)
        .map(|(i, _)| i)
        .collect();
    let tier = tiers(&roots, &models, &adj);
    let deepest = tier.iter().flatten().max().copied().unwrap_or(0);
    // Rows: tier 0..=deepest, then the unreachable ones.
    let mut rows: Vec<Vec<usize>> = vec![Vec::new(); deepest as usize + 2];
    for (i, t) in tier.iter().enumerate() {
        rows[t.map_or(deepest as usize + 1, |t| t as usize)].push(i);
    }
    let mut x = vec![0.0f64; names.len()];
    let mut y = vec![0.0f64; names.len()];
    let mut top = 0.0;
    for (t, members) in rows.iter_mut().enumerate() {
        if members.is_empty() {
            continue;
        }
        // Under the mean x of the neighbours one tier up (placed already).
        let key: Vec<(f64, usize)> = members
            .iter()
            .map(|&i| {
                let ups: Vec<f64> = adj[i]
                    .iter()
                    .filter(|&&j| t > 0 && tier[j] == Some(t as u32 - 1))
                    .map(|&j| x[j])
                    .collect();
                let at = if ups.is_empty() {
                    f64::INFINITY
                } else {
                    ups.iter().sum::<f64>() / ups.len() as f64
                };
                (at, i)
            })
            .collect();
        let mut order = key;
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        if order.len() <= ROW_WIDTH && order.iter().any(|(at, _)| at.is_finite()) {
            for (at, i) in under_uplinks(&order) {
                x[i] = at;
                y[i] = top;
            }
            top += ROW_GAP + TIER_GAP;
            continue;
        }
        for (row, chunk) in order.chunks(ROW_WIDTH).enumerate() {
            let width = (chunk.len() - 1) as f64 * X_GAP;
            for (k, &(_, i)) in chunk.iter().enumerate() {
                x[i] = k as f64 * X_GAP - width / 2.0;
                y[i] = top + row as f64 * ROW_GAP;
            }
        }
        top += members.len().div_ceil(ROW_WIDTH) as f64 * ROW_GAP + TIER_GAP;
    }
    names
        .iter()
        .enumerate()
        .map(|(i, n)| Placed {
            name: n.to_string(),
            tier: tier[i],
            x: x[i],
            y: y[i],
        })
        .collect()
}

/// One row, each device as near as it can be to the mean x of its uplinks
/// (`order`: that x, or infinity for none, sorted), at least [`X_GAP`]
/// apart: a forward sweep pushes crowded devices right, then the row moves
/// back left by their mean displacement, so a small tier hangs centred under
/// its parents rather than under the middle of the picture.
fn under_uplinks(order: &[(f64, usize)]) -> Vec<(f64, usize)> {
    let mut out: Vec<(f64, usize)> = Vec::with_capacity(order.len());
    for &(at, i) in order {
        let x = match out.last() {
            None if at.is_finite() => at,
            None => 0.0,
            Some(&(prev, _)) if at.is_finite() => at.max(prev + X_GAP),
            Some(&(prev, _)) => prev + X_GAP,
        };
        out.push((x, i));
    }
    let moved: Vec<f64> = out
        .iter()
        .zip(order)
        .filter(|(_, (at, _))| at.is_finite())
        .map(|((x, _), (at, _))| x - at)
        .collect();
    let shift = moved.iter().sum::<f64>() / moved.len().max(1) as f64;
    for (x, _) in &mut out {
        *x -= shift;
    }
    out
}

/// Hops from the nearest root, then devices moved up to their model's top
/// tier where their links allow (see the module comment), until none moves.
fn tiers(roots: &[usize], models: &[&str], adj: &[Vec<usize>]) -> Vec<Option<u32>> {
    let mut sources: Vec<(usize, u32)> = roots.iter().map(|&i| (i, 0)).collect();
    loop {
        let tier = hops_from(&sources, adj);
        let mut top: HashMap<&str, u32> = HashMap::new();
        for (i, t) in tier.iter().enumerate() {
            if let Some(t) = *t {
                let best = top.entry(models[i]).or_insert(t);
                *best = (*best).min(t);
            }
        }
        let movable = |i: usize, to: u32| {
            adj[i].iter().all(|&j| match tier[j] {
                Some(t) if t == to => models[j] == models[i],
                Some(t) => t > to,
                None => true,
            })
        };
        let moved: Vec<(usize, u32)> = (0..adj.len())
            .filter_map(|i| {
                let to = *top.get(models[i])?;
                (tier[i]? > to && movable(i, to)).then_some((i, to))
            })
            .collect();
        if moved.is_empty() {
            return tier;
        }
        sources.extend(moved);
    }
}

/// Shortest hop counts from `sources`, each starting at its own tier.
fn hops_from(sources: &[(usize, u32)], adj: &[Vec<usize>]) -> Vec<Option<u32>> {
    let mut tier: Vec<Option<u32>> = vec![None; adj.len()];
    let mut queue = BinaryHeap::new();
    for &(i, t) in sources {
        if tier[i].is_none_or(|x| t < x) {
            tier[i] = Some(t);
            queue.push(Reverse((t, i)));
        }
    }
    while let Some(Reverse((t, i))) = queue.pop() {
        if tier[i] != Some(t) {
            continue;
        }
        for &j in &adj[i] {
            if tier[j].is_none_or(|x| t + 1 < x) {
                tier[j] = Some(t + 1);
                queue.push(Reverse((t + 1, j)));
            }
        }
    }
    tier
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::model::{Device, Endpoint, Link, Site};

    fn model(devices: &[(&str, bool)], links: &[(&str, &str)]) -> Model {
        let mut m = crate::dhcp::fixture::lab_model();
        let site: &mut Site = &mut m.sites[0];
        let template = site.devices[0].clone();
        site.devices = devices
            .iter()
            .map(|(name, root)| Device {
                name: name.to_string(),
                serial: format!("sn-{name}"),
                // a model of its own: tiers by hops alone
                model: name.to_string(),
                role: if *root { Role::Root } else { Role::Device },
                ..Device::clone(&template)
            })
            .map(std::sync::Arc::new)
            .collect();
        site.links = links
            .iter()
            .enumerate()
            .map(|(i, (a, b))| Link {
                a: Endpoint {
                    device: a.to_string(),
                    port: format!("Ethernet{i}"),
                },
                b: Endpoint {
                    device: b.to_string(),
                    port: format!("Ethernet{}", 100 + i),
                },
            })
            .collect::<Vec<_>>()
            .into();
        m
    }

    fn at<'a>(p: &'a [Placed], name: &str) -> &'a Placed {
        p.iter().find(|x| x.name == name).unwrap()
    }

    #[test]
    fn a_tree_goes_down_by_hops_with_children_under_their_parent() {
        let m = model(
            &[
                ("c", false),
                ("root", true),
                ("a", false),
                ("b", false),
                ("d", false),
            ],
            &[("root", "a"), ("root", "b"), ("a", "c"), ("b", "d")],
        );
        let p = layout(&m);
        assert_eq!(at(&p, "root").tier, Some(0));
        assert_eq!(at(&p, "a").tier, Some(1));
        assert_eq!(at(&p, "c").tier, Some(2));
        assert!(at(&p, "root").y < at(&p, "a").y && at(&p, "a").y < at(&p, "c").y);
        assert_eq!(at(&p, "a").y, at(&p, "b").y, "one tier, one row");
        // c hangs under a and d under b, although c comes first in the plan.
        assert!(at(&p, "a").x < at(&p, "b").x, "plan order within a tier");
        assert!(
            at(&p, "c").x < at(&p, "d").x,
            "children follow their parents"
        );
        assert_eq!(at(&p, "root").x, 0.0, "a lone device is centred");
    }

    #[test]
    fn dual_homed_leaves_sit_between_their_two_spines() {
        let m = model(
            &[("s1", true), ("s2", true), ("l1", false), ("l2", false)],
            &[("s1", "l1"), ("s2", "l1"), ("s1", "l2"), ("s2", "l2")],
        );
        let p = layout(&m);
        for l in ["l1", "l2"] {
            assert_eq!(at(&p, l).tier, Some(1), "{l}");
        }
        assert_eq!(at(&p, "s1").tier, Some(0));
        assert_eq!(at(&p, "s2").tier, Some(0));
        let mid = (at(&p, "s1").x + at(&p, "s2").x) / 2.0;
        assert_eq!(mid, 0.0);
        assert!(at(&p, "l1").x < at(&p, "l2").x);
        assert!(at(&p, "s1").y < at(&p, "l1").y);
    }

    /// `model()` with each device's model set: `(name, root, model)`.
    fn with_models(devices: &[(&str, bool, &str)], links: &[(&str, &str)]) -> Model {
        let plain: Vec<(&str, bool)> = devices.iter().map(|(n, r, _)| (*n, *r)).collect();
        let mut m = model(&plain, links);
        for (d, (_, _, model)) in m.sites[0].devices.iter_mut().zip(devices) {
            std::sync::Arc::make_mut(d).model = model.to_string();
        }
        m
    }

    #[test]
    fn the_second_spine_shares_the_roots_row_and_a_host_stays_below() {
        let m = with_models(
            &[
                ("spine1", true, "spine"),
                ("spine2", false, "spine"),
                ("leaf1", false, "leaf"),
                ("leaf2", false, "leaf"),
                ("host1", false, "host"),
                ("host2", false, "host"),
            ],
            &[
                ("spine1", "spine2"),
                ("spine1", "leaf1"),
                ("spine2", "leaf1"),
                ("spine1", "leaf2"),
                ("spine2", "leaf2"),
                ("leaf1", "leaf2"),
                ("leaf1", "host1"),
                // host2 hangs off spine1 directly: one tier above host1
                ("spine1", "host2"),
            ],
        );
        let p = layout(&m);
        assert_eq!(at(&p, "spine2").tier, Some(0), "both spines on top");
        assert_eq!(at(&p, "spine1").y, at(&p, "spine2").y);
        assert_eq!(at(&p, "leaf1").tier, Some(1));
        assert_eq!(at(&p, "host2").tier, Some(1));
        // host1 would sit beside its own leaf: its links do not allow it
        assert_eq!(at(&p, "host1").tier, Some(2));
        assert_eq!(at(&p, "host1").x, at(&p, "leaf1").x, "under its one uplink");
    }

    #[test]
    fn a_device_with_no_path_to_a_root_gets_its_own_row_at_the_bottom() {
        let m = model(
            &[
                ("root", true),
                ("a", false),
                ("island", false),
                ("peer", false),
            ],
            &[("root", "a"), ("island", "peer")],
        );
        let p = layout(&m);
        assert_eq!(at(&p, "island").tier, None);
        assert_eq!(at(&p, "peer").tier, None);
        assert!(at(&p, "island").y > at(&p, "a").y, "below the deepest tier");
        assert_eq!(at(&p, "island").y, at(&p, "peer").y);
    }

    #[test]
    fn a_wide_tier_wraps_into_rows_and_positions_are_distinct() {
        let mut devices = vec![("root".to_string(), true)];
        let mut links = Vec::new();
        for i in 0..150 {
            devices.push((format!("l{i}"), false));
            links.push(("root".to_string(), format!("l{i}")));
        }
        let d: Vec<(&str, bool)> = devices.iter().map(|(n, r)| (n.as_str(), *r)).collect();
        let l: Vec<(&str, &str)> = links
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let p = layout(&model(&d, &l));
        let rows: std::collections::BTreeSet<i64> = p
            .iter()
            .filter(|x| x.tier == Some(1))
            .map(|x| x.y as i64)
            .collect();
        assert_eq!(rows.len(), 150usize.div_ceil(ROW_WIDTH));
        let spots: std::collections::HashSet<(i64, i64)> =
            p.iter().map(|x| (x.x as i64, x.y as i64)).collect();
        assert_eq!(spots.len(), p.len(), "two devices on one spot");
    }
}
