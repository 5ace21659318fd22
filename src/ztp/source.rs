//! Whose reports count (SPEC §7, `access.hello`).
//!
//! Serials are printed on boxes, so a hello naming one proves nothing. Under
//! `leased` (the default) a report changes a device's state only when it
//! comes from the address ztpd leased to that device or from its planned
//! `ip`; from anywhere else it is answered but changes nothing. A device
//! with neither `mac` nor `ip` never uses ztpd's DHCP, so no address can
//! vouch for it: it is approved only by an operator, and once approved only
//! the address its approved hello came from counts. `any` trusts every
//! address (labs, simulators, devices behind NAT).

use std::net::{IpAddr, Ipv6Addr};

use super::state::Record;
use super::Ztp;
use crate::dhcp::leases::LeaseState;
use crate::plan::model::Device;
use crate::settings::HelloAccess;

/// Whether a device's identity can be tied to an address at all.
pub fn has_address(dev: &Device) -> bool {
    dev.mac.is_some() || dev.ip.is_some() || dev.ip6.is_some() || dev.duid.is_some()
}

impl Ztp {
    fn hello_access(&self) -> HelloAccess {
        self.snapshot.load().resolved.settings.access.hello
    }

    /// Whether `ip` is the device's planned address (`ip` or `ip6`), or holds
    /// a live DHCPv4 or DHCPv6 lease that ztpd gave to the device.
    pub fn is_device_address(&self, dev: &Device, ip: IpAddr) -> bool {
        let ip = match crate::addr::canonical(ip) {
            IpAddr::V4(v4) => v4,
            IpAddr::V6(v6) => return self.is_device_address6(dev, v6),
        };
        if dev.ip == Some(ip) {
            return true;
        }
        let Some(mac) = dev.mac else { return false };
        let Some(leases) = &self.leases else {
            return false;
        };
        let Ok(table) = leases.table.lock() else {
            return false;
        };
        table.get(ip).is_some_and(|l| {
            l.state == LeaseState::Bound
                && l.expires > crate::clock::unix_now()
                && l.mac == Some(mac)
        })
    }

    /// The IPv6 side: its planned `ip6`, or a live DHCPv6 lease given to it
    /// (bound for this device by name, or to its planned MAC).
    fn is_device_address6(&self, dev: &Device, ip: Ipv6Addr) -> bool {
        if dev.ip6 == Some(ip) {
            return true;
        }
        let Some(leases) = self.leases6.get() else {
            return false;
        };
        let Ok(table) = leases.table.lock() else {
            return false;
        };
        table.get(ip).is_some_and(|l| {
            l.live(crate::clock::unix_now())
                && (l.hostname.as_deref() == Some(dev.name.as_str())
                    || (dev.mac.is_some() && l.mac == dev.mac))
        })
    }

    /// Whether a hello of `dev` from `ip` may change its state.
    pub fn hello_counts(&self, dev: &Device, rec: Option<&Record>, ip: Option<IpAddr>) -> bool {
        if self.hello_access() == HelloAccess::Any {
            return true;
        }
        let Some(ip) = ip else { return false };
        if has_address(dev) {
            return self.is_device_address(dev, ip);
        }
        // Approved by an operator: only the address it was approved at.
        match rec {
            Some(r) if r.approved => r.hello_ip.is_none_or(|h| h == ip),
            _ => true,
        }
    }

    /// Whether an operator's approval of `dev` must name the address it is
    /// approved at (SPEC §8): under `leased`, a device with neither `mac`
    /// nor `ip` is tied to no address but the one its approval names, so
    /// the approval is of the pending hello's address the operator saw, not
    /// of whoever says hello next.
    pub fn approval_needs_address(&self, dev: &Device) -> bool {
        self.hello_access() == HelloAccess::Leased && !has_address(dev)
    }

    /// Whether a hello may approve `dev` without an operator.
    pub fn may_auto_approve(&self, dev: &Device) -> bool {
        self.hello_access() == HelloAccess::Any || has_address(dev)
    }

    /// Whether progress (and action polls) of `dev` from `ip` are accepted.
    pub fn progress_counts(&self, dev: &Device, rec: Option<&Record>, ip: Option<IpAddr>) -> bool {
        let Some(ip) = ip.map(crate::addr::canonical) else {
            return false;
        };
        let hello_ip = rec.and_then(|r| r.hello_ip);
        match self.hello_access() {
            HelloAccess::Any => {
                let known = [
                    self.leased_ip(&dev.name).map(IpAddr::V4),
                    self.leased_ip6(&dev.name).map(IpAddr::V6),
                    rec.and_then(|r| r.leased_ip).map(IpAddr::V4),
                    hello_ip,
                ];
                known.contains(&Some(ip))
            }
            HelloAccess::Leased if has_address(dev) => self.is_device_address(dev, ip),
            HelloAccess::Leased => rec.is_some_and(|r| r.approved) && hello_ip == Some(ip),
        }
    }
}
