//! Reload is all-or-nothing through the same loader as `validate`: a bad edit
//! is reported (log + `GET /api/v1/status`) and the last good snapshot keeps
//! serving; a good edit is swapped in atomically. Every setting of
//! `ztpd.toml` either takes effect on reload or refuses it by name: see
//! [`frozen_settings_changed`] and [`InPlace`].

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
    /// When the reload now running started (shown apart from the last
    /// attempt's outcome, as `reloading` in `/api/v1/status`); None when
    /// none is running.
    #[serde(skip)]
    pub running_since: Option<String>,
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
            running_since: None,
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
    /// Settings held by long-lived services, changed in place on a swap.
    pub in_place: InPlace,
}

/// Settings read by services that outlive a snapshot, which a good reload
/// changes in place: `api.token_file` (the new file's token works, the old
/// one gets 401, and the sessions it bought end) and `state.durability`
/// (the commits after the swap).
pub struct InPlace {
    pub token: crate::api::OperatorToken,
    pub sessions: Arc<crate::api::session::Sessions>,
    pub state: crate::state::Writer,
}

/// Settings that need a restart; a change to any refuses the reload, naming
/// it. Sockets, caps sized against the descriptor limit at start, the
/// directories the watcher watches, and the telemetry pipeline's broker and
/// store (the bridge and the store hold their connections and collection
/// from start) are all of this kind.
fn frozen_settings_changed(old: &settings::Settings, new: &settings::Settings) -> Vec<String> {
    let mut out = Vec::new();
    macro_rules! frozen {
        ($($name:literal => $($field:ident).+),+ $(,)?) => {
            $(if old.$($field).+ != new.$($field).+ {
                out.push($name.to_string());
            })+
        };
    }
    frozen!(
        "paths.plans" => paths.plans,
        "paths.templates" => paths.templates,
        "paths.files" => paths.files,
        "paths.credentials" => paths.credentials,
        "paths.hub" => paths.hub,
        "paths.routes" => paths.routes,
        "telemetry.broker" => telemetry.broker,
        "telemetry.mongodb_uri" => telemetry.mongodb_uri,
        "telemetry.database" => telemetry.database,
        "telemetry.collection" => telemetry.collection,
        "limits.http_connections" => limits.http_connections,
        "limits.tftp_transfers" => limits.tftp_transfers,
        "limits.tftp_transfers_per_client" => limits.tftp_transfers_per_client,
        "limits.hub_connections" => limits.hub_connections,
        "limits.hub_unauthenticated_per_client" => limits.hub_unauthenticated_per_client,
        "limits.device_events" => limits.device_events,
    );
    let l = (&old.listen, &new.listen);
    if l.0.dhcp != l.1.dhcp {
        out.push(format!("listen.dhcp ({} -> {})", l.0.dhcp, l.1.dhcp));
    }
    if l.0.dhcp6 != l.1.dhcp6 {
        out.push(format!("listen.dhcp6 ({} -> {})", l.0.dhcp6, l.1.dhcp6));
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

/// Devices named in a reload's log line: enough to read, never a
/// 10,000-name line (`GET /api/v1/status` has them all).
const CHANGED_NAMED: usize = 20;

fn changed_list(devices: &[String]) -> String {
    match devices.len() {
        0 => "nothing device-visible".to_string(),
        n if n <= CHANGED_NAMED => devices.join(", "),
        n => format!(
            "{} and {} more",
            devices[..CHANGED_NAMED].join(", "),
            n - CHANGED_NAMED
        ),
    }
}

/// What one load produced, applied on the runtime once it is known to be
/// in time: a load past its budget is dropped whole, so a late one can never
/// replace the snapshot or the status that reported it abandoned.
pub enum Outcome {
    Refused {
        version: u64,
        message: String,
        diagnostics: serde_json::Value,
    },
    Loaded {
        next: Box<Snapshot>,
        /// The version serving when it was loaded.
        base: u64,
        /// Bindings the new plans settle, dropped once they serve.
        settled: Vec<(String, String)>,
        status: ReloadStatus,
        /// The token of a new `api.token_file`, read (or created) by the load.
        token: Option<String>,
    },
}

/// Reloads abandoned past their budget that are still running (a template
/// including a FIFO blocks in `read`, which nothing can interrupt). Past this
/// many, reloads are refused until one ends: each holds a thread.
const MAX_ABANDONED: usize = 4;

impl Reloader {
    /// Reload once. Returns true when a new snapshot is serving.
    pub fn reload_once(&self) -> bool {
        let outcome = self.load();
        self.apply(outcome)
    }

    /// Load the plans as a reload would, touching nothing that serves.
    pub fn load(&self) -> Outcome {
        let current = self.snapshot.load();
        let refused = |message: String, diagnostics: serde_json::Value| Outcome::Refused {
            version: current.version,
            message,
            diagnostics,
        };
        let resolved = match current.resolved.file.as_deref() {
            Some(f) => match settings::resolve(Some(f), &[]) {
                Ok(r) => Resolved {
                    root: current.resolved.root.clone(),
                    ..r
                },
                Err(e) => {
                    return refused(
                        format!("settings: {e}"),
                        serde_json::json!({"valid": false, "errors": [{"code": "ztpd::settings::invalid", "message": e.to_string()}], "warnings": []}),
                    );
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
            return refused(
                msg,
                serde_json::json!({"valid": false, "errors": [], "warnings": []}),
            );
        }
        // A new token file is read (or created, 0600) here, off the runtime;
        // one that cannot be refuses the reload by name.
        let token = if resolved.settings.api.token_file != current.resolved.settings.api.token_file
        {
            let path = resolved.state_dir().join(&resolved.settings.api.token_file);
            match crate::api::load_or_create_token(&path) {
                Ok(t) => Some(t),
                Err(e) => {
                    return refused(
                        format!(
                        "api.token_file: cannot read or create {}: {e}; still serving version {}",
                        path.display(),
                        current.version
                    ),
                        serde_json::json!({"valid": false, "errors": [], "warnings": []}),
                    )
                }
            }
        } else {
            None
        };
        // An abandoned reload may still hold the cache: load cold then.
        let mut loaded = match self.cache.try_lock() {
            Ok(mut cache) => plan::load_with(&resolved, &self.plan_args, &mut cache),
            Err(_) => plan::load(&resolved, &self.plan_args),
        };
        if loaded.diagnostics.has_errors() {
            let report = loaded.diagnostics.render(100, false);
            tracing::error!(
                "reload refused, still serving version {}:\n{report}",
                current.version
            );
            return refused(
                format!(
                    "{}; still serving version {}",
                    loaded.diagnostics.summary(),
                    current.version
                ),
                loaded.diagnostics.to_json(false),
            );
        }
        if let Err(e) = crate::daemon::listen::check_ipv6_reachable(&resolved, &loaded.model) {
            let msg = format!("{e}; still serving version {}", current.version);
            tracing::error!("reload refused: {msg}");
            return refused(
                msg,
                serde_json::json!({"valid": false, "errors": [], "warnings": []}),
            );
        }
        // The bindings are laid over the new model here, changing nothing:
        // those it settles are dropped only when it serves (`apply`), and a
        // binding made meanwhile is laid over it there.
        let settled = match &self.bindings {
            Some(b) => b.overlay(&mut loaded.model),
            None => Vec::new(),
        };
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
        tracing::debug!(
            diff_ms = (t1 - t0).as_millis() as u64,
            snapshot_ms = (t2 - t1).as_millis() as u64,
            "new snapshot"
        );
        Outcome::Loaded {
            next: Box::new(next),
            base: current.version,
            settled,
            token,
            status: ReloadStatus {
                ok: true,
                at: String::new(),
                version,
                message: summary,
                diagnostics,
                changed_devices,
                running_since: None,
            },
        }
    }

    /// Serve what a load produced: the new snapshot, or the refusal.
    pub fn apply(&self, outcome: Outcome) -> bool {
        match outcome {
            Outcome::Refused {
                version,
                message,
                diagnostics,
            } => {
                self.fail(version, message, diagnostics);
                false
            }
            Outcome::Loaded {
                mut next,
                base,
                mut settled,
                mut status,
                token,
            } => {
                // No binding may come in between here and the swap: it would
                // be lost, or the version taken twice. The lock is held for
                // this swap only, never across a load (which may be stuck).
                let _publishing = self.bindings.as_ref().map(|b| b.lock_publishing());
                let serving = self.snapshot.load();
                if serving.version != base {
                    // A binding served a snapshot while this one loaded:
                    // lay the bindings over it again (what it already has
                    // is kept as it is), and take the next version.
                    if let Some(b) = &self.bindings {
                        let mut model = next.model.clone();
                        settled.extend(b.overlay(&mut model));
                        *next = next.with_model(model, serving.version + 1);
                    }
                    next.version = serving.version + 1;
                    status.version = next.version;
                }
                if let Some(b) = &self.bindings {
                    b.forget(&settled);
                }
                let version = status.version;
                let durability = next.resolved.settings.state.durability;
                self.snapshot.store(*next);
                self.apply_in_place(token, durability);
                tracing::info!(
                    version,
                    changed = status.changed_devices.len(),
                    "reloaded plans ({}); changed: {}",
                    status.message,
                    changed_list(&status.changed_devices)
                );
                status.at = crate::clock::rfc3339_millis();
                if let Ok(mut s) = self.status.write() {
                    status.running_since = s.running_since.take();
                    *s = status;
                }
                let _ = self.changed.send(version);
                true
            }
        }
    }

    fn apply_in_place(&self, token: Option<String>, durability: settings::Durability) {
        let p = &self.in_place;
        if let Some(t) = token {
            p.token.store(Arc::new(t));
            p.sessions.close_all();
            tracing::info!("api.token_file changed: the new token is in force, sessions ended");
        }
        if p.state.durability() != durability {
            match p.state.set_durability(durability) {
                Ok(()) => tracing::info!("state.durability is now {durability:?}"),
                Err(e) => tracing::error!("cannot change state.durability: {e}"),
            }
        }
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
                running_since: s.running_since.take(),
            };
        }
    }

    fn set_running(&self, since: Option<String>) {
        if let Ok(mut s) = self.status.write() {
            s.running_since = since;
        }
    }
}

/// Run reloads as requests arrive (watcher events, SIGHUP). Loading is
/// blocking work (file reads, template rendering): it runs on a thread of
/// its own, under the budget `limits.reload_timeout`. A load past it is
/// refused and abandoned (its result, if it ever comes, is dropped), the last
/// good snapshot keeps serving, and the next request starts a new load. Not
/// the runtime's blocking pool: the runtime waits for those at exit, so a
/// stuck load would keep the process from exiting.
pub async fn run(
    reloader: Arc<Reloader>,
    mut requests: mpsc::Receiver<()>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let abandoned = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = requests.recv() => if r.is_none() { return },
        }
        let current = reloader.snapshot.load();
        let budget = current.resolved.settings.limits.reload_timeout;
        let stuck = abandoned.load(std::sync::atomic::Ordering::SeqCst);
        if stuck >= MAX_ABANDONED {
            reloader.fail(
                current.version,
                format!(
                    "reload refused: {stuck} earlier reloads ran past limits.reload_timeout and \
                     are still stuck (a template reading a FIFO or a device?); restart ztpd; \
                     still serving version {}",
                    current.version
                ),
                serde_json::json!({"valid": false, "errors": [], "warnings": []}),
            );
            continue;
        }
        reloader.set_running(Some(crate::clock::rfc3339_millis()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let r = reloader.clone();
        let gone = abandoned.clone();
        let spawned = std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || {
                let outcome = r.load();
                if tx.send(outcome).is_err() {
                    // Abandoned: the budget passed while it ran.
                    gone.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                }
            });
        if let Err(e) = spawned {
            reloader.set_running(None);
            tracing::error!("cannot start a reload thread: {e}; still serving the last good plans");
            continue;
        }
        let mut rx = rx;
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            o = tokio::time::timeout(budget, &mut rx) => o,
        };
        match outcome {
            Ok(Ok(o)) => {
                reloader.apply(o);
            }
            Ok(Err(_)) => {
                tracing::error!("reload thread panicked; still serving the last good plans")
            }
            Err(_) => {
                // Counted before the receiver is dropped, so the thread's
                // decrement never comes first.
                abandoned.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(rx);
                let version = reloader.snapshot.load().version;
                reloader.fail(
                    version,
                    format!(
                        "reload took longer than {} (limits.reload_timeout) and was refused; \
                         still serving version {version}",
                        crate::duration::format(budget)
                    ),
                    serde_json::json!({"valid": false, "errors": [{
                        "code": "ztpd::reload::timeout",
                        "message": format!("the load of the plans, templates and files did not \
                            finish within {}", crate::duration::format(budget)),
                        "help": "look for a template that loops or reads a FIFO or device, \
                            or raise limits.reload_timeout in ztpd.toml"
                    }], "warnings": []}),
                );
            }
        }
        reloader.set_running(None);
    }
}
