//! Reload is all-or-nothing through the same loader as `validate`: a bad edit
//! is reported (log + `GET /api/v1/status`) and the last good snapshot keeps
//! serving; a good edit is swapped in atomically. Settings that cannot change
//! while running (listen addresses) refuse the reload by name.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::plan::{self, diff};
use crate::settings::{self, Resolved};
use crate::snapshot::{Snapshot, SnapshotHandle};

/// The outcome of the last reload attempt, for `/api/v1/status`.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadStatus {
    pub ok: bool,
    pub at: String,
    /// Snapshot version serving now.
    pub version: u64,
    /// One-line summary ("2 errors, 0 warnings", "listen.http cannot change...").
    pub message: String,
    /// Diagnostics in the `validate --format json` shape (errors + warnings).
    pub diagnostics: serde_json::Value,
    /// Devices whose content changed in the last good reload.
    pub changed_devices: Vec<String>,
}

impl ReloadStatus {
    pub fn initial(version: u64) -> Self {
        ReloadStatus {
            ok: true,
            at: crate::clock::rfc3339_millis(),
            version,
            message: "initial load".into(),
            diagnostics: serde_json::json!({"valid": true, "errors": [], "warnings": []}),
            changed_devices: Vec::new(),
        }
    }
}

pub type SharedStatus = Arc<RwLock<ReloadStatus>>;

/// Everything a reload needs to rebuild the snapshot.
pub struct Reloader {
    pub snapshot: SnapshotHandle,
    pub status: SharedStatus,
    /// Plan arguments given to `ztpd run --plans`.
    pub plan_args: Vec<PathBuf>,
    /// Bumped after every successful swap (services that must act on a
    /// change, e.g. credential regeneration, watch this). Shared with the
    /// run-time bindings, which swap snapshots too.
    pub changed: Arc<watch::Sender<u64>>,
    /// Serials bound at run time, laid over every plan loaded (SPEC §12).
    pub bindings: Option<Arc<crate::ztp::bindings::Bindings>>,
    /// What the last load left for this one (parsed plans, rendered configs).
    pub cache: std::sync::Mutex<plan::LoadCache>,
}

/// Settings that need a restart; a change to any refuses the reload.
fn frozen_settings_changed(old: &settings::Settings, new: &settings::Settings) -> Vec<String> {
    let mut out = Vec::new();
    let l = (&old.listen, &new.listen);
    if l.0.dhcp != l.1.dhcp {
        out.push(format!("listen.dhcp ({} -> {})", l.0.dhcp, l.1.dhcp));
    }
    if l.0.tftp != l.1.tftp {
        out.push(format!("listen.tftp ({} -> {})", l.0.tftp, l.1.tftp));
    }
    if l.0.http != l.1.http {
        out.push(format!("listen.http ({} -> {})", l.0.http, l.1.http));
    }
    if l.0.api != l.1.api {
        out.push("listen.api".into());
    }
    if old.paths.state != new.paths.state {
        out.push("paths.state".into());
    }
    if old.broker != new.broker {
        out.push("broker".into());
    }
    out
}

impl Reloader {
    /// Reload once. Returns true when a new snapshot is serving.
    pub fn reload_once(&self) -> bool {
        let current = self.snapshot.load();
        let resolved = match current.resolved.file.as_deref() {
            Some(f) => match settings::resolve(Some(f), &[]) {
                Ok(r) => Resolved {
                    root: current.resolved.root.clone(),
                    ..r
                },
                Err(e) => {
                    self.fail(current.version, format!("settings: {e}"), serde_json::json!({"valid": false, "errors": [{"code": "ztpd::settings::invalid", "message": e.to_string()}], "warnings": []}));
                    return false;
                }
            },
            None => current.resolved.clone(),
        };
        let frozen = frozen_settings_changed(&current.resolved.settings, &resolved.settings);
        if !frozen.is_empty() {
            let msg = format!(
                "cannot change while running: {}; restart ztpd to apply (still serving version {})",
                frozen.join(", "),
                current.version
            );
            self.fail(
                current.version,
                msg,
                serde_json::json!({"valid": false, "errors": [], "warnings": []}),
            );
            return false;
        }
        let mut loaded = match self.cache.lock() {
            Ok(mut cache) => plan::load_with(&resolved, &self.plan_args, &mut cache),
            Err(_) => plan::load(&resolved, &self.plan_args),
        };
        if loaded.diagnostics.has_errors() {
            let report = loaded.diagnostics.render(100, false);
            tracing::error!(
                "reload refused, still serving version {}:\n{report}",
                current.version
            );
            self.fail(
                current.version,
                format!(
                    "{}; still serving version {}",
                    loaded.diagnostics.summary(),
                    current.version
                ),
                loaded.diagnostics.to_json(false),
            );
            return false;
        }
        // From here to the swap no binding may come in between: it would
        // be lost, or the version taken twice.
        let _publishing = self.bindings.as_ref().map(|b| b.lock_publishing());
        let current = self.snapshot.load();
        if let Some(b) = &self.bindings {
            b.apply(&mut loaded.model);
        }
        // Compare against the serving snapshot in place: no copy of a
        // 10 000-device model per reload.
        let t0 = std::time::Instant::now();
        let changes = diff::diff(
            (&current.model, &current.configs),
            (&loaded.model, &loaded.configs),
        );
        let changed_devices: Vec<String> = changes.iter().map(|c| c.device.clone()).collect();
        let version = current.version + 1;
        let diagnostics = loaded.diagnostics.to_json(true);
        let summary = loaded.diagnostics.summary();
        let t1 = std::time::Instant::now();
        let next = Snapshot::after(Some(&current), resolved, loaded, version);
        let t2 = std::time::Instant::now();
        self.snapshot.store(next);
        tracing::debug!(
            diff_ms = (t1 - t0).as_millis() as u64,
            snapshot_ms = (t2 - t1).as_millis() as u64,
            "new snapshot"
        );
        tracing::info!(
            version,
            changed = changed_devices.len(),
            "reloaded plans ({summary}); changed: {}",
            if changed_devices.is_empty() {
                "nothing device-visible".to_string()
            } else {
                changed_devices.join(", ")
            }
        );
        if let Ok(mut s) = self.status.write() {
            *s = ReloadStatus {
                ok: true,
                at: crate::clock::rfc3339_millis(),
                version,
                message: summary,
                diagnostics,
                changed_devices,
            };
        }
        let _ = self.changed.send(version);
        true
    }

    fn fail(&self, version: u64, message: String, diagnostics: serde_json::Value) {
        tracing::error!("reload failed: {message}");
        if let Ok(mut s) = self.status.write() {
            *s = ReloadStatus {
                ok: false,
                at: crate::clock::rfc3339_millis(),
                version,
                message,
                diagnostics,
                changed_devices: Vec::new(),
            };
        }
    }
}

/// Run reloads as requests arrive (watcher events, SIGHUP). Loading is
/// blocking work (file reads, template rendering): it runs off the runtime.
pub async fn run(
    reloader: Arc<Reloader>,
    mut requests: mpsc::Receiver<()>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = requests.recv() => if r.is_none() { return },
        }
        let r = reloader.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || r.reload_once()).await {
            tracing::error!("reload task panicked: {e}; still serving the last good plans");
        }
    }
}
