//! The local hub's listeners (`[broker] listen`, plain, and `tls_listen`):
//! accept, admit, hand each connection to a session.
//!
//! Limits (defaults in docs/telemetry.md): `[limits] hub_connections` open
//! connections over both listeners (more wait in the kernel's backlog),
//! [`session::CONNECT_TIMEOUT`], [`session::MAX_INFLIGHT`] messages per
//! connection, [`session::MAX_PACKET`] bytes per packet,
//! [`super::outbox::MAX_PER_DEVICE`] queued devicebound messages per device,
//! `limits.hub_unauthenticated_per_client` connections per address before
//! CONNECT ([`super::admission`]), and refusals and accept errors logged at
//! most once a second.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::admission::Unauthenticated;
use super::hub::LocalHub;
use super::session;
use super::tls::HubCert;
use crate::limits::{is_exhaustion, RateLimitedLog};
use crate::settings::{bind_error, Resolved};

/// A pause after an accept error that means descriptors ran out.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The bound listeners, before the hub serves them.
pub struct Listeners {
    plain: TcpListener,
    tls: Option<(TcpListener, Arc<HubCert>)>,
}

impl Listeners {
    /// Bind `[broker] listen` and `tls_listen`; a taken port is an error
    /// naming the setting.
    pub async fn bind(
        resolved: &Resolved,
        cert: Option<Arc<HubCert>>,
    ) -> anyhow::Result<Listeners> {
        let b = &resolved.settings.broker;
        let plain = TcpListener::bind(b.listen)
            .await
            .map_err(|e| bind_error("broker.listen", b.listen, e))?;
        let tls = match (b.tls_listen, cert) {
            (Some(addr), Some(cert)) => Some((
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| bind_error("broker.tls_listen", addr, e))?,
                cert,
            )),
            _ => None,
        };
        Ok(Listeners { plain, tls })
    }

    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain.local_addr().ok()
    }

    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls.as_ref().and_then(|(l, _)| l.local_addr().ok())
    }
}

/// Accept on both listeners until `shutdown`, at most `cap` connections,
/// of them at most `per_client` from one address before their CONNECT.
pub async fn serve(
    hub: Arc<LocalHub>,
    listeners: Listeners,
    (cap, per_client): (usize, usize),
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let permits = Arc::new(Semaphore::new(cap));
    let pending = Arc::new(Unauthenticated::new(per_client));
    let mut tasks = tokio::task::JoinSet::new();
    tracing::info!(addr = ?listeners.plain_addr(), tls = ?listeners.tls_addr(), cap, "local hub listening");
    tasks.spawn(accept_loop(
        hub.clone(),
        listeners.plain,
        None,
        (permits.clone(), pending.clone()),
        shutdown.clone(),
    ));
    if let Some((l, cert)) = listeners.tls {
        let acceptor = tokio_rustls::TlsAcceptor::from(cert.server_config());
        tasks.spawn(accept_loop(
            hub.clone(),
            l,
            Some(acceptor),
            (permits, pending),
            shutdown.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

async fn accept_loop(
    hub: Arc<LocalHub>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    (permits, pending): (Arc<Semaphore>, Arc<Unauthenticated>),
    shutdown: CancellationToken,
) {
    let mut refusals = RateLimitedLog::new(Duration::from_secs(1));
    let mut errors = RateLimitedLog::new(Duration::from_secs(1));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                hub.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                errors.warn("local hub accept", &e);
                if is_exhaustion(&e) {
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                }
                continue;
            }
        };
        let Some(counted) = pending.admit(peer.ip()) else {
            // Closed at once: its slot goes back to the others.
            hub.stats.refused.fetch_add(1, Ordering::Relaxed);
            refusals.warn(
                "local hub",
                &format!(
                    "{} has {} connections without a CONNECT already \
                     (limits.hub_unauthenticated_per_client); closed another",
                    peer.ip(),
                    pending.cap()
                ),
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let fd = Some(std::os::fd::AsRawFd::as_raw_fd(&stream));
        let (hub, tls, shutdown) = (hub.clone(), tls.clone(), shutdown.clone());
        // One deadline from accept to a whole CONNECT, TLS handshake
        // included (it was 10 s for each, so 20 s in all).
        let connect_by = tokio::time::Instant::now() + session::CONNECT_TIMEOUT;
        let start = session::Start {
            fd,
            peer,
            connect_by,
            counted,
        };
        conns.spawn(async move {
            let _permit = permit;
            match tls {
                None => session::serve(hub, stream, start, shutdown).await,
                Some(acceptor) => {
                    let hs = tokio::time::timeout_at(connect_by, acceptor.accept(stream)).await;
                    match hs {
                        Ok(Ok(s)) => session::serve(hub, s, start, shutdown).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "local hub: TLS handshake failed: {e}")
                        }
                        Err(_) => {
                            hub.stats.timed_out.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    conns.shutdown().await;
}
