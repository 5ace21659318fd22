//! Zero-touch provisioning: the device protocol (SPEC §7), the per-device
//! state machine, approval, bootstrap scripts and the switch simulator.

pub mod api;
pub mod bootstrap;
pub mod client;
pub mod hello;
pub mod observe;
pub mod sim_dhcp;
pub mod simulate;
pub mod state;
pub mod topology;

/// The topology engine (one pure function, also behind `ztpd topology diff`).
pub use topology as engine;

use std::net::Ipv4Addr;
use std::sync::Arc;

use tokio::sync::Semaphore;

use state::Tracker;

/// Device requests handled at once; more get 503 and retry.
pub const MAX_IN_FLIGHT: usize = 1024;

/// ZTP's part of the daemon, shared by the device API and the operator API.
pub struct Ztp {
    pub tracker: Arc<Tracker>,
    pub limit: Semaphore,
    /// The DHCP lease table, when ztpd serves DHCP.
    pub leases: Option<Arc<crate::dhcp::server::Leases>>,
    pub snapshot: crate::snapshot::SnapshotHandle,
}

impl Ztp {
    /// Open the ZTP tables in the shared state store.
    pub fn open(
        state: &crate::state::StateStore,
        snapshot: crate::snapshot::SnapshotHandle,
        leases: Option<Arc<crate::dhcp::server::Leases>>,
    ) -> anyhow::Result<Arc<Ztp>> {
        Ok(Arc::new(Ztp {
            tracker: Tracker::open(state)?,
            limit: Semaphore::new(MAX_IN_FLIGHT),
            leases,
            snapshot,
        }))
    }

    /// Facts for the files access hook (SPEC §5): the planned address when
    /// ztpd's DHCP holds a bound, unexpired lease on it.
    pub fn leased_ip(&self, device: &str) -> Option<Ipv4Addr> {
        let snap = self.snapshot.load();
        let (_, d) = snap.model.device(device)?;
        let ip = d.ip?;
        let leases = self.leases.as_ref()?;
        let table = leases.table.lock().ok()?;
        let l = table.get(ip)?;
        let live = l.state == crate::dhcp::leases::LeaseState::Bound
            && l.expires > crate::dhcp::server::unix_now();
        live.then_some(ip)
    }
    /// The source address of the device's last hello, when it was approved.
    pub fn hello_ip(&self, device: &str) -> Option<Ipv4Addr> {
        let r = self.tracker.get(device)?;
        r.hello_ip.filter(|_| r.approved)
    }
    pub fn is_approved(&self, device: &str) -> bool {
        self.tracker.get(device).is_some_and(|r| r.approved)
    }
}
