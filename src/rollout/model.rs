//! A rollout's state: what is persisted, what the decision function reads
//! and changes, and its JSON (SPEC §10). Times are Unix milliseconds inside
//! and RFC 3339 in JSON.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::policy::{self, Policy};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Software,
    Config,
    /// A direct method called on every device (SPEC §13).
    Method,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Running,
    Paused,
    WaitingWindow,
    Done,
    Aborted,
}

impl State {
    /// Still holds its devices (SPEC §8: overlapping rollouts get 409).
    pub fn active(self) -> bool {
        !matches!(self, State::Done | State::Aborted)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    Pending,
    Running,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    Pending,
    Notified,
    InProgress,
    Succeeded,
    Failed,
    TimedOut,
}

impl DeviceState {
    pub fn finished(self) -> bool {
        matches!(
            self,
            DeviceState::Succeeded | DeviceState::Failed | DeviceState::TimedOut
        )
    }
    pub fn failed(self) -> bool {
        matches!(self, DeviceState::Failed | DeviceState::TimedOut)
    }
    pub fn in_flight(self) -> bool {
        matches!(self, DeviceState::Notified | DeviceState::InProgress)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    pub version: Option<String>,
    /// Under `paths.files`, as in a plan.
    pub image: Option<String>,
}

/// The direct method a `method` rollout calls on each device (SPEC §13).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodCall {
    pub name: String,
    pub payload: Value,
}

/// How a method rollout's call to one device ended: the device's status
/// and payload, or the status the API would give (404 not connected, 504
/// no answer in time) without a payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    pub index: usize,
    pub canary: bool,
    pub devices: Vec<String>,
    pub state: BatchState,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRun {
    pub name: String,
    pub serial: String,
    pub batch: usize,
    pub state: DeviceState,
    pub stage: Option<String>,
    pub version: Option<String>,
    pub message: Option<String>,
    pub at: u64,
    /// The action queued for it (its id), once notified.
    pub action: Option<String>,
    pub notified_at: Option<u64>,
    /// A method rollout's outcome for this device.
    #[serde(default)]
    pub response: Option<Response>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub id: String,
    pub group: String,
    pub kind: Kind,
    pub target: Target,
    pub state: State,
    pub reason: Option<String>,
    #[serde(with = "policy_serde")]
    pub policy: Policy,
    pub created_at: u64,
    pub updated_at: u64,
    pub batches: Vec<Batch>,
    pub devices: Vec<DeviceRun>,
    /// Failures an operator accepted by resuming after a pause: the
    /// tolerance counts failures beyond these.
    #[serde(default)]
    pub accepted_failures: usize,
    /// What a `method` rollout calls.
    #[serde(default)]
    pub method: Option<MethodCall>,
}

mod policy_serde {
    use super::*;
    pub fn serialize<S: serde::Serializer>(p: &Policy, s: S) -> Result<S::Ok, S::Error> {
        policy::to_json(p).serialize(s)
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Policy, D::Error> {
        let v = Value::deserialize(d)?;
        policy::from_json(&v).map_err(serde::de::Error::custom)
    }
}

fn time(ms: u64) -> Value {
    chrono::DateTime::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .map_or(Value::Null, Value::String)
}

impl Rollout {
    pub fn device(&self, name: &str) -> Option<&DeviceRun> {
        self.devices.iter().find(|d| d.name == name)
    }
    pub fn device_mut(&mut self, name: &str) -> Option<&mut DeviceRun> {
        self.devices.iter_mut().find(|d| d.name == name)
    }

    pub fn counts(&self) -> Value {
        let n = |f: fn(DeviceState) -> bool| self.devices.iter().filter(|d| f(d.state)).count();
        json!({
            "pending": n(|s| s == DeviceState::Pending),
            "in_progress": n(DeviceState::in_flight),
            "succeeded": n(|s| s == DeviceState::Succeeded),
            "failed": n(DeviceState::failed),
        })
    }

    /// The rollout JSON of SPEC §10.
    pub fn to_json(&self) -> Value {
        let mut target = json!({});
        if let Some(v) = &self.target.version {
            target["version"] = v.clone().into();
        }
        if let Some(i) = &self.target.image {
            target["image"] = i.clone().into();
        }
        let batches: Vec<Value> = self
            .batches
            .iter()
            .map(|b| {
                let mut v = json!({
                    "index": b.index, "canary": b.canary, "devices": b.devices, "state": b.state,
                });
                if let Some(t) = b.started_at {
                    v["started_at"] = time(t);
                }
                if let Some(t) = b.finished_at {
                    v["finished_at"] = time(t);
                }
                v
            })
            .collect();
        let devices: Vec<Value> = self
            .devices
            .iter()
            .map(|d| {
                let mut v = json!({
                    "name": d.name, "serial": d.serial, "batch": d.batch, "state": d.state,
                    "at": time(d.at),
                });
                for (k, x) in [
                    ("stage", &d.stage),
                    ("version", &d.version),
                    ("message", &d.message),
                    ("action", &d.action),
                ] {
                    if let Some(x) = x {
                        v[k] = x.clone().into();
                    }
                }
                if let Some(r) = &d.response {
                    v["response"] = json!(r);
                }
                v
            })
            .collect();
        let mut out = json!({
            "id": self.id,
            "group": self.group,
            "kind": self.kind,
            "target": target,
            "state": self.state,
            "policy": policy::to_json(&self.policy),
            "created_at": time(self.created_at),
            "updated_at": time(self.updated_at),
            "batches": batches,
            "devices": devices,
            "counts": self.counts(),
        });
        if let Some(r) = &self.reason {
            out["reason"] = r.clone().into();
        }
        if let Some(m) = &self.method {
            out["method"] = json!(m);
        }
        out
    }
}
