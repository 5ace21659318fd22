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

use rumqttc::{AsyncClient, Event, Packet, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::mqtt::{Backoff, BrokerUrl};
use super::pipeline::{self, Ack, Batching, Incoming, Ingest};
use super::routing::stage::Router;
use super::store::Store;
use crate::metrics::{write_metric, MetricsSource};

pub use super::pipeline::{BridgeStats, MAX_BUFFERED_BYTES};
/// The hub's device-to-cloud topics.
pub use crate::topics::EVENTS_FILTER;
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
    pub batching: Batching,
}

impl BridgeOptions {
    pub fn new(broker: BrokerUrl, client_id: impl Into<String>) -> Self {
        BridgeOptions {
            broker,
            client_id: client_id.into(),
            share_group: Some("ztpd".into()),
            batching: Batching::default(),
        }
    }

    pub fn subscription(&self) -> String {
        match &self.share_group {
            Some(g) => crate::topics::shared_events_filter(g),
            None => EVENTS_FILTER.to_string(),
        }
    }
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

/// Run until `shutdown`. Messages of a batch not yet stored when it fires
/// are left unacknowledged, so the broker redelivers them to the next run.
pub async fn run<S: Store>(
    opts: BridgeOptions,
    store: S,
    router: Arc<Router>,
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
    let (ingest, rx) = pipeline::channel(stats.clone());
    // Our own token: the reader and writer stop together without touching
    // the caller's (the daemon's) token.
    let shutdown = shutdown.child_token();
    let reader = tokio::spawn(read_loop(
        eventloop,
        client.clone(),
        opts.subscription(),
        ingest,
        generation.clone(),
        stats.clone(),
        shutdown.clone(),
    ));
    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let acker = tokio::spawn(ack_loop(client, ack_rx, generation, stats.clone()));
    let sink = pipeline::Sink {
        store: &store,
        router: &router,
    };
    pipeline::write_loop(&opts.batching, sink, rx, ack_tx, &stats, &shutdown).await;
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
    ingest: Ingest,
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
                // What `ack` reads of a publish: its pkid and QoS.
                let mut acked = rumqttc::Publish::new("", p.qos, Vec::new());
                acked.pkid = p.pkid;
                let ack = Ack::Broker {
                    publish: acked,
                    generation: generation.load(Ordering::SeqCst),
                };
                let queued = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    q = ingest.submit(p.topic, p.payload, ack) => q,
                };
                if queued.is_none() {
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
            let Ack::Broker {
                publish,
                generation,
            } = m.ack
            else {
                continue;
            };
            if generation == current && client.ack(&publish).await.is_ok() {
                stats.acked.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
