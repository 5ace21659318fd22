//! Validate-batch-route-store-acknowledge, whatever the messages came from:
//! the bridge's MQTT subscription (`bridge`) or the local hub's devices,
//! handed over in-process ([`Ingest`]).
//!
//! Each batch goes through the routing stage ([`Router`]): with no routes
//! file every message goes to `events` (validated readings) as before; with
//! one, messages also go to other collections (envelopes) and to the route
//! outbox (`mqtt` and `webhook` endpoints).
//!
//! A message is acknowledged only after the store committed the batch
//! holding it and its outbox rows are committed, and stored batches are acknowledged strictly in arrival order
//! (MQTT wants PUBACKs in the order the PUBLISHes came, and a later batch
//! must never overtake an earlier one that is still retrying). Memory is
//! bounded by a byte budget ([`MAX_BUFFERED_BYTES`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{FuturesOrdered, StreamExt};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use serde_json::Value;

use super::mqtt::Backoff;
use super::routing::stage::Router;
use super::routing::Source;
use super::store::Store;

/// Payload bytes held between the source and the store at most; with
/// 256 KiB messages this is 256 of them, with typical 200-byte readings the
/// in-flight windows are the tighter bound.
pub const MAX_BUFFERED_BYTES: usize = 64 * 1024 * 1024;

/// How messages are grouped into store writes.
#[derive(Debug, Clone)]
pub struct Batching {
    /// Most messages written in one store call.
    pub batch_max: usize,
    /// Longest a message waits for its batch to fill while a write is
    /// already in flight; with none in flight a batch is written at once
    /// (group commit: what arrives during a write forms the next batch).
    pub batch_latency: Duration,
    /// Store writes in flight at once: while one batch is written the next
    /// is already on its way, so the store never waits for the source.
    pub writers: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Batching {
            // A batch never exceeds what the broker keeps in flight to us;
            // 1000 matches `max_inflight_messages` in the documented
            // Mosquitto setup and keeps one insert_many well under 16 MB.
            batch_max: 1000,
            // Low enough to be invisible next to a store round trip.
            batch_latency: Duration::from_millis(20),
            writers: 2,
        }
    }
}

/// Counters, also exported on `/metrics` (as `ztpd_bridge_*`).
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

/// Who to tell once a message is stored.
pub enum Ack {
    /// The bridge's broker: PUBACK this publish, if it came on the current
    /// connection (after a reconnect the broker resends it).
    Broker {
        publish: rumqttc::Publish,
        generation: u64,
    },
    /// A local hub connection waiting to send its PUBACK.
    Local(oneshot::Sender<()>),
    /// Nobody waits: an event of the hub (a twin change, a connection, a
    /// new identity) routed like a message.
    None,
}

/// One message on its way to the store.
pub struct Incoming {
    pub topic: String,
    pub payload: Bytes,
    /// `DeviceMessages`, or the source of a hub event.
    pub source: Source,
    pub ack: Ack,
    _bytes: OwnedSemaphorePermit,
}

/// Where sources put messages: the byte budget, then the queue.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Incoming>,
    budget: Arc<Semaphore>,
    stats: Arc<BridgeStats>,
}

impl Ingest {
    /// Queue one message, waiting while the byte budget is spent; `None`
    /// once the pipeline stopped.
    pub async fn submit(&self, topic: String, payload: Bytes, ack: Ack) -> Option<()> {
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let need = payload.len().clamp(1, MAX_BUFFERED_BYTES) as u32;
        let permit = self.budget.clone().acquire_many_owned(need).await.ok()?;
        let m = Incoming {
            topic,
            payload,
            source: Source::DeviceMessages,
            ack,
            _bytes: permit,
        };
        self.tx.send(m).await.ok()
    }

    /// Route a hub event of `source` for `device_id` (SPEC §14: twin
    /// changes, connection state, lifecycle), with `opType` as its
    /// application property and `body` as its JSON body. Nobody waits for
    /// it, and it never blocks its caller: with the byte budget spent or
    /// the queue full (the store is down) it is dropped, with a warning.
    pub fn route_event(&self, source: Source, device_id: &str, op_type: &str, body: &Value) {
        let payload = Bytes::from(body.to_string());
        let need = payload.len().clamp(1, MAX_BUFFERED_BYTES) as u32;
        let Ok(permit) = self.budget.clone().try_acquire_many_owned(need) else {
            tracing::warn!(
                device_id,
                source = source.name(),
                "hub event not routed: the telemetry pipeline is full"
            );
            return;
        };
        let m = Incoming {
            topic: format!(
                "{}%24.ct=application%2Fjson&%24.ce=utf-8&opType={op_type}",
                crate::topics::events(device_id)
            ),
            payload,
            source,
            ack: Ack::None,
            _bytes: permit,
        };
        match self.tx.try_send(m) {
            // Closed: shutting down, nothing routes any more.
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) => tracing::warn!(
                device_id,
                source = source.name(),
                "hub event not routed: the telemetry pipeline is full"
            ),
        }
    }

    /// [`Ingest::submit`] for a local hub device: the receiver fires once
    /// the message is stored.
    pub async fn submit_local(
        &self,
        topic: String,
        payload: Bytes,
    ) -> Option<oneshot::Receiver<()>> {
        let (tx, rx) = oneshot::channel();
        self.submit(topic, payload, Ack::Local(tx)).await?;
        Some(rx)
    }
}

/// The pipeline's input and its queue of stored batches to acknowledge.
pub fn channel(stats: Arc<BridgeStats>) -> (Ingest, mpsc::Receiver<Incoming>) {
    // The byte budget bounds memory; the channel only needs to be large
    // enough never to be the tighter limit for small messages.
    let (tx, rx) = mpsc::channel::<Incoming>(16 * 1024);
    let budget = Arc::new(Semaphore::new(MAX_BUFFERED_BYTES));
    (Ingest { tx, budget, stats }, rx)
}

/// Who is told of stored batches, in arrival order. It must not wait: the
/// write loop calls it between batches.
pub trait Acker {
    /// False when nobody listens any more (the loop stops).
    fn stored(&self, batch: Vec<Incoming>, stats: &BridgeStats) -> bool;
}

/// The bridge's: batches go to its ack task, which owns the MQTT client
/// (acks are sent from their own task so that the write loop never waits
/// on the client's request queue: that queue is drained by the reader,
/// which may itself be waiting for the write loop to take messages).
impl Acker for mpsc::UnboundedSender<Vec<Incoming>> {
    fn stored(&self, batch: Vec<Incoming>, _: &BridgeStats) -> bool {
        self.send(batch).is_ok()
    }
}

/// The local hub's: each connection waiting for a message is told at once.
struct LocalAcks;

impl Acker for LocalAcks {
    fn stored(&self, batch: Vec<Incoming>, stats: &BridgeStats) -> bool {
        for m in batch {
            if let Ack::Local(tx) = m.ack {
                if tx.send(()).is_ok() {
                    stats.acked.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        true
    }
}

/// Run the local hub's pipeline until `shutdown`: every stored message's
/// sender is told, in order.
pub async fn run_local<S: Store>(
    batching: Batching,
    store: S,
    router: &Router,
    rx: mpsc::Receiver<Incoming>,
    stats: Arc<BridgeStats>,
    shutdown: CancellationToken,
) {
    let sink = Sink {
        store: &store,
        router,
    };
    write_loop(&batching, sink, rx, LocalAcks, &stats, &shutdown).await;
}

/// Where a batch goes: the store, through the routing stage.
pub struct Sink<'a, S> {
    pub store: &'a S,
    pub router: &'a Router,
}

impl<S> Clone for Sink<'_, S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for Sink<'_, S> {}

/// Batches messages and keeps up to `writers` store writes in flight;
/// stored batches go to `acks` in arrival order.
pub async fn write_loop<S: Store, A: Acker>(
    batching: &Batching,
    sink: Sink<'_, S>,
    mut rx: mpsc::Receiver<Incoming>,
    acks: A,
    stats: &BridgeStats,
    shutdown: &CancellationToken,
) {
    let writers = batching.writers.max(1);
    let mut inflight = FuturesOrdered::new();
    // Batches store concurrently but queue their outbox rows in arrival
    // order (each waits for the one before), so an endpoint gets a device's
    // messages in order even when a later batch stored first.
    let mut turn: Option<oneshot::Receiver<()>> = None;
    let mut batch: Vec<Incoming> = Vec::new();
    let mut deadline = tokio::time::Instant::now();
    loop {
        let can_submit = inflight.len() < writers;
        if can_submit
            && !batch.is_empty()
            && (inflight.is_empty()
                || batch.len() >= batching.batch_max
                || tokio::time::Instant::now() >= deadline)
        {
            let full = std::mem::take(&mut batch);
            let (done, next) = oneshot::channel();
            let order = OutboxTurn {
                after: turn.replace(next),
                done,
            };
            inflight.push_back(store_batch(sink, full, order, stats, shutdown));
            continue;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            done = inflight.next(), if !inflight.is_empty() => match done {
                Some(Some(stored)) => {
                    if !acks.stored(stored, stats) {
                        return;
                    }
                }
                // Shut down while retrying: nothing more is acknowledged.
                _ => return,
            },
            m = rx.recv(), if batch.len() < batching.batch_max => match m {
                Some(m) => {
                    if batch.is_empty() {
                        deadline = tokio::time::Instant::now() + batching.batch_latency;
                    }
                    batch.push(m);
                    // Take what is already queued before deciding to write.
                    while batch.len() < batching.batch_max {
                        match rx.try_recv() {
                            Ok(m) => batch.push(m),
                            Err(_) => break,
                        }
                    }
                }
                // Every source stopped (shutdown): unacknowledged messages
                // are redelivered to the next run.
                None => return,
            },
            _ = tokio::time::sleep_until(deadline), if can_submit && !batch.is_empty() => {}
        }
    }
}

/// Route and store one batch, retrying with backoff while the store (or
/// the state store, for outbox rows) fails; hands the batch back for
/// acknowledgement, or `None` on shutdown.
async fn store_batch<S: Store>(
    sink: Sink<'_, S>,
    batch: Vec<Incoming>,
    order: OutboxTurn,
    stats: &BridgeStats,
    shutdown: &CancellationToken,
) -> Option<Vec<Incoming>> {
    let routed = sink.router.route(
        batch
            .iter()
            .map(|m| (m.source, m.topic.as_str(), &m.payload[..])),
    );
    let started = std::time::Instant::now();
    let o = until_ok(
        || routed.store(sink.store),
        |e, delay| {
            stats.store_failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                batch = batch.len(),
                "store write failed ({e}); holding acknowledgements, retrying in {delay:?}"
            );
        },
        shutdown,
    )
    .await?;
    tracing::debug!(
        messages = batch.len(),
        ms = started.elapsed().as_millis() as u64,
        "batch stored"
    );
    stats.stored.fetch_add(o.inserted, Ordering::Relaxed);
    stats.duplicates.fetch_add(o.duplicates, Ordering::Relaxed);
    stats.rejected.fetch_add(o.rejected, Ordering::Relaxed);
    // The outbox rows commit before the PUBACK too, after the previous
    // batch's (a batch cut short by shutdown lets the next one go); the
    // store part above is not written again while this retries.
    if let Some(previous) = order.after {
        let _ = previous.await;
    }
    until_ok(
        || sink.router.enqueue(&routed),
        |e, delay| {
            tracing::warn!(
                batch = batch.len(),
                "route outbox write failed ({e}); holding acknowledgements, retrying in {delay:?}"
            );
        },
        shutdown,
    )
    .await?;
    let _ = order.done.send(());
    routed.committed();
    Some(batch)
}

/// A batch's place in the order of outbox writes.
struct OutboxTurn {
    /// Fires once the previous batch queued its rows.
    after: Option<oneshot::Receiver<()>>,
    /// Fired once this batch queued its rows.
    done: oneshot::Sender<()>,
}

/// Run `attempt` until it succeeds, calling `failed` with each error and
/// the backoff delay before the next try; `None` on shutdown.
async fn until_ok<T, E, F>(
    mut attempt: impl FnMut() -> F,
    failed: impl Fn(&E, Duration),
    shutdown: &CancellationToken,
) -> Option<T>
where
    F: std::future::Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::default();
    loop {
        match attempt().await {
            Ok(v) => return Some(v),
            Err(e) => {
                let delay = backoff.next_delay();
                failed(&e, delay);
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}
