//! The `[site]`, `[dhcp]` and `[approval]` tables: the site's name and
//! address, its DHCP subnet, pool, router, DNS and lease time.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::Ipv4Net;

use super::values::{bad_identifier, duration, parse_ip, parse_ip6};
use super::Seen;
use crate::identifier::is_identifier;
use crate::plan::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::plan::model::{ApprovalMode, DhcpPlan, Site};
use crate::plan::raw::{RawDhcp, RawPlan, RawSite};
use crate::plan::reader::Sp;

/// Default DHCP lease when the plan gives none.
pub(super) const DEFAULT_LEASE: Duration = Duration::from_secs(3600);

/// The site with its DHCP plan; models, devices, links and groups are
/// filled in by the caller. `None` when the plan has no usable site.
pub(super) fn compile_site(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    raw: &RawPlan,
    site_names: &mut Seen,
) -> Option<Site> {
    let rs = raw.site.as_ref()?;
    let name = rs.name.as_ref()?;
    if !is_identifier(&name.v) {
        bad_identifier(diags, file, name, "site name");
    }
    check_unique_site(diags, file, name, site_names);
    let server_ip = match &rs.server_ip {
        Some(v) => Some(parse_ip(diags, file, v, "site.server_ip")?),
        None => None,
    };
    let server_ip6 = match &rs.server_ip6 {
        Some(v) => Some(parse_ip6(diags, file, v, "site.server_ip6")?),
        None => None,
    };
    // IPv4 needs server_ip; a site with neither family nor [dhcp6] is IPv4
    // as before ([dhcp6] without server_ip6 is reported by compile_dhcp6).
    let ipv6_only = raw.dhcp.is_none() && (server_ip6.is_some() || raw.dhcp6.is_some());
    if server_ip.is_none() && !ipv6_only {
        missing_server_ip(diags, file, rs);
        return None;
    }
    let dhcp = match (&raw.dhcp, server_ip) {
        (Some(d), Some(ip)) => compile_dhcp(diags, file, d, ip),
        _ => None,
    };
    let dhcp6 = raw
        .dhcp6
        .as_ref()
        .and_then(|d| super::dhcp6::compile_dhcp6(diags, file, d, rs, server_ip6));
    let approval = approval_mode(diags, file, raw.approval_mode.as_ref(), ApprovalMode::Auto);
    // A new box at a known place waits for an operator unless the plan says so.
    let replacement = approval_mode(
        diags,
        file,
        raw.approval_replacement.as_ref(),
        ApprovalMode::Manual,
    );
    Some(Site {
        name: name.v.clone(),
        file: file.path.clone(),
        server_ip,
        server_ip6,
        dhcp,
        dhcp6,
        approval,
        replacement,
        snmp: raw.snmp.as_ref().and_then(|s| compile_snmp(diags, file, s)),
        models: BTreeMap::new(),
        devices: Vec::new(),
        links: Default::default(),
        groups: BTreeMap::new(),
    })
}

fn missing_server_ip(diags: &mut Diagnostics, file: &Arc<SourceFile>, rs: &RawSite) {
    diags.push(
        Diagnostic::error(
            "plan::missing_key",
            "`site` is missing required key `server_ip`",
        )
        .at(
            file,
            rs.span.start..rs.span.start.saturating_add(1).min(rs.span.end),
        )
        .label("this table needs `server_ip`")
        .help(
            "add `server_ip = \"10.10.0.1\"` (an IPv6-only site, with [dhcp6] and no \
                 [dhcp], gives `server_ip6` instead)",
        ),
    );
}

fn check_unique_site(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    name: &Sp<String>,
    site_names: &mut Seen,
) {
    if let Some((f, span, _)) = site_names.get(&name.v) {
        let (line, col) = f.line_col(span.start);
        let first = format!("{}:{line}:{col}", f.display);
        diags.push(
            Diagnostic::error(
                "plan::duplicate_site",
                format!("site `{}` is defined twice", name.v),
            )
            .at(file, name.span.clone())
            .label("second definition")
            .help(format!(
                "site names must be unique across plans; the first is at {first}"
            )),
        );
    } else {
        site_names.insert(
            name.v.clone(),
            (file.clone(), name.span.clone(), String::new()),
        );
    }
}

/// `[snmp]`: version 2c with a community, or version 3 (USM) with a user,
/// an authentication key and an optional AES privacy key. Each secret is
/// given inline, by environment variable (`_env`) or by file (`_file`).
fn compile_snmp(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    s: &crate::plan::raw::RawSnmp,
) -> Option<crate::plan::model::SnmpPlan> {
    use crate::plan::model::{SnmpAccess, SnmpAuth, SnmpPlan, SnmpV3};
    let version = s.version.as_ref().map_or("2c", |v| v.v.as_str());
    match version {
        "2c" => {
            let community = secret(
                diags,
                file,
                s.span.clone(),
                "plan::snmp_community",
                "community",
                [&s.community, &s.community_env, &s.community_file],
            )?;
            Some(SnmpPlan {
                version: "2c",
                access: SnmpAccess::V2c { community },
            })
        }
        "3" => {
            let v3_error = |diags: &mut Diagnostics, span, msg: String, label: &str, help: &str| {
                diags.push(
                    Diagnostic::error("plan::snmp_v3", msg)
                        .at(file, span)
                        .label(label)
                        .help(help.to_string()),
                );
            };
            let Some(user) = s.user.as_ref().filter(|u| !u.v.is_empty()) else {
                v3_error(
                    diags,
                    s.span.clone(),
                    "[snmp] version 3 needs a user".into(),
                    "no user",
                    "write user = \"ztpd\" (the USM user the agents know)",
                );
                return None;
            };
            let auth = match s.auth.as_ref().map(|a| (a.v.as_str(), a.span.clone())) {
                None | Some(("sha", _)) => SnmpAuth::Sha,
                Some(("sha256", _)) => SnmpAuth::Sha256,
                Some((other, span)) => {
                    v3_error(
                        diags,
                        span,
                        format!("SNMP v3 authentication `{other}` is not supported"),
                        "expected \"sha\" or \"sha256\"",
                        "MD5 is not offered: use sha or sha256, as the agents' createUser says",
                    );
                    return None;
                }
            };
            let key = |diags: &mut Diagnostics, name: &str, parts| {
                let k = secret(diags, file, s.span.clone(), "plan::snmp_v3", name, parts)?;
                if k.len() < 8 {
                    v3_error(
                        diags,
                        s.span.clone(),
                        format!("{name} is shorter than 8 characters"),
                        "too short",
                        "SNMP v3 passphrases have at least 8 characters (RFC 3414); agents refuse shorter ones",
                    );
                    return None;
                }
                Some(k)
            };
            let auth_key = key(
                diags,
                "auth_key",
                [&s.auth_key, &s.auth_key_env, &s.auth_key_file],
            )?;
            if let Some(p) = &s.privacy {
                if p.v != "aes" {
                    v3_error(
                        diags,
                        p.span.clone(),
                        format!("SNMP v3 privacy `{}` is not supported", p.v),
                        "expected \"aes\"",
                        "ztpd encrypts with AES-128 (usmAesCfb128Protocol); DES is not offered",
                    );
                    return None;
                }
            }
            let wants_priv = s.privacy.is_some()
                || s.priv_key.is_some()
                || s.priv_key_env.is_some()
                || s.priv_key_file.is_some();
            let priv_key = if wants_priv {
                Some(key(
                    diags,
                    "priv_key",
                    [&s.priv_key, &s.priv_key_env, &s.priv_key_file],
                )?)
            } else {
                None
            };
            Some(SnmpPlan {
                version: "3",
                access: SnmpAccess::V3(SnmpV3 {
                    user: user.v.clone(),
                    auth,
                    auth_key,
                    priv_key,
                }),
            })
        }
        other => {
            let span = s
                .version
                .as_ref()
                .map_or(s.span.clone(), |v| v.span.clone());
            diags.push(
                Diagnostic::error(
                    "plan::snmp_version",
                    format!("SNMP version `{other}` is not supported"),
                )
                .at(file, span)
                .label("expected \"2c\" or \"3\"")
                .help("ztpd reads LLDP-MIB with SNMP v2c (a community) or v3 (user, auth_key, priv_key)"),
            );
            None
        }
    }
}

/// A secret given exactly one way: `name` inline, `name_env` (a variable of
/// ztpd's environment) or `name_file` (a file, relative to the plan's
/// directory; a trailing newline is dropped).
fn secret(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    table: std::ops::Range<usize>,
    code: &'static str,
    name: &str,
    [inline, env, from_file]: [&Option<Sp<String>>; 3],
) -> Option<String> {
    let mut error = |span, msg: String, label: &str, help: String| {
        diags.push(
            Diagnostic::error(code, msg)
                .at(file, span)
                .label(label)
                .help(help),
        );
    };
    match (inline, env, from_file) {
        (Some(v), None, None) => Some(v.v.clone()),
        (None, Some(e), None) => match std::env::var(&e.v) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => {
                error(
                    e.span.clone(),
                    format!("environment variable `{}` is not set", e.v),
                    "empty or unset",
                    format!("set it in ztpd's environment, or write {name} = \"...\""),
                );
                None
            }
        },
        (None, None, Some(f)) => {
            let dir = file.path.parent().unwrap_or(std::path::Path::new("."));
            let path = dir.join(&f.v);
            match crate::limits::read_capped_string(&path, 4096, "SNMP secret") {
                Ok(v) if !v.trim_end_matches(['\r', '\n']).is_empty() => {
                    Some(v.trim_end_matches(['\r', '\n']).to_string())
                }
                Ok(_) => {
                    error(
                        f.span.clone(),
                        format!("{} is empty", path.display()),
                        "empty file",
                        format!("write the {name} into it, on one line"),
                    );
                    None
                }
                Err(e) => {
                    error(
                        f.span.clone(),
                        format!("cannot read {}: {e}", path.display()),
                        "unreadable",
                        "the path is relative to the plan file's directory".to_string(),
                    );
                    None
                }
            }
        }
        _ => {
            error(
                table,
                format!("[snmp] needs exactly one of {name}, {name}_env and {name}_file"),
                "here",
                format!(
                    "write {name} = \"...\", or {name}_env = \"ZTPD_SNMP_{}\"",
                    name.to_uppercase()
                ),
            );
            None
        }
    }
}

fn approval_mode(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    mode: Option<&Sp<String>>,
    default: ApprovalMode,
) -> ApprovalMode {
    let Some(m) = mode else {
        return default;
    };
    match m.v.as_str() {
        "auto" => ApprovalMode::Auto,
        "manual" => ApprovalMode::Manual,
        other => {
            diags.push(
                Diagnostic::error(
                    "plan::bad_approval_mode",
                    format!("unknown approval mode `{other}`"),
                )
                .at(file, m.span.clone())
                .label("expected auto or manual")
                .help(
                    "approval.mode is \"auto\" (deploy when topology matches) or \
                     \"manual\" (wait for `ztpd approve`); approval.replacement is \
                     \"auto\" (bind a new serial at a unique place) or \"manual\" \
                     (wait for `ztpd replace`)",
                ),
            );
            default
        }
    }
}

fn compile_dhcp(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    d: &RawDhcp,
    server_ip: Ipv4Addr,
) -> Option<DhcpPlan> {
    let subnet_raw = d.subnet.as_ref()?;
    let subnet = parse_subnet(diags, file, subnet_raw)?;
    let pool = d
        .pool
        .as_ref()
        .and_then(|p| compile_pool(diags, file, p, subnet));
    let router = d
        .router
        .as_ref()
        .and_then(|r| parse_ip(diags, file, r, "dhcp.router"));
    if let (Some(r), Some(rs)) = (router, &d.router) {
        if !subnet.contains(&r) {
            diags.push(
                Diagnostic::warning(
                    "plan::router_outside_subnet",
                    format!("router {r} is outside subnet {subnet}"),
                )
                .at(file, rs.span.clone())
                .help(
                    "devices cannot reach a gateway outside their subnet; use an address inside it",
                ),
            );
        }
    }
    if !subnet.contains(&server_ip) {
        diags.push(
            Diagnostic::warning(
                "plan::server_outside_subnet",
                format!("site.server_ip {server_ip} is outside subnet {subnet}"),
            )
            .at(file, subnet_raw.span.clone())
            .help("fine when DHCP is relayed and routed; otherwise devices cannot reach ztpd"),
        );
    }
    let dns = d
        .dns
        .iter()
        .filter_map(|x| parse_ip(diags, file, x, "dhcp.dns"))
        .collect();
    let lease_time = match &d.lease_time {
        None => DEFAULT_LEASE,
        Some(l) => duration(diags, file, l, "dhcp.lease_time").unwrap_or(DEFAULT_LEASE),
    };
    if let Some(i) = &d.interface {
        check_interface(diags, file, i);
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

/// A subnet with host bits set is reported and truncated, so the checks
/// after it still run.
pub(super) fn parse_subnet(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    v: &Sp<String>,
) -> Option<Ipv4Net> {
    match v.v.trim().parse::<Ipv4Net>() {
        Ok(n) if n.network() == n.addr() => Some(n),
        Ok(n) => {
            diags.push(
                Diagnostic::error("plan::bad_subnet", format!("`{}` has host bits set", v.v))
                    .at(file, v.span.clone())
                    .label("not a network address")
                    .help(format!("did you mean \"{}\"?", n.trunc())),
            );
            Some(n.trunc())
        }
        Err(_) => {
            diags.push(
                Diagnostic::error("plan::bad_subnet", format!("`{}` is not a subnet", v.v))
                    .at(file, v.span.clone())
                    .label("expected address/prefix")
                    .help("write it as network/prefix, e.g. \"10.10.0.0/24\""),
            );
            None
        }
    }
}

pub(super) fn check_interface(diags: &mut Diagnostics, file: &Arc<SourceFile>, i: &Sp<String>) {
    if i.v.trim().is_empty() || i.v.contains(['/', ' ']) {
        diags.push(
            Diagnostic::error(
                "plan::bad_interface",
                format!("`{}` is not an interface name", i.v),
            )
            .at(file, i.span.clone())
            .label("expected e.g. eth1")
            .help("give the name `ip link` shows, e.g. \"eth1\""),
        );
    }
}

fn compile_pool(
    diags: &mut Diagnostics,
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
        diags.push(
            Diagnostic::error(
                "plan::bad_pool",
                format!("`{}` is not an address range", p.v),
            )
            .at(file, p.span.clone())
            .label("expected FIRST-LAST")
            .help("write the pool as \"10.10.0.100-10.10.0.199\""),
        );
        return None;
    };
    if lo > hi {
        diags.push(
            Diagnostic::error("plan::bad_pool", format!("pool `{}` runs backwards", p.v))
                .at(file, p.span.clone())
                .label("first address is after the last")
                .help(format!("write \"{hi}-{lo}\"")),
        );
        return None;
    }
    let usable =
        |ip: Ipv4Addr| subnet.contains(&ip) && ip != subnet.network() && ip != subnet.broadcast();
    if !usable(lo) || !usable(hi) {
        diags.push(
            Diagnostic::error(
                "plan::pool_outside_subnet",
                format!("pool {lo}-{hi} is not inside subnet {subnet}"),
            )
            .at(file, p.span.clone())
            .label("outside the subnet")
            .help(format!(
                "use addresses between {} and {}",
                Ipv4Addr::from(u32::from(subnet.network()).wrapping_add(1)),
                Ipv4Addr::from(u32::from(subnet.broadcast()).wrapping_sub(1))
            )),
        );
        return None;
    }
    Some((lo, hi))
}
