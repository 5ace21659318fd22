//! The telemetry bridge (SPEC §9): MQTT hub events -> validated readings ->
//! the store, with no loss and no duplicates across restarts of either side.
//!
//! How the guarantees are kept:
//! - persistent session (`clean_session = false`, stable client id), QoS 1,
//!   manual acknowledgements: a message is acknowledged to the broker only
//!   after the store acknowledged the batch holding it, so anything not yet
//!   stored is redelivered after a crash or reconnect;
//! - deterministic `_id`s absorb those redeliveries;
//! - when the store is down the batch is retried with backoff and nothing
//!   is acknowledged, so the broker stops sending once its in-flight window
//!   is full; buffered payload bytes are capped as well (`MAX_BUFFERED_BYTES`);
//! - subscriptions are re-sent on every connection (rumqttc does not), with
//!   reconnect backoff (rumqttc has none).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesOrdered, StreamExt};
use rumqttc::{AsyncClient, Event, Packet, Publish, QoS};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::message;
use super::mqtt::{Backoff, BrokerUrl};
use super::store::{RejectedMessage, Store};
use crate::metrics::{write_metric, MetricsSource};

/// The hub's device-to-cloud topics.
pub use crate::topics::EVENTS_FILTER;
/// Payload bytes held between the broker and the store at most; with
/// 256 KiB messages this is 256 of them, with typical 200-byte readings the
/// broker's in-flight window is the tighter bound.
pub const MAX_BUFFERED_BYTES: usize = 64 * 1024 * 1024;
/// Largest MQTT packet the bridge reads (Mosquitto's own default limit is
/// 256 MB; 16 MiB keeps one message a small part of the byte budget).
pub const MAX_INCOMING_PACKET: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct BridgeOptions {
    pub broker: BrokerUrl,
    /// Stable across restarts, unique per bridge process.
    pub client_id: String,
    /// MQTT shared-subscription group (`$share/<group>/...`), so several
    /// bridges split the load; `None` subscribes directly.
    pub share_group: Option<String>,
    /// Most messages written in one store call.
    pub batch_max: usize,
    /// Longest a message waits for its batch to fill.
    pub batch_latency: Duration,
    /// Store writes in flight at once: while one batch is written the next
    /// is already on its way, so the store never waits for the bridge.
    pub writers: usize,
}

impl BridgeOptions {
    pub fn new(broker: BrokerUrl, client_id: impl Into<String>) -> Self {
        BridgeOptions {
            broker,
            client_id: client_id.into(),
            share_group: Some("ztpd".into()),
            // A batch never exceeds what the broker keeps in flight to us;
            // 1000 matches `max_inflight_messages` in the documented
            // Mosquitto setup and keeps one insert_many well under 16 MB.
            batch_max: 1000,
            // Low enough to be invisible next to a store round trip.
            batch_latency: Duration::from_millis(20),
            writers: 2,
        }
    }

    pub fn subscription(&self) -> String {
        match &self.share_group {
            Some(g) => crate::topics::shared_events_filter(g),
            None => EVENTS_FILTER.to_string(),
        }
    }
}

/// Counters, also exported on `/metrics`.
#[derive(Debug, Default)]
pub struct BridgeStats {
    pub received: AtomicU64,
    pub stored: AtomicU64,
    pub duplicates: AtomicU64,
    pub rejected: AtomicU64,
    pub acked: AtomicU64,
    pub store_failures: AtomicU64,
    pub connections: AtomicU64,
}

impl MetricsSource for BridgeStats {
    fn write_metrics(&self, out: &mut String) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        write_metric(
            out,
            "ztpd_bridge_messages_total",
            "counter",
            "MQTT messages by outcome",
            &[
                ("outcome=\"received\"", g(&self.received)),
                ("outcome=\"stored\"", g(&self.stored)),
                ("outcome=\"duplicate\"", g(&self.duplicates)),
                ("outcome=\"rejected\"", g(&self.rejected)),
                ("outcome=\"acked\"", g(&self.acked)),
            ],
        );
        write_metric(
            out,
            "ztpd_bridge_store_failures_total",
            "counter",
            "failed store writes (retried)",
            &[("", g(&self.store_failures))],
        );
        write_metric(
            out,
            "ztpd_bridge_connections_total",
            "counter",
            "MQTT connections made",
            &[("", g(&self.connections))],
        );
    }
}

struct Incoming {
    publish: Publish,
    /// Connection generation it arrived on: an ack only makes sense on the
    /// connection that delivered it (after a reconnect the broker resends).
    generation: u64,
    _bytes: OwnedSemaphorePermit,
}

/// Run until `shutdown`. Messages of a batch not yet stored when it fires
/// are left unacknowledged, so the broker redelivers them to the next run.
pub async fn run<S: Store>(
    opts: BridgeOptions,
    store: S,
    stats: Arc<BridgeStats>,
    shutdown: CancellationToken,
) {
    let mut mqtt = opts.broker.options(&opts.client_id);
    mqtt.set_manual_acks(true);
    // Read oversized messages instead of failing the connection on them: a
    // persistent session would redeliver such a message after every
    // reconnect and wedge the bridge. They are rejected with a reason.
    mqtt.set_max_packet_size(MAX_INCOMING_PACKET, super::mqtt::MAX_PACKET);
    let (client, eventloop) = AsyncClient::new(mqtt, 64);
    let generation = Arc::new(AtomicU64::new(0));
    // The byte budget bounds memory; the channel only needs to be large
    // enough never to be the tighter limit for small messages.
    let (tx, rx) = mpsc::channel::<Incoming>(16 * 1024);
    let budget = Arc::new(Semaphore::new(MAX_BUFFERED_BYTES));
    // Our own token: the reader and writer stop together without touching
    // the caller's (the daemon's) token.
    let shutdown = shutdown.child_token();
    let reader = tokio::spawn(read_loop(
        eventloop,
        client.clone(),
        opts.subscription(),
        tx,
        budget,
        generation.clone(),
        stats.clone(),
        shutdown.clone(),
    ));
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let acker = tokio::spawn(ack_loop(client, ack_rx, generation, stats.clone()));
    write_loop(&opts, &store, rx, ack_tx, &stats, &shutdown).await;
    shutdown.cancel();
    let _ = reader.await;
    // The acker ends once write_loop dropped its sender and the queue is
    // sent; acks for a closed connection just fail.
    let _ = acker.await;
}

#[allow(clippy::too_many_arguments)]
async fn read_loop(
    mut eventloop: rumqttc::EventLoop,
    client: AsyncClient,
    subscription: String,
    tx: mpsc::Sender<Incoming>,
    budget: Arc<Semaphore>,
    generation: Arc<AtomicU64>,
    stats: Arc<BridgeStats>,
    shutdown: CancellationToken,
) {
    let mut backoff = Backoff::default();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                stats.connections.fetch_add(1, Ordering::Relaxed);
                tracing::info!(session_present = ack.session_present, %subscription, "bridge connected");
                // From its own task: the request queue may be full of acks
                // that only this loop's `poll` drains, so awaiting here
                // would stall both (seen as a bridge stuck after a broker
                // restart mid-stream).
                let (client, subscription) = (client.clone(), subscription.clone());
                tokio::spawn(async move {
                    if let Err(e) = client.subscribe(subscription, QoS::AtLeastOnce).await {
                        tracing::warn!("bridge cannot subscribe: {e}");
                    }
                });
            }
            Ok(Event::Incoming(Packet::SubAck(s))) => {
                if s.return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                {
                    tracing::error!(%subscription, "broker refused the bridge's subscription");
                } else {
                    tracing::info!(%subscription, "bridge subscribed");
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                stats.received.fetch_add(1, Ordering::Relaxed);
                let need = p.payload.len().clamp(1, MAX_BUFFERED_BYTES) as u32;
                let permit = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    p = budget.clone().acquire_many_owned(need) => match p { Ok(p) => p, Err(_) => return },
                };
                let msg = Incoming {
                    publish: p,
                    generation: generation.load(Ordering::SeqCst),
                    _bytes: permit,
                };
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                generation.fetch_add(1, Ordering::SeqCst);
                let delay = backoff.next_delay();
                tracing::warn!("bridge lost the broker ({e}); reconnecting in {delay:?}");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

/// Batches messages and keeps up to `opts.writers` store writes in flight.
/// Stored batches go to `ack_loop` strictly in arrival order (MQTT wants
/// PUBACKs in the order the PUBLISHes came, and a later batch's acks must
/// never overtake an earlier one that is still retrying). Acks are sent from
/// their own task so that this loop never waits on the MQTT client's request
/// queue: that queue is drained by the reader, which may itself be waiting
/// for this loop to take messages, and the two would wait on each other.
async fn write_loop<S: Store>(
    opts: &BridgeOptions,
    store: &S,
    mut rx: mpsc::Receiver<Incoming>,
    acks: mpsc::UnboundedSender<Vec<Incoming>>,
    stats: &BridgeStats,
    shutdown: &CancellationToken,
) {
    let writers = opts.writers.max(1);
    let mut inflight = FuturesOrdered::new();
    let mut batch: Vec<Incoming> = Vec::new();
    let mut deadline = tokio::time::Instant::now();
    loop {
        let can_submit = inflight.len() < writers;
        if can_submit
            && !batch.is_empty()
            && (batch.len() >= opts.batch_max || tokio::time::Instant::now() >= deadline)
        {
            let full = std::mem::take(&mut batch);
            inflight.push_back(store_batch(store, full, stats, shutdown));
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            done = inflight.next(), if !inflight.is_empty() => match done {
                Some(Some(stored)) => {
                    if acks.send(stored).is_err() {
                        return;
                    }
                }
                // Shut down while retrying: nothing more is acknowledged.
                _ => return,
            },
            m = rx.recv(), if batch.len() < opts.batch_max => match m {
                Some(m) => {
                    if batch.is_empty() {
                        deadline = tokio::time::Instant::now() + opts.batch_latency;
                    }
                    batch.push(m);
                }
                // The reader stopped (shutdown): unacknowledged messages are
                // redelivered to the next run.
                None => return,
            },
            _ = tokio::time::sleep_until(deadline), if can_submit && !batch.is_empty() => {}
        }
    }
}

/// Acknowledge stored batches in order; messages that arrived on an earlier
/// connection are skipped (the broker redelivers them on the new one). Its
/// queue is bounded by the reader's byte budget: every queued message still
/// holds its share of it.
async fn ack_loop(
    client: AsyncClient,
    mut stored: mpsc::UnboundedReceiver<Vec<Incoming>>,
    generation: Arc<AtomicU64>,
    stats: Arc<BridgeStats>,
) {
    while let Some(batch) = stored.recv().await {
        let current = generation.load(Ordering::SeqCst);
        for m in batch {
            if m.generation == current && client.ack(&m.publish).await.is_ok() {
                stats.acked.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Validate and store one batch, retrying with backoff while the store
/// fails; hands the batch back for acknowledgement, or `None` on shutdown.
async fn store_batch<S: Store>(
    store: &S,
    batch: Vec<Incoming>,
    stats: &BridgeStats,
    shutdown: &CancellationToken,
) -> Option<Vec<Incoming>> {
    let mut readings = Vec::with_capacity(batch.len());
    let mut rejected = Vec::new();
    for m in &batch {
        match message::validate(&m.publish.topic, &m.publish.payload) {
            Ok(r) => readings.extend(r),
            Err(rej) => rejected.push(RejectedMessage {
                topic: m.publish.topic.clone(),
                payload: m.publish.payload.to_vec(),
                reason: rej.reason,
            }),
        }
    }
    let started = std::time::Instant::now();
    let mut backoff = Backoff::default();
    loop {
        match store.write(&readings, &rejected).await {
            Ok(o) => {
                tracing::debug!(
                    messages = batch.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "batch stored"
                );
                stats.stored.fetch_add(o.inserted, Ordering::Relaxed);
                stats.duplicates.fetch_add(o.duplicates, Ordering::Relaxed);
                stats.rejected.fetch_add(o.rejected, Ordering::Relaxed);
                return Some(batch);
            }
            Err(e) => {
                stats.store_failures.fetch_add(1, Ordering::Relaxed);
                let delay = backoff.next_delay();
                tracing::warn!(
                    batch = batch.len(),
                    "store write failed ({e}); holding acknowledgements, retrying in {delay:?}"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}
