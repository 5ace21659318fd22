//! Identity by position (SPEC §12): which planned device a hello with an
//! unknown serial stands in for, from where it is cabled.
//!
//! A device's **place** is its planned links. A report matches a place when
//! every neighbour it reports on one of the place's ports is that port's
//! planned peer and peer port, and at least one planned link is seen.
//! Candidates are found through the planned topology's partner map (the
//! devices planned at the other end of each reported cable), so a hello
//! costs its own neighbours, not the fleet: the index is the snapshot's
//! [`PlannedTopology`], built once per plan.

use std::collections::BTreeSet;

use crate::plan::model::Endpoint;
use crate::plan::ports::canonical;
use crate::topology::{Neighbor, PlannedDevice, PlannedTopology};

/// How one candidate place compares with a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub device: String,
    /// Reported neighbours on the place's ports that are its planned peer.
    pub seen: usize,
    /// Reported neighbours on the place's ports that are not: (local port,
    /// what is reported there, what the plan says).
    pub wrong: Vec<(String, Endpoint, Endpoint)>,
}

impl Fit {
    pub fn matches(&self) -> bool {
        self.seen > 0 && self.wrong.is_empty()
    }
}

/// The place of `me` compared with `neighbors`.
pub fn fit(topo: &PlannedTopology, me: &PlannedDevice, neighbors: &[Neighbor]) -> Fit {
    let mut out = Fit {
        device: me.name.clone(),
        seen: 0,
        wrong: Vec::new(),
    };
    for n in neighbors {
        let (local, remote) = topo.cable(me, n);
        let planned = topo.partners(&local);
        if planned.is_empty() {
            // Not a port of the place: LLDP from a management port, a
            // patch to a laptop. It does not decide the place.
            continue;
        }
        if planned.contains(&remote) {
            out.seen += 1;
        } else {
            out.wrong.push((local.port, remote, planned[0].clone()));
        }
    }
    out
}

/// The planned devices a report could be cabled in the place of: those
/// planned at the other end of a reported cable, that `eligible` accepts.
/// In plan order, each once.
pub fn candidates<'a>(
    topo: &'a PlannedTopology,
    neighbors: &[Neighbor],
    eligible: impl Fn(&PlannedDevice) -> bool,
) -> Vec<&'a PlannedDevice> {
    let mut found = BTreeSet::new();
    for n in neighbors {
        let Some(peer) = topo.resolve(&n.remote_device) else {
            continue;
        };
        let end = Endpoint {
            device: peer.name.clone(),
            port: canonical(peer.vendor, &n.remote_port),
        };
        for p in topo.partners(&end) {
            if let Some(i) = topo.position(&p.device) {
                if eligible(&topo.devices()[i]) {
                    found.insert(i);
                }
            }
        }
    }
    found.into_iter().map(|i| &*topo.devices()[i]).collect()
}

/// What a hello's neighbours say about its place among `eligible` devices.
#[derive(Debug, Clone, PartialEq)]
pub enum Placed {
    /// Exactly one place matches.
    One(String),
    /// Several match: the report is too partial to decide.
    Ambiguous(Vec<String>),
    /// None matches, but exactly one differs by a single cable.
    Near(Fit),
    None,
}

pub fn place(
    topo: &PlannedTopology,
    neighbors: &[Neighbor],
    eligible: impl Fn(&PlannedDevice) -> bool,
) -> Placed {
    let fits: Vec<Fit> = candidates(topo, neighbors, eligible)
        .into_iter()
        .map(|d| fit(topo, d, neighbors))
        .collect();
    let matching: Vec<&Fit> = fits.iter().filter(|f| f.matches()).collect();
    match matching.as_slice() {
        [one] => return Placed::One(one.device.clone()),
        [] => {}
        many => return Placed::Ambiguous(many.iter().map(|f| f.device.clone()).collect()),
    }
    let near: Vec<&Fit> = fits
        .iter()
        .filter(|f| f.wrong.len() == 1 && f.seen > 0)
        .collect();
    match near.as_slice() {
        [one] => Placed::Near((*one).clone()),
        _ => Placed::None,
    }
}

/// The 404 sentence for a report one cable away from a place.
pub fn near_message(serial: &str, f: &Fit) -> String {
    let (port, seen, planned) = &f.wrong[0];
    format!(
        "serial {serial} is not in the plan; it looks like {}, but {port} goes to {seen}, \
         the plan says {planned}",
        f.device
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vendor::Vendor;

    fn dev(name: &str, serial: &str) -> PlannedDevice {
        PlannedDevice {
            name: name.into(),
            serial: serial.into(),
            mac: None,
            vendor: Vendor::Arista,
            model_match: "M".into(),
        }
    }

    fn ep(d: &str, p: &str) -> Endpoint {
        Endpoint {
            device: d.into(),
            port: p.into(),
        }
    }

    fn n(local: &str, dev: &str, port: &str) -> Neighbor {
        Neighbor {
            local_port: local.into(),
            remote_device: dev.into(),
            remote_port: port.into(),
        }
    }

    /// spine1 (serial) with leaf3 on Ethernet3 and leaf4 on Ethernet4, both
    /// serial-less; leaf5 and leaf6 cabled only to spine2 the same way.
    fn topo() -> PlannedTopology {
        PlannedTopology::new(
            vec![
                dev("spine1", "SP1"),
                dev("spine2", "SP2"),
                dev("leaf3", ""),
                dev("leaf4", ""),
            ],
            vec![
                (ep("spine1", "Ethernet3"), ep("leaf3", "Ethernet49")),
                (ep("spine2", "Ethernet3"), ep("leaf3", "Ethernet50")),
                (ep("spine1", "Ethernet4"), ep("leaf4", "Ethernet49")),
                (ep("spine2", "Ethernet4"), ep("leaf4", "Ethernet50")),
            ],
        )
    }

    fn serial_less(d: &PlannedDevice) -> bool {
        d.serial.is_empty()
    }

    #[test]
    fn a_unique_place_is_found_by_peer_name_or_serial() {
        let t = topo();
        let by_name = [n("Et49", "spine1", "Et3"), n("Et50", "spine2", "Ethernet3")];
        assert_eq!(
            place(&t, &by_name, serial_less),
            Placed::One("leaf3".into())
        );
        // One cable seen is enough; the peer may be named by its serial.
        let partial = [n("Ethernet49", "SP1", "Ethernet4")];
        assert_eq!(
            place(&t, &partial, serial_less),
            Placed::One("leaf4".into())
        );
        // Only serial-less devices are eligible: spine1 has a serial.
        assert_eq!(
            place(&t, &[n("Ethernet3", "leaf3", "Ethernet49")], serial_less),
            Placed::None
        );
    }

    #[test]
    fn one_cable_off_names_the_nearest_place() {
        let t = topo();
        let off = [
            n("Ethernet49", "spine1", "Ethernet3"),
            n("Ethernet50", "spine2", "Ethernet9"),
        ];
        let Placed::Near(f) = place(&t, &off, serial_less) else {
            panic!("expected a near place");
        };
        assert_eq!(
            near_message("NEW1", &f),
            "serial NEW1 is not in the plan; it looks like leaf3, but Ethernet50 goes to \
             spine2:Ethernet9, the plan says spine2:Ethernet3"
        );
    }

    #[test]
    fn a_partial_report_matching_two_places_is_ambiguous() {
        // leaf7 and leaf8 both planned on spine1's Ethernet7, one via
        // Ethernet49 and the other via Ethernet50: a report from a port not
        // in either place cannot decide... but here both places list the
        // reported cable, so both match.
        let t = PlannedTopology::new(
            vec![dev("spine1", "SP1"), dev("leaf7", ""), dev("leaf8", "")],
            vec![
                (ep("spine1", "Ethernet7"), ep("leaf7", "Ethernet49")),
                (ep("spine1", "Ethernet7"), ep("leaf8", "Ethernet49")),
            ],
        );
        assert_eq!(
            place(&t, &[n("Ethernet49", "spine1", "Ethernet7")], serial_less),
            Placed::Ambiguous(vec!["leaf7".into(), "leaf8".into()])
        );
    }
}
