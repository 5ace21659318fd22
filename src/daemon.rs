//! `ztpd run`: load the plans, build the first snapshot, bind every listener,
//! start the services with their socket and a shutdown token, and wait.
//!
//! Services get their socket and shutdown signal as arguments, so tests can
//! start them on `127.0.0.1:0` and stop them deterministically.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::files::{self, FileService};
use crate::http;
use crate::metrics::MetricsSource;
use crate::settings::Resolved;
use crate::snapshot::{Snapshot, SnapshotHandle};

/// How long in-flight work may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What every service may share. Built once at start; cheap to clone.
#[derive(Clone)]
pub struct Shared {
    pub snapshot: SnapshotHandle,
    pub metrics: Arc<Vec<Arc<dyn MetricsSource>>>,
    /// Deployment files over TFTP and HTTP (`/files/...`).
    pub files: Arc<FileService>,
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

pub async fn run(resolved: Resolved, first: Snapshot) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let http_addr = resolved.settings.listen.http;
    let snapshot = SnapshotHandle::new(first);
    // The lead replaces NoFacts with leases, approvals and SAS verification.
    let files = Arc::new(FileService::new(
        snapshot.clone(),
        Arc::new(files::access::NoFacts),
    ));
    let metrics: Vec<Arc<dyn MetricsSource>> = vec![files.ledger.clone()];
    let shared = Shared {
        snapshot,
        metrics: Arc::new(metrics),
        files: files.clone(),
    };
    let tftp_addr = resolved.settings.listen.tftp;
    let tftp_socket = tokio::net::UdpSocket::bind(tftp_addr)
        .await
        .map_err(|e| bind_error("listen.tftp", tftp_addr, e))?;
    tracing::info!(addr = %tftp_socket.local_addr()?, "tftp listening");

    let http_listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|e| bind_error("listen.http", http_addr, e))?;
    tracing::info!(addr = %http_listener.local_addr()?, "http listening");

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(http::serve(http_listener, shared.clone(), shutdown.clone()));
    tasks.spawn(files::tftp::serve(tftp_socket, files, shutdown.clone()));

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

/// Start with context so `main` can print one clear line.
pub fn block_on_run(resolved: Resolved, first: Snapshot) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(run(resolved, first))
}
