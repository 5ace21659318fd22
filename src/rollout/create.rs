//! `POST /api/v1/rollouts` bodies, checked against the plan before anything
//! is stored: the group, the kind, the image to give, the policy.

use serde::Deserialize;
use serde_json::{Map, Value};

use super::batches::Member;
use super::groups::Group;
use super::model::{Kind, MethodCall, Target};
use super::policy::{Policy, PolicyPatch};
use crate::snapshot::Snapshot;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRollout {
    pub group: String,
    pub kind: String,
    pub software: Option<Software>,
    pub method: Option<Method>,
    pub policy: Option<Value>,
}

/// `method: {name, payload}` of a `method` rollout; checked by [`check`]
/// so that a missing name gets the message saying what is expected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Method {
    pub name: Option<String>,
    #[serde(default)]
    pub payload: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Software {
    pub image: Option<String>,
    pub version: Option<String>,
}

/// A checked request.
#[derive(Debug)]
pub struct Checked {
    pub kind: Kind,
    pub target: Target,
    pub policy: Policy,
    pub members: Vec<Member>,
    pub method: Option<MethodCall>,
}

fn safe_relative(p: &str) -> bool {
    let path = std::path::Path::new(p);
    !p.is_empty()
        && !p.contains('\\')
        && !p.contains('\0')
        && path
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

pub fn check(snap: &Snapshot, group: &Group, req: &NewRollout) -> Result<Checked, String> {
    let kind = match req.kind.as_str() {
        "software" => Kind::Software,
        "config" => Kind::Config,
        "method" => Kind::Method,
        k => {
            return Err(format!(
                "kind {k:?}: expected \"software\", \"config\" or \"method\""
            ))
        }
    };
    if kind != Kind::Method && req.method.is_some() {
        return Err(format!("a {} rollout takes no `method`", req.kind));
    }
    if group.devices.is_empty() {
        return Err(format!("group `{}` has no devices in the plan", group.name));
    }
    let mut members = Vec::new();
    for n in &group.devices {
        let Some((_, d)) = snap.model.device(n) else {
            return Err(format!("group `{}` names unknown device `{n}`", group.name));
        };
        members.push(Member {
            name: d.name.clone(),
            serial: d.serial.clone(),
        });
    }
    let model = snap
        .model
        .device(&group.devices[0])
        .map(|(site, d)| site.model_of(d).clone());
    let target = match kind {
        Kind::Method => {
            if req.software.is_some() {
                return Err("a method rollout takes no `software`".into());
            }
            if let Some(m) = members.iter().find(|m| m.serial.is_empty()) {
                return Err(format!(
                    "`{}` has no hub device id (no serial in the plan, none bound yet): \
                     expected a group whose devices all have a serial",
                    m.name
                ));
            }
            Target {
                version: None,
                image: None,
            }
        }
        Kind::Config => {
            if req.software.is_some() {
                return Err("a config rollout takes no `software`".into());
            }
            if let Some(n) = group
                .devices
                .iter()
                .find(|n| !snap.configs.contains_key(*n))
            {
                return Err(format!(
                    "`{n}` has no rendered config (its model has no template): expected a group whose model has a template"
                ));
            }
            Target {
                version: None,
                image: None,
            }
        }
        Kind::Software => {
            let given = req.software.as_ref();
            let planned = model.as_ref().and_then(|m| m.software.clone());
            let image = given
                .and_then(|s| s.image.clone())
                .or_else(|| planned.as_ref().map(|s| s.image.clone()))
                .ok_or_else(|| {
                    format!(
                        "no image to give: model `{}` has no software in the plan; expected \
                         \"software\": {{\"image\": PATH under files/, \"version\": V}}",
                        group.model
                    )
                })?;
            let version = given
                .and_then(|s| s.version.clone())
                .or_else(|| planned.as_ref().map(|s| s.version.clone()))
                .ok_or("no target version: expected \"software\": {\"image\", \"version\"}")?;
            if !safe_relative(&image) {
                return Err(format!(
                    "image {image:?}: expected a relative path under files/ without `..`"
                ));
            }
            if !snap.resolved.files_dir().join(&image).is_file() {
                return Err(format!(
                    "image {image:?} is not a file under {}",
                    snap.resolved.files_dir().display()
                ));
            }
            if version.trim().is_empty()
                || version.len() > 128
                || version.chars().any(char::is_control)
            {
                return Err(format!(
                    "version {version:?}: expected a software version such as \"4.31.0F\""
                ));
            }
            Target {
                version: Some(version),
                image: Some(image),
            }
        }
    };
    let patch = match &req.policy {
        Some(v) => PolicyPatch::from_json(v)?,
        None => PolicyPatch::default(),
    };
    let policy = patch.apply(&group.policy, members.len())?;
    let method = match kind {
        Kind::Method => Some(method_call(req.method.as_ref())?),
        Kind::Software | Kind::Config => None,
    };
    Ok(Checked {
        kind,
        target,
        policy,
        members,
        method,
    })
}

/// The method of a `method` rollout: a name as the method API takes it
/// and a payload within IoT Hub's limit (SPEC §13).
fn method_call(m: Option<&Method>) -> Result<MethodCall, String> {
    const EXPECTED: &str = "expected \"method\": {\"name\": NAME, \"payload\": JSON}";
    let m = m.ok_or_else(|| format!("a method rollout needs `method`: {EXPECTED}"))?;
    let name = match m.name.as_deref() {
        None | Some("") => return Err(format!("the method has no name: {EXPECTED}")),
        Some(n) => n,
    };
    if crate::identifier::check(name).is_err() {
        return Err(format!(
            "method name `{}`: expected [A-Za-z0-9._-]+",
            name.escape_debug()
        ));
    }
    let max = crate::broker::handlers::methods::MAX_PAYLOAD_BYTES;
    let size = m.payload.to_string().len();
    if size > max {
        return Err(format!(
            "the method payload is {size} bytes: expected at most {max} (128 KB)"
        ));
    }
    Ok(MethodCall {
        name: name.to_string(),
        payload: m.payload.clone(),
    })
}

/// The fields of the action a rollout queues for `name` (SPEC §7).
pub fn action_fields(
    snap: &Snapshot,
    rollout: &str,
    kind: Kind,
    target: &Target,
    name: &str,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("rollout".into(), rollout.into());
    let Some((site, d)) = snap.model.device(name) else {
        return m;
    };
    let base = crate::addr::files_base(
        site.server_for_device(d),
        snap.resolved.settings.listen.http.port(),
    );
    match kind {
        Kind::Software => {
            if let Some(i) = &target.image {
                m.insert("image_url".into(), format!("{base}/{i}").into());
            }
            if let Some(v) = &target.version {
                m.insert("image_version".into(), v.clone().into());
            }
            if let Some(p) = &site.model_of(d).patch {
                m.insert("patch_url".into(), format!("{base}/{p}").into());
            }
        }
        Kind::Config => {
            m.insert(
                "config_url".into(),
                format!("{base}/configs/{}.cfg", d.name).into(),
            );
        }
        Kind::Method => {}
    }
    m
}

/// The action type of a rollout kind; `None` for a method rollout, which
/// calls its method instead of queueing an action.
pub fn action_type(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::Software => Some("upgrade"),
        Kind::Config => Some("reconfigure"),
        Kind::Method => None,
    }
}
