//! The credential keeper of `ztpd run`: after the first load and after every
//! reload, the device credentials are brought in step with the snapshot's
//! plans, device functions and hub (SPEC §6); a regenerated credential is
//! announced to its device as a durable `refresh_credential` action
//! (long-poll and MQTT).

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::facts::DaemonFacts;
use crate::broker::tls::HubCert;
use crate::broker::LocalHub;

/// The local hub and its certificate, when it runs.
pub type HubParts = (Arc<LocalHub>, Option<Arc<HubCert>>);

/// Keep credentials in step with each new snapshot until shutdown; a
/// device whose credential was regenerated (its function or the hub
/// changed) also gets its new desired properties on the local hub, and the
/// hub's certificate follows new site addresses.
pub async fn keep(
    facts: Arc<DaemonFacts>,
    hub: Option<HubParts>,
    mut changed: watch::Receiver<u64>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = changed.changed() => if r.is_err() { return },
        }
        let f = facts.clone();
        let regenerated = tokio::task::spawn_blocking(move || sync(&f))
            .await
            .unwrap_or_default();
        if let Some((hub, cert)) = &hub {
            for id in &regenerated {
                hub.sync_desired(id).await;
            }
            if let Some(cert) = cert {
                cert.update_names(super::hub::cert_names(&facts));
            }
        }
    }
}

/// Create missing credentials and regenerate stale ones (SPEC §6); the
/// device ids regenerated.
pub fn sync(facts: &DaemonFacts) -> Vec<String> {
    let Some(hub) = facts.hub() else {
        tracing::warn!("no usable hub settings: device credentials not created");
        return Vec::new();
    };
    let snap = facts.snapshot.load();
    match crate::credentials::keeper::sync(&snap, &hub) {
        Ok(s) => {
            if !s.created.is_empty() {
                tracing::info!(
                    count = s.created.len(),
                    "created device credentials: {}",
                    s.created.join(", ")
                );
            }
            for id in &s.regenerated {
                let Some((site, d)) = snap.model.device(id) else {
                    continue;
                };
                let url = format!(
                    "http://{}:{}/files/credentials/device_{id}.json",
                    site.server_ip,
                    snap.resolved.settings.listen.http.port()
                );
                let mut fields = serde_json::Map::new();
                fields.insert("url".into(), url.into());
                // Published on the devicebound topic by the action store
                // once the action is committed.
                let mqtt = d.device_function.as_ref().map(|_| id.as_str());
                let queued =
                    facts
                        .ztp
                        .actions
                        .submit(&d.name, mqtt, "refresh_credential", fields, |_| {});
                match queued {
                    Ok(_) => {
                        tracing::info!(device_id = %id, "credential regenerated; device told to refresh it")
                    }
                    Err(e) => {
                        tracing::warn!(device_id = %id, "credential regenerated, but the refresh_credential action was not queued: {e}")
                    }
                }
            }
            for (id, why) in &s.skipped {
                tracing::warn!(device_id = %id, "credential not written: {why}");
            }
            s.regenerated
        }
        Err(e) => {
            tracing::error!("device credentials: {e}");
            Vec::new()
        }
    }
}
