//! How a DHCP server (DHCPv4 or DHCPv6) lives inside `ztpd run`: its socket
//! loop runs while some plan has its section (`[dhcp]`, `[dhcp6]`); a reload
//! that adds the first one starts it, one that removes the last stops it and
//! frees the port. Shared by `dhcp::service` and `dhcp6::service`.

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One family's server as the reload loop sees it.
pub trait Served {
    type Socket;
    /// "DHCP" or "DHCPv6", and the plan section that turns it on.
    const NAME: &'static str;
    const SECTION: &'static str;
    /// Whether some plan of the current snapshot has [`Self::SECTION`].
    fn wanted(&self) -> bool;
    /// Bind the listener when wanted (`None` otherwise), with an error
    /// naming the setting when it cannot be bound.
    fn bind_if_wanted(&self) -> anyhow::Result<Option<Self::Socket>>;
    /// Start the socket loop on `socket`, stopping at `token`.
    fn spawn(
        &self,
        socket: Self::Socket,
        token: CancellationToken,
    ) -> JoinHandle<anyhow::Result<()>>;
}

/// Serve on `socket` (from [`Served::bind_if_wanted`]) and follow reloads
/// (`changed`) until `shutdown`: start when a plan gains the first section,
/// stop when the last one goes.
pub async fn follow_reloads<S: Served>(
    server: &S,
    socket: Option<S::Socket>,
    mut changed: watch::Receiver<u64>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (name, section) = (S::NAME, S::SECTION);
    let start = |s| {
        let token = shutdown.child_token();
        let task = server.spawn(s, token.clone());
        Running { name, token, task }
    };
    let mut running = socket.map(start);
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
        match (server.wanted(), running.is_some()) {
            (true, false) => match server.bind_if_wanted() {
                Ok(Some(s)) => {
                    tracing::info!("{name} started: a reload added a [{section}] section");
                    running = Some(start(s));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!("{name} not started: {e:#}; retried at the next reload")
                }
            },
            (false, true) => {
                if let Some(r) = running.take() {
                    r.stop().await;
                }
                tracing::info!("{name} stopped: no plan has a [{section}] section any more");
            }
            _ => {}
        }
    }
    if let Some(r) = running.take() {
        r.stop().await;
    }
    Ok(())
}

/// One run of a socket loop.
struct Running {
    name: &'static str,
    token: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    async fn stop(self) {
        self.token.cancel();
        let name = self.name.to_lowercase();
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("{name} loop ended with an error: {e:#}"),
            Err(e) => tracing::error!("{name} loop failed: {e}"),
        }
    }
}
