//! The credential keeper of `ztpd run`: after the first load and after every
//! reload, the device credentials are brought in step with the snapshot's
//! plans, device functions and hub (SPEC §6); a regenerated credential is
//! announced to its device as a durable `refresh_credential` action
//! (long-poll and MQTT).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::facts::DaemonFacts;
use crate::broker::tls::HubCert;
use crate::broker::LocalHub;

/// The local hub and its certificate, when it runs.
pub type HubParts = (Arc<LocalHub>, Option<Arc<HubCert>>);

/// First wait before a failed sync (a full disk, an unwritable directory)
/// is tried again; doubled after each failure up to [`RETRY_MAX`]. Freed
/// space is then noticed without a reload or a restart.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between two tries: bounds both the delay after space
/// returns and the error lines logged while it does not.
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How long after a new snapshot the keeper waits for the next before it
/// syncs: a burst of bindings (a rack of boxes saying hello by position,
/// each a new snapshot) is one sync of the fleet, not one per box.
const COALESCE: Duration = Duration::from_millis(25);

/// Whether the last [`sync`] of this process failed to write (the first one
/// runs before [`keep`] starts).
static LAST_SYNC_FAILED: AtomicBool = AtomicBool::new(false);

/// Keep credentials in step with each new snapshot until shutdown; after a
/// failed write, try again with backoff until it succeeds. A device whose
/// credential was regenerated (its function or the hub changed) also gets
/// its new desired properties on the local hub, and the hub's certificate
/// follows new site addresses.
pub async fn keep(
    facts: Arc<DaemonFacts>,
    hub: Option<HubParts>,
    mut changed: watch::Receiver<u64>,
    shutdown: CancellationToken,
) {
    let mut retry = RETRY_FIRST;
    loop {
        let failed = LAST_SYNC_FAILED.load(Ordering::Relaxed);
        let again = async {
            if failed {
                tokio::time::sleep(retry).await
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = changed.changed() => {
                if r.is_err() {
                    return;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(COALESCE) => {}
                }
                changed.borrow_and_update();
            }
            _ = again => {
                tracing::info!("trying the failed device credential write again");
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
        // The hub's view first: a device that reads the credential the
        // sync writes for a new hub must find the hub already taking it.
        if let Some((hub, cert)) = &hub {
            let view = super::hub::view(&facts);
            if let Some(cert) = cert {
                cert.update_names(super::hub::cert_names(&facts, &view));
            }
            hub.set_view(view);
        }
        let f = facts.clone();
        let local = hub.as_ref().map(|(h, _)| h.clone());
        let regenerated = tokio::task::spawn_blocking(move || sync(&f, local.as_deref()))
            .await
            .unwrap_or_default();
        if let Some((hub, _)) = &hub {
            for id in &regenerated {
                hub.sync_desired(id).await;
            }
        }
        if !LAST_SYNC_FAILED.load(Ordering::Relaxed) {
            retry = RETRY_FIRST;
        }
    }
}

/// What one sync did that others must hear of.
#[derive(Default)]
struct SyncDone {
    regenerated: Vec<String>,
    created: Vec<String>,
    /// (new serial, the serial it replaces) of every replacement binding.
    replaced: Vec<(String, String)>,
}

/// DeviceLifecycleEvents (SPEC §14) for the identities this sync created:
/// `createDeviceIdentity`, and for a replacement box also
/// `replaceDeviceIdentity` naming the serial it replaces. (Identities made
/// by DPS are announced by the DPS handler.)
fn lifecycle_events(hub: &LocalHub, created: &[String], replaced: &[(String, String)]) {
    use crate::telemetry::routing::Source;
    let now = crate::clock::rfc3339_millis();
    for id in created {
        hub.route_event(
            Source::DeviceLifecycleEvents,
            id,
            "createDeviceIdentity",
            &serde_json::json!({"deviceId": id, "createdDateTimeUtc": now}),
        );
        if let Some((_, old)) = replaced.iter().find(|(new, _)| new == id) {
            hub.route_event(
                Source::DeviceLifecycleEvents,
                id,
                "replaceDeviceIdentity",
                &serde_json::json!({"deviceId": id, "replaces": old, "operationTimestamp": now}),
            );
        }
    }
}

/// Create missing credentials and regenerate stale ones (SPEC §6), and
/// tell the local hub's routes of the identities created; the device ids
/// regenerated.
pub fn sync(facts: &DaemonFacts, hub: Option<&LocalHub>) -> Vec<String> {
    let done = synced(facts);
    if let Some(hub) = hub {
        lifecycle_events(hub, &done.created, &done.replaced);
    }
    done.regenerated
}

fn synced(facts: &DaemonFacts) -> SyncDone {
    let Some(hub) = facts.hub() else {
        tracing::warn!("no usable hub settings: device credentials not created");
        // Also when the local hub's key could not be written (a full
        // state disk): tried again like a failed write.
        LAST_SYNC_FAILED.store(true, Ordering::Relaxed);
        return SyncDone::default();
    };
    let snap = facts.snapshot.load();
    // A replacement box keeps the device_name of the box it replaced.
    let replaced = facts.ztp.bindings.replacements();
    let result = crate::credentials::keeper::sync_replaced(&snap, &hub, &replaced);
    LAST_SYNC_FAILED.store(result.is_err(), Ordering::Relaxed);
    match result {
        Ok(s) => {
            if !s.completed.is_empty() {
                tracing::warn!(
                    count = s.completed.len(),
                    "finished device credentials a crash left without a file: {}",
                    s.completed.join(", ")
                );
            }
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
                let url = crate::addr::files_url(
                    site.server_for_device(d),
                    snap.resolved.settings.listen.http.port(),
                    &format!("credentials/device_{id}.json"),
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
            SyncDone {
                regenerated: s.regenerated,
                created: s.created,
                replaced,
            }
        }
        Err(e) => {
            tracing::error!("device credentials not written (tried again later): {e}");
            SyncDone::default()
        }
    }
}
