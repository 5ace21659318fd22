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
        links: Vec::new(),
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

/// `[snmp]`: version 2c with a community given inline or by environment
/// variable. Version 3 is refused by name until it is built.
fn compile_snmp(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    s: &crate::plan::raw::RawSnmp,
) -> Option<crate::plan::model::SnmpPlan> {
    if let Some(v) = &s.version {
        if v.v != "2c" {
            diags.push(
                Diagnostic::error(
                    "plan::snmp_version",
                    format!("SNMP version `{}` is not supported", v.v),
                )
                .at(file, v.span.clone())
                .label("expected \"2c\"")
                .help("ztpd reads LLDP-MIB with SNMP v2c; version 3 is not built yet"),
            );
            return None;
        }
    }
    let community = match (&s.community, &s.community_env) {
        (Some(c), None) => c.v.clone(),
        (None, Some(e)) => match std::env::var(&e.v) {
            Ok(c) if !c.is_empty() => c,
            _ => {
                diags.push(
                    Diagnostic::error(
                        "plan::snmp_community",
                        format!("environment variable `{}` is not set", e.v),
                    )
                    .at(file, e.span.clone())
                    .label("empty or unset")
                    .help("set it in ztpd's environment, or write community = \"...\""),
                );
                return None;
            }
        },
        _ => {
            diags.push(
                Diagnostic::error(
                    "plan::snmp_community",
                    "[snmp] needs exactly one of community and community_env",
                )
                .at(file, s.span.clone())
                .label("here")
                .help("write community = \"public\", or community_env = \"ZTPD_SNMP_COMMUNITY\""),
            );
            return None;
        }
    };
    Some(crate::plan::model::SnmpPlan { community })
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
