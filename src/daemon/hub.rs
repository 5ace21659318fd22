//! The local hub as a service of `ztpd run` (SPEC §9): its certificate,
//! its listeners, and the answers it needs from the rest of the daemon (the
//! hub settings for SAS checks, each device's desired properties).

use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;

use super::facts::DaemonFacts;
use crate::broker::tls::{self, HubCert};
use crate::broker::{DesiredLookup, HubLookup, Listeners, LocalHub};
use crate::settings::Resolved;
use crate::state::StateStore;
use crate::telemetry::pipeline::Ingest;

/// The running hub, its listeners bound, ready to serve.
pub struct StartedHub {
    pub hub: Arc<LocalHub>,
    pub listeners: Listeners,
    pub cert: Option<Arc<HubCert>>,
}

/// Open the hub and bind its listeners when `[broker] enabled`.
pub async fn start(
    resolved: &Resolved,
    facts: &Arc<DaemonFacts>,
    state: &StateStore,
    ingest: Option<Ingest>,
) -> anyhow::Result<Option<StartedHub>> {
    if !resolved.settings.broker.enabled {
        return Ok(None);
    }
    let ingest = ingest.context("the local hub needs the telemetry pipeline")?;
    let cert = match resolved.settings.broker.tls_listen {
        Some(_) => Some(Arc::new(HubCert::load(resolved, cert_names(facts))?)),
        None => None,
    };
    let listeners = Listeners::bind(resolved, cert.clone()).await?;
    let lookup = facts.clone();
    let hub_lookup: HubLookup = Arc::new(move || lookup.hub());
    let lookup = facts.clone();
    let desired: DesiredLookup = Arc::new(move |id: &str| desired(&lookup, id));
    let hub = LocalHub::open(state, hub_lookup, desired, ingest)
        .context("cannot open the local hub's state")?;
    Ok(Some(StartedHub {
        hub,
        listeners,
        cert,
    }))
}

/// The names the hub certificate carries now.
pub fn cert_names(facts: &DaemonFacts) -> Vec<String> {
    let hub = facts.hub();
    tls::names(
        &facts.snapshot.load(),
        hub.as_ref().map(|h| h.hostname.as_str()),
    )
}

/// A device's desired properties: its device function as its credential
/// carries it (from the plan, else from the credential file of a device
/// made with `ztpd credentials create`).
fn desired(facts: &DaemonFacts, device_id: &str) -> Value {
    let snap = facts.snapshot.load();
    let planned = snap
        .model
        .devices()
        .find(|(_, d)| d.serial == device_id)
        .and_then(|(_, d)| d.device_function.as_ref())
        .and_then(|f| snap.model.device_functions.get(f).cloned());
    let function = planned.or_else(|| {
        let store = crate::credentials::store::Store::new(snap.resolved.credentials_dir());
        store
            .read(device_id)
            .ok()
            .flatten()
            .map(|c| c.device_function)
    });
    serde_json::json!({ "device_function": function.unwrap_or(Value::Null) })
}
