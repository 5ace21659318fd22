//! The local hub: its listeners (`[broker] listen`, plain, and
//! `tls_listen`), the connected devices, and what the rest of ztpd asks of
//! it (devicebound events, desired-property patches, reported properties).
//!
//! Limits (defaults in docs/telemetry.md): `[limits] hub_connections` open
//! connections over both listeners (more wait in the kernel's backlog),
//! [`session::CONNECT_TIMEOUT`], [`session::MAX_INFLIGHT`] messages per
//! connection, [`session::MAX_PACKET`] bytes per packet,
//! [`super::outbox::MAX_PER_DEVICE`] queued devicebound messages per device,
//! and refusals and accept errors logged at most once a second.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::acl::Subscription;
use super::outbox::Outbox;
use super::session;
use super::tls::HubCert;
use super::twins::Twins;
use crate::credentials::Hub;
use crate::limits::{is_exhaustion, RateLimitedLog};
use crate::metrics::{write_metric, MetricsSource};
use crate::settings::{bind_error, Resolved};
use crate::state::StateStore;
use crate::telemetry::pipeline::Ingest;

/// The hub whose enrollment key signs device tokens, read at every CONNECT
/// (it changes when hub.toml is reloaded).
pub type HubLookup = Arc<dyn Fn() -> Option<Arc<Hub>> + Send + Sync>;
/// A device's desired properties as the serving snapshot gives them.
pub type DesiredLookup = Arc<dyn Fn(&str) -> Value + Send + Sync>;

/// Messages pushed to one connection beyond this are dropped (twin
/// patches) or wait in the outbox for the next acknowledgement (devicebound).
const PUSH_QUEUE: usize = 64;
/// A pause after an accept error that means descriptors ran out.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// Connections from one address that have not finished CONNECT yet, over
/// both listeners: so one host cannot take every slot with idle sockets
/// (as `tftp_transfers_per_client` for TFTP). Authenticated connections
/// do not count: many devices behind one NAT stay connected.
pub const UNAUTHENTICATED_PER_ADDRESS: usize = 64;

/// Connections per address that have not finished CONNECT.
#[derive(Default)]
pub struct Unauthenticated(Mutex<HashMap<std::net::IpAddr, usize>>);

/// One connection counted in [`Unauthenticated`] until it is dropped (when
/// its CONNECT is read, or it ends).
pub struct Counted {
    table: Arc<Unauthenticated>,
    ip: std::net::IpAddr,
}

impl Unauthenticated {
    /// Count a connection from `ip`, or None when the address has
    /// [`UNAUTHENTICATED_PER_ADDRESS`] already.
    fn admit(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<Counted> {
        let mut m = self.0.lock().ok()?;
        let n = m.entry(ip).or_insert(0);
        if *n >= UNAUTHENTICATED_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(Counted {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Ok(mut m) = self.table.0.lock() {
            if let Some(n) = m.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&self.ip);
                }
            }
        }
    }
}

/// What a device subscribed to on this connection (or kept in its
/// persistent session).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Subs(u8);

impl Subs {
    fn bit(s: Subscription) -> u8 {
        match s {
            Subscription::Devicebound => 1,
            Subscription::TwinResponses => 2,
            Subscription::DesiredPatches => 4,
            Subscription::Methods => 8,
        }
    }
    pub fn add(&mut self, s: Subscription) {
        self.0 |= Self::bit(s);
    }
    pub fn remove(&mut self, s: Subscription) {
        self.0 &= !Self::bit(s);
    }
    pub fn has(&self, s: Subscription) -> bool {
        self.0 & Self::bit(s) != 0
    }
}

/// Something for a connected device.
pub enum Push {
    /// New messages wait in the outbox.
    Devicebound,
    /// A QoS 0 message for subscribers of `subscription`.
    Twin {
        topic: String,
        payload: Bytes,
        subscription: Subscription,
    },
}

struct Connected {
    conn: u64,
    tx: mpsc::Sender<Push>,
    /// Cancelled when another connection of the device takes over (a
    /// token, not a message: it works even when the push queue is full).
    kick: CancellationToken,
}

#[derive(Default)]
struct Sessions {
    connected: HashMap<String, Connected>,
    /// Subscriptions of persistent sessions (`clean_session = false`) of
    /// devices that are offline; memory only, so a restart of ztpd starts
    /// every session fresh (and CONNACK says so).
    kept: HashMap<String, Subs>,
}

/// Counters on `/metrics`.
#[derive(Debug, Default)]
pub struct HubStats {
    pub devices: AtomicI64,
    pub connects: AtomicU64,
    pub refused: AtomicU64,
    pub malformed: AtomicU64,
    pub timed_out: AtomicU64,
    pub messages: AtomicU64,
    pub refused_publishes: AtomicU64,
    pub refused_subscriptions: AtomicU64,
    pub accept_errors: AtomicU64,
}

impl MetricsSource for HubStats {
    fn write_metrics(&self, out: &mut String) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        write_metric(
            out,
            "ztpd_hub_devices_connected",
            "gauge",
            "Devices connected to the local hub",
            &[("", self.devices.load(Ordering::Relaxed).max(0) as u64)],
        );
        write_metric(
            out,
            "ztpd_broker_connects_total",
            "counter",
            "CONNECTs to the local hub by outcome",
            &[
                ("outcome=\"device\"", g(&self.connects)),
                ("outcome=\"refused\"", g(&self.refused)),
                ("outcome=\"malformed\"", g(&self.malformed)),
                ("outcome=\"timed_out\"", g(&self.timed_out)),
            ],
        );
        write_metric(
            out,
            "ztpd_hub_messages_total",
            "counter",
            "Telemetry messages received by the local hub",
            &[("", g(&self.messages))],
        );
        write_metric(
            out,
            "ztpd_hub_refused_total",
            "counter",
            "Device requests the local hub refused (another device's topics)",
            &[
                ("what=\"publish\"", g(&self.refused_publishes)),
                ("what=\"subscribe\"", g(&self.refused_subscriptions)),
            ],
        );
        write_metric(
            out,
            "ztpd_hub_accept_errors_total",
            "counter",
            "Failed accepts on the local hub's listeners",
            &[("", g(&self.accept_errors))],
        );
    }
}

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

/// What a new connection gets from [`LocalHub::register`].
pub struct Registered {
    pub conn: u64,
    pub pushes: mpsc::Receiver<Push>,
    /// Cancelled when a newer connection of the same device takes over.
    pub kicked: CancellationToken,
    /// Whether a persistent session was kept (CONNACK's session present).
    pub present: bool,
    pub subs: Subs,
}

pub struct LocalHub {
    hub: HubLookup,
    desired: DesiredLookup,
    pub(super) ingest: Ingest,
    pub(super) twins: Twins,
    pub(super) outbox: Outbox,
    pub(super) stats: Arc<HubStats>,
    sessions: Mutex<Sessions>,
    next_conn: AtomicU64,
    refusals: Mutex<RateLimitedLog>,
}

impl LocalHub {
    pub fn open(
        state: &StateStore,
        hub: HubLookup,
        desired: DesiredLookup,
        ingest: Ingest,
    ) -> anyhow::Result<Arc<LocalHub>> {
        Ok(Arc::new(LocalHub {
            hub,
            desired,
            ingest,
            twins: Twins::open(state)?,
            outbox: Outbox::open(state)?,
            stats: Arc::new(HubStats::default()),
            sessions: Mutex::new(Sessions::default()),
            next_conn: AtomicU64::new(1),
            refusals: Mutex::new(RateLimitedLog::new(Duration::from_secs(1))),
        }))
    }

    pub fn metrics(&self) -> Arc<dyn MetricsSource> {
        self.stats.clone()
    }

    pub(super) fn hub_settings(&self) -> Option<Arc<Hub>> {
        (self.hub)()
    }

    pub(super) fn desired(&self, device_id: &str) -> Value {
        (self.desired)(device_id)
    }

    /// A device's reported properties (for `GET /api/v1/devices`).
    pub fn reported(&self, device_id: &str) -> Option<Value> {
        self.twins.reported(device_id)
    }

    pub(super) fn log_refusal(&self, why: &str) {
        if let Ok(mut l) = self.refusals.lock() {
            l.warn("local hub refused a client", &why);
        }
    }

    /// A device connected: its connection id, what is pushed to it, whether
    /// its persistent session was kept, and that session's subscriptions.
    /// An earlier connection of the same device is closed (MQTT 3.1.1
    /// §3.1.4: the server disconnects the existing client).
    pub(super) fn register(&self, device_id: &str, clean: bool) -> Registered {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(PUSH_QUEUE);
        let kick = CancellationToken::new();
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let new = Connected {
            conn,
            tx,
            kick: kick.clone(),
        };
        if let Some(old) = s.connected.insert(device_id.to_string(), new) {
            old.kick.cancel();
        }
        let kept = s.kept.remove(device_id);
        let (present, subs) = match (clean, kept) {
            (false, Some(subs)) => (true, subs),
            _ => (false, Subs::default()),
        };
        Registered {
            conn,
            pushes: rx,
            kicked: kick,
            present,
            subs,
        }
    }

    /// A connection ended; `keep`: its subscriptions, for a persistent session.
    pub(super) fn unregister(&self, device_id: &str, conn: u64, keep: Option<Subs>) {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if s.connected.get(device_id).is_some_and(|c| c.conn == conn) {
            s.connected.remove(device_id);
            if let Some(subs) = keep {
                s.kept.insert(device_id.to_string(), subs);
            }
        }
    }

    fn push(&self, device_id: &str, p: Push) {
        let s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = s.connected.get(device_id) {
            let _ = c.tx.try_send(p);
        }
    }

    /// Queue a devicebound message (QoS 1, kept until acknowledged).
    pub fn send_devicebound(&self, device_id: &str, payload: Bytes) {
        self.outbox
            .push(device_id, crate::topics::devicebound(device_id), payload);
        self.push(device_id, Push::Devicebound);
    }

    /// Bring a device's desired properties in step with the snapshot and,
    /// when they changed, publish the patch to it if it is connected.
    pub async fn sync_desired(&self, device_id: &str) {
        let desired = self.desired(device_id);
        match self.twins.set_desired(device_id, desired.clone()).await {
            Ok(Some(version)) => {
                let mut patch = match desired {
                    Value::Object(m) => m,
                    _ => Default::default(),
                };
                patch.insert("$version".into(), version.into());
                self.push(
                    device_id,
                    Push::Twin {
                        topic: format!("$iothub/twin/PATCH/properties/desired/?$version={version}"),
                        payload: Bytes::from(Value::Object(patch).to_string()),
                        subscription: Subscription::DesiredPatches,
                    },
                );
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(device_id, "desired properties not saved: {e}"),
        }
    }

    /// Accept on both listeners until `shutdown`, at most `cap` connections.
    pub async fn serve(
        self: Arc<Self>,
        listeners: Listeners,
        cap: usize,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let permits = Arc::new(Semaphore::new(cap));
        let pending = Arc::new(Unauthenticated::default());
        let mut tasks = tokio::task::JoinSet::new();
        tracing::info!(addr = ?listeners.plain_addr(), tls = ?listeners.tls_addr(), cap, "local hub listening");
        tasks.spawn(accept_loop(
            self.clone(),
            listeners.plain,
            None,
            (permits.clone(), pending.clone()),
            shutdown.clone(),
        ));
        if let Some((l, cert)) = listeners.tls {
            let acceptor = tokio_rustls::TlsAcceptor::from(cert.server_config());
            tasks.spawn(accept_loop(
                self.clone(),
                l,
                Some(acceptor),
                (permits, pending),
                shutdown.clone(),
            ));
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
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
                    "{} has {UNAUTHENTICATED_PER_ADDRESS} connections without a CONNECT \
                     already; closed another",
                    peer.ip()
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

impl crate::device_events::DeviceEvents for LocalHub {
    fn send(&self, device_id: &str, event: &Value) {
        self.send_devicebound(device_id, Bytes::from(event.to_string()));
    }
}
