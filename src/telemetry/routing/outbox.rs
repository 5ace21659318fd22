//! Routed messages waiting for an `mqtt` or `webhook` endpoint (SPEC §14):
//! written to the state store before the device's PUBACK, delivered at
//! least once by one worker per endpoint, oldest first, and deleted once the
//! endpoint took them.
//!
//! - Order: a worker delivers its endpoint's rows strictly in the order they
//!   were queued and retries the oldest until it goes through, so each
//!   device's messages arrive in order (and so does everything else on that
//!   endpoint).
//! - Isolation: a failing endpoint holds only its own rows; the store, the
//!   PUBACKs and the other endpoints go on.
//! - Bound: at most [`MAX_PER_ENDPOINT`] rows wait per endpoint; past it the
//!   oldest is dropped with a warning and `ztpd_route_dropped_total`.
//! - At least once: a row is deleted only after the endpoint acknowledged it
//!   (HTTP 2xx, MQTT PUBACK), so a crash in between delivers it again.
//! - The routes in force say where: a webhook row goes to the URL its
//!   endpoint has now (a reload that moves the receiver takes the waiting
//!   rows along, and the state store keeps no webhook password: its column
//!   holds the URL as `/api/v1/routes` shows it). Rows of an endpoint a
//!   reload removed, or changed to another kind, are dropped and counted.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::delivery::{self, Deliverer};
use super::load::redact_url;
use super::stage::RoutesSource;
use super::table::EndpointKind;
use crate::metrics::{write_metric, MetricsSource};
use crate::state::{StateError, StateStore, WriteError, Writer};
use crate::telemetry::mqtt::{Backoff, BrokerUrl};

/// Rows kept per endpoint: at ~1 KB an envelope, ~10 MB of a dead endpoint's
/// backlog in memory and in the state store; at one reading per device per
/// second that is ~3 hours of 1 device, or 10 s of 1,000.
pub const MAX_PER_ENDPOINT: usize = 10_000;

const MIGRATIONS: &[&str] = &["CREATE TABLE route_outbox (
        seq INTEGER PRIMARY KEY,
        endpoint TEXT NOT NULL,
        kind TEXT NOT NULL,
        target TEXT NOT NULL,
        device_id TEXT NOT NULL,
        route TEXT NOT NULL,
        payload BLOB NOT NULL
    )"];

/// Where a row goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// POST to this URL.
    Webhook(String),
    /// Publish on `telemetry.broker` to this topic (placeholders filled).
    Mqtt(String),
}

impl Target {
    fn kind(&self) -> &'static str {
        match self {
            Target::Webhook(_) => "webhook",
            Target::Mqtt(_) => "mqtt",
        }
    }
    /// What the state store keeps: a webhook's URL without its secrets
    /// (delivery takes the URL from the routes in force), an MQTT topic as
    /// it was routed.
    fn stored(&self) -> String {
        match self {
            Target::Webhook(url) => redact_url(url),
            Target::Mqtt(topic) => topic.clone(),
        }
    }
    fn from_row(kind: &str, target: String) -> Option<Target> {
        match kind {
            "webhook" => Some(Target::Webhook(target)),
            "mqtt" => Some(Target::Mqtt(target)),
            _ => None,
        }
    }
}

/// One delivery to make.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub endpoint: String,
    pub target: Target,
    pub device_id: String,
    /// The routes that sent it, one name a line (their `delivered` counts
    /// move on delivery).
    pub route: String,
    /// The envelope as JSON.
    pub payload: Bytes,
}

#[derive(Debug, Clone)]
struct Queued {
    seq: u64,
    delivery: Arc<Delivery>,
}

#[derive(Default)]
struct EndpointQueue {
    rows: VecDeque<Queued>,
    wake: Arc<Notify>,
    has_worker: bool,
}

/// Per-endpoint counts for `/metrics`.
#[derive(Default)]
pub struct OutboxStats {
    by_endpoint: Mutex<BTreeMap<String, EndpointCounts>>,
}

#[derive(Default, Clone, Copy)]
struct EndpointCounts {
    delivered: u64,
    dropped: u64,
    failures: u64,
    pending: u64,
}

impl OutboxStats {
    fn bump(&self, endpoint: &str, f: impl FnOnce(&mut EndpointCounts)) {
        let mut m = self.by_endpoint.lock().unwrap_or_else(|p| p.into_inner());
        f(m.entry(endpoint.to_string()).or_default());
    }

    /// Deliveries completed by `endpoint` (tests).
    pub fn delivered(&self, endpoint: &str) -> u64 {
        self.get(endpoint).delivered
    }

    /// Rows dropped for `endpoint` past its bound.
    pub fn dropped(&self, endpoint: &str) -> u64 {
        self.get(endpoint).dropped
    }

    fn get(&self, endpoint: &str) -> EndpointCounts {
        let m = self.by_endpoint.lock().unwrap_or_else(|p| p.into_inner());
        m.get(endpoint).copied().unwrap_or_default()
    }
}

impl MetricsSource for OutboxStats {
    fn write_metrics(&self, out: &mut String) {
        let m = self
            .by_endpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let labels: Vec<String> = m
            .keys()
            .map(|e| format!("endpoint=\"{}\"", e.replace(['"', '\\', '\n'], "_")))
            .collect();
        let samples = |f: fn(&EndpointCounts) -> u64| -> Vec<(&str, u64)> {
            labels
                .iter()
                .zip(m.values())
                .map(|(l, c)| (l.as_str(), f(c)))
                .collect()
        };
        write_metric(
            out,
            "ztpd_route_delivered_total",
            "counter",
            "routed messages taken by an mqtt or webhook endpoint",
            &samples(|c| c.delivered),
        );
        write_metric(
            out,
            "ztpd_route_dropped_total",
            "counter",
            "routed messages dropped: the endpoint's outbox was full",
            &samples(|c| c.dropped),
        );
        write_metric(
            out,
            "ztpd_route_delivery_failures_total",
            "counter",
            "failed delivery attempts (retried)",
            &samples(|c| c.failures),
        );
        write_metric(
            out,
            "ztpd_route_outbox_pending",
            "gauge",
            "routed messages waiting for their endpoint",
            &samples(|c| c.pending),
        );
    }
}

pub struct Outbox {
    writer: Writer,
    next: AtomicU64,
    queues: Mutex<HashMap<String, EndpointQueue>>,
    pub stats: Arc<OutboxStats>,
    routes: Arc<dyn RoutesSource>,
    broker: Option<BrokerUrl>,
    client_id: String,
    shutdown: CancellationToken,
}

impl Outbox {
    /// Load what waits from the state store; workers start on
    /// [`Outbox::start`]. `broker` is `telemetry.broker` (for `mqtt`
    /// endpoints), `client_id` the stem of their MQTT client ids.
    pub fn open(
        store: &StateStore,
        routes: Arc<dyn RoutesSource>,
        broker: Option<BrokerUrl>,
        client_id: String,
        shutdown: CancellationToken,
    ) -> Result<Arc<Outbox>, StateError> {
        store.migrate("route_outbox", MIGRATIONS)?;
        let conn = store.reader()?;
        let mut st = conn.prepare(
            "SELECT seq, endpoint, kind, target, device_id, route, payload FROM route_outbox ORDER BY seq",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, Vec<u8>>(6)?,
            ))
        })?;
        let mut queues: HashMap<String, EndpointQueue> = HashMap::new();
        let stats = Arc::new(OutboxStats::default());
        let mut max = 0u64;
        for row in rows {
            let (seq, endpoint, kind, target, device_id, route, payload) = row?;
            let seq = seq.max(0) as u64;
            max = max.max(seq);
            let Some(target) = Target::from_row(&kind, target) else {
                continue;
            };
            stats.bump(&endpoint, |c| c.pending += 1);
            queues
                .entry(endpoint.clone())
                .or_default()
                .rows
                .push_back(Queued {
                    seq,
                    delivery: Arc::new(Delivery {
                        endpoint,
                        target,
                        device_id,
                        route,
                        payload: payload.into(),
                    }),
                });
        }
        Ok(Arc::new(Outbox {
            writer: store.writer(),
            next: AtomicU64::new(max + 1),
            queues: Mutex::new(queues),
            stats,
            routes,
            broker,
            client_id,
            shutdown,
        }))
    }

    /// Start a worker for every endpoint that has rows waiting (after a
    /// restart); endpoints get theirs on their first row otherwise.
    pub fn start(self: &Arc<Self>) {
        let names: Vec<String> = {
            let q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            q.iter()
                .filter(|(_, q)| !q.rows.is_empty())
                .map(|(n, _)| n.clone())
                .collect()
        };
        for n in names {
            self.ensure_worker(&n);
        }
    }

    /// Write `deliveries` to the state store and return once they are
    /// committed (the PUBACK waits for this); then their workers take them.
    pub async fn enqueue(self: &Arc<Self>, deliveries: Vec<Delivery>) -> Result<(), WriteError> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let queued: Vec<Queued> = deliveries
            .into_iter()
            .map(|d| Queued {
                seq: self.next.fetch_add(1, Ordering::Relaxed),
                delivery: Arc::new(d),
            })
            .collect();
        let rows = queued.clone();
        self.writer
            .write(Box::new(move |tx| {
                let mut ins = tx.prepare_cached(
                    "INSERT OR REPLACE INTO route_outbox (seq, endpoint, kind, target, device_id, route, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?;
                for q in &rows {
                    let d = &q.delivery;
                    ins.execute(rusqlite::params![
                        q.seq as i64,
                        d.endpoint,
                        d.target.kind(),
                        d.target.stored(),
                        d.device_id,
                        d.route,
                        &d.payload[..],
                    ])?;
                }
                Ok(())
            }))
            .await?;
        let mut dropped = Vec::new();
        let mut touched = Vec::new();
        {
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            for q in queued {
                let name = q.delivery.endpoint.clone();
                let queue = queues.entry(name.clone()).or_default();
                queue.rows.push_back(q);
                self.stats.bump(&name, |c| c.pending += 1);
                if queue.rows.len() > MAX_PER_ENDPOINT {
                    if let Some(old) = queue.rows.pop_front() {
                        dropped.push(old);
                    }
                }
                if !touched.contains(&name) {
                    touched.push(name);
                }
            }
        }
        for old in dropped {
            let d = &old.delivery;
            tracing::warn!(
                endpoint = %d.endpoint,
                device_id = %d.device_id,
                route = %d.route,
                "routed message dropped: the endpoint's outbox holds {MAX_PER_ENDPOINT} messages already (it is failing or too slow)"
            );
            self.stats.bump(&d.endpoint, |c| {
                c.dropped += 1;
                c.pending = c.pending.saturating_sub(1);
            });
            self.delete(old.seq);
        }
        for name in touched {
            self.ensure_worker(&name);
        }
        Ok(())
    }

    /// Rows waiting for `endpoint` (tests, status).
    pub fn pending(&self, endpoint: &str) -> usize {
        let q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        q.get(endpoint).map_or(0, |q| q.rows.len())
    }

    fn ensure_worker(self: &Arc<Self>, endpoint: &str) {
        let wake = {
            let mut q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            let queue = q.entry(endpoint.to_string()).or_default();
            if queue.has_worker {
                queue.wake.notify_one();
                return;
            }
            queue.has_worker = true;
            queue.wake.clone()
        };
        let me = self.clone();
        let name = endpoint.to_string();
        tokio::spawn(async move { me.work(name, wake).await });
    }

    fn head(&self, endpoint: &str) -> Option<Queued> {
        let q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        q.get(endpoint).and_then(|q| q.rows.front().cloned())
    }

    /// Where `d` goes now, by the routes in force: a webhook row to its
    /// endpoint's URL of now, an MQTT row to the topic it was routed with.
    /// `None`: a reload removed its endpoint or changed its kind.
    fn resolve(&self, d: &Delivery) -> Option<Target> {
        let table = self.routes.current();
        let ep = table.endpoints.iter().find(|e| e.name == d.endpoint)?;
        match (&ep.kind, &d.target) {
            (EndpointKind::Webhook { url }, Target::Webhook(_)) => {
                Some(Target::Webhook(url.clone()))
            }
            (EndpointKind::Mqtt { .. }, Target::Mqtt(topic)) => Some(Target::Mqtt(topic.clone())),
            _ => None,
        }
    }

    /// One endpoint's worker: the oldest row until it goes through, then
    /// the next; sleeps while there is none.
    async fn work(self: Arc<Self>, endpoint: String, wake: Arc<Notify>) {
        let mut deliverer: Option<Deliverer> = None;
        let mut backoff = Backoff::default();
        let mut failing = false;
        let mut orphans = 0u64;
        loop {
            let Some(head) = self.head(&endpoint) else {
                tokio::select! {
                    _ = self.shutdown.cancelled() => return,
                    _ = wake.notified() => continue,
                }
            };
            let Some(target) = self.resolve(&head.delivery) else {
                if orphans == 0 {
                    tracing::warn!(%endpoint, "the routes in force have no {} endpoint of this name (a reload removed it or changed its kind): its waiting messages are dropped", head.delivery.target.kind());
                }
                orphans += 1;
                self.drop_row(&endpoint, &head);
                continue;
            };
            orphans = 0;
            if deliverer.as_ref().is_some_and(|d| !d.serves(&target)) {
                deliverer = None;
            }
            let d = deliverer.get_or_insert_with(|| {
                delivery::for_target(
                    &target,
                    self.broker.as_ref(),
                    &format!("{}-route-{endpoint}", self.client_id),
                )
            });
            let result = tokio::select! {
                _ = self.shutdown.cancelled() => return,
                r = d.deliver(&target, &head.delivery.payload) => r,
            };
            match result {
                Ok(()) => {
                    if failing {
                        tracing::info!(%endpoint, "route endpoint delivers again");
                        failing = false;
                    }
                    backoff.reset();
                    self.delivered(&endpoint, &head);
                }
                Err(e) => {
                    self.stats.bump(&endpoint, |c| c.failures += 1);
                    // A broken connection is made anew: nothing of the
                    // failed attempt may be taken for the next one's ack.
                    deliverer = None;
                    let delay = backoff.next_delay();
                    if !failing {
                        tracing::warn!(%endpoint, "route delivery failed ({e}); its messages wait in the outbox, retrying with backoff");
                        failing = true;
                    } else {
                        tracing::debug!(%endpoint, "route delivery failed again ({e}); retrying in {delay:?}");
                    }
                    tokio::select! {
                        _ = self.shutdown.cancelled() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// `q` taken off its queue undelivered: its endpoint is gone.
    fn drop_row(&self, endpoint: &str, q: &Queued) {
        if !self.take_head(endpoint, q) {
            return;
        }
        self.stats.bump(endpoint, |c| {
            c.dropped += 1;
            c.pending = c.pending.saturating_sub(1);
        });
        self.delete(q.seq);
    }

    /// Pops `q` when it is still its endpoint's oldest row (it may have
    /// been dropped past the bound meanwhile).
    fn take_head(&self, endpoint: &str, q: &Queued) -> bool {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        match queues.get_mut(endpoint) {
            Some(queue) if queue.rows.front().is_some_and(|h| h.seq == q.seq) => {
                queue.rows.pop_front();
                true
            }
            _ => false,
        }
    }

    fn delivered(&self, endpoint: &str, q: &Queued) {
        self.take_head(endpoint, q);
        self.stats.bump(endpoint, |c| {
            c.delivered += 1;
            c.pending = c.pending.saturating_sub(1);
        });
        let table = self.routes.current();
        for name in q.delivery.route.split('\n') {
            if let Some(r) = table.routes.iter().find(|r| r.name == name) {
                r.stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.delete(q.seq);
    }

    fn delete(&self, seq: u64) {
        let seq = seq as i64;
        // Not deleted: delivered again after a restart (at least once).
        self.writer.submit_or_warn(
            move |tx| {
                tx.execute("DELETE FROM route_outbox WHERE seq = ?1", [seq])
                    .map(|_| ())
            },
            "route outbox: a delivered row's deletion",
        );
    }
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;
