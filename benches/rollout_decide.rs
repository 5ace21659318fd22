//! The rollout decision over a large group (issue 12 target: a decision over
//! a 10,000-device group in <= 5 ms). Planning every batch (tiers, uplink
//! safety) is timed too, since it runs once per rollout.
//!
//!   cargo bench --bench rollout_decide            # 10,000 devices
//!   cargo bench --bench rollout_decide -- 50000
//!
//! Under `cargo test` (no `--bench` argument) it runs once on a small group,
//! so the suite checks that it still works without timing anything.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ztpd::plan::model::{Endpoint, FailureLimit};
use ztpd::rollout::batches::{self, Member};
use ztpd::rollout::decide::{self, Now, Observed};
use ztpd::rollout::model::{Kind, Rollout, State, Target};
use ztpd::rollout::policy::{default_policy, Policy};
use ztpd::topology::{PlannedDevice, PlannedTopology, Tiers};
use ztpd::ztp::state::Stage;

fn fabric(n: usize) -> (PlannedTopology, Vec<Member>) {
    let spines = n.div_ceil(48);
    let mut devices = Vec::new();
    let dev = |name: String| PlannedDevice {
        serial: format!("SN-{name}"),
        name,
        mac: None,
        vendor: ztpd::vendor::Vendor::Generic,
        model_match: "M".into(),
    };
    for s in 0..spines {
        devices.push(dev(format!("spine{s}")));
    }
    let mut links = Vec::new();
    let mut members = Vec::new();
    for i in 0..n {
        devices.push(dev(format!("leaf{i}")));
        let e = |d: String, p: String| Endpoint { device: d, port: p };
        links.push((
            e(format!("spine{}", i / 48), format!("swp{}", i % 48 + 1)),
            e(format!("leaf{i}"), "swp1".into()),
        ));
        members.push(Member {
            name: format!("leaf{i}"),
            serial: format!("SN-leaf{i}"),
        });
    }
    (PlannedTopology::new(devices, links), members)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    let n: usize = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(if benching { 10_000 } else { 200 });
    let (topo, members) = fabric(n);
    let roots: Vec<String> = (0..n.div_ceil(48)).map(|s| format!("spine{s}")).collect();
    let roots: Vec<&str> = roots.iter().map(String::as_str).collect();
    let policy = Policy {
        batch_size: 50,
        max_failures: FailureLimit::Percent(10.0),
        ..default_policy()
    };
    let t = Instant::now();
    let tiers = Tiers::new(&topo, &roots);
    let (b, devices) = batches::plan(&policy, &members, &topo, &tiers, 0);
    let plan_time = t.elapsed();
    let mut r = Rollout {
        id: "bench".into(),
        group: "leaves".into(),
        kind: Kind::Software,
        target: Target {
            version: Some("2.0".into()),
            image: Some("images/x.bin".into()),
        },
        state: State::Running,
        reason: None,
        policy,
        created_at: 0,
        updated_at: 0,
        batches: b,
        devices,
        accepted_failures: 0,
        method: None,
    };
    let now = |ms| Now {
        ms,
        local: chrono::NaiveDate::from_ymd_opt(2026, 12, 1)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap(),
    };
    // Half the rollout done, one batch in flight: what a mid-rollout tick sees.
    let mut observed = HashMap::new();
    let half = r.batches.len() / 2;
    let mut at = 0u64;
    for i in 0..=half {
        at += 1;
        for d in decide::decide(&r, &observed, &now(at)).decisions {
            decide::apply(&mut r, &d, at);
            if let decide::Decision::Notify(name) = &d {
                r.device_mut(name).unwrap().action = Some(format!("a-{name}"));
                if i < half {
                    observed.insert(
                        name.clone(),
                        Observed {
                            stage: Stage::Deployed,
                            version: Some("2.0".into()),
                            action: Some(format!("a-{name}")),
                            at,
                            message: String::new(),
                            problems: Vec::new(),
                        },
                    );
                }
            }
        }
    }
    let runs = if benching { 200 } else { 3 };
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let out = decide::decide(&r, &observed, &now(at + 1));
            std::hint::black_box(out);
            t.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "{n} devices, {} batches: planning {:.2} ms; decision median {:.3} ms, max {:.3} ms ({runs} runs)",
        r.batches.len(),
        plan_time.as_secs_f64() * 1e3,
        times[runs / 2].as_secs_f64() * 1e3,
        times[runs - 1].as_secs_f64() * 1e3,
    );
}
