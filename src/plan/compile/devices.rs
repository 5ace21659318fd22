//! `[[devices]]`: identifiers, the model a device uses, MAC, IP and role;
//! names, serials, MACs and IPs unique across every plan; a planned IP placed
//! where DHCP can serve it.

use std::net::Ipv4Addr;
use std::ops::Range;
use std::sync::Arc;

use super::references::DeviceFunctions;
use super::values::{bad_identifier, parse_ip, parse_ip6};
use super::{Dirs, Seen};
use crate::identifier::is_identifier;
use crate::mac::Mac;
use crate::plan::diagnostic::{Diagnostic, Diagnostics, Located, SourceFile};
use crate::plan::model::{Device, Role, Site};
use crate::plan::raw::RawDevice;
use crate::plan::reader::{closest, Sp};

/// Values that must be unique across all plans (names, serials, MACs, IPs).
struct Unique {
    seen: Seen,
    what: &'static str,
    code: &'static str,
}

impl Unique {
    fn new(what: &'static str, code: &'static str) -> Self {
        Unique {
            seen: Seen::new(),
            what,
            code,
        }
    }

    fn check(
        &mut self,
        diags: &mut Diagnostics,
        file: &Arc<SourceFile>,
        key: String,
        span: &Range<usize>,
        device: &str,
    ) {
        let what = self.what;
        if let Some((f, first_span, first_dev)) = self.seen.get(&key) {
            let (l, c) = f.line_col(first_span.start);
            let mut d = Diagnostic::error(
                self.code,
                format!("duplicate {what} {key}: devices `{first_dev}` and `{device}` both use it"),
            )
            .at(file, span.clone())
            .label(format!("second use of this {what}"))
            .help(format!(
                "each device needs its own {what}; `{first_dev}` has it at {}:{l}:{c}",
                f.display
            ));
            if Arc::ptr_eq(f, file) {
                d = d.related(first_span.clone(), "first used here");
            }
            diags.push(d);
        } else {
            self.seen
                .insert(key, (file.clone(), span.clone(), device.to_string()));
        }
    }
}

/// The uniqueness sets every device is checked against.
pub(super) struct DeviceKeys {
    names: Unique,
    serials: Unique,
    macs: Unique,
    ips: Unique,
    ip6s: Unique,
    duids: Unique,
}

impl DeviceKeys {
    pub(super) fn new() -> Self {
        DeviceKeys {
            names: Unique::new("name", "plan::duplicate_name"),
            serials: Unique::new("serial", "plan::duplicate_serial"),
            macs: Unique::new("MAC", "plan::duplicate_mac"),
            ips: Unique::new("IP", "plan::duplicate_ip"),
            ip6s: Unique::new("IPv6 address", "plan::duplicate_ip6"),
            duids: Unique::new("DUID", "plan::duplicate_duid"),
        }
    }
}

/// `None` when the device cannot be served (bad identifier, unknown model,
/// bad MAC); its other problems are still reported.
pub(super) fn compile_device(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    d: &RawDevice,
    site: &Site,
    dirs: &Dirs,
    keys: &mut DeviceKeys,
    functions: &mut DeviceFunctions,
) -> Option<Device> {
    let name = d.name.as_ref()?;
    // No serial: known by MAC or by position (checked in `identity`).
    let serial = d.serial.as_ref();
    let model = d.model.as_ref()?;
    let mut ok = true;
    if !is_identifier(&name.v) {
        bad_identifier(diags, file, name, "device name");
        ok = false;
    }
    if let Some(serial) = serial {
        if !is_identifier(&serial.v) {
            bad_identifier(diags, file, serial, "serial");
            ok = false;
        }
        keys.serials
            .check(diags, file, serial.v.clone(), &serial.span, &name.v);
    }
    keys.names
        .check(diags, file, name.v.clone(), &name.span, &name.v);
    if !site.models.contains_key(&model.v) {
        unknown_model(diags, file, &name.v, model, site);
        ok = false;
    }
    let mac = d.mac.as_ref().and_then(|m| match Mac::parse(&m.v) {
        Some(x) => {
            keys.macs
                .check(diags, file, x.to_string(), &m.span, &name.v);
            Some(x.octets())
        }
        None => {
            diags.push(
                Diagnostic::error("plan::bad_mac", format!("`{}` is not a MAC address", m.v))
                    .at(file, m.span.clone())
                    .label("expected six hex octets")
                    .help(
                        "write it as \"00:1c:73:aa:bb:01\" \
                         (also accepted: 00-1c-73-aa-bb-01, 001c.73aa.bb01)",
                    ),
            );
            ok = false;
            None
        }
    });
    let ip = d.ip.as_ref().and_then(|ipr| {
        let ip = parse_ip(diags, file, ipr, "ip")?;
        keys.ips
            .check(diags, file, ip.to_string(), &ipr.span, &name.v);
        check_ip_placement(diags, file, ipr, ip, site);
        Some(ip)
    });
    let ip6 = d.ip6.as_ref().and_then(|v| {
        let ip = parse_ip6(diags, file, v, "ip6")?;
        keys.ip6s
            .check(diags, file, ip.to_string(), &v.span, &name.v);
        super::dhcp6::check_ip6_placement(diags, file, &v.span, ip, site);
        Some(ip)
    });
    let duid = d.duid.as_ref().and_then(|v| {
        let b = super::dhcp6::parse_duid(diags, file, v)?;
        let key = b
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(":");
        keys.duids.check(diags, file, key, &v.span, &name.v);
        Some(b)
    });
    let role = role(diags, file, d.role.as_ref());
    if let Some(f) = &d.device_function {
        functions.check(diags, file, f, dirs);
    }
    ok.then(|| Device {
        name: name.v.clone(),
        model: model.v.clone(),
        serial: serial.map(|s| s.v.clone()).unwrap_or_default(),
        mac,
        ip,
        ip6,
        duid,
        role,
        vars: d.vars.clone(),
        device_function: d.device_function.as_ref().map(|f| f.v.clone()),
        tags: d.tags.clone(),
        bound: None,
        defined_at: Some(Located {
            file: file.clone(),
            span: name.span.clone(),
        }),
    })
}

fn unknown_model(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    device: &str,
    model: &Sp<String>,
    site: &Site,
) {
    let known: Vec<&str> = site.models.keys().map(String::as_str).collect();
    let mut help = if known.is_empty() {
        "define it under [models.<name>]".to_string()
    } else {
        format!("models in this plan: {}", known.join(", "))
    };
    if let Some(c) = closest(&model.v, &known) {
        help = format!("did you mean `{c}`? {help}");
    }
    diags.push(
        Diagnostic::error(
            "plan::unknown_model",
            format!("device `{device}` uses unknown model `{}`", model.v),
        )
        .at(file, model.span.clone())
        .label("no such [models.*] entry")
        .help(help),
    );
}

fn role(diags: &mut Diagnostics, file: &Arc<SourceFile>, role: Option<&Sp<String>>) -> Role {
    let Some(r) = role else {
        return Role::Device;
    };
    match r.v.as_str() {
        "root" => Role::Root,
        "device" | "" => Role::Device,
        other => {
            diags.push(
                Diagnostic::error("plan::bad_role", format!("unknown role `{other}`"))
                    .at(file, r.span.clone())
                    .label("expected root")
                    .help(
                        "role = \"root\" marks an already-deployed device that reports \
                         neighbours; leave it out otherwise",
                    ),
            );
            Role::Device
        }
    }
}

/// A planned address must not be taken by ztpd or the router, and must be a
/// host address of the DHCP subnet outside the dynamic pool.
fn check_ip_placement(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    v: &Sp<String>,
    ip: Ipv4Addr,
    site: &Site,
) {
    if Some(ip) == site.server_ip {
        diags.push(
            Diagnostic::error(
                "plan::ip_is_server",
                format!("{ip} is site.server_ip, ztpd's own address"),
            )
            .at(file, v.span.clone())
            .label("taken by ztpd")
            .help("give the device another address"),
        );
    }
    let Some(dhcp) = &site.dhcp else { return };
    if Some(ip) == dhcp.router {
        diags.push(
            Diagnostic::error(
                "plan::ip_is_server",
                format!("{ip} is the subnet's router (dhcp.router)"),
            )
            .at(file, v.span.clone())
            .label("taken by the router")
            .help("give the device another address"),
        );
    }
    let subnet = dhcp.subnet;
    if !subnet.contains(&ip) {
        diags.push(
            Diagnostic::error(
                "plan::ip_outside_subnet",
                format!("{ip} is outside the DHCP subnet {subnet}"),
            )
            .at(file, v.span.clone())
            .label("outside the subnet")
            .help(format!("use an address in {subnet} outside the pool")),
        );
    } else if ip == subnet.network() || ip == subnet.broadcast() {
        diags.push(
            Diagnostic::error(
                "plan::ip_outside_subnet",
                format!("{ip} is the network or broadcast address of {subnet}"),
            )
            .at(file, v.span.clone())
            .label("not a host address")
            .help("use a host address"),
        );
    } else if dhcp.pool.0 <= ip && ip <= dhcp.pool.1 && dhcp.pool.0 != subnet.network() {
        let (lo, hi) = dhcp.pool;
        diags.push(
            Diagnostic::error(
                "plan::ip_in_pool",
                format!("{ip} is inside the dynamic pool {lo}-{hi}"),
            )
            .at(file, v.span.clone())
            .label("inside the pool")
            .help(
                "planned addresses must be outside dhcp.pool, or an unplanned device could be \
                 leased it first",
            ),
        );
    }
}
