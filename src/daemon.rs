//! `ztpd run`: load the plans, build the first snapshot, bind every listener,
//! start the services with their socket and a shutdown token, and wait.
//!
//! Services get their socket and shutdown signal as arguments, so tests can
//! start them on `127.0.0.1:0` and stop them deterministically.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::access_facts::DaemonFacts;
use crate::device_events::{ActionsOnly, DeviceEvents, MqttEvents};
use crate::files::{self, FileService};
use crate::http;
use crate::metrics::MetricsSource;
use crate::reload::{self, ReloadStatus, Reloader, SharedStatus};
use crate::settings::Resolved;
use crate::snapshot::{Snapshot, SnapshotHandle};
use crate::watch::{self as watcher, WatchMode, WatchSet};

/// How long in-flight work may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What every service may share. Built once at start; cheap to clone.
#[derive(Clone)]
pub struct Shared {
    pub snapshot: SnapshotHandle,
    pub metrics: Arc<Vec<Arc<dyn MetricsSource>>>,
    /// Deployment files over TFTP and HTTP (`/files/...`).
    pub files: Arc<FileService>,
    /// Last reload outcome, for `/api/v1/status`.
    pub status: SharedStatus,
    /// Operator API token.
    pub token: Arc<String>,
    /// Bumped after every successful reload.
    pub changed: watch::Receiver<u64>,
    /// ZTP device states, approvals and actions.
    pub ztp: Arc<crate::ztp::Ztp>,
    /// DHCP clients that are no planned device (`GET /api/v1/unplanned`).
    pub unplanned: Arc<crate::dhcp::unplanned::Unplanned>,
}

/// Options of `ztpd run` beyond the settings file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub plan_args: Vec<PathBuf>,
    pub watch: WatchMode,
}

/// A bind failure that names the setting to change (SPEC §1b).
pub fn bind_error(setting: &str, addr: SocketAddr, e: std::io::Error) -> anyhow::Error {
    let hint = if addr.port() < 1024 && e.kind() == std::io::ErrorKind::PermissionDenied {
        " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
    } else {
        ""
    };
    anyhow::anyhow!(
        "cannot bind {setting} = \"{addr}\": {e}{hint}; change `{setting}` in ztpd.toml"
    )
}

fn watch_set(resolved: &Resolved, plan_args: &[PathBuf]) -> WatchSet {
    let mut dirs = vec![resolved.templates_dir(), resolved.files_dir()];
    let mut files = Vec::new();
    if plan_args.is_empty() {
        dirs.push(resolved.plans_dir());
    }
    for p in plan_args {
        let p = std::path::absolute(p).unwrap_or_else(|_| p.clone());
        if p.is_dir() {
            dirs.push(p);
        } else {
            files.push(p);
        }
    }
    if let Some(hub_dir) = resolved.hub_file().parent() {
        dirs.push(hub_dir.to_path_buf());
    }
    files.push(
        resolved
            .file
            .clone()
            .unwrap_or_else(|| resolved.root.join(crate::settings::SETTINGS_FILE)),
    );
    WatchSet {
        dirs,
        files,
        ignore: vec![resolved.state_dir(), resolved.credentials_dir()],
    }
}

pub async fn run(resolved: Resolved, first: Snapshot, opts: RunOptions) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let state_dir = resolved.state_dir();
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create paths.state = {}", state_dir.display()))?;
    let token_path = state_dir.join(&resolved.settings.api.token_file);
    let token = crate::api::load_or_create_token(&token_path)
        .with_context(|| format!("cannot create the operator token {}", token_path.display()))?;

    let http_addr = resolved.settings.listen.http;
    let snapshot = SnapshotHandle::new(first);
    let status: SharedStatus =
        Arc::new(RwLock::new(ReloadStatus::initial(snapshot.load().version)));
    let (changed_tx, changed_rx) = watch::channel(snapshot.load().version);
    let mut metrics: Vec<Arc<dyn MetricsSource>> = Vec::new();

    let state =
        crate::state::StateStore::open(&resolved.state_dir(), resolved.settings.state.durability)?;
    let dhcp = crate::dhcp::service::DhcpService::open(&resolved, &snapshot, &state)?;
    let dhcp_socket = dhcp.bind_if_wanted()?;
    metrics.push(dhcp.metrics());
    let ztp = crate::ztp::Ztp::open(&state, snapshot.clone(), Some(dhcp.parts.leases.clone()))
        .context("cannot open the ZTP state")?;
    let facts = Arc::new(DaemonFacts {
        snapshot: snapshot.clone(),
        hub: RwLock::new(None),
        ztp: ztp.clone(),
    });
    facts.reload_hub();
    let files = Arc::new(FileService::new(snapshot.clone(), facts.clone()));
    metrics.push(files.ledger.clone());
    let embedded = start_broker(&resolved, &facts).await?;
    if let Some(b) = &embedded {
        metrics.push(b.metrics());
    }
    let embedded_url = embedded.as_ref().map(|b| b.internal_url());
    let bridge = crate::telemetry::service::prepare(&resolved, embedded_url.clone()).await?;
    if let Some(b) = &bridge {
        metrics.push(b.metrics());
    }

    let shared = Shared {
        snapshot: snapshot.clone(),
        metrics: Arc::new(metrics),
        files: files.clone(),
        status: status.clone(),
        token: Arc::new(token),
        changed: changed_rx,
        ztp,
        unplanned: dhcp.parts.unplanned.clone(),
    };
    let tftp_addr = resolved.settings.listen.tftp;
    let tftp_socket = tokio::net::UdpSocket::bind(tftp_addr)
        .await
        .map_err(|e| bind_error("listen.tftp", tftp_addr, e))?;
    tracing::info!(addr = %tftp_socket.local_addr()?, "tftp listening");

    // Reload requests (set up before HTTP answers, so readiness means
    // edits are watched): watcher events and SIGHUP. Capacity 1: a pending
    // request already covers any later change.
    let (reload_tx, reload_rx) = mpsc::channel(1);
    let reloader = Arc::new(Reloader {
        snapshot,
        status,
        plan_args: opts.plan_args.clone(),
        changed: changed_tx,
    });
    tokio::spawn(reload::run(reloader, reload_rx));
    watcher::spawn(
        watch_set(&resolved, &opts.plan_args),
        opts.watch,
        reload_tx.clone(),
    );
    spawn_sighup(reload_tx);
    // hub.toml and device functions are part of what a reload re-reads:
    // refresh the hub, then bring the credentials in step.
    // Device events go where the bridge reads: telemetry.broker, else the
    // embedded broker (internal account), else the actions endpoint only.
    let events: Arc<dyn DeviceEvents> = match (&resolved.settings.telemetry.broker, &embedded_url) {
        (Some(url), _) => match MqttEvents::start(url, shutdown.clone()) {
            Ok(m) => Arc::new(m),
            Err(e) => {
                tracing::error!(
                    "telemetry.broker: {e}; device events go to the actions endpoint only"
                );
                Arc::new(ActionsOnly)
            }
        },
        (None, Some(url)) => Arc::new(MqttEvents::start_on(
            url,
            EMBEDDED_EVENTS_CLIENT_ID,
            shutdown.clone(),
        )),
        (None, None) => Arc::new(ActionsOnly),
    };
    sync_credentials(&facts, events.as_ref());
    let mut changed = shared.changed.clone();
    let keeper_facts = facts.clone();
    tokio::spawn(async move {
        while changed.changed().await.is_ok() {
            let f = keeper_facts.clone();
            let ev = events.clone();
            let _ = tokio::task::spawn_blocking(move || {
                f.reload_hub();
                sync_credentials(&f, ev.as_ref());
            })
            .await;
        }
    });

    let http_listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|e| bind_error("listen.http", http_addr, e))?;
    tracing::info!(addr = %http_listener.local_addr()?, "http listening");

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(http::serve(http_listener, shared.clone(), shutdown.clone()));
    tasks.spawn(crate::ztp::observe::run(
        shared.ztp.clone(),
        Some(files.ledger.clone()),
        shutdown.clone(),
    ));
    tasks.spawn(files::tftp::serve(tftp_socket, files, shutdown.clone()));
    tasks.spawn(dhcp.run(dhcp_socket, shared.changed.clone(), shutdown.clone()));
    if let Some(b) = bridge {
        tasks.spawn(b.run(shutdown.clone()));
    }

    wait_for_signal(&shutdown).await;
    let drain = async {
        while let Some(r) = tasks.join_next().await {
            if let Ok(Err(e)) = r {
                tracing::warn!("service ended with an error: {e:#}");
            }
        }
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
        tracing::warn!("services did not stop within {SHUTDOWN_GRACE:?}; exiting anyway");
    }
    Ok(())
}

/// Client id of the daemon's device-event publisher on the embedded broker.
const EMBEDDED_EVENTS_CLIENT_ID: &str = "ztpd:events";

/// The embedded broker when `[broker] enabled`; device tokens are checked
/// against the hub as last (re)loaded.
async fn start_broker(
    resolved: &Resolved,
    facts: &Arc<DaemonFacts>,
) -> anyhow::Result<Option<crate::broker::EmbeddedBroker>> {
    if !resolved.settings.broker.enabled {
        return Ok(None);
    }
    if let Some(url) = &resolved.settings.telemetry.broker {
        let host = crate::telemetry::mqtt::BrokerUrl::parse(url)
            .map(|u| format!("{}:{}", u.host, u.port))
            .unwrap_or_default();
        tracing::warn!(
            "the embedded broker runs, but the bridge reads telemetry.broker ({host}): telemetry \
             published to the embedded broker is not stored; set [broker] enabled = false, or \
             remove telemetry.broker"
        );
    }
    let facts = facts.clone();
    let hub: crate::broker::HubLookup =
        Arc::new(move || facts.hub.read().ok().and_then(|h| h.clone()));
    crate::broker::EmbeddedBroker::start(resolved, hub)
        .await
        .map(Some)
}

/// Create missing credentials and regenerate stale ones (SPEC §6).
fn sync_credentials(facts: &DaemonFacts, events: &dyn DeviceEvents) {
    let Some(hub) = facts.hub.read().ok().and_then(|h| h.clone()) else {
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

fn spawn_sighup(tx: mpsc::Sender<()>) {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    tracing::info!("SIGHUP: reloading");
                    let _ = tx.try_send(());
                }
            });
        }
        Err(e) => tracing::warn!("cannot listen for SIGHUP ({e}); reload by saving a file"),
    }
}

/// First SIGINT/SIGTERM cancels `shutdown`; a second one exits at once.
async fn wait_for_signal(shutdown: &CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; stop with SIGKILL");
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!("shutting down (signal again to quit at once)");
    shutdown.cancel();
    tokio::spawn(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        std::process::exit(130);
    });
}

/// Start the runtime and run the daemon until a signal.
pub fn block_on_run(resolved: Resolved, first: Snapshot, opts: RunOptions) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run(resolved, first, opts))
}
