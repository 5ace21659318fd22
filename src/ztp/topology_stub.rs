//! TEMPORARY stand-in for the topology engine (`ztp::topology`, creds
//! branch), with the same names and signature so the daemon code compiles
//! before that branch is merged. It only knows exact matches, `wrong_model`
//! and `missing_link`; delete this file and point `ztp::engine` at
//! `ztp::topology` when merging.

use serde::{Deserialize, Serialize};

use crate::plan::model::{Endpoint, Model};
use crate::plan::ports::canonical;
use crate::vendor::Vendor;

#[derive(Debug, Clone)]
pub struct PlannedDevice {
    pub name: String,
    pub serial: String,
    pub vendor: Vendor,
    pub model_match: String,
}

#[derive(Debug, Clone, Default)]
pub struct PlannedTopology {
    devices: Vec<PlannedDevice>,
    links: Vec<(Endpoint, Endpoint)>,
}

impl PlannedTopology {
    pub fn from_model(model: &Model) -> Self {
        let mut t = PlannedTopology::default();
        for site in &model.sites {
            for d in &site.devices {
                let m = site.model_of(d);
                t.devices.push(PlannedDevice {
                    name: d.name.clone(),
                    serial: d.serial.clone(),
                    vendor: m.vendor,
                    model_match: m.match_model.clone(),
                });
            }
            t.links
                .extend(site.links.iter().map(|l| (l.a.clone(), l.b.clone())));
        }
        t
    }

    pub fn resolve(&self, given: &str) -> Option<&PlannedDevice> {
        let g = given.trim();
        self.devices.iter().find(|d| {
            d.name.eq_ignore_ascii_case(g)
                || d.serial.eq_ignore_ascii_case(g)
                || g.split('.').next().is_some_and(|h| d.name.eq_ignore_ascii_case(h))
        })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reported {
    pub device: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub neighbors: Vec<Neighbor>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Neighbor {
    pub local_port: String,
    pub remote_device: String,
    pub remote_port: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: &'static str,
    pub device: String,
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
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("reported device `{0}` is not in the plan")]
    UnknownDevice(String),
}

pub fn diff(plan: &PlannedTopology, reports: &[Reported]) -> Result<Vec<Problem>, TopologyError> {
    let mut problems = Vec::new();
    let mut seen: Vec<(Endpoint, Endpoint)> = Vec::new();
    let mut reporters = Vec::new();
    for r in reports {
        let me = plan
            .resolve(&r.device)
            .ok_or_else(|| TopologyError::UnknownDevice(r.device.clone()))?;
        if let Some(m) = r.model.as_deref().filter(|m| !m.trim().is_empty()) {
            if !m.trim().eq_ignore_ascii_case(&me.model_match) {
                problems.push(Problem {
                    kind: "wrong_model",
                    device: me.name.clone(),
                    local_port: None,
                    expected: None,
                    observed: None,
                    fix: format!("replace {} with a {}", me.name, me.model_match),
                    expected_model: Some(me.model_match.clone()),
                    observed_model: Some(m.trim().to_string()),
                });
                continue;
            }
        }
        reporters.push(me.name.clone());
        for n in &r.neighbors {
            let local = Endpoint {
                device: me.name.clone(),
                port: canonical(me.vendor, &n.local_port),
            };
            let remote = match plan.resolve(&n.remote_device) {
                Some(p) => Endpoint {
                    device: p.name.clone(),
                    port: canonical(p.vendor, &n.remote_port),
                },
                None => Endpoint {
                    device: n.remote_device.clone(),
                    port: n.remote_port.clone(),
                },
            };
            seen.push((local, remote));
        }
    }
    let cabled = |a: &Endpoint, b: &Endpoint| {
        seen.iter()
            .any(|(x, y)| (x == a && y == b) || (x == b && y == a))
    };
    for (a, b) in &plan.links {
        let (a, b) = if reporters.contains(&a.device) {
            (a, b)
        } else if reporters.contains(&b.device) {
            (b, a)
        } else {
            continue;
        };
        if !cabled(a, b) {
            problems.push(Problem {
                kind: "missing_link",
                device: a.device.clone(),
                local_port: Some(a.port.clone()),
                expected: Some(b.clone()),
                observed: None,
                fix: format!("connect {a} to {b}"),
                expected_model: None,
                observed_model: None,
            });
        }
    }
    Ok(problems)
}
