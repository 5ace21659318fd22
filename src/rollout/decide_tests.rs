//! One test per rule of the decision (issue 12), on a dual-homed fabric:
//! spine1, spine2 (roots) - leaf1..leaf4 (each linked to both spines) -
//! acc1 below leaf1.

use std::collections::HashMap;

use serde_json::json;

use super::*;
use crate::plan::model::{Endpoint, FailureLimit, Order};
use crate::rollout::batches::{self, Member};
use crate::rollout::model::{Rollout, Target};
use crate::rollout::policy::{default_policy, Policy};
use crate::topology::{PlannedDevice, PlannedTopology, Tiers};

const PLAN: [&str; 7] = [
    "spine1", "spine2", "leaf1", "leaf2", "leaf3", "leaf4", "acc1",
];

fn fabric() -> (PlannedTopology, Tiers) {
    let devices = PLAN
        .iter()
        .map(|n| PlannedDevice {
            name: n.to_string(),
            serial: format!("SN-{n}"),
            mac: None,
            vendor: crate::vendor::Vendor::Arista,
            model_match: "M".into(),
        })
        .collect();
    let e = |d: &str, p: &str| Endpoint {
        device: d.into(),
        port: p.into(),
    };
    let mut links = Vec::new();
    for (i, leaf) in ["leaf1", "leaf2", "leaf3", "leaf4"].iter().enumerate() {
        links.push((
            e("spine1", &format!("Ethernet{}", i + 1)),
            e(leaf, "Ethernet49"),
        ));
        links.push((
            e("spine2", &format!("Ethernet{}", i + 1)),
            e(leaf, "Ethernet50"),
        ));
    }
    links.push((e("leaf1", "Ethernet1"), e("acc1", "Ethernet49")));
    let topo = PlannedTopology::new(devices, links);
    let tiers = Tiers::new(&topo, &["spine1", "spine2"]);
    (topo, tiers)
}

fn rollout(group: &[&str], policy: Policy) -> Rollout {
    let (topo, tiers) = fabric();
    let members: Vec<Member> = group
        .iter()
        .map(|n| Member {
            name: n.to_string(),
            serial: format!("SN-{n}"),
        })
        .collect();
    let (batches, devices) = batches::plan(&policy, &members, &topo, &tiers, 0);
    Rollout {
        id: "r1".into(),
        group: "g".into(),
        kind: Kind::Software,
        target: Target {
            version: Some("4.31".into()),
            image: Some("images/new.swi".into()),
        },
        state: State::Running,
        reason: None,
        policy,
        created_at: 0,
        updated_at: 0,
        batches,
        devices,
        accepted_failures: 0,
        method: None,
    }
}

fn policy(batch_size: u32, canary: u32, max_failures: FailureLimit) -> Policy {
    Policy {
        batch_size,
        canary,
        max_failures,
        order: Order::Plan,
        ..default_policy()
    }
}

/// 2026-12-01 is a Tuesday.
fn at(ms: u64, local: &str) -> Now {
    Now {
        ms,
        local: NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap(),
    }
}

fn now(ms: u64) -> Now {
    at(ms, "2026-12-01 12:00")
}

/// Decide and apply, as the runner does; notified devices get action `a-<name>`.
fn step(r: &mut Rollout, obs: &HashMap<String, Observed>, n: &Now) -> Vec<Decision> {
    let out = decide(r, obs, n);
    for d in &out.decisions {
        apply(r, d, n.ms);
        if let Decision::Notify(name) = d {
            r.device_mut(name).unwrap().action = Some(format!("a-{name}"));
        }
    }
    out.decisions
}

fn notified(ds: &[Decision]) -> Vec<&str> {
    ds.iter()
        .filter_map(|d| match d {
            Decision::Notify(n) => Some(n.as_str()),
            _ => None,
        })
        .collect()
}

fn report(name: &str, stage: Stage, version: &str, at: u64) -> (String, Observed) {
    (
        name.to_string(),
        Observed {
            stage,
            version: Some(version.into()),
            action: Some(format!("a-{name}")),
            at,
            message: format!("{name} {stage}"),
            problems: Vec::new(),
        },
    )
}

fn deployed(name: &str) -> (String, Observed) {
    report(name, Stage::Deployed, "4.31", 10)
}

fn failed(name: &str) -> (String, Observed) {
    report(name, Stage::Failed, "4.30", 10)
}

fn states(r: &Rollout) -> Vec<(String, DeviceState)> {
    r.devices
        .iter()
        .map(|d| (d.name.clone(), d.state))
        .collect()
}

fn batch_names(r: &Rollout) -> Vec<Vec<&str>> {
    r.batches
        .iter()
        .map(|b| b.devices.iter().map(String::as_str).collect())
        .collect()
}

#[test]
fn canary_success_lets_the_next_batch_start() {
    let mut r = rollout(
        &["leaf1", "leaf2", "leaf3"],
        policy(2, 1, FailureLimit::Count(0)),
    );
    assert_eq!(batch_names(&r), [vec!["leaf1"], vec!["leaf2", "leaf3"]]);
    assert!(r.batches[0].canary && !r.batches[1].canary);
    let mut obs = HashMap::new();
    assert_eq!(notified(&step(&mut r, &obs, &now(0))), ["leaf1"]);
    // Nothing reported: the canary batch holds the rest.
    assert!(notified(&step(&mut r, &obs, &now(5))).is_empty());
    obs.extend([deployed("leaf1")]);
    let ds = step(&mut r, &obs, &now(10));
    assert!(ds.contains(&Decision::FinishBatch(0)), "{ds:?}");
    assert_eq!(notified(&ds), ["leaf2", "leaf3"]);
    assert_eq!(r.device("leaf1").unwrap().state, DeviceState::Succeeded);
    obs.extend([deployed("leaf2"), deployed("leaf3")]);
    step(&mut r, &obs, &now(20));
    assert_eq!(r.state, State::Done);
}

#[test]
fn a_canary_failure_pauses_even_when_failures_are_tolerated() {
    let mut r = rollout(
        &["leaf1", "leaf2", "leaf3"],
        policy(2, 1, FailureLimit::Count(5)),
    );
    let mut obs = HashMap::new();
    step(&mut r, &obs, &now(0));
    obs.extend([failed("leaf1")]);
    let ds = step(&mut r, &obs, &now(10));
    assert!(notified(&ds).is_empty(), "{ds:?}");
    assert_eq!(r.state, State::Paused);
    assert!(
        r.reason
            .as_deref()
            .unwrap()
            .contains("canary device leaf1 failed"),
        "{:?}",
        r.reason
    );
    assert_eq!(r.device("leaf2").unwrap().state, DeviceState::Pending);
}

#[test]
fn batches_follow_batch_size_and_start_one_after_another() {
    let mut p = policy(2, 0, FailureLimit::Count(0));
    p.pause_between = Duration::from_secs(60);
    let mut r = rollout(&["leaf1", "leaf2", "leaf3", "leaf4"], p);
    assert_eq!(
        batch_names(&r),
        [vec!["leaf1", "leaf2"], vec!["leaf3", "leaf4"]]
    );
    let mut obs = HashMap::new();
    assert_eq!(notified(&step(&mut r, &obs, &now(0))), ["leaf1", "leaf2"]);
    obs.extend([deployed("leaf1")]);
    assert!(
        notified(&step(&mut r, &obs, &now(10))).is_empty(),
        "leaf2 still in flight"
    );
    obs.extend([deployed("leaf2")]);
    let out = decide(&r, &obs, &now(20));
    step(&mut r, &obs, &now(20));
    assert_eq!(r.batches[0].state, BatchState::Done);
    // pause_between: the next batch waits a minute after the first finished.
    let out2 = decide(&r, &obs, &now(30));
    assert!(notified(&out2.decisions).is_empty());
    assert_eq!(out2.wake_at, Some(20 + 60_000));
    assert!(out.wake_at.is_some());
    assert_eq!(
        notified(&step(&mut r, &obs, &now(60_020))),
        ["leaf3", "leaf4"]
    );
}

#[test]
fn max_failures_as_a_count_is_exceeded_not_reached() {
    let mut r = rollout(
        &["leaf1", "leaf2", "leaf3", "leaf4"],
        policy(1, 0, FailureLimit::Count(1)),
    );
    let mut obs = HashMap::new();
    step(&mut r, &obs, &now(0));
    obs.extend([failed("leaf1")]);
    assert_eq!(
        notified(&step(&mut r, &obs, &now(10))),
        ["leaf2"],
        "1 failure is tolerated"
    );
    assert_eq!(r.state, State::Running);
    obs.extend([failed("leaf2")]);
    assert!(notified(&step(&mut r, &obs, &now(20))).is_empty());
    assert_eq!(r.state, State::Paused);
    assert!(r
        .reason
        .as_deref()
        .unwrap()
        .contains("exceed max_failures (tolerated: 1)"));
    assert_eq!(
        states(&r)[2..],
        [
            ("leaf3".to_string(), DeviceState::Pending),
            ("leaf4".to_string(), DeviceState::Pending)
        ]
    );
    // Resuming accepts the failures so far and goes on.
    operate(&mut r, Operator::Resume, 30).unwrap();
    assert_eq!(notified(&step(&mut r, &obs, &now(30))), ["leaf3"]);
}

#[test]
fn max_failures_as_a_percentage_rounds_down() {
    // 50% of 3 devices is 1.5: one failure tolerated, the second pauses.
    let mut r = rollout(
        &["leaf1", "leaf2", "leaf3"],
        policy(1, 0, FailureLimit::Percent(50.0)),
    );
    let mut obs = HashMap::new();
    step(&mut r, &obs, &now(0));
    obs.extend([failed("leaf1")]);
    assert_eq!(notified(&step(&mut r, &obs, &now(10))), ["leaf2"]);
    obs.extend([failed("leaf2")]);
    step(&mut r, &obs, &now(20));
    assert_eq!(r.state, State::Paused);
    // 10% of 4 devices is 0.4: none tolerated.
    let mut r = rollout(
        &["leaf1", "leaf2", "leaf3", "leaf4"],
        policy(1, 0, FailureLimit::Percent(10.0)),
    );
    let mut obs = HashMap::new();
    step(&mut r, &obs, &now(0));
    obs.extend([failed("leaf1")]);
    assert!(notified(&step(&mut r, &obs, &now(10))).is_empty());
    assert_eq!(r.state, State::Paused);
}

#[test]
fn windows_inside_outside_and_wrapping_midnight_with_days() {
    let windowed = |w: &str| {
        let mut p = policy(1, 0, FailureLimit::Count(0));
        p.window = Some(w.into());
        rollout(&["leaf1", "leaf2"], p)
    };
    // Inside (Tuesday 12:00 in Mon-Fri 09:00-17:00).
    let mut r = windowed("Mon-Fri 09:00-17:00");
    assert_eq!(
        notified(&step(&mut r, &HashMap::new(), &at(0, "2026-12-01 12:00"))),
        ["leaf1"]
    );
    // Outside: waits, then starts when the window opens.
    let mut r = windowed("Mon-Fri 09:00-17:00");
    let out = decide(&r, &HashMap::new(), &at(0, "2026-12-01 18:00"));
    assert!(notified(&out.decisions).is_empty());
    assert_eq!(out.wake_at, Some(60_000));
    step(&mut r, &HashMap::new(), &at(0, "2026-12-01 18:00"));
    assert_eq!(r.state, State::WaitingWindow);
    assert!(r.reason.as_deref().unwrap().contains("outside window"));
    assert_eq!(
        notified(&step(&mut r, &HashMap::new(), &at(1, "2026-12-02 09:00"))),
        ["leaf1"]
    );
    assert_eq!(r.state, State::Running);
    // Wrapping midnight: Saturday's night holds Sunday 01:00 (2026-12-06),
    // not Saturday 01:00 (2026-12-05, Friday's night).
    let mut r = windowed("Sat 22:00-02:00");
    assert!(notified(&step(&mut r, &HashMap::new(), &at(0, "2026-12-05 01:00"))).is_empty());
    assert_eq!(r.state, State::WaitingWindow);
    assert_eq!(
        notified(&step(&mut r, &HashMap::new(), &at(1, "2026-12-06 01:00"))),
        ["leaf1"]
    );
}

#[test]
fn a_device_that_never_reports_times_out_and_counts_as_a_failure() {
    let mut p = policy(1, 0, FailureLimit::Count(0));
    p.device_timeout = Duration::from_secs(600);
    let mut r = rollout(&["leaf1", "leaf2"], p);
    let mut obs = HashMap::new();
    step(&mut r, &obs, &now(0));
    obs.extend([report("leaf1", Stage::Rebooting, "4.30", 5)]);
    step(&mut r, &obs, &now(5));
    assert_eq!(r.device("leaf1").unwrap().state, DeviceState::InProgress);
    assert_eq!(decide(&r, &obs, &now(6)).wake_at, Some(600_000));
    assert!(step(&mut r, &obs, &now(599_999)).is_empty());
    step(&mut r, &obs, &now(600_000));
    let d = r.device("leaf1").unwrap();
    assert_eq!(d.state, DeviceState::TimedOut);
    assert!(d.message.as_deref().unwrap().contains("device_timeout 10m"));
    assert_eq!(r.state, State::Paused);
    assert_eq!(r.device("leaf2").unwrap().state, DeviceState::Pending);
}

#[test]
fn a_topology_mismatch_after_the_action_fails_the_device() {
    let mut r = rollout(&["leaf1", "leaf2"], policy(1, 0, FailureLimit::Count(0)));
    let mut obs = HashMap::new();
    // A mismatch from before the rollout does not count.
    let (_, mut old) = report("leaf1", Stage::TopologyMismatch, "4.30", 0);
    old.action = None;
    step(&mut r, &obs, &now(100));
    obs.insert("leaf1".into(), old.clone());
    step(&mut r, &obs, &now(101));
    assert_eq!(r.device("leaf1").unwrap().state, DeviceState::Notified);
    old.at = 150;
    old.problems = vec![
        json!({"kind": "wrong_port", "fix": "move the cable from leaf1:Ethernet51 to leaf1:Ethernet49"}),
    ];
    obs.insert("leaf1".into(), old);
    step(&mut r, &obs, &now(200));
    let d = r.device("leaf1").unwrap();
    assert_eq!(d.state, DeviceState::Failed);
    assert!(
        d.message.as_deref().unwrap().contains("leaf1:Ethernet49"),
        "{:?}",
        d.message
    );
}

#[test]
fn a_mismatching_hello_after_success_fails_the_device_while_its_batch_runs() {
    let mut r = rollout(
        &["leaf1", "leaf2", "leaf3"],
        policy(2, 0, FailureLimit::Count(0)),
    );
    let mut obs = HashMap::new();
    step(&mut r, &obs, &now(0));
    let first = r.batches[0].devices.clone();
    assert_eq!(first.len(), 2);
    // One of the batch has succeeded, the other is still upgrading.
    obs.extend([report(&first[0], Stage::Deployed, "4.31", 10)]);
    step(&mut r, &obs, &now(20));
    assert_eq!(r.device(&first[0]).unwrap().state, DeviceState::Succeeded);
    // Its next hello says a cable moved: it fails after all, and the
    // rollout pauses at the threshold.
    let (_, mut hello) = report(&first[0], Stage::TopologyMismatch, "4.31", 30);
    hello.problems = vec![json!({"kind": "wrong_port", "fix": "move the cable to Ethernet49"})];
    obs.insert(first[0].clone(), hello);
    step(&mut r, &obs, &now(40));
    let d = r.device(&first[0]).unwrap();
    assert_eq!(d.state, DeviceState::Failed, "{d:?}");
    assert!(d.message.as_deref().unwrap().contains("Ethernet49"));
    assert_eq!(r.state, State::Paused);
    // A mismatch from before the success would not have counted.
    let mut r2 = rollout(
        &["leaf1", "leaf2", "leaf3"],
        policy(2, 0, FailureLimit::Count(0)),
    );
    let mut obs2 = HashMap::new();
    step(&mut r2, &obs2, &now(0));
    obs2.extend([report(&first[0], Stage::Deployed, "4.31", 10)]);
    step(&mut r2, &obs2, &now(50));
    let (_, mut stale) = report(&first[0], Stage::TopologyMismatch, "4.31", 30);
    stale.action = None;
    obs2.insert(first[0].clone(), stale);
    step(&mut r2, &obs2, &now(60));
    assert_eq!(r2.device(&first[0]).unwrap().state, DeviceState::Succeeded);
}

#[test]
fn a_wrong_version_is_a_failure() {
    let mut r = rollout(&["leaf1"], policy(1, 0, FailureLimit::Count(0)));
    let mut obs = HashMap::new();
    step(&mut r, &obs, &now(0));
    obs.extend([report("leaf1", Stage::Deployed, "4.29", 5)]);
    step(&mut r, &obs, &now(5));
    let d = r.device("leaf1").unwrap();
    assert_eq!(d.state, DeviceState::Failed);
    assert!(d.message.as_deref().unwrap().contains("expected 4.31"));
}

#[test]
fn two_spines_of_a_dual_homed_fabric_never_share_a_batch() {
    let r = rollout(&["spine1", "spine2"], policy(2, 0, FailureLimit::Count(0)));
    assert_eq!(batch_names(&r), [vec!["spine1"], vec!["spine2"]]);
}

#[test]
fn a_device_never_shares_a_batch_with_its_uplink() {
    let mut p = policy(3, 0, FailureLimit::Count(0));
    p.order = Order::Topology;
    let r = rollout(&["leaf1", "acc1", "leaf2"], p.clone());
    // acc1 (2 hops) first; leaf1 is its uplink, so the batch closes early.
    assert_eq!(batch_names(&r), [vec!["acc1"], vec!["leaf1", "leaf2"]]);
    // Plan order (leaf1, leaf2, acc1): the batch of 3 closes before acc1.
    p.order = Order::Plan;
    let r = rollout(&["leaf1", "acc1", "leaf2"], p);
    assert_eq!(batch_names(&r), [vec!["leaf1", "leaf2"], vec!["acc1"]]);
}

#[test]
fn topology_order_goes_farthest_first_with_ties_in_plan_order() {
    let mut p = policy(1, 0, FailureLimit::Count(0));
    p.order = Order::Topology;
    // Listed in an order that is neither plan nor tier order.
    let r = rollout(&["leaf3", "spine2", "acc1", "leaf1", "spine1"], p);
    assert_eq!(
        batch_names(&r),
        [
            vec!["acc1"],
            vec!["leaf1"],
            vec!["leaf3"],
            vec!["spine1"],
            vec!["spine2"]
        ]
    );
}

#[test]
fn a_stored_rollout_resumes_where_it_was() {
    let mut r = rollout(
        &["leaf1", "leaf2", "leaf3"],
        policy(1, 0, FailureLimit::Count(0)),
    );
    let mut obs = HashMap::new();
    step(&mut r, &obs, &now(0));
    obs.extend([deployed("leaf1")]);
    step(&mut r, &obs, &now(10));
    assert_eq!(r.device("leaf2").unwrap().state, DeviceState::Notified);
    // Stored and read back (a restart of ztpd).
    let text = serde_json::to_string(&r).unwrap();
    let mut back: Rollout = serde_json::from_str(&text).unwrap();
    assert_eq!(back, r);
    // leaf2 was notified before the restart: it is not notified again.
    assert!(notified(&step(&mut back, &obs, &now(20))).is_empty());
    obs.extend([deployed("leaf2")]);
    assert_eq!(notified(&step(&mut back, &obs, &now(30))), ["leaf3"]);
    obs.extend([deployed("leaf3")]);
    step(&mut back, &obs, &now(40));
    assert_eq!(back.state, State::Done);
    assert_eq!(
        back.counts(),
        json!({"pending": 0, "in_progress": 0, "succeeded": 3, "failed": 0})
    );
}

#[test]
fn pause_abort_and_finished_rollouts() {
    let mut r = rollout(&["leaf1", "leaf2"], policy(1, 0, FailureLimit::Count(0)));
    let mut obs = HashMap::new();
    step(&mut r, &obs, &now(0));
    operate(&mut r, Operator::Pause, 1).unwrap();
    obs.extend([deployed("leaf1")]);
    // In flight still finishes; nothing new starts.
    assert!(notified(&step(&mut r, &obs, &now(2))).is_empty());
    assert_eq!(r.device("leaf1").unwrap().state, DeviceState::Succeeded);
    operate(&mut r, Operator::Resume, 3).unwrap();
    assert_eq!(notified(&step(&mut r, &obs, &now(3))), ["leaf2"]);
    operate(&mut r, Operator::Abort, 4).unwrap();
    assert_eq!(r.state, State::Aborted);
    assert!(decide(&r, &obs, &now(5)).decisions.is_empty());
    assert!(operate(&mut r, Operator::Resume, 6)
        .unwrap_err()
        .contains("aborted"));
}

/// A method rollout of leaf1, leaf2 (one per batch, no failure tolerated):
/// its devices are judged by their calls' ends, fed back as events.
#[test]
fn a_method_rollout_is_judged_by_the_answers_fed_back() {
    use crate::broker::handlers::methods::Called;
    use crate::rollout::method::{answered, calls_lost};
    let mut r = rollout(&["leaf1", "leaf2"], policy(1, 0, FailureLimit::Count(0)));
    r.kind = Kind::Method;
    let none = HashMap::new();
    assert_eq!(notified(&step(&mut r, &none, &now(0))), ["leaf1"]);
    // No ZTP report ever comes: only the call's end, or the safety net
    // past the call's own timeout, moves the device.
    let call_end = crate::rollout::method::answer_deadline(&r.policy).as_millis() as u64;
    assert!(step(&mut r, &none, &now(call_end - 1)).is_empty());
    let ok = Called::Answered {
        status: 200,
        payload: json!({"done": true}),
    };
    let d = answered(&r, "leaf1", &ok).unwrap();
    apply(&mut r, &d, 10);
    assert_eq!(r.device("leaf1").unwrap().state, DeviceState::Succeeded);
    assert_eq!(
        r.device("leaf1")
            .unwrap()
            .response
            .as_ref()
            .unwrap()
            .payload,
        Some(json!({"done": true}))
    );
    assert_eq!(answered(&r, "leaf1", &ok), None, "answered once");
    assert_eq!(notified(&step(&mut r, &none, &now(20))), ["leaf2"]);
    let bad = Called::Answered {
        status: 500,
        payload: json!("boom"),
    };
    let d = answered(&r, "leaf2", &bad).unwrap();
    apply(&mut r, &d, 30);
    let leaf2 = r.device("leaf2").unwrap();
    assert_eq!(leaf2.state, DeviceState::Failed);
    assert_eq!(leaf2.response.as_ref().map(|x| x.status), Some(500));
    step(&mut r, &none, &now(40));
    assert_eq!(r.state, State::Paused, "max_failures 0: {:?}", r.reason);

    // 404 fails, 504 times out; a call in flight at a restart is failed.
    let mut r = rollout(&["leaf1", "leaf2"], policy(2, 0, FailureLimit::Count(5)));
    r.kind = Kind::Method;
    step(&mut r, &none, &now(0));
    let lost = calls_lost(&r);
    assert_eq!(lost.len(), 2);
    assert!(
        matches!(&lost[0], Decision::Device { state: DeviceState::Failed, message: Some(m), .. } if m.contains("lost")),
        "{lost:?}"
    );
    for (name, end) in [("leaf1", Called::NotConnected), ("leaf2", Called::TimedOut)] {
        let d = answered(&r, name, &end).unwrap();
        apply(&mut r, &d, 5);
    }
    assert_eq!(
        states(&r),
        [
            ("leaf1".to_string(), DeviceState::Failed),
            ("leaf2".to_string(), DeviceState::TimedOut)
        ]
    );
    let statuses: Vec<u16> = r
        .devices
        .iter()
        .map(|d| d.response.as_ref().unwrap().status)
        .collect();
    assert_eq!(statuses, [404, 504]);
    step(&mut r, &none, &now(10));
    assert_eq!(r.state, State::Done);
    assert!(calls_lost(&r).is_empty(), "nothing in flight");
}
