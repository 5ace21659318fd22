//! The credential keeper of `ztpd run`: after the first load and after every
//! reload, the device credentials are brought in step with the snapshot's
//! plans, device functions and hub (SPEC §6); a regenerated credential is
//! announced to its device as a `refresh_credential` event.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::facts::DaemonFacts;
use crate::device_events::DeviceEvents;

/// Keep credentials in step with each new snapshot until shutdown.
pub async fn keep(
    facts: Arc<DaemonFacts>,
    events: Arc<dyn DeviceEvents>,
    mut changed: watch::Receiver<u64>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = changed.changed() => if r.is_err() { return },
        }
        let f = facts.clone();
        let ev = events.clone();
        let _ = tokio::task::spawn_blocking(move || {
            sync(&f, ev.as_ref());
        })
        .await;
    }
}

/// Create missing credentials and regenerate stale ones (SPEC §6).
pub fn sync(facts: &DaemonFacts, events: &dyn DeviceEvents) {
    let Some(hub) = facts.hub() else {
        tracing::warn!("no usable hub settings: device credentials not created");
        return;
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
                let event = serde_json::json!({"type": "refresh_credential", "url": url});
                facts.ztp.tracker.push_action(&d.name, event.clone());
                events.send(id, &event);
                tracing::info!(device_id = %id, "credential regenerated; device told to refresh it");
            }
            for (id, why) in &s.skipped {
                tracing::warn!(device_id = %id, "credential not written: {why}");
            }
        }
        Err(e) => tracing::error!("device credentials: {e}"),
    }
}
