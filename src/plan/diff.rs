//! What changes for each device when one plan version replaces another.
//! Used by `ztpd plan diff` for review, and by reload to act only on what changed.

use std::collections::BTreeMap;

use serde::Serialize;

use super::model::Model;
use super::model::{Device, Site};

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceChange {
    pub device: String,
    pub kind: ChangeKind,
    /// Unified diff of the rendered config, when it changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_diff: Option<String>,
    /// DHCP reservation changes (ip, mac, hostname, serial).
    pub reservation: Vec<String>,
    /// Image / patch changes.
    pub files: Vec<String>,
    /// Why the device's credential would be (re)generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// Other changes: model, role, links.
    pub other: Vec<String>,
}

struct View<'a> {
    site: &'a Site,
    device: &'a Device,
    config: Option<&'a String>,
    links: Vec<String>,
}

fn views<'a>(
    model: &'a Model,
    configs: &'a BTreeMap<String, String>,
) -> BTreeMap<&'a str, View<'a>> {
    let mut out = BTreeMap::new();
    for site in &model.sites {
        // One pass over the links, not one per device: plans have 10^4 of each.
        let mut links: std::collections::HashMap<&str, Vec<String>> =
            std::collections::HashMap::new();
        for k in site.links.iter() {
            links
                .entry(&k.a.device)
                .or_default()
                .push(format!("{} -> {}", k.a.port, k.b));
            links
                .entry(&k.b.device)
                .or_default()
                .push(format!("{} -> {}", k.b.port, k.a));
        }
        for d in &site.devices {
            let mut links = links.remove(d.name.as_str()).unwrap_or_default();
            links.sort();
            out.insert(
                d.name.as_str(),
                View {
                    site,
                    device: d,
                    config: configs.get(&d.name),
                    links,
                },
            );
        }
    }
    out
}

/// A planned DUID as the plan writes it (hex with colons).
fn duid_text(d: &super::model::Device) -> Option<String> {
    d.duid.as_ref().map(|b| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    })
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_else(|| "-".into())
}

/// Changes from one plan version (model + rendered configs) to another.
pub fn diff(
    old: (&Model, &BTreeMap<String, String>),
    new: (&Model, &BTreeMap<String, String>),
) -> Vec<DeviceChange> {
    let (o, n) = (views(old.0, old.1), views(new.0, new.1));
    let mut out = Vec::new();
    for (name, ov) in &o {
        if !n.contains_key(name) {
            out.push(DeviceChange {
                device: name.to_string(),
                kind: ChangeKind::Removed,
                config_diff: None,
                reservation: ov
                    .device
                    .ip
                    .map(|ip| format!("release reservation {ip}"))
                    .into_iter()
                    .chain(ov.device.ip6.map(|ip| format!("release reservation {ip}")))
                    .collect(),
                files: Vec::new(),
                credential: None,
                other: Vec::new(),
            });
        }
    }
    for (name, nv) in &n {
        let d = nv.device;
        let m = nv.site.model_of(d);
        let Some(ov) = o.get(name) else {
            out.push(DeviceChange {
                device: name.to_string(),
                kind: ChangeKind::Added,
                config_diff: nv.config.map(|c| unified("", c)),
                reservation: std::iter::once(format!(
                    "ip {} mac {} serial {}",
                    opt(d.ip),
                    opt(d.mac_string()),
                    d.serial
                ))
                .chain(
                    (d.ip6.is_some() || d.duid.is_some())
                        .then(|| format!("ip6 {} duid {}", opt(d.ip6), opt(duid_text(d)))),
                )
                .collect(),
                files: m
                    .software
                    .iter()
                    .map(|s| format!("image {} ({})", s.image, s.version))
                    .chain(m.patch.iter().map(|p| format!("patch {p}")))
                    .collect(),
                credential: d
                    .device_function
                    .as_ref()
                    .map(|f| format!("new credential (device function {f})")),
                other: Vec::new(),
            });
            continue;
        };
        let od = ov.device;
        let om = ov.site.model_of(od);
        let mut c = DeviceChange {
            device: name.to_string(),
            kind: ChangeKind::Changed,
            config_diff: None,
            reservation: Vec::new(),
            files: Vec::new(),
            credential: None,
            other: Vec::new(),
        };
        if ov.config != nv.config {
            c.config_diff = Some(unified(
                ov.config.map_or("", |s| s),
                nv.config.map_or("", |s| s),
            ));
        }
        let pairs = [
            ("ip", opt(od.ip), opt(d.ip)),
            ("mac", opt(od.mac_string()), opt(d.mac_string())),
            ("serial", od.serial.clone(), d.serial.clone()),
            ("ip6", opt(od.ip6), opt(d.ip6)),
            ("duid", opt(duid_text(od)), opt(duid_text(d))),
        ];
        for (what, a, b) in pairs {
            if a != b {
                c.reservation.push(format!("{what} {a} -> {b}"));
            }
        }
        let sw = |m: &super::model::DeviceModel| {
            m.software
                .as_ref()
                .map(|s| format!("{} ({})", s.image, s.version))
        };
        if sw(om) != sw(m) {
            c.files
                .push(format!("image {} -> {}", opt(sw(om)), opt(sw(m))));
        }
        if om.patch != m.patch {
            c.files.push(format!(
                "patch {} -> {}",
                opt(om.patch.as_ref()),
                opt(m.patch.as_ref())
            ));
        }
        if od.device_function != d.device_function {
            c.credential = Some(format!(
                "device function {} -> {}",
                opt(od.device_function.as_ref()),
                opt(d.device_function.as_ref())
            ));
        }
        if od.model != d.model || om.match_model != m.match_model || om.vendor != m.vendor {
            c.other.push(format!(
                "model {} ({} {}) -> {} ({} {})",
                od.model, om.vendor, om.match_model, d.model, m.vendor, m.match_model
            ));
        }
        if od.role != d.role {
            c.other
                .push(format!("role {:?} -> {:?}", od.role, d.role).to_lowercase());
        }
        if od.tags != d.tags {
            let text = |t: &serde_json::Map<String, serde_json::Value>| {
                serde_json::Value::Object(t.clone()).to_string()
            };
            c.other
                .push(format!("tags {} -> {}", text(&od.tags), text(&d.tags)));
        }
        for l in &ov.links {
            if !nv.links.contains(l) {
                c.other.push(format!("link removed: {l}"));
            }
        }
        for l in &nv.links {
            if !ov.links.contains(l) {
                c.other.push(format!("link added: {l}"));
            }
        }
        if c.config_diff.is_some()
            || !c.reservation.is_empty()
            || !c.files.is_empty()
            || c.credential.is_some()
            || !c.other.is_empty()
        {
            out.push(c);
        }
    }
    out.sort_by(|a, b| a.device.cmp(&b.device));
    out
}

fn unified(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header("old", "new")
        .to_string()
}

/// Human-readable report.
pub fn render(changes: &[DeviceChange]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for c in changes {
        let _ = writeln!(
            s,
            "device {}: {}",
            c.device,
            match c.kind {
                ChangeKind::Added => "added",
                ChangeKind::Removed => "removed",
                ChangeKind::Changed => "changed",
            }
        );
        for r in &c.reservation {
            let _ = writeln!(s, "  reservation: {r}");
        }
        for f in &c.files {
            let _ = writeln!(s, "  files: {f}");
        }
        if let Some(cr) = &c.credential {
            let _ = writeln!(s, "  credential to regenerate: {cr}");
        }
        for o in &c.other {
            let _ = writeln!(s, "  {o}");
        }
        if let Some(d) = &c.config_diff {
            let _ = writeln!(s, "  config:");
            for line in d.lines() {
                let _ = writeln!(s, "    {line}");
            }
        }
    }
    let creds: Vec<&str> = changes
        .iter()
        .filter(|c| c.credential.is_some())
        .map(|c| c.device.as_str())
        .collect();
    let _ = writeln!(
        s,
        "{} device{} changed; credentials to regenerate: {}",
        changes.len(),
        if changes.len() == 1 { "" } else { "s" },
        if creds.is_empty() {
            "none".to_string()
        } else {
            creds.join(", ")
        }
    );
    s
}
