//! `[models.*]`: vendor profile, port list, the template, software image and
//! patch a model references, and its DHCP options.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::references::check_file;
use super::Dirs;
use crate::plan::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::plan::model::{DeviceModel, OptionValue, Site, Software};
use crate::plan::ports;
use crate::plan::raw::{RawModel, RawOption, RawPlan};
use crate::plan::reader::Sp;
use crate::vendor::Vendor;

pub(super) fn compile_models(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    raw: &RawPlan,
    dirs: &Dirs,
) -> BTreeMap<String, DeviceModel> {
    let mut out = BTreeMap::new();
    for (name, m) in &raw.models {
        let vendor = vendor(diags, file, name, m);
        let ports = model_ports(diags, file, name, m, vendor);
        if let Some(t) = &m.template {
            check_file(
                diags,
                file,
                t,
                &dirs.templates,
                "plan::unknown_template",
                "template",
                "paths.templates",
            );
        }
        let software = m.software.as_ref().and_then(|s| {
            let image = s.image.as_ref()?;
            check_file(
                diags,
                file,
                image,
                &dirs.files,
                "plan::missing_file",
                "software image",
                "paths.files",
            );
            Some(Software {
                image: image.v.clone(),
                version: s.version.as_ref()?.v.clone(),
            })
        });
        if let Some(p) = &m.patch {
            check_file(
                diags,
                file,
                p,
                &dirs.files,
                "plan::missing_file",
                "patch",
                "paths.files",
            );
        }
        let dhcp_options = dhcp_options(diags, file, m);
        let match_model = m
            .match_model
            .as_ref()
            .map(|x| x.v.clone())
            .unwrap_or_default();
        out.insert(
            name.v.clone(),
            DeviceModel {
                name: name.v.clone(),
                vendor,
                match_model,
                ports,
                template: m.template.as_ref().map(|t| t.v.clone()),
                software,
                patch: m.patch.as_ref().map(|p| p.v.clone()),
                dhcp_options,
            },
        );
    }
    out
}

/// An unknown vendor is reported and compiled as generic.
fn vendor(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    name: &Sp<String>,
    m: &RawModel,
) -> Vendor {
    let Some(v) = &m.vendor else {
        return Vendor::Generic;
    };
    match Vendor::from_name(&v.v) {
        Some(x) => x,
        None => {
            diags.push(
                Diagnostic::error(
                    "plan::unknown_vendor",
                    format!("unknown vendor `{}` in model `{}`", v.v, name.v),
                )
                .at(file, v.span.clone())
                .label("not a vendor profile")
                .help(format!("valid vendors: {}", Vendor::valid_names())),
            );
            Vendor::Generic
        }
    }
}

/// The model's ports, ranges expanded, each once.
fn model_ports(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    name: &Sp<String>,
    m: &RawModel,
    vendor: Vendor,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in &m.ports {
        match ports::expand(vendor, &p.v) {
            Ok(list) => {
                for port in list {
                    if out.contains(&port) {
                        diags.push(
                            Diagnostic::warning(
                                "plan::duplicate_port",
                                format!("port {port} is listed twice in model `{}`", name.v),
                            )
                            .at(file, p.span.clone())
                            .help("remove the overlapping entry"),
                        );
                    } else {
                        out.push(port);
                    }
                }
            }
            Err(msg) => diags.push(
                Diagnostic::error("plan::bad_port_range", msg)
                    .at(file, p.span.clone())
                    .label("bad port spec")
                    .help(
                        "write a port (\"Ethernet1\") or a range over the last number \
                         (\"Ethernet1-48\", \"ge-0/0/0-23\")",
                    ),
            ),
        }
    }
    out
}

fn dhcp_options(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    m: &RawModel,
) -> BTreeMap<u8, OptionValue> {
    let mut out = BTreeMap::new();
    for (code, v) in &m.dhcp_options {
        match code.v.parse::<u8>() {
            Ok(c) if (1..=254).contains(&c) => {
                let val = match &v.v {
                    RawOption::Text(s) => OptionValue::Text(s.clone()),
                    RawOption::Int(i) => match u32::try_from(*i) {
                        Ok(n) => OptionValue::Int(n),
                        Err(_) => {
                            diags.push(
                                Diagnostic::error(
                                    "plan::bad_dhcp_option",
                                    format!(
                                        "option {c}: {i} does not fit an unsigned 32-bit value"
                                    ),
                                )
                                .at(file, v.span.clone())
                                .label("out of range")
                                .help("use a value from 0 to 4294967295"),
                            );
                            continue;
                        }
                    },
                    RawOption::List(l) => OptionValue::List(l.clone()),
                };
                out.insert(c, val);
            }
            _ => diags.push(
                Diagnostic::error(
                    "plan::bad_dhcp_option",
                    format!("`{}` is not a DHCP option code", code.v),
                )
                .at(file, code.span.clone())
                .label("expected 1..254")
                .help(
                    "key dhcp_options by the option number, \
                     e.g. dhcp_options = { 66 = \"10.10.0.1\" }",
                ),
            ),
        }
    }
    out
}

pub(super) fn warn_unused_models(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    raw: &RawPlan,
    site: &Site,
) {
    for (name, _) in &raw.models {
        let used = raw
            .devices
            .iter()
            .any(|d| d.model.as_ref().is_some_and(|m| m.v == name.v));
        if !used && site.models.contains_key(&name.v) {
            diags.push(
                Diagnostic::warning(
                    "plan::unused_model",
                    format!("model `{}` is not used by any device", name.v),
                )
                .at(file, name.span.clone())
                .help("remove it, or add devices that use it"),
            );
        }
    }
}
