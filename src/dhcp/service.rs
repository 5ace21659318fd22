//! DHCP inside `ztpd run`: leases and the unplanned register are loaded at
//! start whatever the plans say (ZTP, `/metrics` and the operator API read
//! them), and the socket loop runs while some plan has a `[dhcp]` section. A
//! reload that adds the first one starts it; one that removes the last stops
//! it and frees the port.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::leases::Leases;
use super::leases::{store, LeaseTable};
use super::server::{serve, Parts};
use super::sock;
use super::stats::{DhcpMetrics, DhcpStats};
use super::unplanned::Unplanned;
use super::view::ViewSource;
use crate::snapshot::SnapshotHandle;

/// Load the stored leases into a table and wire the writer.
pub fn open_leases(state: &crate::state::StateStore) -> Result<Leases, crate::state::StateError> {
    let stored = store::open(state)?;
    tracing::info!(leases = stored.len(), "dhcp leases loaded");
    Ok(Leases::new(
        LeaseTable::from_leases(stored),
        Some(state.writer()),
    ))
}

/// True when some plan of the snapshot serves DHCP.
fn wanted(snapshots: &SnapshotHandle) -> bool {
    snapshots
        .load()
        .model
        .sites
        .iter()
        .any(|s| s.dhcp.is_some())
}

pub struct DhcpService {
    pub parts: Parts,
    snapshots: SnapshotHandle,
    addr: SocketAddr,
}

impl DhcpService {
    /// Load leases and the unplanned register. Binds nothing yet.
    pub fn open(
        resolved: &crate::settings::Resolved,
        snapshots: &SnapshotHandle,
        state: &crate::state::StateStore,
    ) -> anyhow::Result<DhcpService> {
        let leases = open_leases(state)?;
        let unplanned = Unplanned::open(state)?;
        let http_port = resolved.settings.listen.http.port();
        Ok(DhcpService {
            parts: Parts {
                views: Arc::new(ViewSource::from_snapshots(snapshots.clone(), http_port)),
                leases: Arc::new(leases),
                stats: Arc::new(DhcpStats::default()),
                unplanned: Arc::new(unplanned),
            },
            snapshots: snapshots.clone(),
            addr: resolved.settings.listen.dhcp,
        })
    }

    /// Bind `listen.dhcp` when some plan serves DHCP (`None` otherwise), with
    /// a clear error naming the setting when it cannot be bound.
    pub fn bind_if_wanted(&self) -> anyhow::Result<Option<std::net::UdpSocket>> {
        if !wanted(&self.snapshots) {
            tracing::info!("no plan has a [dhcp] section; DHCP not started");
            return Ok(None);
        }
        let socket = sock::bind(self.addr)
            .map_err(|e| crate::settings::bind_error("listen.dhcp", self.addr, e))?;
        tracing::info!(addr = %self.addr, "dhcp listening");
        Ok(Some(socket))
    }

    pub fn metrics(&self) -> Arc<dyn crate::metrics::MetricsSource> {
        Arc::new(DhcpMetrics {
            stats: self.parts.stats.clone(),
            leases: self.parts.leases.clone(),
            views: self.parts.views.clone(),
        })
    }

    /// Serve on `socket` (from [`Self::bind_if_wanted`]) and follow reloads
    /// (`changed`) until `shutdown`: start when a plan gains the first
    /// `[dhcp]` section, stop when the last one goes.
    pub async fn run(
        self,
        socket: Option<std::net::UdpSocket>,
        mut changed: watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let mut running = socket.map(|s| self.start(s, &shutdown));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                r = changed.changed() => {
                    if r.is_err() {
                        // No more reloads: serve as we are until shutdown.
                        shutdown.cancelled().await;
                        break;
                    }
                }
            }
            match (wanted(&self.snapshots), running.is_some()) {
                (true, false) => match self.bind_if_wanted() {
                    Ok(Some(s)) => {
                        tracing::info!("DHCP started: a reload added a [dhcp] section");
                        running = Some(self.start(s, &shutdown));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!("DHCP not started: {e:#}; retried at the next reload")
                    }
                },
                (false, true) => {
                    if let Some(r) = running.take() {
                        r.stop().await;
                    }
                    tracing::info!("DHCP stopped: no plan has a [dhcp] section any more");
                }
                _ => {}
            }
        }
        if let Some(r) = running.take() {
            r.stop().await;
        }
        Ok(())
    }

    fn start(&self, socket: std::net::UdpSocket, shutdown: &CancellationToken) -> Running {
        self.parts.stats.mark_started();
        let token = shutdown.child_token();
        let task = tokio::spawn(serve(socket, self.parts.clone(), token.clone()));
        Running { token, task }
    }
}

/// One run of the socket loop.
struct Running {
    token: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.token.cancel();
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("dhcp loop ended with an error: {e:#}"),
            Err(e) => tracing::error!("dhcp loop failed: {e}"),
        }
    }
}
