//! The local hub's state and what the rest of ztpd asks of it
//! (devicebound events, desired-property patches, reported properties):
//! the registry of connected devices, twins, outbox and the settings view.
//! The listeners live in [`super::server`], one connection in
//! [`super::session`]; both use this, and this uses neither.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use serde_json::Value;

use super::acl::Subscription;
use super::outbox::Outbox;
use super::registry::{Push, Registry};
use super::stats::HubStats;
use super::twins::Twins;
use super::view::HubView;
use crate::limits::RateLimitedLog;
use crate::metrics::MetricsSource;
use crate::state::StateStore;
use crate::telemetry::pipeline::Ingest;

pub struct LocalHub {
    view: ArcSwap<HubView>,
    pub(super) ingest: Ingest,
    pub(super) twins: Twins,
    pub(super) outbox: Outbox,
    pub(super) stats: Arc<HubStats>,
    pub(super) registry: Arc<Registry>,
    pub(super) registrations: super::registrations::Registrations,
    pub(super) calls: super::calls::Calls,
    /// Writes registering devices' identities in groups.
    pub(super) identities: crate::credentials::IdentityWriter,
    refusals: Mutex<RateLimitedLog>,
}

/// `$twin` in routes reads the hub's twins.
impl crate::telemetry::routing::stage::TwinSource for LocalHub {
    fn twin(&self, device_id: &str) -> Option<Value> {
        let tags = self.view().planned.get(device_id).map(|p| p.tags.clone());
        match (self.twins.routing_document(device_id), tags) {
            (Some(mut doc), Some(tags)) => {
                doc["tags"] = tags;
                Some(doc)
            }
            (Some(doc), None) => Some(doc),
            (None, Some(tags)) => Some(serde_json::json!({"tags": tags})),
            (None, None) => None,
        }
    }
}

impl LocalHub {
    pub fn open(
        state: &StateStore,
        view: HubView,
        ingest: Ingest,
    ) -> anyhow::Result<Arc<LocalHub>> {
        Ok(Arc::new(LocalHub {
            view: ArcSwap::from_pointee(view),
            ingest,
            twins: Twins::open(state)?,
            outbox: Outbox::open(state)?,
            stats: Arc::new(HubStats::default()),
            registry: Arc::default(),
            registrations: super::registrations::Registrations::open(state)?,
            calls: Default::default(),
            identities: {
                let writer = state.writer();
                crate::credentials::IdentityWriter::start(move || {
                    writer.durability() == crate::settings::Durability::Fsync
                })?
            },
            refusals: Mutex::new(RateLimitedLog::new(Duration::from_secs(1))),
        }))
    }

    /// Hand an event of the hub (SPEC §14 sources other than device
    /// messages) to the routing stage; never waits.
    pub fn route_event(
        &self,
        source: crate::telemetry::routing::Source,
        device_id: &str,
        op_type: &str,
        body: &serde_json::Value,
    ) {
        self.ingest.route_event(source, device_id, op_type, body);
    }

    pub fn metrics(&self) -> Arc<dyn MetricsSource> {
        self.stats.clone()
    }

    /// What the hub knows of the daemon now.
    pub fn view(&self) -> Arc<HubView> {
        self.view.load_full()
    }

    /// A new snapshot (or hub.toml) was loaded: its view.
    pub fn set_view(&self, view: HubView) {
        self.view.store(Arc::new(view));
    }

    /// Every device identity the hub knows (SPEC §13 `GET /api/v1/hub/devices`):
    /// credential files, registrations and planned devices, by id.
    pub fn devices(&self, snap: &crate::snapshot::Snapshot) -> Vec<Value> {
        use std::collections::BTreeSet;
        let view = self.view();
        let store = crate::credentials::Store::new(&view.credentials_dir);
        let registrations: std::collections::HashMap<_, _> = self
            .registrations
            .list()
            .into_iter()
            .map(|r| (r.registration_id.clone(), r))
            .collect();
        let mut ids: BTreeSet<String> = store.list_ids().unwrap_or_default().into_iter().collect();
        ids.extend(registrations.keys().cloned());
        ids.extend(snap.model.devices().map(|(_, d)| d.serial.clone()));
        ids.into_iter()
            .map(|id| {
                let name = store.read(&id).ok().flatten().map(|c| c.device_name);
                let (connected, last_seen) = self.registry.presence(&id);
                let reg = registrations.get(&id);
                serde_json::json!({
                    "device_id": id,
                    "device_name": name,
                    "connected": connected,
                    "last_seen": last_seen,
                    "registered_at": reg.map(|r| r.created.clone()),
                    "assigned_hub": reg.map(|r| r.assigned_hub.clone()),
                    "registration_payload": reg.map(|r| r.payload.clone()),
                    "planned": snap.model.device(&id).map(|(_, d)| d.name.clone()),
                })
            })
            .collect()
    }

    /// The device id of each twin change from now on (`twin` events of
    /// `GET /api/v1/events`).
    pub fn twin_changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.twins.changes()
    }

    /// A device's reported properties (for `GET /api/v1/devices`).
    pub fn reported(&self, device_id: &str) -> Option<Value> {
        self.twins.reported(device_id)
    }

    pub(super) fn log_refusal(&self, why: &str) {
        if let Ok(mut l) = self.refusals.lock() {
            l.warn("local hub refused a client", &why);
        }
    }

    /// Queue a devicebound message (QoS 1, kept until acknowledged).
    pub fn send_devicebound(&self, device_id: &str, payload: Bytes) {
        self.outbox
            .push(device_id, crate::topics::devicebound(device_id), payload);
        self.registry.push(device_id, Push::Devicebound);
    }

    /// A device's function as the plan gives it; `None` when the plan
    /// gives it none.
    pub(super) fn planned_function(&self, device_id: &str) -> Option<Value> {
        self.view().planned_function(device_id).cloned()
    }

    /// The function of a device the plan gives none: `None` when its twin
    /// has desired properties already, else (once) its credential's.
    pub(super) fn unplanned_function(&self, device_id: &str) -> Option<Value> {
        if self.twins.has_desired(device_id) {
            return None;
        }
        Some(self.credential_function(device_id))
    }

    fn credential_function(&self, device_id: &str) -> Value {
        let view = self.view();
        let store = crate::credentials::store::Store::new(&view.credentials_dir);
        store
            .read(device_id)
            .ok()
            .flatten()
            .map_or(Value::Null, |c| c.device_function)
    }

    /// Bring a device's `device_function` in step with the plan (or its
    /// new credential) and, when it changed, publish the patch to it if it
    /// is connected.
    pub async fn sync_desired(&self, device_id: &str) {
        let function = self
            .planned_function(device_id)
            .unwrap_or_else(|| self.credential_function(device_id));
        match self.twins.set_function(device_id, function).await {
            Ok(Some((version, patch))) => self.publish_desired(device_id, patch, version),
            Ok(None) => {}
            Err(e) => tracing::warn!(device_id, "desired properties not saved: {e}"),
        }
    }

    /// A device's twin for the operator (SPEC §13): desired (its function
    /// brought up to date) and reported, with their `$version`s.
    pub async fn twin(&self, device_id: &str) -> Result<Value, String> {
        let function = self
            .planned_function(device_id)
            .or_else(|| self.unplanned_function(device_id));
        self.twins.document(device_id, function).await
    }

    /// Merge an operator's desired patch, commit it, and publish it (with
    /// its `$version`) to the device when it is connected. The caller has
    /// refused `device_function`.
    pub async fn patch_desired(
        &self,
        device_id: &str,
        patch: serde_json::Map<String, Value>,
    ) -> Result<u64, super::twins::PatchError> {
        // The function in the same commit, and sent with the patch when it moved.
        let function = self
            .planned_function(device_id)
            .or_else(|| self.unplanned_function(device_id));
        let (version, sent) = self.twins.patch_desired(device_id, patch, function).await?;
        self.publish_desired(device_id, sent, version);
        Ok(version)
    }

    fn publish_desired(
        &self,
        device_id: &str,
        mut patch: serde_json::Map<String, Value>,
        version: u64,
    ) {
        patch.insert("$version".into(), version.into());
        self.registry.push(
            device_id,
            Push::Publish {
                topic: crate::topics::desired_patch(version),
                payload: Bytes::from(Value::Object(patch).to_string()),
                subscription: Subscription::DesiredPatches,
            },
        );
    }
}

impl crate::device_events::DeviceEvents for LocalHub {
    fn send(&self, device_id: &str, event: &Value) {
        self.send_devicebound(device_id, Bytes::from(event.to_string()));
    }
}
