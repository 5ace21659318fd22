//! Rollout policies (SPEC §8): the keys a plan's `policy = {...}`, the API's
//! `policy` and the CLI flags share, parsed one way. Every refusal says
//! what was expected.
//!
//! `max_failures` is the number of failures *tolerated*: the rollout pauses
//! when the failures exceed it. A percentage is of the group, rounded down
//! to whole devices: `"10%"` of 25 devices tolerates 2 failures (pauses at
//! the 3rd), `"10%"` of 9 devices tolerates none (pauses at the 1st), `0`
//! pauses at the first failure.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::plan::model::{FailureLimit, Order};

pub use crate::plan::model::Policy;

/// The defaults of SPEC §8.
pub fn default_policy() -> Policy {
    Policy {
        batch_size: 1,
        canary: 0,
        max_failures: FailureLimit::Count(0),
        pause_between: Duration::ZERO,
        window: None,
        device_timeout: DEFAULT_DEVICE_TIMEOUT,
        order: Order::Topology,
    }
}

/// How long a notified device has to succeed unless the policy says.
pub const DEFAULT_DEVICE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The failures tolerated in a group of `size` devices.
pub fn tolerated(limit: FailureLimit, size: usize) -> usize {
    match limit {
        FailureLimit::Count(n) => n as usize,
        FailureLimit::Percent(p) => ((p / 100.0) * size as f64 + 1e-9).floor() as usize,
    }
}

/// `2` or `"10%"` (0-100).
pub fn parse_failure_limit(v: &Value) -> Result<FailureLimit, String> {
    const EXPECTED: &str = "expected a count of devices (e.g. 2) or a percentage of the group \
                            from \"0%\" to \"100%\" (e.g. \"10%\")";
    match v {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(FailureLimit::Count)
            .ok_or_else(|| format!("max_failures {n}: {EXPECTED}")),
        Value::String(s) => parse_failure_text(s).map_err(|e| format!("max_failures {s:?}: {e}")),
        other => Err(format!("max_failures {other}: {EXPECTED}")),
    }
}

/// `2`, `"2"` or `"10%"`.
pub fn parse_failure_text(s: &str) -> Result<FailureLimit, String> {
    let t = s.trim();
    if let Some(p) = t.strip_suffix('%') {
        let x: f64 = p
            .trim()
            .parse()
            .map_err(|_| "expected a percentage such as \"10%\"".to_string())?;
        if !(0.0..=100.0).contains(&x) {
            return Err(format!(
                "{x}% is not a percentage of the group: expected 0% to 100%"
            ));
        }
        return Ok(FailureLimit::Percent(x));
    }
    t.parse::<u32>()
        .map(FailureLimit::Count)
        .map_err(|_| "expected a count (e.g. 2) or a percentage (e.g. \"10%\")".to_string())
}

pub fn parse_order(s: &str) -> Result<Order, String> {
    match s {
        "topology" => Ok(Order::Topology),
        "plan" => Ok(Order::Plan),
        _ => Err(format!(
            "order {s:?}: expected \"topology\" (farthest from a root first) or \"plan\""
        )),
    }
}

/// The API / JSON form of a policy: every key optional; unknown keys refused.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyPatch {
    pub batch_size: Option<Value>,
    pub canary: Option<Value>,
    pub max_failures: Option<Value>,
    pub pause_between: Option<String>,
    pub window: Option<String>,
    pub device_timeout: Option<String>,
    pub order: Option<String>,
}

fn count(key: &str, v: &Value, min: u64) -> Result<u32, String> {
    v.as_u64()
        .filter(|n| *n >= min)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("{key} {v}: expected a whole number of at least {min}"))
}

fn dur(key: &str, s: &str) -> Result<Duration, String> {
    crate::duration::parse(s).map_err(|e| format!("{key}: {e}"))
}

impl PolicyPatch {
    /// Parse a JSON policy object (unknown keys are an error naming them).
    pub fn from_json(v: &Value) -> Result<PolicyPatch, String> {
        serde_json::from_value(v.clone()).map_err(|e| {
            format!(
                "policy: {e}; expected keys batch_size, canary, max_failures, pause_between, \
                 window, device_timeout, order"
            )
        })
    }

    /// `base` with this patch's keys applied; `size` is the group's size.
    pub fn apply(&self, base: &Policy, size: usize) -> Result<Policy, String> {
        let mut p = base.clone();
        if let Some(v) = &self.batch_size {
            p.batch_size = count("batch_size", v, 1)?;
        }
        if let Some(v) = &self.canary {
            p.canary = count("canary", v, 0)?;
            if p.canary as usize > size {
                return Err(format!(
                    "canary {} is larger than the group ({size} devices): expected at most {size}",
                    p.canary
                ));
            }
        }
        if let Some(v) = &self.max_failures {
            p.max_failures = parse_failure_limit(v)?;
        }
        if let Some(s) = &self.pause_between {
            p.pause_between = dur("pause_between", s)?;
        }
        if let Some(s) = &self.window {
            crate::rollout::window::Window::parse(s).map_err(|e| format!("window {s:?}: {e}"))?;
            p.window = Some(s.clone());
        }
        if let Some(s) = &self.device_timeout {
            p.device_timeout = dur("device_timeout", s)?;
            if p.device_timeout.is_zero() {
                return Err(
                    "device_timeout 0: expected a positive duration such as \"30m\"".into(),
                );
            }
        }
        if let Some(s) = &self.order {
            p.order = parse_order(s)?;
        }
        Ok(p)
    }
}

/// A policy as JSON (SPEC §10 `policy`), in the form the API accepts back.
pub fn to_json(p: &Policy) -> Value {
    let max = match p.max_failures {
        FailureLimit::Count(n) => json!(n),
        FailureLimit::Percent(x) => json!(format!("{x}%")),
    };
    json!({
        "batch_size": p.batch_size,
        "canary": p.canary,
        "max_failures": max,
        "pause_between": crate::duration::format(p.pause_between),
        "window": p.window,
        "device_timeout": crate::duration::format(p.device_timeout),
        "order": match p.order { Order::Topology => "topology", Order::Plan => "plan" },
    })
}

/// A policy from its stored JSON (written by [`to_json`]).
pub fn from_json(v: &Value) -> Result<Policy, String> {
    let mut patch = PolicyPatch::from_json(v)?;
    if patch.window.as_deref() == Some("") {
        patch.window = None;
    }
    patch.apply(&default_policy(), usize::MAX)
}

/// The policy as a TOML inline table (for `/groups/<name>/toml`).
pub fn to_toml(p: &Policy) -> String {
    let mut parts = vec![
        format!("batch_size = {}", p.batch_size),
        format!("canary = {}", p.canary),
    ];
    parts.push(match p.max_failures {
        FailureLimit::Count(n) => format!("max_failures = {n}"),
        FailureLimit::Percent(x) => format!("max_failures = \"{x}%\""),
    });
    parts.push(format!(
        "pause_between = \"{}\"",
        crate::duration::format(p.pause_between)
    ));
    if let Some(w) = &p.window {
        parts.push(format!("window = \"{w}\""));
    }
    parts.push(format!(
        "device_timeout = \"{}\"",
        crate::duration::format(p.device_timeout)
    ));
    parts.push(format!(
        "order = \"{}\"",
        match p.order {
            Order::Topology => "topology",
            Order::Plan => "plan",
        }
    ));
    format!("{{ {} }}", parts.join(", "))
}

/// Serialize helper so `Policy` shows in JSON the way the API takes it.
#[derive(Serialize)]
pub struct PolicyJson<'a>(#[serde(serialize_with = "ser")] pub &'a Policy);

fn ser<S: serde::Serializer>(p: &&Policy, s: S) -> Result<S::Ok, S::Error> {
    to_json(p).serialize(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_down_and_count_what_is_tolerated() {
        assert_eq!(tolerated(FailureLimit::Percent(10.0), 25), 2);
        assert_eq!(tolerated(FailureLimit::Percent(10.0), 9), 0);
        assert_eq!(tolerated(FailureLimit::Percent(10.0), 10), 1);
        assert_eq!(tolerated(FailureLimit::Percent(100.0), 7), 7);
        assert_eq!(tolerated(FailureLimit::Count(2), 5), 2);
    }

    #[test]
    fn bad_keys_say_what_was_expected() {
        let e = PolicyPatch::from_json(&json!({"batch": 2})).unwrap_err();
        assert!(e.contains("unknown field `batch`"), "{e}");
        let p = PolicyPatch::from_json(&json!({"max_failures": "150%"})).unwrap();
        let e = p.apply(&default_policy(), 10).unwrap_err();
        assert!(e.contains("0% to 100%"), "{e}");
        let p = PolicyPatch::from_json(&json!({"pause_between": "soon"})).unwrap();
        assert!(p
            .apply(&default_policy(), 10)
            .unwrap_err()
            .contains("pause_between"));
        let p = PolicyPatch::from_json(&json!({"window": "25:00-01:00"})).unwrap();
        assert!(p
            .apply(&default_policy(), 10)
            .unwrap_err()
            .contains("window"));
        let p = PolicyPatch::from_json(&json!({"batch_size": 0})).unwrap();
        assert!(p
            .apply(&default_policy(), 10)
            .unwrap_err()
            .contains("at least 1"));
        let p = PolicyPatch::from_json(&json!({"canary": 11})).unwrap();
        assert!(p
            .apply(&default_policy(), 10)
            .unwrap_err()
            .contains("larger than the group"));
    }

    #[test]
    fn json_round_trips() {
        let p = PolicyPatch::from_json(&json!({
            "batch_size": 5, "canary": 1, "max_failures": "10%", "pause_between": "5m",
            "window": "Sat,Sun 01:00-05:00", "device_timeout": "10m", "order": "plan"
        }))
        .unwrap()
        .apply(&default_policy(), 10)
        .unwrap();
        let back = from_json(&to_json(&p)).unwrap();
        assert_eq!(to_json(&back), to_json(&p));
        assert_eq!(back.order, Order::Plan);
    }
}
