//! Keeps the credentials of planned devices in step with the plan, their
//! device functions and the hub: the daemon calls [`sync`] on start and after
//! every reload. Missing credentials are created; a credential whose device
//! function or connection string (hub hostname or key) no longer matches is
//! regenerated, keeping the device's name. Exactly the affected devices are
//! returned, so each gets a `refresh_credential` event.
//!
//! Device functions come from the snapshot: the plan loader read each one
//! once, and a plan naming a missing or invalid one never became a snapshot.

use super::hub::Hub;
use super::store::{connection_string, Store, StoreError};
use crate::snapshot::Snapshot;

#[derive(Debug, Default, PartialEq)]
pub struct Synced {
    /// Device ids whose credential was created.
    pub created: Vec<String>,
    /// Device ids whose history row had no file (a write a crash cut short),
    /// now written under their reserved name.
    pub completed: Vec<String>,
    /// Device ids whose credential was rewritten (their devices must re-download).
    pub regenerated: Vec<String>,
    /// Devices skipped, with the reason (e.g. an unreadable device function).
    pub skipped: Vec<(String, String)>,
}

/// `sync`, after giving each replacement box (`(new id, replaced id)`) a
/// credential under the device_name of the box it replaced (SPEC §12).
pub fn sync_replaced(
    snap: &Snapshot,
    hub: &Hub,
    replaced: &[(String, String)],
) -> Result<Synced, StoreError> {
    let store = Store::new(snap.resolved.credentials_dir());
    let mut carried = Vec::new();
    for (new, old) in replaced {
        let Some((_, d)) = snap.model.device(new) else {
            continue;
        };
        let Some(f) = d
            .device_function
            .as_ref()
            .and_then(|f| snap.model.device_functions.get(f))
        else {
            continue;
        };
        if let Some(c) = store.create_as(hub, new, f.clone(), old)? {
            carried.push(c.device_id);
        }
    }
    let mut out = sync(snap, hub)?;
    out.created.extend(carried);
    Ok(out)
}

pub fn sync(snap: &Snapshot, hub: &Hub) -> Result<Synced, StoreError> {
    let store = Store::new(snap.resolved.credentials_dir());
    let mut out = Synced::default();
    let mut default_function = None;
    out.completed = store
        .complete_interrupted(hub, |id| {
            snap.model
                .device(id)
                .and_then(|(_, d)| d.device_function.as_ref())
                .and_then(|f| snap.model.device_functions.get(f).cloned())
                .unwrap_or_else(|| {
                    default_function
                        .get_or_insert_with(|| {
                            super::function::load(&snap.resolved.templates_dir(), "default")
                                .unwrap_or_default()
                        })
                        .clone()
                })
        })?
        .into_iter()
        .map(|c| c.device_id)
        .collect();
    let mut missing = Vec::new();
    for (_, d) in snap.model.devices() {
        let Some(fname) = &d.device_function else {
            continue;
        };
        // Known by position and not yet bound: no device id to issue to.
        if !d.has_serial() {
            continue;
        }
        let id = &d.serial;
        let Some(want) = snap.model.device_functions.get(fname).cloned() else {
            out.skipped.push((
                id.clone(),
                format!("device function `{fname}` is not in the loaded plans"),
            ));
            continue;
        };
        match store.read(id) {
            Ok(None) => missing.push((id.clone(), want)),
            Ok(Some(cur)) => {
                if cur.device_function != want
                    || cur.connection_str_pub != connection_string(hub, id)
                {
                    store.create(hub, id, want)?;
                    out.regenerated.push(id.clone());
                }
            }
            Err(e) => out.skipped.push((id.clone(), e.to_string())),
        }
    }
    out.created = store
        .create_missing(hub, missing)?
        .into_iter()
        .map(|c| c.device_id)
        .collect();
    Ok(out)
}
