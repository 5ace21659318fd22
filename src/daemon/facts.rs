//! The daemon's answers to the file access hook (SPEC §5): which address
//! holds a device's lease (DHCP), and whether a SAS token is valid for a
//! device (the hub's enrollment key). Approval and hello addresses come from
//! the ZTP state.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use crate::clock::unix_now;
use crate::credentials::hub::Hub;
use crate::files::access::AccessFacts;
use crate::snapshot::SnapshotHandle;

pub struct DaemonFacts {
    pub snapshot: SnapshotHandle,
    /// The local hub, made on first need: when no hub.toml is loaded.
    pub local_hub: Mutex<Option<Arc<Hub>>>,
    /// Approvals and hello addresses.
    pub ztp: Arc<crate::ztp::Ztp>,
}

impl DaemonFacts {
    pub fn new(snapshot: SnapshotHandle, ztp: Arc<crate::ztp::Ztp>) -> DaemonFacts {
        DaemonFacts {
            snapshot,
            local_hub: Mutex::new(None),
            ztp,
        }
    }

    /// The hub devices belong to now: hub.toml as the serving snapshot
    /// loaded it, else the local hub. `None` (logged) when the local hub's
    /// key cannot be read or created.
    pub fn hub(&self) -> Option<Arc<Hub>> {
        let snap = self.snapshot.load();
        if let Some(h) = &snap.hub {
            return Some(h.clone());
        }
        let mut slot = self.local_hub.lock().ok()?;
        if slot.is_none() {
            match crate::credentials::hub::local(&snap.resolved) {
                Ok(h) => *slot = Some(Arc::new(h)),
                Err(e) => {
                    tracing::error!("local hub: {e}");
                    return None;
                }
            }
        }
        slot.clone()
    }
}

impl AccessFacts for DaemonFacts {
    fn leased_ip(&self, device_name: &str) -> Option<Ipv4Addr> {
        self.ztp.leased_ip(device_name)
    }

    fn leased_ip6(&self, device_name: &str) -> Option<std::net::Ipv6Addr> {
        self.ztp.leased_ip6(device_name)
    }

    fn hello_ip(&self, device_name: &str) -> Option<std::net::IpAddr> {
        self.ztp.hello_ip(device_name)
    }

    fn is_approved(&self, device_name: &str) -> bool {
        self.ztp.is_approved(device_name)
    }

    fn verify_sas(&self, device_id: &str, authorization: &str) -> bool {
        let Some(hub) = self.hub() else {
            return false;
        };
        hub.verify_sas(authorization.trim(), device_id, unix_now())
            .is_ok()
    }
}
