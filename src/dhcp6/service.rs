//! DHCPv6 inside `ztpd run`: leases and the server DUID are loaded at start,
//! and the socket loop runs while some plan has a `[dhcp6]` section (a
//! reload that adds the first starts it, one that removes the last stops it).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::leases::Leases6;
use super::server::{serve, Parts6};
use super::sock;
use super::stats::{Dhcp6Metrics, Dhcp6Stats};
use super::view::ViewSource6;
use crate::dhcp::follow::{follow_reloads, Served};
use crate::dhcp::unplanned::Unplanned;
use crate::snapshot::SnapshotHandle;
use crate::state::StateStore;

fn wanted(snapshots: &SnapshotHandle) -> bool {
    snapshots
        .load()
        .model
        .sites
        .iter()
        .any(|s| s.dhcp6.is_some())
}

/// The server's DUID (RFC 8415 §11): made once, a DUID-UUID (type 4) of
/// random bytes, and kept in the state store so that clients renewing
/// after a restart still find their server.
pub fn server_duid(state: &StateStore) -> anyhow::Result<Vec<u8>> {
    state.migrate(
        "dhcp6_server",
        &["CREATE TABLE dhcp6_server (id INTEGER PRIMARY KEY CHECK (id = 1), duid BLOB NOT NULL)"],
    )?;
    let conn = state.reader()?;
    let stored: Option<Vec<u8>> = conn
        .query_row("SELECT duid FROM dhcp6_server WHERE id = 1", [], |r| {
            r.get(0)
        })
        .ok();
    if let Some(d) = stored {
        return Ok(d);
    }
    let mut duid = vec![0, 4];
    duid.extend_from_slice(&rand::random::<[u8; 16]>());
    let d = duid.clone();
    state
        .writer()
        .write_now(|c| {
            c.execute(
                "INSERT OR IGNORE INTO dhcp6_server (id, duid) VALUES (1, ?1)",
                [&d],
            )
            .map(|_| ())
        })
        .map_err(|e| anyhow::anyhow!("cannot store the DHCPv6 server DUID: {e}"))?;
    Ok(duid)
}

pub struct Dhcp6Service {
    pub parts: Parts6,
    snapshots: SnapshotHandle,
    addr: SocketAddr,
}

impl Dhcp6Service {
    /// Load leases and the server DUID; binds nothing yet. The unplanned
    /// register is DHCPv4's: one list, rows of both families.
    pub fn open(
        resolved: &crate::settings::Resolved,
        snapshots: &SnapshotHandle,
        state: &StateStore,
        unplanned: Arc<Unplanned>,
    ) -> anyhow::Result<Dhcp6Service> {
        let http_port = resolved.settings.listen.http.port();
        Ok(Dhcp6Service {
            parts: Parts6 {
                views: Arc::new(ViewSource6::from_snapshots(snapshots.clone(), http_port)),
                leases: Arc::new(Leases6::open(state)?),
                stats: Arc::new(Dhcp6Stats::default()),
                unplanned,
                server_duid: Arc::new(server_duid(state)?),
            },
            snapshots: snapshots.clone(),
            addr: resolved.settings.listen.dhcp6,
        })
    }

    pub fn bind_if_wanted(&self) -> anyhow::Result<Option<socket2::Socket>> {
        if !wanted(&self.snapshots) {
            return Ok(None);
        }
        let socket = sock::bind(self.addr)
            .map_err(|e| crate::settings::bind_error("listen.dhcp6", self.addr, e))?;
        tracing::info!(addr = %self.addr, "dhcpv6 listening");
        Ok(Some(socket))
    }

    pub fn metrics(&self) -> Arc<dyn crate::metrics::MetricsSource> {
        Arc::new(Dhcp6Metrics {
            stats: self.parts.stats.clone(),
            leases: self.parts.leases.clone(),
        })
    }

    pub async fn run(
        self,
        socket: Option<socket2::Socket>,
        changed: watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        follow_reloads(&self, socket, changed, shutdown).await
    }
}

impl Served for Dhcp6Service {
    type Socket = socket2::Socket;
    const NAME: &'static str = "DHCPv6";
    const SECTION: &'static str = "dhcp6";

    fn wanted(&self) -> bool {
        wanted(&self.snapshots)
    }

    fn bind_if_wanted(&self) -> anyhow::Result<Option<socket2::Socket>> {
        Dhcp6Service::bind_if_wanted(self)
    }

    fn spawn(
        &self,
        socket: socket2::Socket,
        token: CancellationToken,
    ) -> JoinHandle<anyhow::Result<()>> {
        self.parts
            .stats
            .started
            .store(true, std::sync::atomic::Ordering::Relaxed);
        tokio::spawn(serve(socket, self.parts.clone(), token))
    }
}
