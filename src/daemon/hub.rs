//! The local hub as a service of `ztpd run` (SPEC §9, §13): its
//! certificate, its listeners, and the view of the daemon it serves from
//! (the hub settings, the id scope, each planned device's function),
//! resolved once per snapshot.

use std::sync::Arc;

use anyhow::Context;

use super::facts::DaemonFacts;
use crate::broker::tls::{self, HubCert};
use crate::broker::view::{HubView, Planned};
use crate::broker::{Listeners, LocalHub};
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
    let view = view(facts);
    let cert = match resolved.settings.broker.tls_listen {
        Some(_) => Some(Arc::new(HubCert::load(resolved, cert_names(facts, &view))?)),
        None => None,
    };
    let listeners = Listeners::bind(resolved, cert.clone()).await?;
    let hub = LocalHub::open(state, view, ingest).context("cannot open the local hub's state")?;
    Ok(Some(StartedHub {
        hub,
        listeners,
        cert,
    }))
}

/// The names the hub certificate carries now: the hub's and the
/// provisioning host's among them.
pub fn cert_names(facts: &DaemonFacts, view: &HubView) -> Vec<String> {
    let hub = facts.hub();
    let mut names = tls::names(
        &facts.snapshot.load(),
        hub.as_ref().map(|h| h.hostname.as_str()),
    );
    if !view.provisioning_host.is_empty() {
        names.push(view.provisioning_host.to_ascii_lowercase());
        names.sort();
        names.dedup();
    }
    names
}

/// A planned device's read-only twin tags (SPEC §13): `{site, name,
/// model}` and its plan `tags` (the plan loader refuses those three names
/// among them).
fn twin_tags(site: &crate::plan::model::Site, d: &crate::plan::model::Device) -> serde_json::Value {
    let mut tags = d.tags.clone();
    tags.insert("site".into(), site.name.clone().into());
    tags.insert("name".into(), d.name.clone().into());
    tags.insert("model".into(), d.model.clone().into());
    serde_json::Value::Object(tags)
}

/// What the hub needs from the serving snapshot, resolved once.
pub fn view(facts: &DaemonFacts) -> HubView {
    let snap = facts.snapshot.load();
    let hub = facts.hub();
    let planned = snap
        .model
        .devices()
        // Known by position and not yet bound: no device id yet.
        .filter(|(_, d)| d.has_serial())
        .map(|(site, d)| {
            let function = d
                .device_function
                .as_ref()
                .and_then(|f| snap.model.device_functions.get(f).cloned());
            (
                d.serial.clone(),
                Planned {
                    function,
                    tags: twin_tags(site, d),
                },
            )
        })
        .collect();
    let state_dir = snap.resolved.state_dir();
    let id_scope = match hub.as_ref().and_then(|h| h.dps.id_scope.clone()) {
        Some(s) => s,
        None => crate::credentials::dps::local_id_scope(&state_dir).unwrap_or_else(|e| {
            tracing::error!("the provisioning service has no id scope: {e}");
            String::new()
        }),
    };
    let provisioning_host = hub
        .as_ref()
        .map(|h| {
            h.dps
                .provisioning_host
                .clone()
                .unwrap_or_else(|| h.hostname.clone())
        })
        .unwrap_or_default();
    let default_function =
        crate::credentials::function::load(&snap.resolved.templates_dir(), "default")
            .unwrap_or(serde_json::Value::Null);
    HubView {
        hub,
        id_scope,
        provisioning_host,
        planned,
        default_function,
        credentials_dir: snap.resolved.credentials_dir(),
    }
}
