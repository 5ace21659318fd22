//! DHCP inside `ztpd run`: leases and the unplanned register are loaded at
//! start whatever the plans say (ZTP, `/metrics` and the operator API read
//! them), and the socket loop runs while some plan has a `[dhcp]` section
//! (`follow`: a reload that adds the first one starts it; one that removes
//! the last stops it and frees the port).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::follow::{follow_reloads, Served};
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
        changed: watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        follow_reloads(&self, socket, changed, shutdown).await
    }
}

impl Served for DhcpService {
    type Socket = std::net::UdpSocket;
    const NAME: &'static str = "DHCP";
    const SECTION: &'static str = "dhcp";

    fn wanted(&self) -> bool {
        wanted(&self.snapshots)
    }

    fn bind_if_wanted(&self) -> anyhow::Result<Option<std::net::UdpSocket>> {
        DhcpService::bind_if_wanted(self)
    }

    fn spawn(
        &self,
        socket: std::net::UdpSocket,
        token: CancellationToken,
    ) -> JoinHandle<anyhow::Result<()>> {
        self.parts.stats.mark_started();
        tokio::spawn(serve(socket, self.parts.clone(), token))
    }
}
