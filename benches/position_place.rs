//! Identification by position (issue 22 target: hello p99 <= 2 ms on a
//! 10,000-device position plan). Times what a hello with an unknown serial
//! costs ztpd to find its place: `ztp::position::place` over the planned
//! topology, which is built once per snapshot (timed too), never per hello.
//!
//!   cargo bench --bench position_place            # 10,000 serial-less leaves
//!   cargo bench --bench position_place -- 50000
//!
//! Under `cargo test` (no `--bench` argument) it runs once on a small plan,
//! so the suite checks that it still works without timing anything.

use std::time::{Duration, Instant};

use ztpd::plan::model::Endpoint;
use ztpd::topology::{Neighbor, PlannedDevice, PlannedTopology};
use ztpd::ztp::position::{place, Placed};

/// N serial-less leaves, each cabled by swp49/swp50 to a pair of spines
/// (48 leaves per pair), the spines with serials: every place is unique.
fn fabric(n: usize) -> PlannedTopology {
    let pairs = n.div_ceil(48);
    let dev = |name: String, serial: String| PlannedDevice {
        serial,
        name,
        mac: None,
        vendor: ztpd::vendor::Vendor::Generic,
        model_match: "leaf-model".into(),
    };
    let mut devices = Vec::new();
    for s in 0..pairs * 2 {
        devices.push(dev(format!("spine{s}"), format!("SN-spine{s}")));
    }
    let mut links = Vec::new();
    let e = |d: String, p: String| Endpoint { device: d, port: p };
    for i in 0..n {
        devices.push(dev(format!("leaf{i}"), String::new()));
        let (pair, port) = (i / 48, i % 48 + 1);
        links.push((
            e(format!("spine{}", pair * 2), format!("swp{port}")),
            e(format!("leaf{i}"), "swp49".into()),
        ));
        links.push((
            e(format!("spine{}", pair * 2 + 1), format!("swp{port}")),
            e(format!("leaf{i}"), "swp50".into()),
        ));
    }
    PlannedTopology::new(devices, links)
}

/// What leaf `i` reports over LLDP: both uplinks and a management port.
fn report(i: usize) -> Vec<Neighbor> {
    let (pair, port) = (i / 48, i % 48 + 1);
    let n = |l: &str, d: String, p: String| Neighbor {
        local_port: l.into(),
        remote_device: d,
        remote_port: p,
    };
    vec![
        n("swp49", format!("spine{}", pair * 2), format!("swp{port}")),
        n(
            "swp50",
            format!("spine{}", pair * 2 + 1),
            format!("swp{port}"),
        ),
        n("eth0", "oob-switch".into(), "ge-0/0/1".into()),
    ]
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    let n: usize = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benching { 10_000 } else { 200 });
    let t0 = Instant::now();
    let topo = fabric(n);
    let build = t0.elapsed();
    let eligible =
        |d: &PlannedDevice| d.serial.is_empty() && d.mac.is_none() && d.model_match == "leaf-model";
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let r = report(i);
        let t = Instant::now();
        let found = place(&topo, &r, eligible);
        times.push(t.elapsed());
        assert_eq!(found, Placed::One(format!("leaf{i}")));
    }
    times.sort();
    println!(
        "position index (planned topology) for {n} serial-less devices: built once in {build:?}; \
         place per hello: p50 {:?}, p99 {:?}, max {:?} ({n} hellos)",
        pct(&times, 0.50),
        pct(&times, 0.99),
        times[n - 1]
    );
}
