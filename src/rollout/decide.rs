//! The rollout decision (SPEC §8), a pure function like the DHCP handler:
//! `(policy, rollout state, device records, now) -> decisions`. The planned
//! topology enters when the batches are planned ([`super::batches`]); the
//! policy travels inside the rollout. The runner applies the decisions,
//! queues the actions they ask for and persists the result; tests drive
//! time by passing `now`.
//!
//! A device **succeeds** when, after its action was queued, it reports
//! `deployed` naming that action (with the target version for software);
//! it **fails** when it reports `failed`, when a hello after the action is a
//! topology mismatch, or when `device_timeout` passes first (`timed_out`).
//! Failures beyond `max_failures` (plus those an operator accepted by
//! resuming), or one canary failure, pause the rollout; devices in flight
//! still finish.

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDateTime;

use super::model::{BatchState, DeviceState, Kind, Response, Rollout, State};
use super::policy::tolerated;
use super::window::Window;
use crate::ztp::state::Stage;

/// What the decision reads of a device's ZTP record.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub stage: Stage,
    /// The software version it last said it runs.
    pub version: Option<String>,
    /// The action its last progress report named.
    pub action: Option<String>,
    /// When the record last changed (Unix ms).
    pub at: u64,
    pub message: String,
    /// Topology problems of its last hello (SPEC §10 objects).
    pub problems: Vec<serde_json::Value>,
}

/// The time, as the runner's clock gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Now {
    pub ms: u64,
    /// Local time, for windows.
    pub local: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Device {
        name: String,
        state: DeviceState,
        stage: Option<String>,
        version: Option<String>,
        message: Option<String>,
    },
    FinishBatch(usize),
    StartBatch(usize),
    /// Queue this device's action (a method rollout: call its method).
    Notify(String),
    /// How a method rollout's call to a device ended.
    Answered {
        name: String,
        state: DeviceState,
        response: Response,
        message: String,
    },
    State {
        state: State,
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub decisions: Vec<Decision>,
    /// When to decide again if nothing happens first (Unix ms).
    pub wake_at: Option<u64>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn earliest(a: Option<u64>, b: u64) -> Option<u64> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// A device whose hello after its action did not match the topology.
fn mismatch(name: &str, o: &Observed) -> Decision {
    let fixes: Vec<String> = o
        .problems
        .iter()
        .map(|p| {
            p.get("fix")
                .or_else(|| p.get("kind"))
                .and_then(|f| f.as_str())
                .unwrap_or("topology problem")
                .to_string()
        })
        .collect();
    Decision::Device {
        name: name.to_string(),
        state: DeviceState::Failed,
        stage: Some("topology_mismatch".into()),
        version: o.version.clone(),
        message: Some(format!(
            "topology mismatch after the action: {}",
            fixes.join("; ")
        )),
    }
}

/// How long after being notified a device in flight times out (ms).
fn deadline(r: &Rollout) -> u64 {
    match r.kind {
        Kind::Method => ms(super::method::answer_deadline(&r.policy)),
        Kind::Software | Kind::Config => ms(r.policy.device_timeout),
    }
}

/// What became of one device in flight, if anything.
fn judge(r: &Rollout, name: &str, o: Option<&Observed>, now: &Now) -> Option<Decision> {
    let d = r.device(name)?;
    let notified = d.notified_at?;
    let verdict = |state, stage: Option<&str>, version: Option<String>, message: String| {
        Some(Decision::Device {
            name: name.to_string(),
            state,
            stage: stage.map(str::to_string),
            version,
            message: Some(message),
        })
    };
    if let Some(o) = o {
        let mine = d.action.is_some() && o.action == d.action;
        if mine && o.stage == Stage::Deployed {
            let want = r.target.version.as_ref();
            return match r.kind {
                Kind::Software if o.version.as_ref() != want => verdict(
                    DeviceState::Failed,
                    Some("deployed"),
                    o.version.clone(),
                    format!(
                        "deployed version {}, expected {}",
                        o.version.as_deref().unwrap_or("(none reported)"),
                        want.map_or("(none)", String::as_str)
                    ),
                ),
                _ => verdict(
                    DeviceState::Succeeded,
                    Some("deployed"),
                    o.version.clone(),
                    "deployed".into(),
                ),
            };
        }
        if mine && o.stage == Stage::Failed {
            return verdict(
                DeviceState::Failed,
                Some("failed"),
                o.version.clone(),
                o.message.clone(),
            );
        }
        if o.stage == Stage::TopologyMismatch && o.at >= notified {
            return Some(mismatch(name, o));
        }
        let working = matches!(
            o.stage,
            Stage::Downloading | Stage::Installing | Stage::Rebooting
        );
        if mine && working && d.stage.as_deref() != Some(o.stage.as_str()) {
            return verdict(
                DeviceState::InProgress,
                Some(o.stage.as_str()),
                o.version.clone(),
                o.message.clone(),
            );
        }
    }
    if now.ms >= notified.saturating_add(deadline(r)) {
        return verdict(
            DeviceState::TimedOut,
            d.stage.as_deref(),
            None,
            format!(
                "no success within device_timeout {}",
                crate::duration::format(r.policy.device_timeout)
            ),
        );
    }
    None
}

/// Why the rollout must pause, if it must.
fn pause_reason(r: &Rollout) -> Option<String> {
    let failed: Vec<_> = r.devices.iter().filter(|d| d.state.failed()).collect();
    if failed.len() <= r.accepted_failures {
        return None;
    }
    if let Some(c) = failed
        .iter()
        .find(|d| r.batches.get(d.batch).is_some_and(|b| b.canary))
    {
        return Some(format!(
            "canary device {} failed: {}",
            c.name,
            c.message.as_deref().unwrap_or("")
        ));
    }
    let allowed = tolerated(r.policy.max_failures, r.devices.len());
    let beyond = failed.len() - r.accepted_failures;
    (beyond > allowed).then(|| {
        let last = failed.last().map(|d| d.name.as_str()).unwrap_or("");
        format!("{beyond} failure(s) exceed max_failures (tolerated: {allowed}); last: {last}")
    })
}

/// Decide what happens next to rollout `r`.
pub fn decide(r: &Rollout, observed: &HashMap<String, Observed>, now: &Now) -> Outcome {
    let mut out = Outcome::default();
    if !r.state.active() {
        return out;
    }
    let mut sim = r.clone();
    let push = |sim: &mut Rollout, d: Decision, out: &mut Outcome| {
        apply(sim, &d, now.ms);
        out.decisions.push(d);
    };
    for name in r
        .devices
        .iter()
        .filter(|d| d.state.in_flight())
        .map(|d| &d.name)
    {
        if let Some(d) = judge(&sim, name, observed.get(name), now) {
            push(&mut sim, d, &mut out);
        }
        if let Some(d) = sim.device(name).filter(|d| d.state.in_flight()) {
            let at = d.notified_at.unwrap_or(now.ms) + deadline(r);
            out.wake_at = earliest(out.wake_at, at);
        }
    }
    // Success holds while the device's next hello matches (SPEC §8): a
    // device that succeeded in a batch still running, and then says hello
    // with a topology mismatch, fails after all.
    let running: std::collections::HashSet<&String> = r
        .batches
        .iter()
        .filter(|b| b.state == BatchState::Running)
        .flat_map(|b| b.devices.iter())
        .collect();
    for d in r
        .devices
        .iter()
        .filter(|d| d.state == DeviceState::Succeeded && running.contains(&d.name))
    {
        if let Some(o) = observed.get(&d.name) {
            if o.stage == Stage::TopologyMismatch && o.at > d.at {
                push(&mut sim, mismatch(&d.name, o), &mut out);
            }
        }
    }
    let moving = matches!(sim.state, State::Running | State::WaitingWindow);
    // A device of a running batch still pending (its action could not be
    // queued) is notified again.
    if sim.state == State::Running {
        let again: Vec<String> = sim
            .batches
            .iter()
            .filter(|b| b.state == BatchState::Running)
            .flat_map(|b| b.devices.iter())
            .filter(|n| {
                sim.device(n)
                    .is_some_and(|d| d.state == DeviceState::Pending)
            })
            .cloned()
            .collect();
        for n in again {
            push(&mut sim, Decision::Notify(n), &mut out);
        }
    }
    if moving {
        if let Some(reason) = pause_reason(&sim) {
            push(
                &mut sim,
                Decision::State {
                    state: State::Paused,
                    reason: Some(reason),
                },
                &mut out,
            );
        }
    }
    let finished: Vec<usize> = sim
        .batches
        .iter()
        .filter(|b| b.state == BatchState::Running)
        .filter(|b| {
            b.devices
                .iter()
                .all(|n| sim.device(n).is_some_and(|d| d.state.finished()))
        })
        .map(|b| b.index)
        .collect();
    for i in finished {
        push(&mut sim, Decision::FinishBatch(i), &mut out);
    }
    if !matches!(sim.state, State::Running | State::WaitingWindow) {
        return out;
    }
    if sim.batches.iter().any(|b| b.state == BatchState::Running) {
        return out;
    }
    let Some(next) = sim.batches.iter().find(|b| b.state == BatchState::Pending) else {
        push(
            &mut sim,
            Decision::State {
                state: State::Done,
                reason: None,
            },
            &mut out,
        );
        return out;
    };
    let next = next.index;
    let last_end = sim.batches.iter().filter_map(|b| b.finished_at).max();
    if let Some(end) = last_end {
        let start = end.saturating_add(ms(sim.policy.pause_between));
        if now.ms < start {
            out.wake_at = earliest(out.wake_at, start);
            return out;
        }
    }
    let open = sim
        .policy
        .window
        .as_deref()
        .and_then(|w| Window::parse(w).ok())
        .is_none_or(|w| w.contains(now.local));
    if !open {
        if sim.state != State::WaitingWindow {
            let reason = sim
                .policy
                .window
                .clone()
                .map(|w| format!("outside window {w}"));
            push(
                &mut sim,
                Decision::State {
                    state: State::WaitingWindow,
                    reason,
                },
                &mut out,
            );
        }
        // Windows are whole minutes: look again at the next one.
        out.wake_at = earliest(out.wake_at, (now.ms / 60_000 + 1) * 60_000);
        return out;
    }
    if sim.state == State::WaitingWindow {
        push(
            &mut sim,
            Decision::State {
                state: State::Running,
                reason: None,
            },
            &mut out,
        );
    }
    push(&mut sim, Decision::StartBatch(next), &mut out);
    for n in sim.batches[next].devices.clone() {
        push(&mut sim, Decision::Notify(n.clone()), &mut out);
    }
    out.wake_at = earliest(out.wake_at, now.ms + ms(sim.policy.device_timeout));
    out
}

/// Apply one decision to the rollout.
pub fn apply(r: &mut Rollout, d: &Decision, now: u64) {
    r.updated_at = now;
    match d {
        Decision::Device {
            name,
            state,
            stage,
            version,
            message,
        } => {
            if let Some(dev) = r.device_mut(name) {
                dev.state = *state;
                dev.at = now;
                if stage.is_some() {
                    dev.stage = stage.clone();
                }
                if version.is_some() {
                    dev.version = version.clone();
                }
                if message.as_deref().is_some_and(|m| !m.is_empty()) {
                    dev.message = message.clone();
                }
            }
        }
        Decision::FinishBatch(i) => {
            if let Some(b) = r.batches.get_mut(*i) {
                b.state = BatchState::Done;
                b.finished_at = Some(now);
            }
        }
        Decision::StartBatch(i) => {
            if let Some(b) = r.batches.get_mut(*i) {
                b.state = BatchState::Running;
                b.started_at = Some(now);
            }
        }
        Decision::Answered {
            name,
            state,
            response,
            message,
        } => {
            if let Some(dev) = r.device_mut(name) {
                dev.state = *state;
                dev.at = now;
                dev.response = Some(response.clone());
                dev.message = Some(message.clone());
            }
        }
        Decision::Notify(name) => {
            if let Some(dev) = r.device_mut(name) {
                dev.state = DeviceState::Notified;
                dev.notified_at = Some(now);
                dev.at = now;
            }
        }
        Decision::State { state, reason } => {
            r.state = *state;
            r.reason = reason.clone();
        }
    }
}

/// An operator's pause, resume or abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Pause,
    Resume,
    Abort,
}

/// Apply an operator action; a finished rollout refuses with why.
pub fn operate(r: &mut Rollout, op: Operator, now: u64) -> Result<(), String> {
    if !r.state.active() {
        return Err(format!(
            "rollout {} is {}; only a running, paused or waiting rollout can be changed",
            r.id,
            serde_json::to_value(r.state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ));
    }
    r.updated_at = now;
    match op {
        Operator::Pause => {
            r.state = State::Paused;
            r.reason = Some("paused by an operator".into());
        }
        Operator::Resume => {
            r.state = State::Running;
            r.reason = None;
            // Resuming accepts the failures so far.
            r.accepted_failures = r.devices.iter().filter(|d| d.state.failed()).count();
        }
        Operator::Abort => {
            r.state = State::Aborted;
            r.reason = Some("aborted by an operator".into());
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
