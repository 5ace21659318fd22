//! Raw plans -> validated [`Model`]. Each check is a small function pushing
//! its own diagnostic code; compilation carries on after a problem so that
//! every problem of every plan is reported in one run.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::Ipv4Net;

use super::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use super::model::*;
use super::ports;
use super::raw::*;
use super::reader::{closest, Sp};
use crate::vendor::Vendor;

/// Where referenced templates and files live (from settings).
#[derive(Debug, Clone)]
pub struct Dirs {
    pub templates: PathBuf,
    pub files: PathBuf,
}

impl Dirs {
    pub fn device_function(&self, name: &str) -> PathBuf {
        self.templates
            .join("device_function")
            .join(format!("{name}.toml"))
    }
}

/// Default DHCP lease when the plan gives none.
const DEFAULT_LEASE: Duration = Duration::from_secs(3600);

/// Generated top-level paths in the file tree that `files/` must not shadow.
pub const GENERATED_PATHS: [&str; 4] = ["configs", "bootstrap", "credentials", "network-confg"];

/// Names, serials, ids: they become file names.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

struct Emit<'a> {
    diags: &'a mut Diagnostics,
}

impl Emit<'_> {
    fn err(
        &mut self,
        file: &Arc<SourceFile>,
        code: &str,
        span: Range<usize>,
        msg: String,
        label: &str,
        help: String,
    ) {
        self.diags.push(
            Diagnostic::error(code, msg)
                .at(file, span)
                .label(label)
                .help(help),
        );
    }
    fn warn(
        &mut self,
        file: &Arc<SourceFile>,
        code: &str,
        span: Range<usize>,
        msg: String,
        help: String,
    ) {
        self.diags
            .push(Diagnostic::warning(code, msg).at(file, span).help(help));
    }
}

/// First place a unique value was seen.
type Seen = HashMap<String, (Arc<SourceFile>, Range<usize>, String)>;

pub fn compile(plans: &[RawPlan], dirs: &Dirs, diags: &mut Diagnostics) -> Model {
    let mut e = Emit { diags };
    let mut keys = DeviceKeys {
        names: Unique::new("name", "plan::duplicate_name"),
        serials: Unique::new("serial", "plan::duplicate_serial"),
        macs: Unique::new("MAC", "plan::duplicate_mac"),
        ips: Unique::new("IP", "plan::duplicate_ip"),
    };
    let mut site_names = Seen::new();
    let mut model = Model::default();
    for raw in plans {
        let Some(file) = raw.file.clone() else {
            continue;
        };
        let Some(site) = compile_site(&mut e, &file, raw, dirs, &mut site_names) else {
            continue;
        };
        let mut site = site;
        site.models = compile_models(&mut e, &file, raw, dirs);
        site.devices = raw
            .devices
            .iter()
            .filter_map(|d| compile_device(&mut e, &file, d, &site, dirs, &mut keys))
            .collect();
        site.links = compile_links(&mut e, &file, raw, &site);
        site.groups = compile_groups(&mut e, &file, raw, &site);
        warn_unused_models(&mut e, &file, raw, &site);
        model.sites.push(site);
    }
    check_shadowed_files(e.diags, &dirs.files);
    model
}

fn parse_ip(e: &mut Emit, file: &Arc<SourceFile>, v: &Sp<String>, key: &str) -> Option<Ipv4Addr> {
    match v.v.trim().parse::<Ipv4Addr>() {
        Ok(ip) => Some(ip),
        Err(_) => {
            e.err(
                file,
                "plan::bad_ip",
                v.span.clone(),
                format!("`{}` is not an IPv4 address ({key})", v.v),
                "expected an IPv4 address",
                "write four decimal octets, e.g. \"10.10.0.11\"".into(),
            );
            None
        }
    }
}

fn compile_site(
    e: &mut Emit,
    file: &Arc<SourceFile>,
    raw: &RawPlan,
    _dirs: &Dirs,
    site_names: &mut Seen,
) -> Option<Site> {
    let rs = raw.site.as_ref()?;
    let name = rs.name.as_ref()?;
    if !is_identifier(&name.v) {
        bad_identifier(e, file, name, "site name");
    }
    if let Some((f, span, _)) = site_names.get(&name.v) {
        let first = format!(
            "{}:{}:{}",
            f.display,
            f.line_col(span.start).0,
            f.line_col(span.start).1
        );
        e.err(
            file,
            "plan::duplicate_site",
            name.span.clone(),
            format!("site `{}` is defined twice", name.v),
            "second definition",
            format!("site names must be unique across plans; the first is at {first}"),
        );
    } else {
        site_names.insert(
            name.v.clone(),
            (file.clone(), name.span.clone(), String::new()),
        );
    }
    let server_ip = parse_ip(e, file, rs.server_ip.as_ref()?, "site.server_ip")?;
    let dhcp = raw
        .dhcp
        .as_ref()
        .and_then(|d| compile_dhcp(e, file, d, server_ip));
    let approval = match &raw.approval_mode {
        None => ApprovalMode::Auto,
        Some(m) => match m.v.as_str() {
            "auto" => ApprovalMode::Auto,
            "manual" => ApprovalMode::Manual,
            other => {
                e.err(file, "plan::bad_approval_mode", m.span.clone(), format!("unknown approval mode `{other}`"), "expected auto or manual", "approval.mode is \"auto\" (deploy when topology matches) or \"manual\" (wait for `ztpd approve`)".into());
                ApprovalMode::Auto
            }
        },
    };
    Some(Site {
        name: name.v.clone(),
        file: file.path.clone(),
        server_ip,
        dhcp,
        approval,
        models: BTreeMap::new(),
        devices: Vec::new(),
        links: Vec::new(),
        groups: BTreeMap::new(),
    })
}

fn compile_dhcp(
    e: &mut Emit,
    file: &Arc<SourceFile>,
    d: &RawDhcp,
    server_ip: Ipv4Addr,
) -> Option<DhcpPlan> {
    let subnet_raw = d.subnet.as_ref()?;
    let subnet = match subnet_raw.v.trim().parse::<Ipv4Net>() {
        Ok(n) if n.network() == n.addr() => n,
        Ok(n) => {
            e.err(
                file,
                "plan::bad_subnet",
                subnet_raw.span.clone(),
                format!("`{}` has host bits set", subnet_raw.v),
                "not a network address",
                format!("did you mean \"{}\"?", n.trunc()),
            );
            n.trunc()
        }
        Err(_) => {
            e.err(
                file,
                "plan::bad_subnet",
                subnet_raw.span.clone(),
                format!("`{}` is not a subnet", subnet_raw.v),
                "expected address/prefix",
                "write it as network/prefix, e.g. \"10.10.0.0/24\"".into(),
            );
            return None;
        }
    };
    let pool = d
        .pool
        .as_ref()
        .and_then(|p| compile_pool(e, file, p, subnet));
    let router = d
        .router
        .as_ref()
        .and_then(|r| parse_ip(e, file, r, "dhcp.router"));
    if let (Some(r), Some(rs)) = (router, &d.router) {
        if !subnet.contains(&r) {
            e.warn(
                file,
                "plan::router_outside_subnet",
                rs.span.clone(),
                format!("router {r} is outside subnet {subnet}"),
                "devices cannot reach a gateway outside their subnet; use an address inside it"
                    .into(),
            );
        }
    }
    if !subnet.contains(&server_ip) {
        if let Some(s) = &d.subnet {
            e.warn(
                file,
                "plan::server_outside_subnet",
                s.span.clone(),
                format!("site.server_ip {server_ip} is outside subnet {subnet}"),
                "fine when DHCP is relayed and routed; otherwise devices cannot reach ztpd".into(),
            );
        }
    }
    let dns = d
        .dns
        .iter()
        .filter_map(|x| parse_ip(e, file, x, "dhcp.dns"))
        .collect();
    let lease_time = match &d.lease_time {
        None => DEFAULT_LEASE,
        Some(l) => duration(e, file, l, "dhcp.lease_time").unwrap_or(DEFAULT_LEASE),
    };
    if let Some(i) = &d.interface {
        if i.v.trim().is_empty() || i.v.contains(['/', ' ']) {
            e.err(
                file,
                "plan::bad_interface",
                i.span.clone(),
                format!("`{}` is not an interface name", i.v),
                "expected e.g. eth1",
                "give the name `ip link` shows, e.g. \"eth1\"".into(),
            );
        }
    }
    Some(DhcpPlan {
        interface: d.interface.as_ref().map(|i| i.v.clone()),
        subnet,
        pool: pool.unwrap_or((subnet.network(), subnet.network())),
        router,
        dns,
        domain: d.domain.as_ref().map(|x| x.v.clone()),
        lease_time,
    })
}

fn compile_pool(
    e: &mut Emit,
    file: &Arc<SourceFile>,
    p: &Sp<String>,
    subnet: Ipv4Net,
) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let parsed = p.v.split_once('-').and_then(|(a, b)| {
        Some((
            a.trim().parse::<Ipv4Addr>().ok()?,
            b.trim().parse::<Ipv4Addr>().ok()?,
        ))
    });
    let Some((lo, hi)) = parsed else {
        e.err(
            file,
            "plan::bad_pool",
            p.span.clone(),
            format!("`{}` is not an address range", p.v),
            "expected FIRST-LAST",
            "write the pool as \"10.10.0.100-10.10.0.199\"".into(),
        );
        return None;
    };
    if lo > hi {
        e.err(
            file,
            "plan::bad_pool",
            p.span.clone(),
            format!("pool `{}` runs backwards", p.v),
            "first address is after the last",
            format!("write \"{hi}-{lo}\""),
        );
        return None;
    }
    let usable =
        |ip: Ipv4Addr| subnet.contains(&ip) && ip != subnet.network() && ip != subnet.broadcast();
    if !usable(lo) || !usable(hi) {
        e.err(
            file,
            "plan::pool_outside_subnet",
            p.span.clone(),
            format!("pool {lo}-{hi} is not inside subnet {subnet}"),
            "outside the subnet",
            format!(
                "use addresses between {} and {}",
                Ipv4Addr::from(u32::from(subnet.network()).wrapping_add(1)),
                Ipv4Addr::from(u32::from(subnet.broadcast()).wrapping_sub(1))
            ),
        );
        return None;
    }
    Some((lo, hi))
}

fn duration(e: &mut Emit, file: &Arc<SourceFile>, v: &Sp<String>, key: &str) -> Option<Duration> {
    match crate::duration::parse(&v.v) {
        Ok(d) => Some(d),
        Err(msg) => {
            e.err(file, "plan::bad_duration", v.span.clone(), format!("{key}: {msg}"), "not a duration", "durations are a number and a unit: ms, s, m, h, d (e.g. \"1h\", \"5m\", \"1h30m\")".into());
            None
        }
    }
}

fn bad_identifier(e: &mut Emit, file: &Arc<SourceFile>, v: &Sp<String>, what: &str) {
    e.err(file, "plan::bad_identifier", v.span.clone(), format!("{what} `{}` has characters that cannot be in a file name", v.v), "only A-Z a-z 0-9 . _ - allowed", format!("{what}s become file names: use letters, digits, '.', '_' and '-' only (not \".\" or \"..\")"));
}

fn compile_models(
    e: &mut Emit,
    file: &Arc<SourceFile>,
    raw: &RawPlan,
    dirs: &Dirs,
) -> BTreeMap<String, DeviceModel> {
    let mut out = BTreeMap::new();
    for (name, m) in &raw.models {
        let vendor = match &m.vendor {
            None => Vendor::Generic,
            Some(v) => match Vendor::from_name(&v.v) {
                Some(x) => x,
                None => {
                    e.err(
                        file,
                        "plan::unknown_vendor",
                        v.span.clone(),
                        format!("unknown vendor `{}` in model `{}`", v.v, name.v),
                        "not a vendor profile",
                        format!("valid vendors: {}", Vendor::valid_names()),
                    );
                    Vendor::Generic
                }
            },
        };
        let mut ports_out: Vec<String> = Vec::new();
        for p in &m.ports {
            match ports::expand(vendor, &p.v) {
                Ok(list) => {
                    for port in list {
                        if ports_out.contains(&port) {
                            e.warn(file, "plan::duplicate_port", p.span.clone(), format!("port {port} is listed twice in model `{}`", name.v), "remove the overlapping entry".into());
                        } else {
                            ports_out.push(port);
                        }
                    }
                }
                Err(msg) => e.err(file, "plan::bad_port_range", p.span.clone(), msg, "bad port spec", "write a port (\"Ethernet1\") or a range over the last number (\"Ethernet1-48\", \"ge-0/0/0-23\")".into()),
            }
        }
        if let Some(t) = &m.template {
            check_exists(
                e,
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
            check_exists(
                e,
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
            check_exists(
                e,
                file,
                p,
                &dirs.files,
                "plan::missing_file",
                "patch",
                "paths.files",
            );
        }
        let mut dhcp_options = BTreeMap::new();
        for (code, v) in &m.dhcp_options {
            match code.v.parse::<u8>() {
                Ok(c) if (1..=254).contains(&c) => {
                    let val = match &v.v {
                        RawOption::Text(s) => OptionValue::Text(s.clone()),
                        RawOption::Int(i) => match u32::try_from(*i) {
                            Ok(n) => OptionValue::Int(n),
                            Err(_) => {
                                e.err(file, "plan::bad_dhcp_option", v.span.clone(), format!("option {c}: {i} does not fit an unsigned 32-bit value"), "out of range", "use a value from 0 to 4294967295".into());
                                continue;
                            }
                        },
                        RawOption::List(l) => OptionValue::List(l.clone()),
                    };
                    dhcp_options.insert(c, val);
                }
                _ => e.err(file, "plan::bad_dhcp_option", code.span.clone(), format!("`{}` is not a DHCP option code", code.v), "expected 1..254", "key dhcp_options by the option number, e.g. dhcp_options = { 66 = \"10.10.0.1\" }".into()),
            }
        }
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
                ports: ports_out,
                template: m.template.as_ref().map(|t| t.v.clone()),
                software,
                patch: m.patch.as_ref().map(|p| p.v.clone()),
                dhcp_options,
            },
        );
    }
    out
}

/// A relative path under `base` that must exist and must not escape it.
fn check_exists(
    e: &mut Emit,
    file: &Arc<SourceFile>,
    v: &Sp<String>,
    base: &Path,
    code: &str,
    what: &str,
    setting: &str,
) {
    let rel = Path::new(&v.v);
    let escapes = rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir));
    if escapes {
        e.err(
            file,
            code,
            v.span.clone(),
            format!("{what} `{}` must be a path inside {setting}", v.v),
            "leaves the directory",
            format!("write it relative to {}, without `..`", base.display()),
        );
        return;
    }
    if !base.join(rel).is_file() {
        e.err(
            file,
            code,
            v.span.clone(),
            format!(
                "{what} `{}` not found: {} does not exist",
                v.v,
                base.join(rel).display()
            ),
            "no such file",
            format!(
                "create it, or fix the path (relative to {setting} = {})",
                base.display()
            ),
        );
    }
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    let sep_ok = s.split([':', '-']).count() == 6
        || s.split('.').count() == 3
        || !s.contains([':', '-', '.']);
    if hex.len() != 12 || !sep_ok || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut m = [0u8; 6];
    for (i, b) in m.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(m)
}

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
        e: &mut Emit,
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
            e.diags.push(d);
        } else {
            self.seen
                .insert(key, (file.clone(), span.clone(), device.to_string()));
        }
    }
}

/// The uniqueness sets every device is checked against.
struct DeviceKeys {
    names: Unique,
    serials: Unique,
    macs: Unique,
    ips: Unique,
}

fn compile_device(
    e: &mut Emit,
    file: &Arc<SourceFile>,
    d: &RawDevice,
    site: &Site,
    dirs: &Dirs,
    keys: &mut DeviceKeys,
) -> Option<Device> {
    let name = d.name.as_ref()?;
    let serial = d.serial.as_ref()?;
    let model = d.model.as_ref()?;
    let mut ok = true;
    if !is_identifier(&name.v) {
        bad_identifier(e, file, name, "device name");
        ok = false;
    }
    if !is_identifier(&serial.v) {
        bad_identifier(e, file, serial, "serial");
        ok = false;
    }
    keys.names
        .check(e, file, name.v.clone(), &name.span, &name.v);
    keys.serials
        .check(e, file, serial.v.clone(), &serial.span, &name.v);
    if !site.models.contains_key(&model.v) {
        let known: Vec<&str> = site.models.keys().map(String::as_str).collect();
        let mut help = if known.is_empty() {
            "define it under [models.<name>]".to_string()
        } else {
            format!("models in this plan: {}", known.join(", "))
        };
        if let Some(c) = closest(&model.v, &known) {
            help = format!("did you mean `{c}`? {help}");
        }
        e.err(
            file,
            "plan::unknown_model",
            model.span.clone(),
            format!("device `{}` uses unknown model `{}`", name.v, model.v),
            "no such [models.*] entry",
            help,
        );
        ok = false;
    }
    let mac = d.mac.as_ref().and_then(|m| match parse_mac(&m.v) {
        Some(x) => {
            keys.macs.check(e, file, format_mac(&x), &m.span, &name.v);
            Some(x)
        }
        None => {
            e.err(file, "plan::bad_mac", m.span.clone(), format!("`{}` is not a MAC address", m.v), "expected six hex octets", "write it as \"00:1c:73:aa:bb:01\" (also accepted: 00-1c-73-aa-bb-01, 001c.73aa.bb01)".into());
            ok = false;
            None
        }
    });
    let ip = d.ip.as_ref().and_then(|ipr| {
        let ip = parse_ip(e, file, ipr, "ip")?;
        keys.ips.check(e, file, ip.to_string(), &ipr.span, &name.v);
        check_ip_placement(e, file, ipr, ip, site);
        Some(ip)
    });
    let role = match &d.role {
        None => Role::Device,
        Some(r) => match r.v.as_str() {
            "root" => Role::Root,
            "device" | "" => Role::Device,
            other => {
                e.err(file, "plan::bad_role", r.span.clone(), format!("unknown role `{other}`"), "expected root", "role = \"root\" marks an already-deployed device that reports neighbours; leave it out otherwise".into());
                Role::Device
            }
        },
    };
    if let Some(f) = &d.device_function {
        check_device_function(e, file, f, dirs);
    }
    ok.then(|| Device {
        name: name.v.clone(),
        model: model.v.clone(),
        serial: serial.v.clone(),
        mac,
        ip,
        role,
        vars: d.vars.clone(),
        device_function: d.device_function.as_ref().map(|f| f.v.clone()),
    })
}

fn check_ip_placement(
    e: &mut Emit,
    file: &Arc<SourceFile>,
    v: &Sp<String>,
    ip: Ipv4Addr,
    site: &Site,
) {
    if ip == site.server_ip {
        e.err(
            file,
            "plan::ip_is_server",
            v.span.clone(),
            format!("{ip} is site.server_ip, ztpd's own address"),
            "taken by ztpd",
            "give the device another address".into(),
        );
    }
    let Some(dhcp) = &site.dhcp else { return };
    if Some(ip) == dhcp.router {
        e.err(
            file,
            "plan::ip_is_server",
            v.span.clone(),
            format!("{ip} is the subnet's router (dhcp.router)"),
            "taken by the router",
            "give the device another address".into(),
        );
    }
    if !dhcp.subnet.contains(&ip) {
        e.err(
            file,
            "plan::ip_outside_subnet",
            v.span.clone(),
            format!("{ip} is outside the DHCP subnet {}", dhcp.subnet),
            "outside the subnet",
            format!("use an address in {} outside the pool", dhcp.subnet),
        );
    } else if ip == dhcp.subnet.network() || ip == dhcp.subnet.broadcast() {
        e.err(
            file,
            "plan::ip_outside_subnet",
            v.span.clone(),
            format!(
                "{ip} is the network or broadcast address of {}",
                dhcp.subnet
            ),
            "not a host address",
            "use a host address".into(),
        );
    } else if dhcp.pool.0 <= ip && ip <= dhcp.pool.1 && dhcp.pool.0 != dhcp.subnet.network() {
        e.err(file, "plan::ip_in_pool", v.span.clone(), format!("{ip} is inside the dynamic pool {}-{}", dhcp.pool.0, dhcp.pool.1), "inside the pool", "planned addresses must be outside dhcp.pool, or an unplanned device could be leased it first".into());
    }
}

fn check_device_function(e: &mut Emit, file: &Arc<SourceFile>, f: &Sp<String>, dirs: &Dirs) {
    if !is_identifier(&f.v) {
        bad_identifier(e, file, f, "device function");
        return;
    }
    let path = dirs.device_function(&f.v);
    match std::fs::read_to_string(&path) {
        Err(_) => {
            let mut known: Vec<String> = std::fs::read_dir(dirs.templates.join("device_function"))
                .map(|rd| {
                    rd.filter_map(|x| x.ok())
                        .filter_map(|x| {
                            x.file_name()
                                .to_str()?
                                .strip_suffix(".toml")
                                .map(str::to_string)
                        })
                        .collect()
                })
                .unwrap_or_default();
            known.sort();
            e.err(
                file,
                "plan::unknown_device_function",
                f.span.clone(),
                format!(
                    "device function `{}` not found: {} does not exist",
                    f.v,
                    path.display()
                ),
                "no such device function",
                if known.is_empty() {
                    "create it under templates/device_function/".into()
                } else {
                    format!("available: {}", known.join(", "))
                },
            );
        }
        Ok(text) => {
            // Diagnostics point into the device-function file itself; a file
            // used by many devices is reported once.
            let src = SourceFile::new(&path, text);
            let mut own = Diagnostics::default();
            crate::telemetry::device_function::read(&src, &f.v, &mut own);
            let seen = |d: &Diagnostic, all: &[Diagnostic]| {
                all.iter().any(|x| {
                    x.code == d.code
                        && x.span == d.span
                        && x.file.as_ref().map(|f| &f.path) == d.file.as_ref().map(|f| &f.path)
                })
            };
            for d in own.errors.into_iter().chain(own.warnings) {
                let all = match d.severity {
                    super::diagnostic::Severity::Error => &e.diags.errors,
                    super::diagnostic::Severity::Warning => &e.diags.warnings,
                };
                if !seen(&d, all) {
                    e.diags.push(d);
                }
            }
        }
    }
}

fn parse_endpoint(s: &str) -> Option<(&str, &str)> {
    let (d, p) = s.split_once(':')?;
    (!d.trim().is_empty() && !p.trim().is_empty()).then(|| (d.trim(), p.trim()))
}

fn compile_links(e: &mut Emit, file: &Arc<SourceFile>, raw: &RawPlan, site: &Site) -> Vec<Link> {
    let devices: HashMap<&str, &Device> =
        site.devices.iter().map(|d| (d.name.as_str(), d)).collect();
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
        let ea = endpoint(e, file, a, site, &devices, &all_names);
        let eb = endpoint(e, file, b, site, &devices, &all_names);
        let (Some(ea), Some(eb)) = (ea, eb) else {
            continue;
        };
        if ea.device == eb.device {
            e.err(
                file,
                "plan::link_to_self",
                l.span.start..b.span.end,
                format!("link connects `{}` to itself", ea.device),
                "both ends on one device",
                "a link joins two different devices; check the device names".into(),
            );
            continue;
        }
        let mut clash = false;
        for (ep, sp) in [(&ea, &a.span), (&eb, &b.span)] {
            if let Some(first) = used.get(ep) {
                e.diags.push(
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

fn endpoint(
    e: &mut Emit,
    file: &Arc<SourceFile>,
    v: &Sp<String>,
    site: &Site,
    devices: &HashMap<&str, &Device>,
    all_names: &[&str],
) -> Option<Endpoint> {
    let Some((dev, port)) = parse_endpoint(&v.v) else {
        e.err(
            file,
            "plan::bad_endpoint",
            v.span.clone(),
            format!("`{}` is not a link endpoint", v.v),
            "expected DEVICE:PORT",
            "write the endpoint as \"device:port\", e.g. \"spine1:Ethernet1\"".into(),
        );
        return None;
    };
    let Some(d) = devices.get(dev) else {
        if !all_names.contains(&dev) {
            let mut help = "link endpoints name devices of this plan".to_string();
            if let Some(c) = closest(dev, all_names) {
                help = format!("did you mean `{c}`? {help}");
            }
            e.err(
                file,
                "plan::link_unknown_device",
                v.span.clone(),
                format!("link endpoint names unknown device `{dev}`"),
                "no such device",
                help,
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
        e.err(
            file,
            "plan::link_unknown_port",
            v.span.clone(),
            format!("device `{dev}` (model `{}`) has no port `{port}`", m.name),
            "no such port",
            help,
        );
        return None;
    }
    Some(Endpoint {
        device: dev.to_string(),
        port: canon,
    })
}

/// `*` matches any run of characters, `?` one character.
pub fn glob_match(pattern: &str, s: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        match (p.first(), s.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], s) || (!s.is_empty() && go(p, &s[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &s[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &s[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), s.as_bytes())
}

fn compile_groups(
    e: &mut Emit,
    file: &Arc<SourceFile>,
    raw: &RawPlan,
    site: &Site,
) -> BTreeMap<String, Group> {
    let mut out = BTreeMap::new();
    let names: Vec<&str> = site.devices.iter().map(|d| d.name.as_str()).collect();
    let raw_names: Vec<&str> = raw
        .devices
        .iter()
        .filter_map(|d| d.name.as_ref().map(|n| n.v.as_str()))
        .collect();
    for (gname, g) in &raw.groups {
        if !is_identifier(&gname.v) {
            bad_identifier(e, file, gname, "group name");
        }
        let mut members: Vec<String> = Vec::new();
        if let Some(list) = &g.devices {
            for m in list {
                if names.contains(&m.v.as_str()) {
                    if !members.contains(&m.v) {
                        members.push(m.v.clone());
                    }
                } else if !raw_names.contains(&m.v.as_str()) {
                    let mut help = "group members are device names of this plan".to_string();
                    if let Some(c) = closest(&m.v, &names) {
                        help = format!("did you mean `{c}`? {help}");
                    }
                    e.err(
                        file,
                        "plan::unknown_group_member",
                        m.span.clone(),
                        format!("group `{}` names unknown device `{}`", gname.v, m.v),
                        "no such device",
                        help,
                    );
                }
            }
        }
        if g.select_model.is_some() || g.select_name.is_some() {
            if let Some(sm) = &g.select_model {
                if !site.models.contains_key(&sm.v) {
                    let known: Vec<&str> = site.models.keys().map(String::as_str).collect();
                    e.err(
                        file,
                        "plan::unknown_model",
                        sm.span.clone(),
                        format!("group `{}` selects unknown model `{}`", gname.v, sm.v),
                        "no such model",
                        format!("models in this plan: {}", known.join(", ")),
                    );
                }
            }
            for d in &site.devices {
                let model_ok = g.select_model.as_ref().is_none_or(|m| m.v == d.model);
                let name_ok = g
                    .select_name
                    .as_ref()
                    .is_none_or(|n| glob_match(&n.v, &d.name));
                if model_ok && name_ok && !members.contains(&d.name) {
                    members.push(d.name.clone());
                }
            }
        }
        if members.is_empty() {
            e.warn(
                file,
                "plan::empty_group",
                gname.span.clone(),
                format!("group `{}` has no devices", gname.v),
                "list devices = [...] or select = { model = \"...\", name = \"leaf*\" }".into(),
            );
        }
        let policy = compile_policy(e, file, &gname.v, g.policy.as_ref(), members.len());
        out.insert(
            gname.v.clone(),
            Group {
                name: gname.v.clone(),
                members,
                policy,
            },
        );
    }
    out
}

fn compile_policy(
    e: &mut Emit,
    file: &Arc<SourceFile>,
    group: &str,
    p: Option<&RawPolicy>,
    size: usize,
) -> Policy {
    let mut policy = Policy {
        batch_size: 1,
        canary: 0,
        max_failures: FailureLimit::Count(0),
        pause_between: Duration::ZERO,
        window: None,
    };
    let Some(p) = p else { return policy };
    if let Some(b) = &p.batch_size {
        if b.v < 1 {
            e.err(
                file,
                "plan::bad_policy",
                b.span.clone(),
                format!(
                    "group `{group}`: batch_size {} would never upgrade anything",
                    b.v
                ),
                "must be at least 1",
                "set batch_size to 1 or more".into(),
            );
        } else {
            policy.batch_size = u32::try_from(b.v).unwrap_or(u32::MAX);
        }
    }
    if let Some(c) = &p.canary {
        if c.v < 0 {
            e.err(
                file,
                "plan::bad_policy",
                c.span.clone(),
                format!("group `{group}`: canary cannot be negative"),
                "must be 0 or more",
                "canary is how many devices go first; 0 means none".into(),
            );
        } else if c.v as u64 > size as u64 {
            e.err(
                file,
                "plan::canary_too_large",
                c.span.clone(),
                format!(
                    "group `{group}`: canary {} is larger than the group ({size} devices)",
                    c.v
                ),
                "larger than the group",
                format!("use a canary of at most {size}"),
            );
        } else {
            policy.canary = c.v as u32;
        }
    }
    if let Some(m) = &p.max_failures {
        let parsed = match &m.v {
            RawOption::Int(n) if *n >= 0 => {
                Some(FailureLimit::Count(u32::try_from(*n).unwrap_or(u32::MAX)))
            }
            RawOption::Text(s) => s
                .trim()
                .strip_suffix('%')
                .and_then(|x| x.trim().parse::<f64>().ok())
                .filter(|x| (0.0..=100.0).contains(x))
                .map(FailureLimit::Percent),
            _ => None,
        };
        match parsed {
            Some(x) => policy.max_failures = x,
            None => e.err(
                file,
                "plan::bad_policy",
                m.span.clone(),
                format!("group `{group}`: max_failures must be a count or a percentage"),
                "expected e.g. 0, 2 or \"10%\"",
                "write max_failures = 1 (devices) or max_failures = \"10%\" (of the group)".into(),
            ),
        }
    }
    if let Some(d) = &p.pause_between {
        if let Some(x) = duration(e, file, d, "pause_between") {
            policy.pause_between = x;
        }
    }
    if let Some(w) = &p.window {
        if parse_window(&w.v).is_none() {
            e.err(
                file,
                "plan::bad_policy",
                w.span.clone(),
                format!("group `{group}`: window `{}` is not a time range", w.v),
                "expected HH:MM-HH:MM",
                "write window = \"22:00-04:00\" (local time; may cross midnight)".into(),
            );
        } else {
            policy.window = Some(w.v.clone());
        }
    }
    policy
}

/// `22:00-04:00` -> minutes after midnight of start and end.
pub fn parse_window(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    let hm = |x: &str| -> Option<u32> {
        let (h, m) = x.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    Some((hm(a)?, hm(b)?))
}

fn warn_unused_models(e: &mut Emit, file: &Arc<SourceFile>, raw: &RawPlan, site: &Site) {
    for (name, _) in &raw.models {
        let used = raw
            .devices
            .iter()
            .any(|d| d.model.as_ref().is_some_and(|m| m.v == name.v));
        if !used && site.models.contains_key(&name.v) {
            e.warn(
                file,
                "plan::unused_model",
                name.span.clone(),
                format!("model `{}` is not used by any device", name.v),
                "remove it, or add devices that use it".into(),
            );
        }
    }
}

fn check_shadowed_files(diags: &mut Diagnostics, files: &Path) {
    for g in GENERATED_PATHS {
        let p = files.join(g);
        if p.exists() {
            diags.push(
                Diagnostic::error(
                    "plan::shadowed_path",
                    format!("{} would shadow the generated path `{g}`", p.display()),
                )
                .help(format!(
                    "ztpd generates `{g}` itself; rename or move {} out of paths.files",
                    p.display()
                )),
            );
        }
    }
    if let Ok(rd) = std::fs::read_dir(files) {
        for entry in rd.flatten() {
            let n = entry.file_name();
            let n = n.to_string_lossy();
            if n.ends_with("-confg") {
                diags.push(
                    Diagnostic::error("plan::shadowed_path", format!("{} would shadow a generated Cisco AutoInstall file", entry.path().display()))
                        .help("`<hostname>-confg` at the root is generated from the plan; move this file into a subdirectory"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_file_name_safe() {
        assert!(is_identifier("leaf1.lab_2-a"));
        assert!(!is_identifier("leaf 1"));
        assert!(!is_identifier("../x"));
        assert!(!is_identifier(".."));
        assert!(!is_identifier(""));
    }

    #[test]
    fn macs_in_common_notations() {
        let m = [0x00, 0x1c, 0x73, 0xaa, 0xbb, 0x01];
        assert_eq!(parse_mac("00:1c:73:aa:bb:01"), Some(m));
        assert_eq!(parse_mac("00-1C-73-AA-BB-01"), Some(m));
        assert_eq!(parse_mac("001c.73aa.bb01"), Some(m));
        assert_eq!(parse_mac("00:1c:73:aa:bb"), None);
        assert_eq!(parse_mac("00:1c:73:aa:bb:zz"), None);
    }

    #[test]
    fn globs_and_windows() {
        assert!(glob_match("leaf*", "leaf12"));
        assert!(!glob_match("leaf*", "spine1"));
        assert!(glob_match("l?af1", "leaf1"));
        assert_eq!(parse_window("22:00-04:30"), Some((1320, 270)));
        assert_eq!(parse_window("25:00-01:00"), None);
    }
}
