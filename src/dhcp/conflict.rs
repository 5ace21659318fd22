//! Identity conflicts (SPEC §4, issue 15 defect 5): a planned address is
//! never given to anyone else, and an address never has two live leases.
//! Serials are printed on boxes, so a client sending a planned device's
//! serial is that device only if its MAC agrees with the plan (when the plan
//! gives one) and no other machine holds the device's address. Otherwise it
//! is served as an unplanned client and the conflict becomes the device's
//! event.

use super::leases::{LeaseState, LeaseTable};
use super::packet::Request;
use super::view::Reservation;

/// A client that named a planned device but is not it (SPEC §4: a planned
/// address is never given to anyone else). It is served as unplanned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The planned device it claimed to be.
    pub device: String,
    /// The client's MAC, and the one the plan gives the device.
    pub mac: Option<[u8; 6]>,
    pub planned_mac: Option<[u8; 6]>,
    pub why: ConflictKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// It sent the device's serial, but the plan gives the device another MAC.
    WrongMac,
    /// The device's planned address has a live lease of another client.
    AddressHeld,
}

impl Conflict {
    /// A sentence for logs and the device's event.
    pub fn describe(&self) -> String {
        let mac = self.mac.map_or_else(
            || "no MAC".to_string(),
            |m| crate::plan::model::format_mac(&m),
        );
        match self.why {
            ConflictKind::WrongMac => format!(
                "DHCP client {mac} claimed the serial of {} but the plan gives it MAC {}: \
                 served as unplanned, without the planned address",
                self.device,
                self.planned_mac
                    .map_or_else(String::new, |m| crate::plan::model::format_mac(&m)),
            ),
            ConflictKind::AddressHeld => format!(
                "DHCP client {mac} claimed to be {} while another client holds its planned \
                 address: served as unplanned",
                self.device
            ),
        }
    }
}

/// Whether a client that named planned device `r` is not it: the plan
/// gives the device another MAC (checked against chaddr and a MAC in the
/// client-id), or another client with another MAC holds a live lease on
/// its planned address. A device whose client-id changes (boot loader, then
/// OS) keeps its MAC, so it is still itself.
pub fn conflict_with(
    r: &Reservation,
    req: &Request,
    client: &[u8],
    leases: &LeaseTable,
    now: u64,
) -> Option<Conflict> {
    let mac = req.mac();
    let conflict = |why| {
        Some(Conflict {
            device: r.name.clone(),
            mac,
            planned_mac: r.mac,
            why,
        })
    };
    if let Some(planned) = r.mac {
        if mac != Some(planned) && req.info.client_id_mac != Some(planned) {
            return conflict(ConflictKind::WrongMac);
        }
    }
    let held = r.ip.and_then(|ip| leases.get(ip)).is_some_and(|l| {
        matches!(l.state, LeaseState::Bound | LeaseState::Offered)
            && l.expires > now
            && l.client != client
            && l.mac != mac
    });
    if held {
        return conflict(ConflictKind::AddressHeld);
    }
    None
}

#[cfg(test)]
#[path = "conflict_tests.rs"]
mod tests;
