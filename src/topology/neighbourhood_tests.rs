//! The local check must say exactly what the whole-fleet check says about
//! the device saying hello: compared on random plans and random cablings
//! (swaps, wrong ports and peers, missing, unplanned and one-sided cables,
//! hubs, unknown neighbours, wrong and unreported models).

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::*;
use crate::topology::{self, Neighbor, PlannedDevice};
use crate::vendor::Vendor;
use crate::ztp::hello::touches;

const MODEL: &str = "M-1";

fn ep(d: usize, p: usize) -> Endpoint {
    Endpoint {
        device: format!("d{d}"),
        port: format!("Ethernet{p}"),
    }
}

/// d0..d<n-1>, serials SN0.., one model.
fn devices(n: usize) -> Vec<PlannedDevice> {
    (0..n)
        .map(|i| PlannedDevice {
            name: format!("d{i}"),
            serial: format!("SN{i}"),
            mac: None,
            vendor: Vendor::Arista,
            model_match: MODEL.into(),
        })
        .collect()
}

struct World {
    topo: PlannedTopology,
    reports: Vec<Reported>,
}

fn world(rng: &mut StdRng) -> World {
    let n = rng.gen_range(2..9);
    let ports = 5;
    let devices = devices(n);
    let mut free: Vec<(usize, usize)> = (0..n)
        .flat_map(|d| (1..=ports).map(move |p| (d, p)))
        .collect();
    free.shuffle(rng);
    // Planned links between distinct devices, each port in one link.
    let mut links = Vec::new();
    while free.len() >= 2 && links.len() < n * 2 {
        let a = free.pop().unwrap();
        let Some(i) = free.iter().position(|b| b.0 != a.0) else {
            break;
        };
        let b = free.remove(i);
        links.push((a, b));
    }
    // The cabling: the plan, then mistakes.
    let mut cables: Vec<((usize, usize), (String, usize))> = links
        .iter()
        .map(|(a, b)| (*a, (format!("d{}", b.0), b.1)))
        .collect();
    let mistakes = rng.gen_range(0..4);
    for _ in 0..mistakes {
        if cables.is_empty() {
            break;
        }
        let i = rng.gen_range(0..cables.len());
        match rng.gen_range(0..7) {
            0 if cables.len() >= 2 => {
                let j = rng.gen_range(0..cables.len());
                let (bi, bj) = (cables[i].1.clone(), cables[j].1.clone());
                cables[i].1 = bj;
                cables[j].1 = bi;
            }
            1 => cables[i].1 .1 = rng.gen_range(1..=ports + 1),
            2 => cables[i].1 .0 = format!("d{}", rng.gen_range(0..n)),
            3 => {
                cables.remove(i);
            }
            4 => {
                let d = rng.gen_range(0..n);
                cables.push(((d, rng.gen_range(1..=ports)), ("stranger".into(), 1)));
            }
            5 => {
                // a hub: a second cable at a used port
                let at = cables[i].0;
                let d = rng.gen_range(0..n);
                cables.push((at, (format!("d{d}"), rng.gen_range(1..=ports))));
            }
            _ => {
                let (a, b) = (rng.gen_range(0..n), rng.gen_range(0..n));
                cables.push((
                    (a, rng.gen_range(1..=ports)),
                    (format!("d{b}"), rng.gen_range(1..=ports)),
                ));
            }
        }
    }
    // What each device's LLDP sees (both ends of a cable, now and then one).
    let mut seen: Vec<Vec<Neighbor>> = vec![Vec::new(); n];
    let name = |rng: &mut StdRng, d: &str| {
        if rng.gen_bool(0.2) && d != "stranger" {
            format!("SN{}", &d[1..])
        } else {
            d.to_string()
        }
    };
    for ((a, ap), (b, bp)) in &cables {
        if rng.gen_bool(0.9) {
            let remote_device = name(rng, b);
            seen[*a].push(Neighbor {
                local_port: format!("Ethernet{ap}"),
                remote_device,
                remote_port: format!("Ethernet{bp}"),
            });
        }
        if let Some(bi) = b.strip_prefix('d').and_then(|x| x.parse::<usize>().ok()) {
            if rng.gen_bool(0.9) {
                let remote_device = name(rng, &format!("d{a}"));
                seen[bi].push(Neighbor {
                    local_port: format!("Ethernet{bp}"),
                    remote_device,
                    remote_port: format!("Ethernet{ap}"),
                });
            }
        }
    }
    let reports = seen
        .into_iter()
        .enumerate()
        .map(|(i, neighbors)| Reported {
            device: format!("d{i}"),
            model: match rng.gen_range(0..10) {
                0 => Some("WRONG".into()),
                1 => None,
                _ => Some(MODEL.into()),
            },
            neighbors,
        })
        .collect();
    let links = links
        .into_iter()
        .map(|(a, b)| (ep(a.0, a.1), ep(b.0, b.1)))
        .collect();
    World {
        topo: PlannedTopology::new(devices, links),
        reports,
    }
}

fn touching(topo: &PlannedTopology, reports: &[Reported], me: &str) -> Vec<serde_json::Value> {
    topology::diff(topo, reports)
        .expect("valid reports")
        .iter()
        .map(|p| serde_json::to_value(p).unwrap())
        .filter(|p| touches(p, me))
        .collect()
}

#[test]
fn the_local_check_says_what_the_whole_fleet_check_says() {
    let mut compared = 0;
    let mut with_problems = 0;
    let mut hubs = 0;
    for seed in 0..3000u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let w = world(&mut rng);
        // Stored: a random subset of the devices has reported.
        let stored: Vec<Reported> = w
            .reports
            .iter()
            .filter(|_| rng.gen_bool(0.7))
            .cloned()
            .collect();
        let mut index = ReportIndex::default();
        index.rebuild(&w.topo, 1, stored.clone());
        for mine in &w.reports {
            let me = &mine.device;
            let mut full = vec![mine.clone()];
            full.extend(stored.iter().filter(|r| &r.device != me).cloned());
            let mut local = vec![mine.clone()];
            match index.near(&w.topo, mine) {
                Some(near) => local.extend(near),
                None => {
                    hubs += 1;
                    local.extend(index.all_but(&w.topo, me));
                }
            }
            let want = touching(&w.topo, &full, me);
            let got = touching(&w.topo, &local, me);
            assert_eq!(
                got, want,
                "seed {seed}, hello of {me}\nplan: {:?}\nreports: {:?}",
                w.topo, full
            );
            compared += 1;
            with_problems += usize::from(!want.is_empty());
        }
    }
    // The random worlds must exercise both outcomes.
    assert!(compared > 10_000, "{compared}");
    assert!(
        with_problems > compared / 5,
        "{with_problems} of {compared}"
    );
    assert!(with_problems < compared, "{with_problems} of {compared}");
    // Most checks stay local; the hubs fall back to the whole fleet.
    assert!(
        hubs > 0 && hubs < compared / 3,
        "{hubs} of {compared} fell back"
    );
}

#[test]
fn a_changed_report_replaces_the_old_one_in_the_index() {
    let topo = PlannedTopology::new(devices(3), vec![(ep(0, 1), ep(1, 1))]);
    let report = |d: &str, remote: &str| Reported {
        device: d.into(),
        model: None,
        neighbors: vec![Neighbor {
            local_port: "Ethernet1".into(),
            remote_device: remote.into(),
            remote_port: "Ethernet1".into(),
        }],
    };
    let mut index = ReportIndex::default();
    index.rebuild(&topo, 7, vec![report("d2", "d0")]);
    assert!(index.is_for(7) && !index.is_for(8));
    let mine = report("d0", "d1");
    let names = |v: Vec<Reported>| v.into_iter().map(|r| r.device).collect::<Vec<_>>();
    // d2 says it is cabled to d0:Ethernet1 as well: two neighbours on one
    // port, a hub, so d0 is checked against the whole fleet.
    assert!(index.near(&topo, &mine).is_none());
    index.set(&topo, report("d2", "d1"));
    // Now d2 says it is cabled to d1:Ethernet1, the far end of d0's planned
    // link (a hub there too).
    assert!(index.near(&topo, &mine).is_none());
    // d2 on an unplanned port of d0: it matters to d0, and no hub.
    let mut on_e2 = report("d2", "d0");
    on_e2.neighbors[0].remote_port = "Ethernet2".into();
    index.set(&topo, on_e2);
    assert_eq!(names(index.near(&topo, &mine).unwrap()), ["d2"]);
    assert!(index.near(&topo, &report("d1", "d0")).unwrap().is_empty());
    index.set(
        &topo,
        Reported {
            device: "d2".into(),
            model: None,
            neighbors: vec![],
        },
    );
    assert!(index.near(&topo, &mine).unwrap().is_empty());
    index.remove("d2");
    assert!(index.at.is_empty() && index.on.is_empty() && index.reports.is_empty());
}

#[test]
fn a_binding_rereads_the_reports_that_name_a_neighbour_by_identity() {
    let topo = PlannedTopology::new(devices(3), vec![(ep(0, 1), ep(1, 1))]);
    let report = |d: &str, remote: &str| Reported {
        device: d.into(),
        model: None,
        neighbors: vec![Neighbor {
            local_port: "Ethernet1".into(),
            remote_device: remote.into(),
            remote_port: "Ethernet1".into(),
        }],
    };
    let mut index = ReportIndex::default();
    index.rebuild(&topo, 7, vec![report("d2", "NEW-SN"), report("d0", "d1")]);
    assert_eq!(index.cables["d2"][0].1.device, "NEW-SN");
    // A binding gives d1 the serial d2 saw: the same cables, so the index
    // follows the new snapshot, reading d2's report again.
    let bound = topo.rebind(1, "NEW-SN", None).unwrap();
    assert!(index.follow(&bound, 8) && index.is_for(8));
    assert_eq!(index.cables["d2"][0].1.device, "d1");
    assert_eq!(index.cables["d0"][0].1.device, "d1");
    // Other cables: not followed; the caller rebuilds.
    let other = PlannedTopology::new(devices(3), vec![(ep(0, 1), ep(2, 1))]);
    assert!(!index.follow(&other, 9) && index.is_for(8));
}
