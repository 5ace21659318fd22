//! Zero-touch provisioning: the device protocol (SPEC §7), the per-device
//! state machine, approval, bootstrap scripts and the switch simulator.

pub mod api;
pub mod bootstrap;
pub mod client;
pub mod db;
pub mod hello;
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
}

impl Ztp {
    pub fn new(tracker: Arc<Tracker>) -> Arc<Ztp> {
        Arc::new(Ztp {
            tracker,
            limit: Semaphore::new(MAX_IN_FLIGHT),
        })
    }

    /// Open the ZTP state under `paths.state`.
    pub fn open(resolved: &crate::settings::Resolved) -> anyhow::Result<Arc<Ztp>> {
        let store =
            db::StateStore::open(&resolved.state_dir(), resolved.settings.state.durability)?;
        Ok(Ztp::new(Tracker::open(store)?))
    }

    /// Facts for the files access hook (SPEC §5).
    pub fn leased_ip(&self, device: &str) -> Option<Ipv4Addr> {
        self.tracker.get(device)?.leased_ip
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
