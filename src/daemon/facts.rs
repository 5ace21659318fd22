//! The daemon's answers to the file access hook (SPEC §5): which address
//! holds a device's lease (DHCP), and whether a SAS token is valid for a
//! device (the hub's enrollment key). Approval and hello addresses come from
//! the ZTP state.

use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

use crate::clock::unix_now;
use crate::credentials::hub::Hub;
use crate::files::access::AccessFacts;
use crate::snapshot::SnapshotHandle;

pub struct DaemonFacts {
    pub snapshot: SnapshotHandle,
    /// Reloaded with the plans (hub.toml is watched).
    pub hub: RwLock<Option<Arc<Hub>>>,
    /// Approvals and hello addresses.
    pub ztp: Arc<crate::ztp::Ztp>,
}

impl DaemonFacts {
    /// Re-read the hub settings; on error keep the previous hub and log why.
    pub fn reload_hub(&self) {
        let snap = self.snapshot.load();
        match crate::credentials::hub::load(&snap.resolved) {
            Ok(h) => {
                if let Ok(mut slot) = self.hub.write() {
                    *slot = Some(Arc::new(h));
                }
            }
            Err(e) => tracing::error!(
                "hub settings: {e}; SAS tokens are checked against the previous hub"
            ),
        }
    }
}

impl AccessFacts for DaemonFacts {
    fn leased_ip(&self, device_name: &str) -> Option<Ipv4Addr> {
        self.ztp.leased_ip(device_name)
    }

    fn hello_ip(&self, device_name: &str) -> Option<Ipv4Addr> {
        self.ztp.hello_ip(device_name)
    }

    fn is_approved(&self, device_name: &str) -> bool {
        self.ztp.is_approved(device_name)
    }

    fn verify_sas(&self, device_id: &str, authorization: &str) -> bool {
        let Some(hub) = self.hub.read().ok().and_then(|h| h.clone()) else {
            return false;
        };
        hub.verify_sas(authorization.trim(), device_id, unix_now())
            .is_ok()
    }
}
