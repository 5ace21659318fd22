//! `ztpd run`: load the plans, build the first snapshot, bind every listener,
//! start the services with their socket and a shutdown token, and wait.
//!
//! Services get their socket and shutdown signal as arguments, so tests can
//! start them on `127.0.0.1:0` and stop them deterministically.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::device_events::{ActionsOnly, DeviceEvents, Fanout, MqttEvents};
use crate::files::{self, FileService};
use crate::metrics::MetricsSource;
use crate::reload::{self, ReloadStatus, Reloader, SharedStatus};
use crate::settings::Resolved;
use crate::snapshot::{Snapshot, SnapshotHandle};
use crate::watch::{self as watcher, WatchMode, WatchSet};

pub mod credentials;
pub mod facts;
pub mod http;
pub mod http_listener;
pub mod hub;
pub mod listen;
pub mod signals;

use facts::DaemonFacts;

/// How long in-flight work may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Options of `ztpd run` beyond the settings file.
#[derive(Debug, Default)]
pub struct RunOptions {
    pub plan_args: Vec<PathBuf>,
    pub watch: WatchMode,
    /// What the first load left for reloads (parsed plans, rendered configs).
    pub load_cache: crate::plan::LoadCache,
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
    // hub.toml and routes.toml: a save reloads them with the plans.
    for file in [resolved.hub_file(), resolved.routes_file()] {
        if let Some(dir) = file.parent().filter(|d| !dirs.iter().any(|x| x == d)) {
            dirs.push(dir.to_path_buf());
        }
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
    // Before anything opens a descriptor: each listener's cap is sized from it.
    let nofile = crate::limits::raise_nofile();
    let state_dir = resolved.state_dir();
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("cannot create paths.state = {}", state_dir.display()))?;
    let token_path = state_dir.join(&resolved.settings.api.token_file);
    let token: crate::api::OperatorToken = Arc::new(arc_swap::ArcSwap::from_pointee(
        crate::api::load_or_create_token(&token_path).with_context(|| {
            format!("cannot create the operator token {}", token_path.display())
        })?,
    ));
    let sessions = Arc::new(crate::api::session::Sessions::default());

    let http_addr = resolved.settings.listen.http;
    let snapshot = SnapshotHandle::new(first);
    let status: SharedStatus =
        Arc::new(RwLock::new(ReloadStatus::initial(snapshot.load().version)));
    let (changed_tx, changed_rx) = watch::channel(snapshot.load().version);
    let changed_tx = Arc::new(changed_tx);
    let mut metrics: Vec<Arc<dyn MetricsSource>> = Vec::new();

    let state =
        crate::state::StateStore::open(&resolved.state_dir(), resolved.settings.state.durability)?;
    let dhcp = crate::dhcp::service::DhcpService::open(&resolved, &snapshot, &state)?;
    let dhcp_socket = dhcp.bind_if_wanted()?;
    metrics.push(dhcp.metrics());
    let dhcp6 = crate::dhcp6::service::Dhcp6Service::open(
        &resolved,
        &snapshot,
        &state,
        dhcp.parts.unplanned.clone(),
    )?;
    listen::check_ipv6_reachable(&resolved, &snapshot.load().model)?;
    let dhcp6_socket = dhcp6.bind_if_wanted()?;
    metrics.push(dhcp6.metrics());
    let ztp = crate::ztp::Ztp::open(&state, snapshot.clone(), Some(dhcp.parts.leases.clone()))
        .context("cannot open the ZTP state")?;
    let _ = ztp.leases6.set(dhcp6.parts.leases.clone());
    // Serials bound at run time (SPEC §12) are laid over the plans from the start.
    ztp.bindings.set_changed(changed_tx.clone());
    metrics.push(ztp.drift.clone());
    if !ztp.bindings.list().is_empty() {
        ztp.bindings.publish(&snapshot);
    }
    let facts = Arc::new(DaemonFacts::new(snapshot.clone(), ztp.clone()));
    // The local hub's key is made at start, as before, when no hub.toml is loaded.
    let _ = facts.hub();
    let files = Arc::new(FileService::new(snapshot.clone(), facts.clone()));
    metrics.push(files.ledger.clone());
    let routing = crate::telemetry::service::RoutingParts {
        routes: Arc::new(snapshot.clone()),
        state: &state,
        hub_name: facts.hub().map(|h| h.hostname.clone()).unwrap_or_default(),
        shutdown: shutdown.clone(),
    };
    let bridge =
        crate::telemetry::service::prepare(&resolved, resolved.settings.broker.enabled, routing)
            .await?;
    if let Some(b) = &bridge {
        metrics.extend(b.metrics());
    }
    let hub = hub::start(
        &resolved,
        &facts,
        &state,
        bridge.as_ref().and_then(|b| b.ingest()),
    )
    .await?;
    if let Some(h) = &hub {
        metrics.push(h.hub.metrics());
        if let Some(b) = &bridge {
            b.router().set_twins(h.hub.clone());
        }
    }

    let unplanned = dhcp.parts.unplanned.clone();
    let tftp_addr = resolved.settings.listen.tftp;
    let tftp_socket = listen::udp("listen.tftp", tftp_addr)?;
    tracing::info!(addr = %tftp_socket.local_addr()?, "tftp listening");

    // Reload requests (set up before HTTP answers, so readiness means
    // edits are watched): watcher events and SIGHUP. Capacity 1: a pending
    // request already covers any later change.
    let mut tasks = tokio::task::JoinSet::new();
    let (reload_tx, reload_rx) = mpsc::channel(1);
    let reloader = Arc::new(Reloader {
        snapshot: snapshot.clone(),
        status: status.clone(),
        plan_args: opts.plan_args.clone(),
        changed: changed_tx,
        bindings: Some(ztp.bindings.clone()),
        cache: std::sync::Mutex::new(opts.load_cache),
        in_place: reload::InPlace {
            token: token.clone(),
            sessions: sessions.clone(),
            state: state.writer(),
        },
    });
    tasks.spawn(async_ok(reload::run(reloader, reload_rx, shutdown.clone())));
    // A thread, not a task: it ends when the reload task above is gone.
    watcher::spawn(
        watch_set(&resolved, &opts.plan_args),
        opts.watch,
        reload_tx.clone(),
    );
    tasks.spawn(async_ok(signals::forward_sighup(
        reload_tx,
        shutdown.clone(),
    )));
    // hub.toml and device functions are part of what a reload re-reads:
    // refresh the hub, then bring the credentials in step.
    // Device events go to the local hub and to telemetry.broker, where
    // devices may be connected; with neither, to the actions endpoint only.
    let mut publishers: Vec<Arc<dyn DeviceEvents>> = Vec::new();
    if let Some(h) = &hub {
        publishers.push(h.hub.clone());
    }
    if let Some(url) = &resolved.settings.telemetry.broker {
        match MqttEvents::start(url) {
            Ok((m, driver)) => {
                tasks.spawn(async_ok(driver.run(shutdown.clone())));
                publishers.push(Arc::new(m));
            }
            Err(e) => tracing::error!("telemetry.broker: {e}; device events do not go there"),
        }
    }
    let events: Arc<dyn DeviceEvents> = match publishers.len() {
        0 => Arc::new(ActionsOnly),
        1 => publishers.remove(0),
        _ => Arc::new(Fanout(publishers)),
    };
    ztp.actions.set_publisher(events, &state.reader()?);
    let _ = credentials::sync(&facts, hub.as_ref().map(|h| &*h.hub));
    let hub_parts = hub.as_ref().map(|h| (h.hub.clone(), h.cert.clone()));
    tasks.spawn(async_ok(credentials::keep(
        facts.clone(),
        hub_parts,
        changed_rx.clone(),
        shutdown.clone(),
    )));

    let http_listener = listen::tcp("listen.http", http_addr)?;
    tracing::info!(addr = %http_listener.local_addr()?, "http listening");
    log_gui_url(&resolved, http_listener.local_addr()?, &token_path);

    let groups = Arc::new(
        crate::rollout::groups::GroupStore::open(&state).context("cannot open the group state")?,
    );
    let rollouts = crate::rollout::service::Rollouts::open(
        &state,
        ztp.clone(),
        hub.as_ref().map(|h| h.hub.clone()),
        snapshot.clone(),
        groups.clone(),
        Arc::new(crate::rollout::service::SystemClock),
    )
    .context("cannot open the rollout state")?;
    tasks.spawn(async_ok(crate::rollout::runner::run(
        rollouts.clone(),
        shutdown.clone(),
    )));
    let services = http::HttpServices {
        health: Arc::new(http::Health {
            snapshot: snapshot.clone(),
            metrics,
        }),
        files: files.clone(),
        ztp: ztp.clone(),
        api: Arc::new(crate::api::OperatorApi {
            snapshot: snapshot.clone(),
            ztp: ztp.clone(),
            status: status.clone(),
            token,
            unplanned,
            sessions,
            groups,
            rollouts,
            hub: hub.as_ref().map(|h| h.hub.clone()),
            state: state.writer(),
        }),
    };
    tasks.spawn(http::serve(
        http_listener,
        services,
        nofile,
        shutdown.clone(),
    ));
    tasks.spawn(crate::ztp::observe::run(
        ztp.clone(),
        Some(files.ledger.clone()),
        shutdown.clone(),
    ));
    tasks.spawn(files::tftp::serve(tftp_socket, files, shutdown.clone()));
    tasks.spawn(dhcp6.run(dhcp6_socket, changed_rx.clone(), shutdown.clone()));
    tasks.spawn(async_ok(crate::ztp::drift::run(
        ztp.clone(),
        shutdown.clone(),
    )));
    tasks.spawn(dhcp.run(dhcp_socket, changed_rx, shutdown.clone()));
    if let Some(b) = bridge {
        tasks.spawn(b.run(shutdown.clone()));
    }
    if let Some(h) = hub {
        let limits = &resolved.settings.limits;
        let cap = crate::limits::fit_cap(
            "limits.hub_connections",
            limits.hub_connections,
            crate::settings::Limits::default().hub_connections,
            nofile,
            (limits.http_connections + limits.tftp_transfers) as u64,
        );
        let per_client = limits.hub_unauthenticated_per_client;
        tasks.spawn(crate::broker::server::serve(
            h.hub,
            h.listeners,
            (cap, per_client),
            shutdown.clone(),
        ));
    }

    signals::wait_for_signal(&shutdown).await;
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

/// Where a newcomer finds the GUI and what to paste into it.
fn log_gui_url(resolved: &Resolved, http: std::net::SocketAddr, token: &std::path::Path) {
    let mut gui = resolved.settings.listen.api.unwrap_or(http);
    if gui.ip().is_unspecified() {
        gui.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let token = std::path::absolute(token).unwrap_or_else(|_| token.to_path_buf());
    tracing::info!(
        "topology GUI at http://{gui}/ (log in with the operator token in {})",
        token.display()
    );
}

/// A task that cannot fail, in the shape of the services' results.
async fn async_ok(f: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    f.await;
    Ok(())
}

/// Start the runtime and run the daemon until a signal.
pub fn block_on_run(resolved: Resolved, first: Snapshot, opts: RunOptions) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(run(resolved, first, opts));
    // Dropping the runtime waits for every blocking task without end: a
    // thread stuck in a read (a FIFO a template includes) would keep the
    // process alive after SIGTERM. `run` has drained within its grace by
    // now; what is still running is given this long, then left behind.
    rt.shutdown_timeout(EXIT_GRACE);
    result
}

/// How long threads still running after the drain may take before the
/// process exits anyway: with [`SHUTDOWN_GRACE`], the process is gone
/// within 10 s of SIGTERM.
const EXIT_GRACE: Duration = Duration::from_secs(2);
