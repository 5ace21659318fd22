//! `DhcpView`: what the DHCP handler needs from one plan version, indexed for
//! per-packet lookups. Built once per snapshot; the handler never sees plan types.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::identity::ClientInfo;
use super::profiles::{boot_options, BootOptions, ServerAddrs};
use crate::plan::model::Model;
use crate::vendor::Vendor;

/// One served subnet (a site's `[dhcp]` section).
#[derive(Debug, Clone)]
pub struct SubnetView {
    pub site: String,
    pub server_ip: Ipv4Addr,
    /// `server_ip` as text, for the BOOTP `sname` field of every reply.
    pub sname: Vec<u8>,
    pub interface: Option<String>,
    pub net: Ipv4Net,
    /// Inclusive dynamic range, as integers.
    pub pool: (u32, u32),
    pub lease_secs: u32,
    /// Options every reply in this subnet carries (1, 3, 6, 15).
    pub common: Vec<(u8, Vec<u8>)>,
    /// Boot options for unplanned devices of a recognised vendor.
    pub by_vendor: HashMap<Vendor, BootOptions>,
    /// Boot options for unplanned devices reporting a planned model string.
    pub by_model: HashMap<String, (Vendor, BootOptions)>,
}

impl SubnetView {
    pub fn pool_size(&self) -> u32 {
        self.pool.1.saturating_sub(self.pool.0).saturating_add(1)
    }
    pub fn in_pool(&self, ip: Ipv4Addr) -> bool {
        let n = u32::from(ip);
        n >= self.pool.0 && n <= self.pool.1
    }
}

/// A planned device known to DHCP.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub subnet: usize,
    pub name: String,
    pub serial: String,
    /// Devices without `ip` get a pool address but still their options.
    pub ip: Option<Ipv4Addr>,
    /// The planned MAC: a client claiming this serial with another MAC is
    /// not this device.
    pub mac: Option<[u8; 6]>,
    pub vendor: Vendor,
    pub boot: BootOptions,
}

#[derive(Debug, Clone, Default)]
pub struct DhcpView {
    pub subnets: Vec<SubnetView>,
    pub reservations: Vec<Reservation>,
    by_serial: HashMap<String, usize>,
    by_mac: HashMap<[u8; 6], usize>,
    /// Planned address -> reservation: never given to anyone else.
    planned: HashMap<Ipv4Addr, usize>,
}

impl DhcpView {
    /// Build from the model. Problems that the plan checks cannot see (an
    /// override that does not encode) are returned as warnings and the
    /// override is dropped for that device.
    pub fn build(model: &Model, http_port: u16) -> (DhcpView, Vec<String>) {
        let mut view = DhcpView::default();
        let mut warnings = Vec::new();
        for site in &model.sites {
            // The compiler requires server_ip with [dhcp].
            let (Some(d), Some(server_ip)) = (&site.dhcp, site.server_ip) else {
                continue;
            };
            let srv = ServerAddrs {
                server_ip,
                http_port,
            };
            let mut common = vec![(1, d.subnet.netmask().octets().to_vec())];
            if let Some(r) = d.router {
                common.push((3, r.octets().to_vec()));
            }
            if !d.dns.is_empty() {
                common.push((6, d.dns.iter().flat_map(|a| a.octets()).collect()));
            }
            if let Some(dom) = &d.domain {
                common.push((15, dom.as_bytes().to_vec()));
            }
            let mut by_vendor = HashMap::new();
            for v in Vendor::ALL {
                if let Ok(b) = boot_options(v, srv, None, None) {
                    by_vendor.insert(v, b);
                }
            }
            let mut by_model = HashMap::new();
            for m in site.models.values() {
                match boot_options(m.vendor, srv, None, Some(m)) {
                    Ok(b) => {
                        by_model.insert(m.match_model.clone(), (m.vendor, b));
                    }
                    Err(e) => warnings.push(format!("site {}: {e}", site.name)),
                }
            }
            let idx = view.subnets.len();
            view.subnets.push(SubnetView {
                site: site.name.clone(),
                server_ip,
                sname: server_ip.to_string().into_bytes(),
                interface: d.interface.clone(),
                net: d.subnet,
                pool: (u32::from(d.pool.0), u32::from(d.pool.1)),
                lease_secs: u32::try_from(d.lease_time.as_secs())
                    .unwrap_or(u32::MAX)
                    .max(60),
                common,
                by_vendor,
                by_model,
            });
            for dev in &site.devices {
                let m = site.model_of(dev);
                let boot = match boot_options(m.vendor, srv, Some(dev), Some(m)) {
                    Ok(b) => b,
                    Err(e) => {
                        warnings.push(format!("device {}: {e}", dev.name));
                        boot_options(m.vendor, srv, Some(dev), None).unwrap_or_default()
                    }
                };
                let r = view.reservations.len();
                view.reservations.push(Reservation {
                    subnet: idx,
                    name: dev.name.clone(),
                    serial: dev.serial.clone(),
                    ip: dev.ip,
                    mac: dev.mac,
                    vendor: m.vendor,
                    boot,
                });
                if dev.has_serial() {
                    view.by_serial.insert(dev.serial.clone(), r);
                }
                if let Some(mac) = dev.mac {
                    view.by_mac.insert(mac, r);
                }
                if let Some(ip) = dev.ip {
                    view.planned.insert(ip, r);
                }
            }
        }
        (view, warnings)
    }

    /// Identify a planned device: serial first, then the MAC named in the
    /// client-id, then chaddr (SPEC §4).
    pub fn find(&self, info: &ClientInfo, chaddr_mac: Option<[u8; 6]>) -> Option<&Reservation> {
        let idx = info
            .serial
            .as_ref()
            .and_then(|s| self.by_serial.get(s))
            .or_else(|| info.client_id_mac.and_then(|m| self.by_mac.get(&m)))
            .or_else(|| chaddr_mac.and_then(|m| self.by_mac.get(&m)))?;
        self.reservations.get(*idx)
    }

    /// The reservation that owns a planned address, if any.
    pub fn planned_owner(&self, ip: Ipv4Addr) -> Option<&Reservation> {
        self.planned
            .get(&ip)
            .and_then(|i| self.reservations.get(*i))
    }

    /// The subnet containing `ip`.
    pub fn subnet_for(&self, ip: Ipv4Addr) -> Option<usize> {
        self.subnets.iter().position(|s| s.net.contains(&ip))
    }

    /// Whether a local interface may be served: it has an address in a plan
    /// subnet, or a subnet names it.
    pub fn subnet_for_interface(&self, ifname: &str, addrs: &[Ipv4Addr]) -> Option<usize> {
        self.subnets
            .iter()
            .position(|s| s.interface.as_deref() == Some(ifname))
            .or_else(|| addrs.iter().find_map(|a| self.subnet_for(*a)))
    }
}

/// The DHCP view of the current snapshot, rebuilt when the snapshot version
/// changes (reloads), or a fixed view for tests and load tools.
pub type ViewSource = super::view_source::ViewSource<DhcpView>;

impl super::view_source::BuildView for DhcpView {
    const LOG: &'static str = "dhcp";
    fn build_view(model: &Model, http_port: u16) -> (Self, Vec<String>) {
        DhcpView::build(model, http_port)
    }
}
