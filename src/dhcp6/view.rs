//! `Dhcp6View`: what the DHCPv6 handler needs from one plan version, indexed
//! for per-packet lookups (the IPv6 twin of `dhcp::view`).

use std::collections::HashMap;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;

use super::profiles::{boot_options6, BootOptions6};
use crate::dhcp::identity::ClientInfo;
use crate::plan::model::Model;
use crate::vendor::Vendor;

/// One served IPv6 subnet (a site's `[dhcp6]` section).
#[derive(Debug, Clone)]
pub struct Subnet6 {
    pub site: String,
    pub server_ip6: Ipv6Addr,
    pub interface: Option<String>,
    pub net: Ipv6Net,
    /// Inclusive dynamic range, as integers.
    pub pool: (u128, u128),
    pub valid_secs: u32,
    pub preferred_secs: u32,
    pub dns: Vec<Ipv6Addr>,
    pub domain: Option<String>,
    pub advertise: bool,
    pub router6: Option<Ipv6Addr>,
    /// Boot options for unplanned devices of a recognised vendor.
    pub by_vendor: HashMap<Vendor, BootOptions6>,
    /// Boot options for unplanned devices reporting a planned model string.
    pub by_model: HashMap<String, (Vendor, BootOptions6)>,
}

impl Subnet6 {
    pub fn in_pool(&self, ip: Ipv6Addr) -> bool {
        let n = u128::from(ip);
        n >= self.pool.0 && n <= self.pool.1
    }
}

/// A planned device known to DHCPv6.
#[derive(Debug, Clone)]
pub struct Reservation6 {
    pub subnet: usize,
    pub name: String,
    pub serial: String,
    /// Devices without `ip6` get a pool address but still their options.
    pub ip6: Option<Ipv6Addr>,
    pub vendor: Vendor,
    pub boot: BootOptions6,
}

#[derive(Debug, Clone, Default)]
pub struct Dhcp6View {
    pub subnets: Vec<Subnet6>,
    pub reservations: Vec<Reservation6>,
    by_duid: HashMap<Vec<u8>, usize>,
    by_serial: HashMap<String, usize>,
    by_mac: HashMap<[u8; 6], usize>,
    /// Planned address -> reservation: never given to anyone else.
    planned: HashMap<Ipv6Addr, usize>,
}

impl Dhcp6View {
    pub fn build(model: &Model, http_port: u16) -> Dhcp6View {
        let mut view = Dhcp6View::default();
        for site in &model.sites {
            // The compiler requires server_ip6 with [dhcp6].
            let (Some(d), Some(server)) = (&site.dhcp6, site.server_ip6) else {
                continue;
            };
            let idx = view.subnets.len();
            let valid = u32::try_from(d.lease_time.as_secs())
                .unwrap_or(u32::MAX)
                .max(60);
            let preferred = u32::try_from(d.preferred_time.as_secs())
                .unwrap_or(u32::MAX)
                .min(valid);
            view.subnets.push(Subnet6 {
                site: site.name.clone(),
                server_ip6: server,
                interface: d.interface.clone(),
                net: d.subnet,
                pool: (u128::from(d.pool.0), u128::from(d.pool.1)),
                valid_secs: valid,
                preferred_secs: preferred,
                dns: d.dns.clone(),
                domain: d.domain.clone(),
                advertise: d.advertise,
                router6: d.router6,
                by_vendor: Vendor::ALL
                    .into_iter()
                    .map(|v| (v, boot_options6(v, server, http_port)))
                    .collect(),
                by_model: site
                    .models
                    .values()
                    .map(|m| {
                        let b = boot_options6(m.vendor, server, http_port);
                        (m.match_model.clone(), (m.vendor, b))
                    })
                    .collect(),
            });
            for dev in &site.devices {
                let m = site.model_of(dev);
                let r = view.reservations.len();
                view.reservations.push(Reservation6 {
                    subnet: idx,
                    name: dev.name.clone(),
                    serial: dev.serial.clone(),
                    ip6: dev.ip6,
                    vendor: m.vendor,
                    boot: boot_options6(m.vendor, server, http_port),
                });
                if let Some(duid) = &dev.duid {
                    view.by_duid.insert(duid.clone(), r);
                }
                view.by_serial.insert(dev.serial.clone(), r);
                if let Some(mac) = dev.mac {
                    view.by_mac.insert(mac, r);
                }
                if let Some(ip) = dev.ip6 {
                    view.planned.insert(ip, r);
                }
            }
        }
        view
    }

    /// Identify a planned device (SPEC §11): DUID, then a serial from
    /// options 16/17, then the MAC (option 79, DUID-LL/LLT).
    pub fn find(
        &self,
        duid: Option<&[u8]>,
        info: &ClientInfo,
        mac: Option<[u8; 6]>,
    ) -> Option<&Reservation6> {
        let idx = duid
            .and_then(|d| self.by_duid.get(d))
            .or_else(|| info.serial.as_ref().and_then(|s| self.by_serial.get(s)))
            .or_else(|| mac.and_then(|m| self.by_mac.get(&m)))?;
        self.reservations.get(*idx)
    }

    pub fn planned_owner(&self, ip: Ipv6Addr) -> Option<&Reservation6> {
        self.planned
            .get(&ip)
            .and_then(|i| self.reservations.get(*i))
    }

    pub fn subnet_for(&self, ip: Ipv6Addr) -> Option<usize> {
        self.subnets.iter().position(|s| s.net.contains(&ip))
    }

    /// A local interface is served when a subnet names it or it has an
    /// address in one.
    pub fn subnet_for_interface(&self, ifname: &str, addrs: &[Ipv6Addr]) -> Option<usize> {
        self.subnets
            .iter()
            .position(|s| s.interface.as_deref() == Some(ifname))
            .or_else(|| addrs.iter().find_map(|a| self.subnet_for(*a)))
    }
}

/// The view of the current snapshot, rebuilt when its version changes.
pub type ViewSource6 = crate::dhcp::view_source::ViewSource<Dhcp6View>;

impl crate::dhcp::view_source::BuildView for Dhcp6View {
    const LOG: &'static str = "dhcpv6";
    fn build_view(model: &Model, http_port: u16) -> (Self, Vec<String>) {
        (Dhcp6View::build(model, http_port), Vec::new())
    }
}
