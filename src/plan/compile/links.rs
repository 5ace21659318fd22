//! `[[links]]`: both ends name a device of this plan and a port of its model,
//! a link joins two devices, and a port takes one cable.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use crate::plan::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::plan::model::{Device, Endpoint, Link, Site};
use crate::plan::ports;
use crate::plan::raw::RawPlan;
use crate::plan::reader::{closest, Sp};

pub(super) fn compile_links(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    raw: &RawPlan,
    site: &Site,
) -> Vec<Link> {
    let devices: HashMap<&str, &Device> = site
        .devices
        .iter()
        .map(|d| (d.name.as_str(), &**d))
        .collect();
    // Devices refused by the device checks are still known by name: a link
    // to one is not reported a second time.
    let all_names: Vec<&str> = raw
        .devices
        .iter()
        .filter_map(|d| d.name.as_ref().map(|n| n.v.as_str()))
        .collect();
    let mut used: HashMap<Endpoint, Range<usize>> = HashMap::new();
    let mut out = Vec::new();
    for l in &raw.links {
        let (Some(a), Some(b)) = (&l.a, &l.b) else {
            continue;
        };
        let ea = endpoint(diags, file, a, site, &devices, &all_names);
        let eb = endpoint(diags, file, b, site, &devices, &all_names);
        let (Some(ea), Some(eb)) = (ea, eb) else {
            continue;
        };
        if ea.device == eb.device {
            diags.push(
                Diagnostic::error(
                    "plan::link_to_self",
                    format!("link connects `{}` to itself", ea.device),
                )
                .at(file, l.span.start..b.span.end)
                .label("both ends on one device")
                .help("a link joins two different devices; check the device names"),
            );
            continue;
        }
        let mut clash = false;
        for (ep, sp) in [(&ea, &a.span), (&eb, &b.span)] {
            if let Some(first) = used.get(ep) {
                diags.push(
                    Diagnostic::error(
                        "plan::port_used_twice",
                        format!("port {ep} is used by two links"),
                    )
                    .at(file, sp.clone())
                    .label("second link on this port")
                    .related(first.clone(), "first link here")
                    .help("a port takes one cable: remove one link or move it to a free port"),
                );
                clash = true;
            } else {
                used.insert(ep.clone(), sp.clone());
            }
        }
        if !clash {
            out.push(Link { a: ea, b: eb });
        }
    }
    out
}

fn parse_endpoint(s: &str) -> Option<(&str, &str)> {
    let (d, p) = s.split_once(':')?;
    (!d.trim().is_empty() && !p.trim().is_empty()).then(|| (d.trim(), p.trim()))
}

/// One end of a link, its port canonicalised for the device's vendor.
fn endpoint(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    v: &Sp<String>,
    site: &Site,
    devices: &HashMap<&str, &Device>,
    all_names: &[&str],
) -> Option<Endpoint> {
    let Some((dev, port)) = parse_endpoint(&v.v) else {
        diags.push(
            Diagnostic::error(
                "plan::bad_endpoint",
                format!("`{}` is not a link endpoint", v.v),
            )
            .at(file, v.span.clone())
            .label("expected DEVICE:PORT")
            .help("write the endpoint as \"device:port\", e.g. \"spine1:Ethernet1\""),
        );
        return None;
    };
    let Some(d) = devices.get(dev) else {
        if !all_names.contains(&dev) {
            let mut help = "link endpoints name devices of this plan".to_string();
            if let Some(c) = closest(dev, all_names) {
                help = format!("did you mean `{c}`? {help}");
            }
            diags.push(
                Diagnostic::error(
                    "plan::link_unknown_device",
                    format!("link endpoint names unknown device `{dev}`"),
                )
                .at(file, v.span.clone())
                .label("no such device")
                .help(help),
            );
        }
        return None;
    };
    let m = site.models.get(&d.model)?;
    let canon = ports::canonical(m.vendor, port);
    if !m.has_port(&canon) {
        let sample: Vec<&str> = m.ports.iter().take(6).map(String::as_str).collect();
        let help = if m.ports.is_empty() {
            format!(
                "model `{}` lists no ports; add them with ports = [\"...\"]",
                m.name
            )
        } else {
            format!(
                "model `{}` has {} ports: {}{}",
                m.name,
                m.ports.len(),
                sample.join(", "),
                if m.ports.len() > 6 { ", ..." } else { "" }
            )
        };
        diags.push(
            Diagnostic::error(
                "plan::link_unknown_port",
                format!("device `{dev}` (model `{}`) has no port `{port}`", m.name),
            )
            .at(file, v.span.clone())
            .label("no such port")
            .help(help),
        );
        return None;
    }
    Some(Endpoint {
        device: dev.to_string(),
        port: canon,
    })
}
