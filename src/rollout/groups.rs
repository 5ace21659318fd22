//! Groups (SPEC §8): sets of devices of one model. Plan groups come from
//! `[groups.*]`; runtime groups are made through the API and kept in the
//! state store. Both answer the same questions: members in plan order,
//! model, policy, and the `[groups.<name>]` table that puts one into git.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Deserialize;
use serde_json::{json, Value};

use super::policy::{self, Policy, PolicyPatch};
use crate::plan::compile::{glob_match, glob_problem};
use crate::plan::model::Model;
use crate::state::{StateError, StateStore, WriteError, Writer};

const MIGRATIONS: &[&str] = &["CREATE TABLE rollout_groups (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL
    );"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Plan,
    Runtime,
}

/// One group, resolved against the current plan.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub source: Source,
    pub model: String,
    /// Device names, in the order the group lists them.
    pub devices: Vec<String>,
    pub policy: Policy,
    /// The plan file of a plan group.
    pub file: Option<String>,
}

impl Group {
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "source": match self.source { Source::Plan => "plan", Source::Runtime => "runtime" },
            "model": self.model,
            "devices": self.devices,
            "policy": policy::to_json(&self.policy),
        })
    }

    /// The `[groups.<name>]` table to paste into a plan.
    pub fn to_toml(&self) -> String {
        let devices: Vec<String> = self.devices.iter().map(|d| format!("\"{d}\"")).collect();
        format!(
            "[groups.{}]\ndevices = [{}]\npolicy = {}\n",
            self.name,
            devices.join(", "),
            policy::to_toml(&self.policy)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// `POST /api/v1/groups` bodies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    pub name: String,
    pub devices: Option<Vec<String>>,
    pub select: Option<Select>,
    pub policy: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Select {
    pub model: String,
    pub name: Option<String>,
}

/// A runtime group as stored.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
struct Stored {
    name: String,
    devices: Vec<String>,
    policy: Value,
}

pub struct GroupStore {
    runtime: Mutex<BTreeMap<String, Stored>>,
    writer: Writer,
}

impl GroupStore {
    pub fn open(store: &StateStore) -> Result<GroupStore, StateError> {
        store.migrate("rollout_groups", MIGRATIONS)?;
        let conn = store.reader()?;
        let mut runtime = BTreeMap::new();
        let mut st = conn.prepare("SELECT name, body FROM rollout_groups")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (name, body) = row?;
            match serde_json::from_str::<Stored>(&body) {
                Ok(s) => {
                    runtime.insert(name, s);
                }
                Err(e) => tracing::warn!(group = %name, "unreadable group row ignored: {e}"),
            }
        }
        drop(st);
        Ok(GroupStore {
            runtime: Mutex::new(runtime),
            writer: store.writer(),
        })
    }

    /// Every group: plan groups first (by site, then name), then runtime ones.
    pub fn list(&self, model: &Model) -> Vec<Group> {
        let mut out = Vec::new();
        for site in &model.sites {
            for g in site.groups.values() {
                out.push(plan_group(model, site, g));
            }
        }
        let runtime = self.runtime.lock().map(|r| r.clone()).unwrap_or_default();
        for s in runtime.values() {
            out.push(runtime_group(model, s));
        }
        out
    }

    /// One group by name, built alone (not every group, as `list` does).
    pub fn get(&self, model: &Model, name: &str) -> Option<Group> {
        for site in &model.sites {
            if let Some(g) = site.groups.get(name) {
                return Some(plan_group(model, site, g));
            }
        }
        let stored = self.runtime.lock().ok()?.get(name).cloned()?;
        Some(runtime_group(model, &stored))
    }

    /// Check a new group against the plan, then persist it; at most `cap`
    /// runtime groups (`limits.runtime_groups`) are kept.
    pub async fn create(
        &self,
        model: &Model,
        req: NewGroup,
        cap: usize,
    ) -> Result<Group, GroupError> {
        let g = resolve(model, &req)?;
        if self.get(model, &g.name).is_some() {
            return Err(GroupError::Conflict(format!(
                "a group named `{}` already exists",
                g.name
            )));
        }
        let stored = Stored {
            name: g.name.clone(),
            devices: g.devices.clone(),
            policy: policy::to_json(&g.policy),
        };
        {
            let mut r = self
                .runtime
                .lock()
                .map_err(|_| WriteError::Failed("group lock poisoned".into()))?;
            if r.contains_key(&g.name) {
                return Err(GroupError::Conflict(format!(
                    "a group named `{}` already exists",
                    g.name
                )));
            }
            if r.len() >= cap {
                return Err(GroupError::Conflict(format!(
                    "there are {} runtime groups already, the most kept \
                     (limits.runtime_groups): delete one, or put groups in a plan",
                    r.len()
                )));
            }
            r.insert(g.name.clone(), stored.clone());
        }
        let (name, body) = (
            g.name.clone(),
            serde_json::to_string(&stored).unwrap_or_default(),
        );
        let written = self
            .writer
            .write(Box::new(move |tx| {
                tx.execute(
                    "INSERT INTO rollout_groups (name, body) VALUES (?1, ?2)",
                    rusqlite::params![name, body],
                )
                .map(|_| ())
            }))
            .await;
        if let Err(e) = written {
            if let Ok(mut r) = self.runtime.lock() {
                r.remove(&g.name);
            }
            return Err(e.into());
        }
        Ok(g)
    }

    /// Delete a runtime group (a plan group lives in its plan file).
    pub async fn delete(&self, model: &Model, name: &str) -> Result<(), GroupError> {
        match self.get(model, name) {
            None => return Err(GroupError::NotFound(format!("no group named `{name}`"))),
            Some(g) if g.source == Source::Plan => {
                return Err(GroupError::Conflict(format!(
                    "`{name}` is a plan group: remove [groups.{name}] from {}",
                    g.file.unwrap_or_default()
                )))
            }
            Some(_) => {}
        }
        let n = name.to_string();
        self.writer
            .write(Box::new(move |tx| {
                tx.execute("DELETE FROM rollout_groups WHERE name = ?1", [n])
                    .map(|_| ())
            }))
            .await?;
        if let Ok(mut r) = self.runtime.lock() {
            r.remove(name);
        }
        Ok(())
    }
}

fn plan_group(
    model: &Model,
    site: &crate::plan::model::Site,
    g: &crate::plan::model::Group,
) -> Group {
    let m = g
        .members
        .first()
        .and_then(|n| model.device(n))
        .map(|(_, d)| d.model.clone())
        .unwrap_or_default();
    Group {
        name: g.name.clone(),
        source: Source::Plan,
        model: m,
        devices: g.members.clone(),
        policy: g.policy.clone(),
        file: Some(site.file.display().to_string()),
    }
}

fn runtime_group(model: &Model, s: &Stored) -> Group {
    // Members the plan no longer has are left out.
    let devices: Vec<String> = s
        .devices
        .iter()
        .filter(|n| model.device(n).is_some())
        .cloned()
        .collect();
    let m = devices
        .first()
        .and_then(|n| model.device(n))
        .map(|(_, d)| d.model.clone())
        .unwrap_or_default();
    Group {
        name: s.name.clone(),
        source: Source::Runtime,
        model: m,
        devices,
        policy: policy::from_json(&s.policy).unwrap_or_else(|_| policy::default_policy()),
        file: None,
    }
}

/// A new group's members and policy, checked: known devices, one model.
fn resolve(model: &Model, req: &NewGroup) -> Result<Group, GroupError> {
    let bad = |m: String| GroupError::Invalid(m);
    if !crate::identifier::is_identifier(&req.name) {
        return Err(bad(format!(
            "group name {:?}: expected letters, digits, `.`, `_` and `-`",
            req.name
        )));
    }
    let devices: Vec<String> = match (&req.devices, &req.select) {
        (Some(list), None) => {
            if list.is_empty() {
                return Err(bad(
                    "`devices` is empty: expected device names of the plan".into()
                ));
            }
            let mut out: Vec<String> = Vec::new();
            let mut seen = std::collections::HashSet::new();
            for n in list {
                let Some((_, d)) = model.device(n) else {
                    return Err(bad(format!(
                        "unknown device `{n}`: expected a device name of the plan"
                    )));
                };
                if seen.insert(d.name.as_str()) {
                    out.push(d.name.clone());
                }
            }
            out
        }
        (None, Some(sel)) => {
            let known = model
                .sites
                .iter()
                .any(|s| s.models.contains_key(&sel.model));
            if !known {
                return Err(bad(format!(
                    "unknown model `{}`: expected a model of the plan",
                    sel.model
                )));
            }
            if let Some(problem) = sel.name.as_deref().and_then(glob_problem) {
                return Err(bad(format!("select.name: {problem}")));
            }
            let out: Vec<String> = model
                .devices()
                .filter(|(_, d)| d.model == sel.model)
                .filter(|(_, d)| sel.name.as_ref().is_none_or(|g| glob_match(g, &d.name)))
                .map(|(_, d)| d.name.clone())
                .collect();
            if out.is_empty() {
                return Err(bad(format!(
                    "select matches no device of model `{}`",
                    sel.model
                )));
            }
            out
        }
        _ => {
            return Err(bad(
                "expected either `devices`: [names] or `select`: {model, name?}".into(),
            ))
        }
    };
    let model_of = |n: &String| {
        model
            .device(n)
            .map(|(_, d)| d.model.clone())
            .unwrap_or_default()
    };
    let m0 = model_of(&devices[0]);
    if let Some(other) = devices.iter().find(|n| model_of(n) != m0) {
        return Err(bad(format!(
            "a group is devices of one model: `{}` is {m0}, `{other}` is {}",
            devices[0],
            model_of(other)
        )));
    }
    let patch = match &req.policy {
        Some(v) => PolicyPatch::from_json(v).map_err(bad)?,
        None => PolicyPatch::default(),
    };
    let policy = patch
        .apply(&policy::default_policy(), devices.len())
        .map_err(bad)?;
    Ok(Group {
        name: req.name.clone(),
        source: Source::Runtime,
        model: m0,
        devices,
        policy,
        file: None,
    })
}
