//! Compare what devices report with the planned links (see the module
//! documentation of [`crate::topology`]).

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::{PlannedDevice, PlannedTopology, Reported};
use crate::plan::model::Endpoint;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    WrongModel,
    WrongPort,
    WrongPeer,
    Swapped,
    MissingLink,
    UnplannedLink,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::WrongModel => "wrong_model",
            Kind::WrongPort => "wrong_port",
            Kind::WrongPeer => "wrong_peer",
            Kind::Swapped => "swapped",
            Kind::MissingLink => "missing_link",
            Kind::UnplannedLink => "unplanned_link",
        }
    }
}

/// One topology problem, serialised as SPEC §10 says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: Kind,
    pub device: String,
    /// `null` for `wrong_model`.
    pub local_port: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Endpoint>,
    pub fix: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_model: Option<String>,
    /// For `swapped`: the second cable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other: Option<Cable>,
}

/// One port's side of a swap: where its cable should go and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cable {
    pub device: String,
    pub local_port: String,
    pub expected: Endpoint,
    pub observed: Endpoint,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.local_port {
            Some(p) => write!(
                f,
                "{} {}:{}: {}",
                self.kind.as_str(),
                self.device,
                p,
                self.fix
            ),
            None => write!(f, "{} {}: {}", self.kind.as_str(), self.device, self.fix),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error(
        "reported device `{0}` is not in the plan; expected a planned device name, serial or MAC"
    )]
    UnknownDevice(String),
    #[error("reported device {device}: {field} is empty")]
    Empty { device: String, field: &'static str },
}

/// Compare reports with the plan. Links are checked when at least one end is
/// on a reporting device; a device reporting the wrong model gets only its
/// `wrong_model` problem (its ports mean nothing until the box is replaced).
pub fn diff(plan: &PlannedTopology, reports: &[Reported]) -> Result<Vec<Problem>, TopologyError> {
    let mut problems = Vec::new();
    let mut reporters: HashSet<String> = HashSet::new();
    let mut wrong_box: HashSet<String> = HashSet::new();
    let mut cables = Cables::default();
    for r in reports {
        let me = plan
            .resolve(&r.device)
            .ok_or_else(|| TopologyError::UnknownDevice(r.device.clone()))?;
        reporters.insert(me.name.clone());
        if let Some(observed) = r.model.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            if !observed.eq_ignore_ascii_case(me.model_match.trim()) {
                if wrong_box.insert(me.name.clone()) {
                    problems.push(wrong_model(me, observed));
                }
                continue;
            }
        }
        for n in &r.neighbors {
            for (field, v) in [
                ("local_port", &n.local_port),
                ("remote_device", &n.remote_device),
                ("remote_port", &n.remote_port),
            ] {
                if v.trim().is_empty() {
                    return Err(TopologyError::Empty {
                        device: me.name.clone(),
                        field,
                    });
                }
            }
            let (local, remote) = plan.cable(me, n);
            cables.add(local, remote);
        }
    }
    // Cables at a wrong box are not judged: drop those seen by its peers too.
    cables.drop_device(&wrong_box);

    let in_scope = |e: &Endpoint| reporters.contains(&e.device) && !wrong_box.contains(&e.device);
    // The links at a reporting device, in plan order: found through each
    // reporter's own links, never a scan of the whole plan (a hello is
    // judged against its few cables, not the fabric's thousands).
    let mut ids: Vec<usize> = reporters
        .iter()
        .filter(|d| !wrong_box.contains(*d))
        .flat_map(|d| plan.link_ids(d).iter().copied())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let links: Vec<&(Endpoint, Endpoint)> = ids
        .into_iter()
        .map(|i| &plan.links[i])
        .filter(|(a, b)| !wrong_box.contains(&a.device) && !wrong_box.contains(&b.device))
        .collect();
    let mut open: Vec<usize> = Vec::new();
    for (i, (a, b)) in links.iter().enumerate() {
        if cables.peer(a) == Some(b) {
            cables.consume(a);
        } else {
            open.push(i);
        }
    }

    let mut done: HashSet<usize> = HashSet::new();
    for (oi, &i) in open.iter().enumerate() {
        if done.contains(&i) {
            continue;
        }
        for &j in &open[oi + 1..] {
            if done.contains(&j) {
                continue;
            }
            if let Some(p) = swap(&cables, links[i], links[j]) {
                for e in [&links[i].0, &links[i].1, &links[j].0, &links[j].1] {
                    cables.consume(e);
                }
                problems.push(p);
                done.extend([i, j]);
                break;
            }
        }
    }

    for &i in &open {
        if done.contains(&i) {
            continue;
        }
        let (a, b) = links[i];
        // Describe from a reporting side when there is one.
        let (a, b) = if in_scope(a) { (a, b) } else { (b, a) };
        problems.extend(single_link(&mut cables, &in_scope, a, b));
    }

    for (local, remote) in cables.unconsumed() {
        let (local, remote) = if in_scope(&local) {
            (local, remote)
        } else {
            (remote, local)
        };
        problems.push(Problem {
            kind: Kind::UnplannedLink,
            fix: format!(
                "{local} is cabled to {remote}, which the plan does not have: remove the cable \
                 between {local} and {remote}, or add this link to the plan"
            ),
            device: local.device.clone(),
            local_port: Some(local.port.clone()),
            expected: None,
            observed: Some(remote),
            expected_model: None,
            observed_model: None,
            other: None,
        });
    }
    problems.sort_by(|x, y| {
        (&x.device, &x.local_port, x.kind).cmp(&(&y.device, &y.local_port, y.kind))
    });
    Ok(problems)
}

fn wrong_model(me: &PlannedDevice, observed: &str) -> Problem {
    Problem {
        kind: Kind::WrongModel,
        device: me.name.clone(),
        local_port: None,
        expected: None,
        observed: None,
        fix: format!(
            "{} (serial {}) reports model {observed}, but the plan expects {}: replace the \
             device with a {}, or change its model in the plan",
            me.name, me.serial, me.model_match, me.model_match
        ),
        expected_model: Some(me.model_match.clone()),
        observed_model: Some(observed.to_string()),
        other: None,
    }
}

/// Two planned links whose cables are exchanged: the cable at one end of
/// each goes where the other's should. Returns one problem naming both.
fn swap(cables: &Cables, l1: &(Endpoint, Endpoint), l2: &(Endpoint, Endpoint)) -> Option<Problem> {
    // Try every orientation: (p1, q1) and (p2, q2) are the planned pairs; the
    // cables observed are p1 - q2 and p2 - q1.
    for (p1, q1) in [(&l1.0, &l1.1), (&l1.1, &l1.0)] {
        for (p2, q2) in [(&l2.0, &l2.1), (&l2.1, &l2.0)] {
            if cables.peer(p1) == Some(q2) && cables.peer(p2) == Some(q1) {
                // Swapping the ends at p1 and p2 fixes it, and so does
                // swapping at q1 and q2; name the pair on one device.
                let (e1, exp1, obs1, e2, exp2, obs2) =
                    if p1.device == p2.device || q1.device != q2.device {
                        (p1, q1, q2, p2, q2, q1)
                    } else {
                        (q1, p1, p2, q2, p2, p1)
                    };
                return Some(Problem {
                    kind: Kind::Swapped,
                    device: e1.device.clone(),
                    local_port: Some(e1.port.clone()),
                    expected: Some(exp1.clone()),
                    observed: Some(obs1.clone()),
                    fix: format!(
                        "the cables at {e1} and {e2} are swapped: {e1} goes to {obs1} but should \
                         go to {exp1}, and {e2} goes to {obs2} but should go to {exp2}; swap the \
                         cables at {e1} and {e2}"
                    ),
                    expected_model: None,
                    observed_model: None,
                    other: Some(Cable {
                        device: e2.device.clone(),
                        local_port: e2.port.clone(),
                        expected: exp2.clone(),
                        observed: obs2.clone(),
                    }),
                });
            }
        }
    }
    None
}

/// A planned link a - b that is not there: say what is at its ends.
fn single_link(
    cables: &mut Cables,
    in_scope: &dyn Fn(&Endpoint) -> bool,
    a: &Endpoint,
    b: &Endpoint,
) -> Vec<Problem> {
    let at_a = cables.peer(a).cloned();
    let at_b = cables.peer(b).cloned();
    let problem = |kind, local: &Endpoint, expected: &Endpoint, observed: &Endpoint, fix| Problem {
        kind,
        device: local.device.clone(),
        local_port: Some(local.port.clone()),
        expected: Some(expected.clone()),
        observed: Some(observed.clone()),
        fix,
        expected_model: None,
        observed_model: None,
        other: None,
    };
    let mut out = Vec::new();
    match (&at_a, &at_b) {
        // Right device, wrong port at its end.
        (Some(o), _) if o.device == b.device => {
            cables.consume(a);
            out.push(problem(
                Kind::WrongPort,
                a,
                b,
                o,
                format!(
                    "the cable from {a} is plugged into {o} instead of {b}: move that end from \
                     {o} to {b}, or change the plan's link {a} - {b} to {a} - {o}"
                ),
            ));
        }
        (_, Some(o)) if o.device == a.device => {
            cables.consume(b);
            out.push(problem(
                Kind::WrongPort,
                b,
                a,
                o,
                format!(
                    "the cable from {b} is plugged into {o} instead of {a}: move that end from \
                     {o} to {a}, or change the plan's link {a} - {b} to {o} - {b}"
                ),
            ));
        }
        _ => {
            for (local, expected, observed) in [(a, b, &at_a), (b, a, &at_b)] {
                if let Some(o) = observed {
                    cables.consume(local);
                    out.push(problem(
                        Kind::WrongPeer,
                        local,
                        expected,
                        o,
                        format!(
                            "{local} is cabled to {o}, but the plan says {expected}: unplug the \
                             cable at {o} and connect {local} to {expected}"
                        ),
                    ));
                }
            }
            if out.is_empty() {
                let local = if in_scope(a) { a } else { b };
                let peer = if local == a { b } else { a };
                out.push(Problem {
                    kind: Kind::MissingLink,
                    device: local.device.clone(),
                    local_port: Some(local.port.clone()),
                    expected: Some(peer.clone()),
                    observed: None,
                    fix: format!(
                        "no neighbour seen on {local}: connect {local} to {peer} (check that \
                         the cable is plugged in at both ends and both ports are up)"
                    ),
                    expected_model: None,
                    observed_model: None,
                    other: None,
                });
            }
        }
    }
    out
}

/// Observed cables, each once however many ends reported it.
#[derive(Default)]
struct Cables {
    /// Endpoint -> the other end, both directions; the first report of a
    /// port wins (LLDP with several neighbours on one port is a hub).
    peer: BTreeMap<Endpoint, Endpoint>,
    /// Every cable as seen, in report order, normalised (lower end first).
    all: Vec<(Endpoint, Endpoint)>,
    /// The cables of `all`, to drop one seen from both ends in O(1): with a
    /// scan of `all` a hello cost O(cables²) and a 4,000-switch fleet spent
    /// ~40 % of its CPU comparing port names.
    seen: HashSet<(Endpoint, Endpoint)>,
    consumed: HashSet<Endpoint>,
}

impl Cables {
    fn add(&mut self, local: Endpoint, remote: Endpoint) {
        let key = if local <= remote {
            (local.clone(), remote.clone())
        } else {
            (remote.clone(), local.clone())
        };
        if !self.seen.insert(key.clone()) {
            return;
        }
        self.all.push(key);
        self.peer
            .entry(local.clone())
            .or_insert_with(|| remote.clone());
        self.peer.entry(remote).or_insert(local);
    }

    fn peer(&self, e: &Endpoint) -> Option<&Endpoint> {
        self.peer.get(e)
    }

    /// Mark the cable at `e` (both its ends) as explained.
    fn consume(&mut self, e: &Endpoint) {
        if let Some(p) = self.peer.get(e).cloned() {
            self.consumed.insert(p);
            self.consumed.insert(e.clone());
        }
    }

    fn drop_device(&mut self, devices: &HashSet<String>) {
        if devices.is_empty() {
            return;
        }
        self.all
            .retain(|(x, y)| !devices.contains(&x.device) && !devices.contains(&y.device));
        self.seen
            .retain(|(x, y)| !devices.contains(&x.device) && !devices.contains(&y.device));
        self.peer
            .retain(|x, y| !devices.contains(&x.device) && !devices.contains(&y.device));
    }

    /// Cables neither of whose ends was explained by a planned link.
    fn unconsumed(&self) -> Vec<(Endpoint, Endpoint)> {
        self.all
            .iter()
            .filter(|(x, y)| {
                let explained = |e: &Endpoint, other: &Endpoint| {
                    self.consumed.contains(e) && self.peer.get(e) == Some(other)
                };
                !explained(x, y) && !explained(y, x)
            })
            .cloned()
            .collect()
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
