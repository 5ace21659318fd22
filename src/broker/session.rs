//! One connection to the local hub, plain or TLS: CONNECT and its SAS
//! check, then PUBLISH / SUBSCRIBE / PUBACK / PING until it ends. A device
//! registers in the [`Registry`] and gets what is pushed to it by message;
//! a registering device (DPS) does not. Each request goes to its handler
//! ([`super::handlers`]).
//!
//! - Telemetry is handed to the store pipeline; its PUBACK leaves once the
//!   batch holding it is committed, PUBACKs in the order the PUBLISHes came.
//!   At most [`MAX_INFLIGHT`] messages wait at once: the connection is not
//!   read while they do.
//! - Devicebound messages go out at QoS 1 from the outbox and leave it when
//!   the device acknowledges them.
//! - Anything a device may not do (another device's topics, QoS 2, a
//!   malformed packet) closes the connection; a refused subscription gets
//!   the failure return code.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{FuturesOrdered, StreamExt};
use rumqttc::mqttbytes::v4::{
    ConnAck, ConnectReturnCode, Packet, PubAck, Publish, SubAck, SubscribeReasonCode, UnsubAck,
};
use rumqttc::mqttbytes::QoS;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::acl::{self, Subscription};
use super::admission::Counted;
use super::auth::{self, Identity, Login};
use super::handlers::{self, Reply};
use super::hub::LocalHub;
use super::outbox::Queued;
use super::packets::{self, Malformed};
use super::registry::{Push, Registered, Registry, Subs};
use crate::topics::Request;

/// Telemetry messages of one connection waiting for the store at once.
pub const MAX_INFLIGHT: usize = 100;
/// Devicebound messages sent and not yet acknowledged, per connection.
pub const MAX_INFLIGHT_OUT: usize = 16;
/// Largest packet read: above IoT Hub's 256 KB message limit, so that an
/// oversized message reaches the store's validation and is rejected with a
/// reason; anything larger closes the connection.
pub const MAX_PACKET: usize = 1024 * 1024;
/// Time from TCP accept to a whole CONNECT (TLS handshake included).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection's output may wait without a byte written: a device
/// that stops reading is closed after this, so its slot, its buffers and
/// its keep-alive, token-expiry and takeover checks are not held by a
/// blocked write.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Output queued for a connection above which it is not read (so a device
/// that asks for twins without reading the answers stops being served):
/// eight of the largest twin documents.
pub const OUT_HIGH: usize = 256 * 1024;
/// Output queued above which the connection is closed: what is pushed to
/// it (desired-property patches, devicebound messages) while it is not
/// read cannot grow past this. Room for one packet of the largest size
/// read above [`OUT_HIGH`].
pub const OUT_MAX: usize = OUT_HIGH + MAX_PACKET + 64 * 1024;
/// Twin requests (GETs and reported patches) a device may make per second,
/// on average: an SDK makes one at start and a few more on changes; a
/// device looping on them (7,500 a second) slowed every hello. Past it the
/// answer is status 429, as IoT Hub throttles.
pub const TWIN_REQUESTS_PER_SEC: f64 = 50.0;
/// Twin requests a device may make at once before the rate applies.
pub const TWIN_BURST: f64 = 200.0;

type AckFuture = Pin<Box<dyn Future<Output = Option<u16>> + Send>>;

/// Why a connection ended, for the debug log.
#[derive(Debug, thiserror::Error)]
enum End {
    #[error("{0}")]
    Malformed(#[from] Malformed),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("closed by the device")]
    Eof,
    #[error("refused: {0}")]
    Refused(String),
    #[error("no packet within 1.5 keep-alive periods")]
    KeepAlive,
    #[error("taken over by a new connection of the same device")]
    TakenOver,
    #[error("nothing written for {}s: the device does not read", WRITE_TIMEOUT.as_secs())]
    WriteStalled,
    #[error("more than {OUT_MAX} bytes queued for the device")]
    OutputFull,
    #[error("the store pipeline stopped")]
    Stopped,
    #[error("shutdown")]
    Shutdown,
}

/// What the listener knows of an accepted connection.
pub struct Start {
    /// The TCP socket under the stream (also under TLS).
    pub fd: Option<std::os::fd::RawFd>,
    pub peer: SocketAddr,
    /// When the CONNECT must be read by: [`CONNECT_TIMEOUT`] after accept,
    /// TLS handshake included.
    pub connect_by: Instant,
    /// Counts the connection against its address until CONNECT is read.
    pub counted: Counted,
}

/// Serve one accepted connection until it ends.
///
/// `start.fd` is the TCP socket under `io` (also under TLS): after each read the
/// kernel is asked to acknowledge at once (`TCP_QUICKACK`). A device's
/// PUBACK waits for the store, so without it the TCP ACK is delayed too, and
/// a client with Nagle on (libmosquitto's default) holds its next PUBLISHes
/// until that ACK comes.
pub async fn serve<S>(hub: Arc<LocalHub>, mut io: S, start: Start, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Start {
        fd,
        peer,
        connect_by,
        counted,
    } = start;
    let mut buf = BytesMut::with_capacity(4096);
    let read = tokio::time::timeout_at(connect_by, read_connect(&mut io, &mut buf)).await;
    // Past CONNECT: no longer counted against its address.
    drop(counted);
    let connect = match read {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            if let End::Malformed(Malformed::Level(_)) = e {
                let _ = write(
                    &mut io,
                    &Packet::ConnAck(ConnAck::new(
                        ConnectReturnCode::RefusedProtocolVersion,
                        false,
                    )),
                )
                .await;
            }
            hub.stats.malformed.fetch_add(1, Ordering::Relaxed);
            hub.log_refusal(&format!("{peer}: {e}"));
            return;
        }
        Err(_) => {
            hub.stats.timed_out.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    let (username, password) = connect
        .login
        .as_ref()
        .map(|l| (l.username.as_str(), l.password.as_str()))
        .unwrap_or(("", ""));
    let login = Login {
        client_id: &connect.client_id,
        username,
        password,
    };
    let identity = match auth::decide(&hub.view(), login, crate::clock::unix_now()) {
        Ok(id) => id,
        Err(why) => {
            hub.stats.refused.fetch_add(1, Ordering::Relaxed);
            let code = match why {
                _ if why.bad_client_id() => ConnectReturnCode::BadClientId,
                auth::Refused::NoHub { .. } => ConnectReturnCode::ServiceUnavailable,
                _ => ConnectReturnCode::BadUserNamePassword,
            };
            let _ = write(&mut io, &Packet::ConnAck(ConnAck::new(code, false))).await;
            hub.log_refusal(&format!(
                "client `{}` from {peer}: {}",
                connect.client_id.escape_debug(),
                why.to_string().escape_debug()
            ));
            return;
        }
    };
    // As on IoT Hub, a connection lasts as long as its token: the device
    // reconnects with a fresh one.
    let expires = crate::credentials::sas::parse(password).ok().map(|p| {
        let left = p.expiry.saturating_sub(crate::clock::unix_now());
        Instant::now() + Duration::from_secs(left)
    });
    let mut reg = register(&hub, &identity, connect.clean_session);
    let device_id = identity.id().to_string();
    let is_device = reg.handle.is_some();
    if is_device {
        connection_event(&hub, &device_id, "deviceConnected");
    }
    tracing::debug!(%device_id, %peer, "local hub: connected");
    let keep_alive = (connect.keep_alive > 0)
        .then(|| Duration::from_millis(u64::from(connect.keep_alive) * 1500));
    let mut conn = Conn {
        hub: hub.clone(),
        identity: identity.clone(),
        device_id: device_id.clone(),
        out: BytesMut::with_capacity(256),
        acks: FuturesOrdered::new(),
        sent: HashMap::new(),
        next_pkid: 0,
        subs: reg.subs,
        twin_tokens: (TWIN_BURST, Instant::now()),
    };
    conn.encode(&Packet::ConnAck(ConnAck::new(
        ConnectReturnCode::Success,
        reg.present,
    )));
    conn.fill_devicebound();
    let end = conn
        .run(
            &mut io,
            buf,
            (reg.pushes, fd),
            (keep_alive, expires),
            &shutdown,
            &reg.kicked,
        )
        .await;
    tracing::debug!(%device_id, %peer, "local hub: connection ended: {end}");
    if let Some(handle) = &mut reg.handle {
        if !connect.clean_session {
            handle.keep(conn.subs);
        }
        hub.stats.devices.fetch_sub(1, Ordering::Relaxed);
    }
    if is_device {
        connection_event(&hub, &device_id, "deviceDisconnected");
    }
}

/// DeviceConnectionStateEvents (SPEC §14), as IoT Hub shapes them.
fn connection_event(hub: &LocalHub, device_id: &str, op_type: &str) {
    hub.ingest.route_event(
        crate::telemetry::routing::Source::DeviceConnectionStateEvents,
        device_id,
        op_type,
        &serde_json::json!({
            "deviceId": device_id,
            "opType": op_type,
            "operationTimestamp": crate::clock::rfc3339_millis(),
        }),
    );
}

/// A connection's place in the hub: a device registers (and may take over
/// an older connection); a registering device (DPS) only gets an empty
/// message queue.
struct Session {
    handle: Option<super::registry::Handle>,
    pushes: mpsc::Receiver<Push>,
    kicked: CancellationToken,
    present: bool,
    subs: Subs,
    /// The sending side of a registering device's queue: nothing is sent,
    /// but a closed queue would end the session.
    _idle: Option<mpsc::Sender<Push>>,
}

fn register(hub: &LocalHub, who: &Identity, clean: bool) -> Session {
    match who {
        Identity::Device(id) => {
            hub.stats.connects.fetch_add(1, Ordering::Relaxed);
            hub.stats.devices.fetch_add(1, Ordering::Relaxed);
            let Registered {
                handle,
                pushes,
                kicked,
                present,
                subs,
            } = Registry::register(&hub.registry, id, clean);
            Session {
                handle: Some(handle),
                pushes,
                kicked,
                present,
                subs,
                _idle: None,
            }
        }
        Identity::Registration(_) => {
            hub.stats.registrations.fetch_add(1, Ordering::Relaxed);
            let (idle, pushes) = mpsc::channel(1);
            Session {
                handle: None,
                pushes,
                kicked: CancellationToken::new(),
                present: false,
                subs: Subs::default(),
                _idle: Some(idle),
            }
        }
    }
}

/// Read until a whole CONNECT is in `buf`, check what the codec does not,
/// and decode it.
async fn read_connect<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
) -> Result<rumqttc::mqttbytes::v4::Connect, End> {
    loop {
        if packets::check_connect(buf, MAX_PACKET)? {
            return match packets::read(buf, MAX_PACKET)? {
                Some(Packet::Connect(c)) => Ok(c),
                _ => Err(Malformed::NotConnect.into()),
            };
        }
        buf.reserve(1024);
        if io.read_buf(buf).await? == 0 {
            return Err(End::Eof);
        }
    }
}

/// Write one packet before the session runs (a refusal's CONNACK), under
/// [`WRITE_TIMEOUT`].
async fn write<S: AsyncWrite + Unpin>(io: &mut S, p: &Packet) -> std::io::Result<()> {
    let mut b = BytesMut::new();
    if p.write(&mut b, MAX_PACKET).is_ok() {
        let written = async {
            io.write_all(&b).await?;
            io.flush().await
        };
        tokio::time::timeout(WRITE_TIMEOUT, written)
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    }
    Ok(())
}

struct Conn {
    hub: Arc<LocalHub>,
    identity: Identity,
    /// The device (or registration) id.
    device_id: String,
    /// Encoded packets to write after the current step.
    out: BytesMut,
    /// PUBACKs to send, in PUBLISH order, each once its message is stored.
    acks: FuturesOrdered<AckFuture>,
    /// Devicebound messages sent: pkid -> outbox seq.
    sent: HashMap<u16, u64>,
    next_pkid: u16,
    subs: Subs,
    /// Twin requests this connection may still make now (a token bucket:
    /// refilled at [`TWIN_REQUESTS_PER_SEC`] up to [`TWIN_BURST`]), and
    /// when it was last refilled.
    twin_tokens: (f64, Instant),
}

impl Conn {
    /// Take one twin request from the bucket; false when it is empty.
    fn twin_allowed(&mut self) -> bool {
        let now = Instant::now();
        let (tokens, last) = self.twin_tokens;
        let refilled = (tokens + now.duration_since(last).as_secs_f64() * TWIN_REQUESTS_PER_SEC)
            .min(TWIN_BURST);
        if refilled < 1.0 {
            self.twin_tokens = (refilled, now);
            return false;
        }
        self.twin_tokens = (refilled - 1.0, now);
        true
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        mut buf: BytesMut,
        (mut pushes, fd): (mpsc::Receiver<Push>, Option<std::os::fd::RawFd>),
        (keep_alive, expires): (Option<Duration>, Option<Instant>),
        shutdown: &CancellationToken,
        kicked: &CancellationToken,
    ) -> End {
        let mut last_in = Instant::now();
        // Packets already read with the CONNECT.
        if let Err(e) = self.handle_buffered(&mut buf).await {
            return e;
        }
        // Reads and writes in one select: a write that blocks (the device
        // does not read) never keeps the keep-alive, token expiry, takeover
        // and shutdown from being checked.
        let (mut rd, mut wr) = tokio::io::split(io);
        // When the output last made progress (or began to wait).
        let mut last_out = Instant::now();
        let mut flushed = true;
        loop {
            if self.out.len() > OUT_MAX {
                return End::OutputFull;
            }
            // Packets left in `buf` while the output was full.
            if self.out.len() < OUT_HIGH && !buf.is_empty() {
                if let Err(e) = self.handle_buffered(&mut buf).await {
                    return e;
                }
            }
            if self.out.is_empty() && flushed {
                last_out = Instant::now();
            }
            let stalled = (!self.out.is_empty() || !flushed).then(|| last_out + WRITE_TIMEOUT);
            let deadline = keep_alive.map(|k| last_in + k);
            let reading = self.acks.len() < MAX_INFLIGHT && self.out.len() < OUT_HIGH;
            tokio::select! {
                _ = shutdown.cancelled() => return End::Shutdown,
                _ = kicked.cancelled() => return End::TakenOver,
                w = write_or_flush(&mut wr, &self.out), if !self.out.is_empty() || !flushed => {
                    match w {
                        Ok(Some(0)) => return End::Eof,
                        Ok(Some(n)) => {
                            bytes::Buf::advance(&mut self.out, n);
                            last_out = Instant::now();
                            flushed = false;
                        }
                        Ok(None) => flushed = true,
                        Err(e) => return e.into(),
                    }
                }
                r = rd.read_buf(&mut buf), if reading => {
                    match r {
                        Ok(0) => return End::Eof,
                        Ok(_) => {
                            last_in = Instant::now();
                            quickack(fd);
                            if let Err(e) = self.handle_buffered(&mut buf).await {
                                return e;
                            }
                            if buf.capacity() - buf.len() < 1024 {
                                buf.reserve(4096);
                            }
                        }
                        Err(e) => return e.into(),
                    }
                }
                done = self.acks.next(), if !self.acks.is_empty() => match done {
                    Some(Some(pkid)) => {
                        self.encode(&Packet::PubAck(PubAck::new(pkid)));
                        // A stored batch frees many at once: one write for all.
                        if !self.ready_acks().await {
                            return End::Stopped;
                        }
                    }
                    // Never stored (the pipeline stopped): no PUBACK, so the
                    // device sends it again after it reconnects.
                    _ => return End::Stopped,
                },
                p = pushes.recv() => match p {
                    Some(Push::Devicebound) => self.fill_devicebound(),
                    Some(Push::Publish { topic, payload, subscription }) => {
                        if self.subs.has(subscription) {
                            self.publish_qos0(topic, payload);
                        } else if subscription == Subscription::Methods {
                            // The caller hears at once, not after its timeout.
                            if let Some(rid) = crate::topics::method_request_rid(&topic) {
                                let no = super::calls::Outcome::NotSubscribed;
                                self.hub.calls.resolve(&self.device_id, rid, no);
                            }
                        }
                    }
                    None => return End::TakenOver,
                },
                _ = sleep_until(stalled) => return End::WriteStalled,
                _ = sleep_until(deadline) => return End::KeepAlive,
                _ = sleep_until(expires) => return End::Refused("its SAS token expired".into()),
            }
        }
    }

    /// Encode the PUBACKs whose messages are stored already, in order;
    /// false when one will never be (the pipeline stopped).
    /// (Polled with this task's own waker, so the ones not ready yet still
    /// wake it when they are.)
    async fn ready_acks(&mut self) -> bool {
        use futures_util::StreamExt as _;
        use std::task::Poll;
        loop {
            let polled =
                std::future::poll_fn(|cx| Poll::Ready(self.acks.poll_next_unpin(cx))).await;
            match polled {
                Poll::Ready(Some(Some(pkid))) => self.encode(&Packet::PubAck(PubAck::new(pkid))),
                Poll::Ready(Some(None)) => return false,
                Poll::Ready(None) | Poll::Pending => return true,
            }
        }
    }

    /// Act on the whole packets in `buf` while the output is below
    /// [`OUT_HIGH`]; the rest wait there until it has drained (a device that
    /// sends requests without reading the answers gets no more answers).
    async fn handle_buffered(&mut self, buf: &mut BytesMut) -> Result<(), End> {
        while self.out.len() < OUT_HIGH {
            let Some(p) = packets::read(buf, MAX_PACKET)? else {
                break;
            };
            self.handle(p).await?;
        }
        Ok(())
    }

    async fn handle(&mut self, p: Packet) -> Result<(), End> {
        match p {
            Packet::Publish(p) => self.publish(p).await,
            Packet::PubAck(a) => {
                if let Some(seq) = self.sent.remove(&a.pkid) {
                    self.hub.outbox.acknowledged(&self.device_id, seq);
                    self.fill_devicebound();
                }
                Ok(())
            }
            Packet::Subscribe(s) => {
                let mut codes = Vec::with_capacity(s.filters.len());
                for f in &s.filters {
                    match acl::subscribe(&self.identity, &f.path) {
                        Some(sub) => {
                            self.subs.add(sub);
                            let q = if f.qos == QoS::AtMostOnce {
                                QoS::AtMostOnce
                            } else {
                                QoS::AtLeastOnce
                            };
                            codes.push(SubscribeReasonCode::Success(q));
                        }
                        None => {
                            self.hub
                                .stats
                                .refused_subscriptions
                                .fetch_add(1, Ordering::Relaxed);
                            self.hub.log_refusal(&format!(
                                "device `{}` may not subscribe to `{}`",
                                self.device_id,
                                f.path.escape_debug()
                            ));
                            codes.push(SubscribeReasonCode::Failure);
                        }
                    }
                }
                self.encode(&Packet::SubAck(SubAck::new(s.pkid, codes)));
                self.fill_devicebound();
                Ok(())
            }
            Packet::Unsubscribe(u) => {
                for t in &u.topics {
                    if let Some(sub) = acl::subscribe(&self.identity, t) {
                        self.subs.remove(sub);
                    }
                }
                self.encode(&Packet::UnsubAck(UnsubAck::new(u.pkid)));
                Ok(())
            }
            Packet::PingReq => {
                self.encode(&Packet::PingResp);
                Ok(())
            }
            Packet::Disconnect => Err(End::Eof),
            other => Err(End::Refused(format!(
                "unexpected {} from a device",
                packet_name(&other)
            ))),
        }
    }

    async fn publish(&mut self, p: Publish) -> Result<(), End> {
        if p.qos == QoS::ExactlyOnce {
            return Err(End::Refused(
                "QoS 2 is not supported (IoT Hub has none)".into(),
            ));
        }
        let Some(kind) = acl::publish(&self.identity, &p.topic) else {
            self.hub
                .stats
                .refused_publishes
                .fetch_add(1, Ordering::Relaxed);
            let why = format!(
                "`{}` may not publish to `{}`",
                self.device_id,
                crate::telemetry::message::truncate(&p.topic, 200).escape_debug()
            );
            self.hub.log_refusal(&why);
            return Err(End::Refused(why));
        };
        let pkid = p.pkid;
        let qos1 = p.qos == QoS::AtLeastOnce;
        let request = match kind {
            acl::Publish::Telemetry => {
                let stored = handlers::telemetry::submit(&self.hub, p.topic, p.payload)
                    .await
                    .ok_or(End::Stopped)?;
                if qos1 {
                    self.acks
                        .push_back(Box::pin(async move { stored.await.ok().map(|_| pkid) }));
                }
                return Ok(());
            }
            acl::Publish::Request(r) => r,
        };
        let throttled = matches!(
            request,
            Request::TwinGet { .. } | Request::TwinReported { .. }
        ) && !self.twin_allowed();
        let (hub, id) = (&self.hub, self.device_id.as_str());
        let reply = match request {
            Request::TwinGet { rid } | Request::TwinReported { rid } if throttled => {
                Some(handlers::twin::throttled(rid))
            }
            Request::TwinGet { rid } => Some(handlers::twin::get(hub, id, rid).await),
            Request::TwinReported { rid } => {
                Some(handlers::twin::reported(hub, id, rid, &p.payload).await)
            }
            Request::MethodResponse { status, rid } => {
                handlers::methods::answered(hub, id, rid, status, &p.payload);
                None
            }
            Request::DpsRegister { rid } => {
                Some(handlers::dps::register(hub, id, rid, &p.payload).await)
            }
            Request::DpsStatus { rid, operation_id } => {
                Some(handlers::dps::status(hub, id, rid, operation_id))
            }
        };
        if let Some(r) = reply {
            self.reply(r);
        }
        if qos1 {
            self.acks
                .push_back(Box::pin(std::future::ready(Some(pkid))));
        }
        Ok(())
    }

    fn reply(&mut self, r: Reply) {
        if self.subs.has(r.subscription) {
            self.publish_qos0(r.topic, r.body);
        }
    }

    /// Send what waits in the outbox and is not in flight yet, while the
    /// device is subscribed and the in-flight window has room.
    fn fill_devicebound(&mut self) {
        if !self.subs.has(Subscription::Devicebound) {
            return;
        }
        let pending: Vec<Queued> = self.hub.outbox.pending(&self.device_id);
        for q in pending {
            if self.sent.len() >= MAX_INFLIGHT_OUT {
                break;
            }
            if self.sent.values().any(|s| *s == q.seq) {
                continue;
            }
            let pkid = self.pkid();
            self.sent.insert(pkid, q.seq);
            let mut p = Publish::from_bytes(q.topic, QoS::AtLeastOnce, q.payload);
            p.pkid = pkid;
            self.encode(&Packet::Publish(p));
        }
    }

    fn publish_qos0(&mut self, topic: String, payload: Bytes) {
        self.encode(&Packet::Publish(Publish::from_bytes(
            topic,
            QoS::AtMostOnce,
            payload,
        )));
    }

    /// A packet id no devicebound message in flight uses.
    fn pkid(&mut self) -> u16 {
        loop {
            self.next_pkid = self.next_pkid.wrapping_add(1).max(1);
            if !self.sent.contains_key(&self.next_pkid) {
                return self.next_pkid;
            }
        }
    }

    fn encode(&mut self, p: &Packet) {
        if let Err(e) = p.write(&mut self.out, MAX_PACKET) {
            tracing::warn!(device_id = %self.device_id, "local hub: packet not sent: {e}");
        }
    }
}

fn quickack(fd: Option<std::os::fd::RawFd>) {
    if let Some(fd) = fd {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt on a socket this connection owns, with a valid
        // pointer to a c_int and its size. A failure only costs latency.
        unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
}

/// Write some of `out` (how much: `Some(n)`), or flush when it is empty
/// (`None`): one future, so the select holds the write half once.
async fn write_or_flush<W: AsyncWrite + Unpin>(
    wr: &mut W,
    out: &[u8],
) -> std::io::Result<Option<usize>> {
    if out.is_empty() {
        wr.flush().await.map(|()| None)
    } else {
        wr.write(out).await.map(Some)
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn packet_name(p: &Packet) -> &'static str {
    match p {
        Packet::Connect(_) => "CONNECT",
        Packet::ConnAck(_) => "CONNACK",
        Packet::PubRec(_) => "PUBREC",
        Packet::PubRel(_) => "PUBREL",
        Packet::PubComp(_) => "PUBCOMP",
        Packet::SubAck(_) => "SUBACK",
        Packet::UnsubAck(_) => "UNSUBACK",
        Packet::PingResp => "PINGRESP",
        _ => "packet",
    }
}
