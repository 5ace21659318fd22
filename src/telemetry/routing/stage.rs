//! The routing stage of the telemetry pipeline (SPEC §14), between
//! "received" and "committed", shared by the local hub and the bridge: for
//! each message of a batch it reads the property bag, parses the body once
//! (only when a route reads `$body` or an envelope is needed), asks the
//! current [`RouteTable`] where the message goes, and sorts it into what
//! the batch must write before its PUBACKs: validated readings for
//! `events`, envelopes for other `mongodb` endpoints, outbox rows for
//! `mqtt` and `webhook`.
//!
//! With no routes file (the built-in table) a batch takes exactly the path
//! it took before routing existed: validate, store.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::Value;

use super::envelope::{Envelope, Parts};
use super::eval::{body_is_routable, why_body_not_evaluated, MessageView};
use super::outbox::{Delivery, Outbox, Target};
use super::table::{EndpointId, EndpointKind, RouteTable};
use super::{PropertyBag, Source};
use crate::state::WriteError;
use crate::telemetry::message::{self, Reading};
use crate::telemetry::store::{RejectedMessage, Store, StoreError, WriteOutcome};

/// Where the stage reads the routes in force, once per batch: the daemon's
/// snapshot (so a reload reaches the next batch), or a fixed table.
pub trait RoutesSource: Send + Sync {
    fn current(&self) -> Arc<RouteTable>;
}

impl RoutesSource for crate::snapshot::SnapshotHandle {
    fn current(&self) -> Arc<RouteTable> {
        self.load().routes.clone()
    }
}

/// A table that never changes (the standalone `ztpd bridge`, tests).
pub struct FixedRoutes(pub Arc<RouteTable>);

impl RoutesSource for FixedRoutes {
    fn current(&self) -> Arc<RouteTable> {
        self.0.clone()
    }
}

/// The device twins `$twin` reads (the local hub's); the standalone bridge
/// has none.
pub trait TwinSource: Send + Sync {
    /// `{tags, properties: {desired, reported}}`, or `None`.
    fn twin(&self, device_id: &str) -> Option<Value>;
}

/// The stage: the routes, the outbox for `mqtt`/`webhook` endpoints, the
/// twins (set once the hub is up) and the hub's name for `$iothubname`.
pub struct Router {
    routes: Arc<dyn RoutesSource>,
    twins: OnceLock<Arc<dyn TwinSource>>,
    outbox: Option<Arc<Outbox>>,
    hub_name: String,
}

impl Router {
    pub fn new(
        routes: Arc<dyn RoutesSource>,
        outbox: Option<Arc<Outbox>>,
        hub_name: String,
    ) -> Router {
        Router {
            routes,
            twins: OnceLock::new(),
            outbox,
            hub_name,
        }
    }

    /// No routes file: everything to `events`, as before routing.
    pub fn builtin() -> Router {
        Router::new(
            Arc::new(FixedRoutes(Arc::new(RouteTable::builtin()))),
            None,
            String::new(),
        )
    }

    /// Where `$twin` paths and enrichments read from, from now on.
    pub fn set_twins(&self, twins: Arc<dyn TwinSource>) {
        let _ = self.twins.set(twins);
    }

    pub fn outbox(&self) -> Option<&Arc<Outbox>> {
        self.outbox.as_ref()
    }

    /// Sort a batch of `(source, topic, payload)` by destination. Hub
    /// events (sources other than `DeviceMessages`) come with a topic of
    /// their device and go only where a route of their source sends them.
    pub fn route<'a>(&self, messages: impl Iterator<Item = (Source, &'a str, &'a [u8])>) -> Routed {
        let table = self.routes.current();
        let mut out = Routed::default();
        if table.is_builtin() {
            for (source, topic, payload) in messages {
                if source == Source::DeviceMessages {
                    out.validate(topic, payload);
                }
            }
            return out;
        }
        let now = crate::clock::rfc3339_millis();
        let ctx = Context {
            table: &table,
            reads_body: table.reads_body(Source::DeviceMessages),
            twins: self.twins.get().filter(|_| table.reads_twin()),
            hub_name: &self.hub_name,
            now: &now,
        };
        let mut scratch = Scratch::default();
        for (source, topic, payload) in messages {
            if source == Source::DeviceMessages || table.routes_source(source) {
                ctx.route_one(source, topic, payload, &mut scratch, &mut out);
            }
        }
        out.table = Some(table.clone());
        out
    }

    /// Write what `routed` holds for the outbox and wait for the commit.
    pub async fn enqueue(&self, routed: &Routed) -> Result<(), WriteError> {
        match &self.outbox {
            Some(o) => o.enqueue(routed.deliveries.clone()).await,
            None if routed.deliveries.is_empty() => Ok(()),
            None => {
                tracing::error!(
                    count = routed.deliveries.len(),
                    "routed messages for mqtt/webhook endpoints dropped: this process has no route outbox"
                );
                Ok(())
            }
        }
    }
}

/// What one batch writes, by destination.
#[derive(Default)]
pub struct Routed {
    /// For `events`.
    pub readings: Vec<Reading>,
    pub rejected: Vec<RejectedMessage>,
    /// For other `mongodb` endpoints, by collection.
    pub envelopes: BTreeMap<String, Vec<Envelope>>,
    /// For `mqtt` and `webhook` endpoints.
    pub deliveries: Vec<Delivery>,
    /// Routes whose store endpoints took a message, once per message and
    /// endpoint: their `delivered` count moves once the batch committed.
    stored_by: Vec<usize>,
    table: Option<Arc<RouteTable>>,
}

impl Routed {
    fn validate(&mut self, topic: &str, payload: &[u8]) {
        match message::validate(topic, payload) {
            Ok(r) => self.readings.extend(r),
            Err(rej) => self.rejected.push(RejectedMessage {
                topic: topic.to_string(),
                payload: payload.to_vec(),
                reason: rej.reason,
            }),
        }
    }

    /// Write the store's part: readings and rejected messages, then each
    /// collection's envelopes. Idempotent (every document has its `_id`),
    /// so a failed batch is simply written again.
    pub async fn store<S: Store>(&self, store: &S) -> Result<WriteOutcome, StoreError> {
        let out = store.write(&self.readings, &self.rejected).await?;
        for (collection, envelopes) in &self.envelopes {
            store.write_envelopes(collection, envelopes).await?;
        }
        Ok(out)
    }

    /// The batch committed: count its store deliveries on their routes.
    pub fn committed(&self) {
        if let Some(t) = &self.table {
            for &r in &self.stored_by {
                t.routes[r].stats.delivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

struct Context<'a> {
    table: &'a RouteTable,
    reads_body: bool,
    twins: Option<&'a Arc<dyn TwinSource>>,
    hub_name: &'a str,
    now: &'a str,
}

/// Buffers reused across the messages of a batch.
#[derive(Default)]
struct Scratch {
    selected: Vec<EndpointId>,
    matched: Vec<usize>,
    enrichments: Vec<(String, String)>,
}

impl Context<'_> {
    fn route_one(
        &self,
        source: Source,
        topic: &str,
        payload: &[u8],
        s: &mut Scratch,
        out: &mut Routed,
    ) {
        let Some(device_id) = crate::topics::events_device_id(topic) else {
            // Not a device message topic: `events` rejects it with the reason.
            out.validate(topic, payload);
            return;
        };
        let bag = PropertyBag::from_topic(topic);
        let routable =
            body_is_routable(bag.content_type.as_deref(), bag.content_encoding.as_deref());
        // Parsed for the conditions only where they may read it (hub
        // events are JSON and their routes read `$body`).
        let tried = (self.reads_body || source != Source::DeviceMessages) && routable;
        let for_conditions: Option<Value> = tried
            .then(|| serde_json::from_slice(payload).ok())
            .flatten();
        let twin = self.twins.and_then(|t| t.twin(device_id));
        let view = MessageView {
            device_id,
            content_type: bag.content_type.as_deref(),
            content_encoding: bag.content_encoding.as_deref(),
            enqueued_time: self.now,
            properties: &bag.properties,
            body: for_conditions.as_ref(),
            twin: twin.as_ref(),
        };
        if self.reads_body && source == Source::DeviceMessages && view.body.is_none() {
            if let Some(why) = why_body_not_evaluated(&view) {
                tracing::debug!(device_id, "$body conditions were not evaluated: {why}");
            }
        }
        self.table
            .select(source, &view, &mut s.selected, &mut s.matched);
        if s.selected.is_empty() {
            tracing::trace!(
                device_id,
                "message matched no route and the fallback is off"
            );
            return;
        }
        // An envelope carries the body as JSON whenever it parses.
        let needs_envelope = s.selected.iter().any(|&e| e != RouteTable::EVENTS);
        let reparsed: Option<Value> = (needs_envelope && !tried)
            .then(|| serde_json::from_slice(payload).ok())
            .flatten();
        let parts = Parts {
            device_id,
            source,
            enqueued_time: self.now,
            bag: &bag,
            raw: payload,
            parsed: for_conditions.as_ref().or(reparsed.as_ref()),
        };
        let Scratch {
            selected,
            matched,
            enrichments,
        } = s;
        for &e in selected.iter() {
            let routes: Vec<usize> = matched
                .iter()
                .copied()
                .filter(|&r| self.table.routes[r].endpoints.contains(&e))
                .collect();
            let endpoint = self.table.endpoint(e);
            let mut envelope = || {
                enrichments.clear();
                self.table.enrich(e, &view, self.hub_name, enrichments);
                parts.envelope(enrichments)
            };
            let target = match &endpoint.kind {
                // `events` holds readings: a hub event is no reading.
                EndpointKind::Events if source != Source::DeviceMessages => continue,
                EndpointKind::Events => {
                    out.validate(topic, payload);
                    out.stored_by.extend(&routes);
                    continue;
                }
                EndpointKind::Mongodb { collection } => {
                    let env = envelope();
                    out.envelopes
                        .entry(collection.clone())
                        .or_default()
                        .push(env);
                    out.stored_by.extend(&routes);
                    continue;
                }
                EndpointKind::Mqtt { topic } => {
                    let route = routes.first().map_or("", |&r| &self.table.routes[r].name);
                    Target::Mqtt(
                        topic
                            .replace("{deviceId}", device_id)
                            .replace("{route}", route),
                    )
                }
                EndpointKind::Webhook { url } => Target::Webhook(url.clone()),
            };
            let env = envelope();
            let Ok(json) = serde_json::to_vec(&env) else {
                continue;
            };
            out.deliveries.push(Delivery {
                endpoint: endpoint.name.clone(),
                target,
                device_id: device_id.to_string(),
                route: routes
                    .iter()
                    .map(|&r| self.table.routes[r].name.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
                payload: Bytes::from(json),
            });
        }
    }
}
