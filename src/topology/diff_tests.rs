use super::*;
use crate::topology::Neighbor;
use crate::vendor::Vendor;

const SPINE: &str = "DCS-7280SR-48C6";
const LEAF: &str = "DCS-7050SX-64";

fn ep(device: &str, port: &str) -> Endpoint {
    Endpoint {
        device: device.into(),
        port: port.into(),
    }
}

fn dev(name: &str, serial: &str, mac_last: u8, model: &str) -> PlannedDevice {
    PlannedDevice {
        name: name.into(),
        serial: serial.into(),
        mac: Some([0x00, 0x1c, 0x73, 0xaa, 0xbb, mac_last]),
        vendor: Vendor::Arista,
        model_match: model.into(),
    }
}

/// spine1:Ethernet1..3 to leaf1..3:Ethernet49, and leaf1:Ethernet50 to
/// spine1:Ethernet4 (a second uplink, for swaps on one leaf).
fn plan() -> PlannedTopology {
    PlannedTopology::new(
        vec![
            dev("spine1", "JPE1", 0x01, SPINE),
            dev("leaf1", "JPE11", 0x11, LEAF),
            dev("leaf2", "JPE12", 0x12, LEAF),
            dev("leaf3", "JPE13", 0x13, LEAF),
        ],
        vec![
            (ep("spine1", "Ethernet1"), ep("leaf1", "Ethernet49")),
            (ep("spine1", "Ethernet2"), ep("leaf2", "Ethernet49")),
            (ep("spine1", "Ethernet3"), ep("leaf3", "Ethernet49")),
            (ep("leaf1", "Ethernet50"), ep("spine1", "Ethernet4")),
        ],
    )
}

fn rep(device: &str, model: &str, neighbors: &[(&str, &str, &str)]) -> Reported {
    Reported {
        device: device.into(),
        model: Some(model.into()),
        neighbors: neighbors
            .iter()
            .map(|(l, d, r)| Neighbor {
                local_port: l.to_string(),
                remote_device: d.to_string(),
                remote_port: r.to_string(),
            })
            .collect(),
    }
}

fn spine_ok() -> Reported {
    rep(
        "spine1",
        SPINE,
        &[
            ("Ethernet1", "leaf1", "Ethernet49"),
            ("Ethernet2", "leaf2", "Ethernet49"),
            ("Ethernet3", "leaf3", "Ethernet49"),
            ("Ethernet4", "leaf1", "Ethernet50"),
        ],
    )
}

fn kinds(ps: &[Problem]) -> Vec<Kind> {
    ps.iter().map(|p| p.kind).collect()
}

/// Every fix names each cable end involved.
fn assert_fix_names(p: &Problem, ends: &[&str]) {
    for e in ends {
        assert!(p.fix.contains(e), "fix does not name {e}: {}", p.fix);
    }
}

#[test]
fn a_clean_match_gives_no_problems() {
    let leaf1 = rep(
        "leaf1",
        LEAF,
        &[
            ("Ethernet49", "spine1", "Ethernet1"),
            ("Ethernet50", "spine1", "Ethernet4"),
        ],
    );
    let leaf2 = rep("leaf2", LEAF, &[("Ethernet49", "spine1", "Ethernet2")]);
    let leaf3 = rep("leaf3", LEAF, &[("Ethernet49", "spine1", "Ethernet3")]);
    assert_eq!(
        diff(&plan(), &[spine_ok(), leaf1, leaf2, leaf3]).unwrap(),
        []
    );
    assert_eq!(diff(&plan(), &[spine_ok()]).unwrap(), []);
}

#[test]
fn abbreviated_ports_are_the_same_port() {
    let leaf1 = rep(
        "leaf1",
        LEAF,
        &[("Et49", "spine1", "Et1"), ("eth50", "spine1", "Ethernet4")],
    );
    assert_eq!(diff(&plan(), &[leaf1]).unwrap(), []);
    let spine = rep(
        "spine1",
        SPINE,
        &[
            ("Et1", "leaf1", "Et49"),
            ("Et2", "leaf2", "Et49"),
            ("Et3", "leaf3", "Et49"),
            ("Et4", "leaf1", "Et50"),
        ],
    );
    assert_eq!(diff(&plan(), &[spine]).unwrap(), []);
}

#[test]
fn peers_are_recognised_by_hostname_serial_or_mac() {
    for peer in [
        "spine1",
        "SPINE1",
        "spine1.lab.example",
        "JPE1",
        "00:1c:73:aa:bb:01",
        "00-1C-73-AA-BB-01",
        "001c.73aa.bb01",
        "001c73aabb01",
    ] {
        // The reporter itself by serial, MAC or name.
        for me in ["leaf2", "JPE12", "00:1c:73:aa:bb:12"] {
            let r = rep(me, LEAF, &[("Ethernet49", peer, "Ethernet2")]);
            assert_eq!(diff(&plan(), &[r]).unwrap(), [], "{me} -> {peer}");
        }
    }
    // An unrelated MAC is not the spine: the cable goes to an unknown box.
    let r = rep(
        "leaf2",
        LEAF,
        &[("Ethernet49", "00:1c:73:aa:bb:99", "Ethernet2")],
    );
    assert_eq!(kinds(&diff(&plan(), &[r]).unwrap()), [Kind::WrongPeer]);
}

#[test]
fn wrong_model_replaces_the_box_and_skips_its_ports() {
    let r = rep(
        "leaf2",
        "DCS-7050TX-48",
        &[("Ethernet49", "spine1", "Ethernet9")],
    );
    let ps = diff(&plan(), &[r]).unwrap();
    assert_eq!(ps.len(), 1, "{ps:#?}");
    let p = &ps[0];
    assert_eq!(p.kind, Kind::WrongModel);
    assert_eq!(p.device, "leaf2");
    assert_eq!(p.local_port, None);
    assert_eq!(p.expected_model.as_deref(), Some(LEAF));
    assert_eq!(p.observed_model.as_deref(), Some("DCS-7050TX-48"));
    assert_fix_names(p, &["leaf2", "DCS-7050TX-48", LEAF, "replace"]);
    // Case and spaces do not make a model wrong.
    let r = rep(
        "leaf2",
        " dcs-7050sx-64 ",
        &[("Ethernet49", "spine1", "Ethernet2")],
    );
    assert_eq!(diff(&plan(), &[r]).unwrap(), []);
}

#[test]
fn wrong_port_on_the_right_peer() {
    let r = rep(
        "leaf1",
        LEAF,
        &[
            ("Ethernet49", "spine1", "Ethernet5"),
            ("Ethernet50", "spine1", "Ethernet4"),
        ],
    );
    let ps = diff(&plan(), &[r]).unwrap();
    assert_eq!(ps.len(), 1, "{ps:#?}");
    let p = &ps[0];
    assert_eq!(p.kind, Kind::WrongPort);
    assert_eq!(
        (p.device.as_str(), p.local_port.as_deref()),
        ("leaf1", Some("Ethernet49"))
    );
    assert_eq!(p.expected, Some(ep("spine1", "Ethernet1")));
    assert_eq!(p.observed, Some(ep("spine1", "Ethernet5")));
    assert_fix_names(
        p,
        &["leaf1:Ethernet49", "spine1:Ethernet5", "spine1:Ethernet1"],
    );
}

#[test]
fn wrong_peer_is_another_device_not_another_port() {
    // leaf3's uplink lands on leaf2 (a planned device, wrong one) ...
    let r = rep("leaf3", LEAF, &[("Ethernet49", "leaf2", "Ethernet52")]);
    let ps = diff(&plan(), &[r]).unwrap();
    assert_eq!(kinds(&ps), [Kind::WrongPeer], "{ps:#?}");
    assert_eq!(ps[0].expected, Some(ep("spine1", "Ethernet3")));
    assert_eq!(ps[0].observed, Some(ep("leaf2", "Ethernet52")));
    assert_fix_names(
        &ps[0],
        &["leaf3:Ethernet49", "leaf2:Ethernet52", "spine1:Ethernet3"],
    );
    // ... or on a box the plan does not know, named as LLDP gave it.
    let r = rep("leaf3", LEAF, &[("Ethernet49", "lab-oob-sw", "Gi0/7")]);
    let ps = diff(&plan(), &[r]).unwrap();
    assert_eq!(kinds(&ps), [Kind::WrongPeer]);
    assert_eq!(ps[0].observed, Some(ep("lab-oob-sw", "Gi0/7")));
    // The same cable on the right device but another port is wrong_port.
    let r = rep("leaf3", LEAF, &[("Ethernet49", "spine1", "Ethernet30")]);
    assert_eq!(kinds(&diff(&plan(), &[r]).unwrap()), [Kind::WrongPort]);
}

#[test]
fn swapped_cables_are_one_problem_naming_both() {
    let spine = rep(
        "spine1",
        SPINE,
        &[
            ("Et1", "leaf2", "Et49"),
            ("Et2", "leaf1", "Et49"),
            ("Et3", "leaf3", "Et49"),
            ("Et4", "leaf1", "Et50"),
        ],
    );
    let ps = diff(&plan(), std::slice::from_ref(&spine)).unwrap();
    assert_eq!(kinds(&ps), [Kind::Swapped], "{ps:#?}");
    let p = &ps[0];
    assert_eq!(
        (p.device.as_str(), p.local_port.as_deref()),
        ("spine1", Some("Ethernet1"))
    );
    assert_eq!(p.expected, Some(ep("leaf1", "Ethernet49")));
    assert_eq!(p.observed, Some(ep("leaf2", "Ethernet49")));
    let o = p.other.as_ref().unwrap();
    assert_eq!(
        (o.device.as_str(), o.local_port.as_str()),
        ("spine1", "Ethernet2")
    );
    assert_eq!(o.expected, ep("leaf2", "Ethernet49"));
    assert_eq!(o.observed, ep("leaf1", "Ethernet49"));
    assert_fix_names(p, &["spine1:Ethernet1", "spine1:Ethernet2", "swap"]);

    // Seen from both ends it is still one swap, and nothing else.
    let leaf1 = rep(
        "leaf1",
        LEAF,
        &[("Et49", "spine1", "Et2"), ("Et50", "spine1", "Et4")],
    );
    let leaf2 = rep("leaf2", LEAF, &[("Et49", "spine1", "Et1")]);
    let ps = diff(&plan(), &[leaf1, spine, leaf2]).unwrap();
    assert_eq!(kinds(&ps), [Kind::Swapped], "{ps:#?}");
}

#[test]
fn swapped_uplinks_on_one_leaf() {
    let r = rep(
        "leaf1",
        LEAF,
        &[("Et49", "spine1", "Et4"), ("Et50", "spine1", "Et1")],
    );
    let ps = diff(&plan(), &[r]).unwrap();
    assert_eq!(kinds(&ps), [Kind::Swapped], "{ps:#?}");
    let p = &ps[0];
    let o = p.other.as_ref().unwrap();
    assert_eq!(p.device, o.device, "the swap is named on one device");
    let mut ports = [p.local_port.clone().unwrap(), o.local_port.clone()];
    ports.sort();
    assert!(
        ports == ["Ethernet49", "Ethernet50"] || ports == ["Ethernet1", "Ethernet4"],
        "{ports:?}"
    );
}

#[test]
fn swap_plus_missing_link() {
    let spine = rep(
        "spine1",
        SPINE,
        &[
            ("Et1", "leaf2", "Et49"),
            ("Et2", "leaf1", "Et49"),
            ("Et4", "leaf1", "Et50"),
        ],
    );
    let ps = diff(&plan(), &[spine]).unwrap();
    let mut k = kinds(&ps);
    k.sort();
    assert_eq!(k, [Kind::Swapped, Kind::MissingLink], "{ps:#?}");
    let missing = ps.iter().find(|p| p.kind == Kind::MissingLink).unwrap();
    assert_eq!(missing.device, "spine1");
    assert_eq!(missing.local_port.as_deref(), Some("Ethernet3"));
    assert_eq!(missing.expected, Some(ep("leaf3", "Ethernet49")));
    assert_eq!(missing.observed, None);
    assert_fix_names(missing, &["spine1:Ethernet3", "leaf3:Ethernet49"]);
}

#[test]
fn missing_link_from_the_reporting_side() {
    let r = rep("leaf3", LEAF, &[]);
    let ps = diff(&plan(), &[r]).unwrap();
    assert_eq!(kinds(&ps), [Kind::MissingLink]);
    assert_eq!(ps[0].device, "leaf3");
    assert_eq!(ps[0].local_port.as_deref(), Some("Ethernet49"));
    assert_eq!(ps[0].expected, Some(ep("spine1", "Ethernet3")));
}

#[test]
fn unplanned_link_is_reported_with_both_ends() {
    let mut spine = spine_ok();
    spine.neighbors.push(Neighbor {
        local_port: "Et10".into(),
        remote_device: "leaf2".into(),
        remote_port: "Et51".into(),
    });
    let ps = diff(&plan(), &[spine]).unwrap();
    assert_eq!(kinds(&ps), [Kind::UnplannedLink], "{ps:#?}");
    let p = &ps[0];
    assert_eq!(
        (p.device.as_str(), p.local_port.as_deref()),
        ("spine1", Some("Ethernet10"))
    );
    assert_eq!(p.expected, None);
    assert_eq!(p.observed, Some(ep("leaf2", "Ethernet51")));
    assert_fix_names(p, &["spine1:Ethernet10", "leaf2:Ethernet51"]);
}

#[test]
fn bad_reports_are_errors_not_problems() {
    let r = rep("leaf9", LEAF, &[]);
    assert_eq!(
        diff(&plan(), &[r]),
        Err(TopologyError::UnknownDevice("leaf9".into()))
    );
    let r = rep("leaf1", LEAF, &[("", "spine1", "Et1")]);
    assert!(matches!(
        diff(&plan(), &[r]),
        Err(TopologyError::Empty {
            field: "local_port",
            ..
        })
    ));
}

#[test]
fn problems_serialise_as_spec_section_10() {
    let r = rep("leaf2", "X", &[]);
    let v = serde_json::to_value(&diff(&plan(), &[r]).unwrap()[0]).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "kind": "wrong_model", "device": "leaf2", "local_port": null,
            "expected_model": LEAF, "observed_model": "X", "fix": v["fix"].clone(),
        })
    );
    let spine = rep(
        "spine1",
        SPINE,
        &[("Et1", "leaf2", "Et49"), ("Et2", "leaf1", "Et49")],
    );
    let ps = diff(&plan(), &[spine]).unwrap();
    let swap = ps.iter().find(|p| p.kind == Kind::Swapped).unwrap();
    let v = serde_json::to_value(swap).unwrap();
    assert_eq!(v["kind"], "swapped");
    assert_eq!(
        v["expected"],
        serde_json::json!({"device": "leaf1", "port": "Ethernet49"})
    );
    assert_eq!(
        v["observed"],
        serde_json::json!({"device": "leaf2", "port": "Ethernet49"})
    );
    assert_eq!(
        v["other"],
        serde_json::json!({
            "device": "spine1", "local_port": "Ethernet2",
            "expected": {"device": "leaf2", "port": "Ethernet49"},
            "observed": {"device": "leaf1", "port": "Ethernet49"},
        })
    );
    let missing = ps.iter().find(|p| p.kind == Kind::MissingLink).unwrap();
    let v = serde_json::to_value(missing).unwrap();
    let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["device", "expected", "fix", "kind", "local_port"]);
}

/// A box without an LLDP agent of its own (ONIE's installer environment)
/// says hello with no neighbours: its cables are checked by what its planned
/// neighbours report.
#[test]
fn a_device_without_lldp_is_checked_by_its_neighbours_reports() {
    let silent = rep("leaf3", LEAF, &[]);
    assert_eq!(diff(&plan(), &[spine_ok(), silent.clone()]).unwrap(), []);
    let mut miscabled = spine_ok();
    miscabled.neighbors[2].remote_port = "Ethernet50".into();
    let ps = diff(&plan(), &[miscabled, silent]).unwrap();
    assert!(
        ps.iter().any(
            |p| p.device == "leaf3" || p.expected.as_ref().is_some_and(|e| e.device == "leaf3")
        ),
        "{ps:?}"
    );
}
