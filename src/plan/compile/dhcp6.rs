//! The `[dhcp6]` table (SPEC §11): subnet, pool, DNS, lifetimes and Router
//! Advertisements; and the IPv6 side of a device (`ip6`, `duid`).

use std::net::Ipv6Addr;
use std::ops::Range;
use std::sync::Arc;

use ipnet::Ipv6Net;

use super::site::{check_interface, DEFAULT_LEASE};
use super::values::{duration, parse_ip6};
use crate::plan::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::plan::model::{Dhcp6Plan, Site};
use crate::plan::raw::{RawDhcp6, RawSite};
use crate::plan::reader::Sp;

/// DUIDs are 2 octets of type and at most 128 of data (RFC 8415 §11.1).
const DUID_MAX: usize = 130;

pub(super) fn compile_dhcp6(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    d: &RawDhcp6,
    site: &RawSite,
    server_ip6: Option<Ipv6Addr>,
) -> Option<Dhcp6Plan> {
    if server_ip6.is_none() && site.server_ip6.is_none() {
        diags.push(
            Diagnostic::error(
                "plan::missing_server_ip6",
                "[dhcp6] needs site.server_ip6, the address IPv6 devices reach ztpd at",
            )
            .at(file, d.span.start..d.span.start.saturating_add(1).min(d.span.end))
            .label("DHCPv6 served here")
            .help("add `server_ip6 = \"2001:db8:10::1\"` under [site] (option 59 URLs are built on it)"),
        );
    }
    let subnet = parse_subnet6(diags, file, d.subnet.as_ref()?)?;
    let pool = d
        .pool
        .as_ref()
        .and_then(|p| compile_pool6(diags, file, p, subnet));
    if let (Some(s), Some(raw)) = (server_ip6, &site.server_ip6) {
        if !subnet.contains(&s) {
            diags.push(
                Diagnostic::warning(
                    "plan::server_outside_subnet",
                    format!("site.server_ip6 {s} is outside subnet {subnet}"),
                )
                .at(file, raw.span.clone())
                .help(
                    "fine when DHCPv6 is relayed and routed; otherwise devices cannot reach ztpd",
                ),
            );
        }
    }
    let dns = d
        .dns
        .iter()
        .filter_map(|x| parse_ip6(diags, file, x, "dhcp6.dns"))
        .collect();
    let lease_time = match &d.lease_time {
        None => DEFAULT_LEASE,
        Some(l) => duration(diags, file, l, "dhcp6.lease_time").unwrap_or(DEFAULT_LEASE),
    };
    let preferred_time = match &d.preferred_time {
        None => lease_time / 8 * 5,
        Some(p) => {
            let t = duration(diags, file, p, "dhcp6.preferred_time").unwrap_or(lease_time);
            if t > lease_time {
                diags.push(
                    Diagnostic::error(
                        "plan::preferred_after_valid",
                        "dhcp6.preferred_time is longer than dhcp6.lease_time",
                    )
                    .at(file, p.span.clone())
                    .label("longer than the valid lifetime")
                    .help("RFC 8415 clients discard such addresses: make it at most lease_time"),
                );
            }
            t.min(lease_time)
        }
    };
    let router6 = d
        .router6
        .as_ref()
        .and_then(|r| parse_ip6(diags, file, r, "dhcp6.router6"));
    if let Some(i) = &d.interface {
        check_interface(diags, file, i);
    }
    Some(Dhcp6Plan {
        interface: d.interface.as_ref().map(|i| i.v.clone()),
        subnet,
        pool: pool.unwrap_or((subnet.network(), subnet.network())),
        dns,
        domain: d.domain.as_ref().map(|x| x.v.clone()),
        lease_time,
        preferred_time,
        advertise: d.advertise.as_ref().is_some_and(|a| a.v),
        router6,
    })
}

fn parse_subnet6(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    v: &Sp<String>,
) -> Option<Ipv6Net> {
    match v.v.trim().parse::<Ipv6Net>() {
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
                Diagnostic::error(
                    "plan::bad_subnet",
                    format!("`{}` is not an IPv6 subnet", v.v),
                )
                .at(file, v.span.clone())
                .label("expected address/prefix")
                .help("write it as network/prefix, e.g. \"2001:db8:10::/64\""),
            );
            None
        }
    }
}

fn compile_pool6(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    p: &Sp<String>,
    subnet: Ipv6Net,
) -> Option<(Ipv6Addr, Ipv6Addr)> {
    let parsed = p.v.split_once('-').and_then(|(a, b)| {
        Some((
            a.trim().parse::<Ipv6Addr>().ok()?,
            b.trim().parse::<Ipv6Addr>().ok()?,
        ))
    });
    let Some((lo, hi)) = parsed else {
        diags.push(
            Diagnostic::error(
                "plan::bad_pool",
                format!("`{}` is not an IPv6 address range", p.v),
            )
            .at(file, p.span.clone())
            .label("expected FIRST-LAST")
            .help("write the pool as \"2001:db8:10::1000-2001:db8:10::1fff\""),
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
    let usable = |ip: Ipv6Addr| subnet.contains(&ip) && ip != subnet.network();
    if !usable(lo) || !usable(hi) {
        diags.push(
            Diagnostic::error(
                "plan::pool_outside_subnet",
                format!("pool {lo}-{hi} is not inside subnet {subnet}"),
            )
            .at(file, p.span.clone())
            .label("outside the subnet")
            .help(format!(
                "use addresses inside {subnet}, not its network address"
            )),
        );
        return None;
    }
    Some((lo, hi))
}

/// A planned IPv6 address: inside the `[dhcp6]` subnet, outside its pool,
/// not ztpd's own.
pub(super) fn check_ip6_placement(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    span: &Range<usize>,
    ip: Ipv6Addr,
    site: &Site,
) {
    if Some(ip) == site.server_ip6 {
        diags.push(
            Diagnostic::error(
                "plan::ip6_is_server",
                format!("{ip} is site.server_ip6, ztpd's own address"),
            )
            .at(file, span.clone())
            .label("taken by ztpd")
            .help("give the device another address"),
        );
    }
    let Some(d) = &site.dhcp6 else { return };
    if !d.subnet.contains(&ip) || ip == d.subnet.network() {
        diags.push(
            Diagnostic::error(
                "plan::ip6_outside_subnet",
                format!("{ip} is outside the DHCPv6 subnet {}", d.subnet),
            )
            .at(file, span.clone())
            .label("outside the subnet")
            .help(format!("use an address in {} outside the pool", d.subnet)),
        );
    } else if d.pool.0 <= ip && ip <= d.pool.1 && d.pool.0 != d.subnet.network() {
        let (lo, hi) = d.pool;
        diags.push(
            Diagnostic::error(
                "plan::ip6_in_pool",
                format!("{ip} is inside the dynamic pool {lo}-{hi}"),
            )
            .at(file, span.clone())
            .label("inside the pool")
            .help(
                "planned addresses must be outside dhcp6.pool, or an unplanned device could be \
                 leased it first",
            ),
        );
    }
}

/// `00:03:00:01:00:1c:73:aa:bb:13` (also `-`-separated or plain hex) ->
/// bytes; a bad one is reported.
pub(super) fn parse_duid(
    diags: &mut Diagnostics,
    file: &Arc<SourceFile>,
    v: &Sp<String>,
) -> Option<Vec<u8>> {
    match duid_bytes(&v.v) {
        Some(b) => Some(b),
        None => {
            diags.push(
                Diagnostic::error("plan::bad_duid", format!("`{}` is not a DUID", v.v))
                    .at(file, v.span.clone())
                    .label("expected hex octets")
                    .help(
                        "write the DUID as colon-separated hex octets, type first, 3 to 130 \
                         octets, e.g. \"00:03:00:01:00:1c:73:aa:bb:13\" (DUID-LL)",
                    ),
            );
            None
        }
    }
}

/// The DUID's bytes, or `None` when it is not 3 to 130 hex octets.
pub fn duid_bytes(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    let groups: Vec<&str> = if s.contains([':', '-']) {
        s.split([':', '-']).collect()
    } else {
        if s.len() % 2 != 0 || !s.is_ascii() {
            return None;
        }
        (0..s.len()).step_by(2).map(|i| &s[i..i + 2]).collect()
    };
    let bytes = groups
        .iter()
        .map(|g| {
            (g.len() == 2 || g.len() == 1)
                .then(|| u8::from_str_radix(g, 16).ok())
                .flatten()
        })
        .collect::<Option<Vec<u8>>>()?;
    (3..=DUID_MAX).contains(&bytes.len()).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::duid_bytes;

    #[test]
    fn duids_parse_in_the_written_forms() {
        let want = vec![0, 3, 0, 1, 0, 0x1c, 0x73, 0xaa, 0xbb, 0x13];
        assert_eq!(
            duid_bytes("00:03:00:01:00:1c:73:aa:bb:13"),
            Some(want.clone())
        );
        assert_eq!(
            duid_bytes("00-03-00-01-00-1C-73-AA-BB-13"),
            Some(want.clone())
        );
        assert_eq!(duid_bytes("000300010 01c73aabb13"), None);
        assert_eq!(duid_bytes("00030001001c73aabb13"), Some(want));
        assert_eq!(duid_bytes("00:03"), None);
        assert_eq!(duid_bytes("zz:03:00"), None);
        assert_eq!(duid_bytes(&"00:".repeat(131)), None);
    }
}
