//! Zero-touch provisioning: the device protocol (SPEC §7), the per-device
//! state machine, approval, bootstrap scripts and the switch simulator.

pub mod actions;
pub mod agent;
pub mod api;
pub mod bindings;
pub mod bootstrap;
pub mod drift;
pub mod hello;
pub mod identify;
pub mod observe;
pub mod position;
pub mod refusals;
pub mod sim_device;
pub mod sim_dhcp;
pub mod sim_dhcp6;
pub mod simulate;
pub mod sonic;
pub mod source;
pub mod state;
pub mod strangers;

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::topology::{ReportIndex, Reported};
use state::{Record, Tracker};

use crate::plan::model::Model;
use crate::snapshot::Snapshot;

/// Device requests handled at once; more get 503 and retry.
pub const MAX_IN_FLIGHT: usize = 1024;

/// ZTP's part of the daemon, shared by the device API and the operator API.
pub struct Ztp {
    pub tracker: Arc<Tracker>,
    /// Durable actions for devices (SPEC §7).
    pub actions: Arc<actions::ActionStore>,
    pub limit: Semaphore,
    /// The DHCP lease table, when ztpd serves DHCP.
    pub leases: Option<Arc<crate::dhcp::leases::Leases>>,
    /// The DHCPv6 lease table, set once by the daemon.
    pub leases6: std::sync::OnceLock<Arc<crate::dhcp6::leases::Leases6>>,
    pub snapshot: crate::snapshot::SnapshotHandle,
    /// Serials bound to planned devices at run time (SPEC §12).
    pub bindings: Arc<bindings::Bindings>,
    /// Hellos that are no planned device and fit no place.
    pub strangers: strangers::Strangers,
    /// Deployed devices' topology read over SNMP (SPEC §12).
    pub drift: Arc<drift::Drift>,
    /// The stored reports, indexed so that a hello is checked against its
    /// neighbourhood rather than the whole fleet (`local`).
    reports: Mutex<ReportIndex>,
    /// Refused reports, one event a minute per device and address.
    pub refusals: refusals::Refusals,
}

/// A device's stored report (last hello, or a root's report), if it has one.
fn report_of(name: &str, r: &Record) -> Option<Reported> {
    if r.observed.is_empty() && r.reported_model.is_none() {
        return None;
    }
    Some(Reported {
        device: name.to_string(),
        model: r.reported_model.clone(),
        neighbors: r
            .observed
            .iter()
            .filter_map(|n| serde_json::from_value(n.clone()).ok())
            .collect(),
    })
}

impl Ztp {
    /// Open the ZTP tables in the shared state store.
    pub fn open(
        state: &crate::state::StateStore,
        snapshot: crate::snapshot::SnapshotHandle,
        leases: Option<Arc<crate::dhcp::leases::Leases>>,
    ) -> anyhow::Result<Arc<Ztp>> {
        let tracker = Tracker::open(state)?;
        // Read at start: a reload does not change it.
        tracker.keep_events(snapshot.load().resolved.settings.limits.device_events);
        Ok(Arc::new(Ztp {
            tracker,
            actions: actions::ActionStore::open(state)?,
            bindings: bindings::Bindings::open(state)?,
            strangers: Default::default(),
            drift: Default::default(),
            limit: Semaphore::new(MAX_IN_FLIGHT),
            leases,
            leases6: std::sync::OnceLock::new(),
            snapshot,
            reports: Mutex::default(),
            refusals: refusals::Refusals::default(),
        }))
    }

    /// Where `name`'s actions also go over MQTT: the device id of a device
    /// with a credential (a `device_function`); switches use the long-poll.
    pub fn mqtt_id(&self, name: &str) -> Option<String> {
        let snap = self.snapshot.load();
        let (_, d) = snap.model.device(name)?;
        d.device_function.as_ref().map(|_| d.serial.clone())
    }

    /// Queue an action for planned device `name` and wait for its commit.
    pub async fn queue_action(
        &self,
        name: &str,
        kind: &str,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<serde_json::Value, crate::state::WriteError> {
        let mqtt = self.mqtt_id(name);
        self.actions
            .queue(name, mqtt.as_deref(), kind, fields)
            .await
    }

    /// Every planned device's stored report, in plan order.
    pub fn stored_reports(&self, model: &Model) -> Vec<Reported> {
        self.tracker
            .with_records(|records| {
                model
                    .devices()
                    .filter_map(|(_, d)| report_of(&d.name, records.get(&d.name)?))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The stored reports a hello of `mine` is checked against (what the
    /// other devices said: a cable is judged from both ends, so two
    /// exchanged cables read as one swap): its neighbourhood, or every
    /// report when a hub makes that unsafe.
    pub fn reports_for_hello(&self, snap: &Snapshot, mine: &Reported) -> Vec<Reported> {
        let Ok(mut index) = self.reports.lock() else {
            // Poisoned by a panic elsewhere: check against every report.
            let mut all = self.stored_reports(&snap.model);
            all.retain(|r| r.device != mine.device);
            return all;
        };
        if !index.is_for(snap.version) && !index.follow(&snap.topology, snap.version) {
            let all = self.stored_reports(&snap.model);
            index.rebuild(&snap.topology, snap.version, all);
        }
        index
            .near(&snap.topology, mine)
            .unwrap_or_else(|| index.all_but(&snap.topology, &mine.device))
    }

    /// Bring the index up to date after `name`'s report was stored. When the
    /// plan changed meanwhile the index is rebuilt from the tracker at its
    /// next use instead.
    pub fn report_stored(&self, name: &str) {
        let snap = self.snapshot.load();
        let Ok(mut index) = self.reports.lock() else {
            return;
        };
        if !index.is_for(snap.version) && !index.follow(&snap.topology, snap.version) {
            return;
        }
        match self.tracker.get(name).and_then(|r| report_of(name, &r)) {
            Some(r) => index.set(&snap.topology, r),
            None => index.remove(name),
        }
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
            && l.expires > crate::clock::unix_now();
        live.then_some(ip)
    }
    /// The planned IPv6 address when ztpd's DHCPv6 holds a bound, unexpired
    /// lease on it (SPEC §11: both leases count).
    pub fn leased_ip6(&self, device: &str) -> Option<std::net::Ipv6Addr> {
        let snap = self.snapshot.load();
        let (_, d) = snap.model.device(device)?;
        let ip = d.ip6?;
        let table = self.leases6.get()?.table.lock().ok()?;
        table
            .get(ip)
            .is_some_and(|l| l.live(crate::clock::unix_now()))
            .then_some(ip)
    }

    /// The source address of the device's last hello, when it was approved.
    pub fn hello_ip(&self, device: &str) -> Option<std::net::IpAddr> {
        let r = self.tracker.get(device)?;
        r.hello_ip.filter(|_| r.approved)
    }
    pub fn is_approved(&self, device: &str) -> bool {
        self.tracker.get(device).is_some_and(|r| r.approved)
    }
}
