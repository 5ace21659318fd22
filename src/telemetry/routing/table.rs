//! The routes in force (SPEC §14): endpoints, routes, the fallback and
//! enrichments as one compiled table, built once per load of `routes.toml`
//! (or [`RouteTable::builtin`] when there is no such file) and shared by the
//! snapshot. The routing stage asks it where a message goes
//! ([`RouteTable::select`]) and what to add to it ([`RouteTable::enrich`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::condition::{Expr, Lit, Step};
use super::eval::{self, MessageView};

/// Index of an endpoint in [`RouteTable::endpoints`].
pub type EndpointId = usize;

/// Where routed messages come from (SPEC §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    DeviceMessages,
    TwinChangeEvents,
    DeviceConnectionStateEvents,
    DeviceLifecycleEvents,
}

impl Source {
    pub const ALL: [Source; 4] = [
        Source::DeviceMessages,
        Source::TwinChangeEvents,
        Source::DeviceConnectionStateEvents,
        Source::DeviceLifecycleEvents,
    ];

    /// The name written in `routes.toml` and shown by the API.
    pub fn name(self) -> &'static str {
        match self {
            Source::DeviceMessages => "DeviceMessages",
            Source::TwinChangeEvents => "TwinChangeEvents",
            Source::DeviceConnectionStateEvents => "DeviceConnectionStateEvents",
            Source::DeviceLifecycleEvents => "DeviceLifecycleEvents",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// What an endpoint is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointKind {
    /// The built-in telemetry collection: validated readings (SPEC §9).
    Events,
    /// Another collection in the telemetry database, holding envelopes.
    Mongodb { collection: String },
    /// Republished on `telemetry.broker`; `{deviceId}` and `{route}` filled in.
    Mqtt { topic: String },
    /// HTTP POST of the envelope as JSON.
    Webhook { url: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub name: String,
    pub kind: EndpointKind,
}

/// Counts of one route, shown by `GET /api/v1/routes`.
#[derive(Debug, Default)]
pub struct RouteStats {
    /// Messages whose condition was true.
    pub matched: AtomicU64,
    /// Deliveries to this route's endpoints that completed (stored, or
    /// taken by the webhook or broker).
    pub delivered: AtomicU64,
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub source: Source,
    /// As written, for the API.
    pub condition_text: String,
    pub condition: Expr,
    pub endpoints: Vec<EndpointId>,
    /// Shared with the route of the same name in the next table a reload
    /// builds, so the counts carry over an edit of other routes.
    pub stats: Arc<RouteStats>,
}

impl Route {
    /// A route whose condition is parsed from `condition` (the loader
    /// reports syntax errors with their place in the file; tests and
    /// benchmarks build routes with this).
    pub fn new(
        name: &str,
        source: Source,
        condition: &str,
        endpoints: Vec<EndpointId>,
    ) -> Result<Route, super::condition::SyntaxError> {
        Ok(Route {
            name: name.into(),
            source,
            condition_text: condition.into(),
            condition: super::condition::parse(condition)?,
            endpoints,
            stats: Arc::default(),
        })
    }
}

/// The value of an enrichment.
#[derive(Debug, Clone, PartialEq)]
pub enum EnrichmentValue {
    Literal(String),
    /// `$iothubname`: the hub's host name.
    HubName,
    /// `$twin.<path>` (`tags.*`, `properties.desired.*`,
    /// `properties.reported.*`), read from the device's twin document.
    Twin(Box<[Step]>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Enrichment {
    pub key: String,
    pub value: EnrichmentValue,
    pub endpoints: Vec<EndpointId>,
}

/// The compiled routes. `endpoints[EVENTS]` is always the built-in `events`.
#[derive(Debug)]
pub struct RouteTable {
    pub endpoints: Vec<Endpoint>,
    pub routes: Vec<Route>,
    /// Device messages that matched no route go to `events`.
    pub fallback: bool,
    pub enrichments: Vec<Enrichment>,
    /// Where it was read from; `None`: no routes file (today's behaviour).
    pub file: Option<std::path::PathBuf>,
}

impl Default for RouteTable {
    fn default() -> Self {
        RouteTable::builtin()
    }
}

impl RouteTable {
    pub const EVENTS: EndpointId = 0;
    pub const EVENTS_NAME: &'static str = "events";

    /// No routes file: every device message goes to `events`, nothing else
    /// is routed.
    pub fn builtin() -> RouteTable {
        RouteTable {
            endpoints: vec![Endpoint {
                name: Self::EVENTS_NAME.into(),
                kind: EndpointKind::Events,
            }],
            routes: Vec::new(),
            fallback: true,
            enrichments: Vec::new(),
            file: None,
        }
    }

    /// Whether this is the table of no routes file.
    pub fn is_builtin(&self) -> bool {
        self.file.is_none()
    }

    /// Whether any route reads `source`; the stage skips building events
    /// of a source nobody routes.
    pub fn routes_source(&self, source: Source) -> bool {
        self.routes.iter().any(|r| r.source == source)
    }

    /// Whether any route condition of `source` reads `$body` (the stage
    /// parses the body only then).
    pub fn reads_body(&self, source: Source) -> bool {
        self.routes
            .iter()
            .any(|r| r.source == source && r.condition.reads_body())
    }

    /// Whether any condition or enrichment reads `$twin`: the routing stage
    /// looks a device's twin up only then.
    pub fn reads_twin(&self) -> bool {
        self.routes.iter().any(|r| r.condition.reads_twin())
            || self
                .enrichments
                .iter()
                .any(|e| matches!(e.value, EnrichmentValue::Twin(_)))
    }

    /// Take the counts of the routes of `previous` with the same names, so
    /// `GET /api/v1/routes` keeps counting across a reload.
    pub fn carry_stats_from(&mut self, previous: &RouteTable) {
        for r in &mut self.routes {
            if let Some(p) = previous.routes.iter().find(|p| p.name == r.name) {
                r.stats = p.stats.clone();
            }
        }
    }

    pub fn endpoint(&self, id: EndpointId) -> &Endpoint {
        &self.endpoints[id]
    }

    /// The endpoints a message of `source` goes to, each once, in endpoint
    /// order, pushed to `out` (cleared first); `matched` gets the index of
    /// every route whose condition held (their `matched` count is bumped).
    /// Empty: the message goes nowhere (no route matched and the fallback
    /// is off, or it is not a device message).
    pub fn select(
        &self,
        source: Source,
        view: &MessageView,
        out: &mut Vec<EndpointId>,
        matched: &mut Vec<usize>,
    ) {
        out.clear();
        matched.clear();
        for (i, r) in self.routes.iter().enumerate() {
            if r.source == source && eval::matches(&r.condition, view) {
                r.stats.matched.fetch_add(1, Ordering::Relaxed);
                matched.push(i);
                out.extend_from_slice(&r.endpoints);
            }
        }
        if matched.is_empty() && self.fallback && source == Source::DeviceMessages {
            out.push(Self::EVENTS);
        }
        out.sort_unstable();
        out.dedup();
    }

    /// The enrichments for `endpoint`, as application properties, pushed
    /// to `out`. A `$twin` value the twin lacks adds nothing.
    pub fn enrich(
        &self,
        endpoint: EndpointId,
        view: &MessageView,
        hub_name: &str,
        out: &mut Vec<(String, String)>,
    ) {
        for e in &self.enrichments {
            if !e.endpoints.contains(&endpoint) {
                continue;
            }
            let v = match &e.value {
                EnrichmentValue::Literal(s) => Some(s.clone()),
                EnrichmentValue::HubName => Some(hub_name.to_string()),
                EnrichmentValue::Twin(path) => twin_text(view.twin, path),
            };
            if let Some(v) = v {
                out.push((e.key.clone(), v));
            }
        }
    }
}

/// A twin value as enrichment text: strings as they are, numbers and
/// booleans as JSON, objects and arrays as compact JSON; null or absent:
/// nothing.
fn twin_text(twin: Option<&serde_json::Value>, path: &[Step]) -> Option<String> {
    let mut v = twin?;
    for s in path {
        v = match s {
            Step::Key(k) => v.get(&**k)?,
            Step::Index(i) => v.get(*i)?,
        };
    }
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// `true`, the condition of a route that takes everything.
pub fn always() -> Expr {
    Expr::Lit(Lit::Bool(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::routing::condition;

    fn route(name: &str, source: Source, cond: &str, endpoints: Vec<EndpointId>) -> Route {
        Route {
            name: name.into(),
            source,
            condition_text: cond.into(),
            condition: condition::parse(cond).unwrap(),
            endpoints,
            stats: Arc::default(),
        }
    }

    #[test]
    fn reads_twin_sees_conditions_and_enrichments_and_stats_carry_by_name() {
        let mut t = RouteTable::builtin();
        assert!(!t.reads_twin());
        t.routes
            .push(route("a", Source::DeviceMessages, "x = '1'", vec![0]));
        assert!(!t.reads_twin());
        t.routes.push(route(
            "b",
            Source::DeviceMessages,
            "$twin.tags.s = '1'",
            vec![0],
        ));
        assert!(t.reads_twin());
        t.routes.pop();
        t.enrichments.push(Enrichment {
            key: "site".into(),
            value: EnrichmentValue::Twin(vec![Step::Key("tags".into())].into()),
            endpoints: vec![0],
        });
        assert!(t.reads_twin());

        t.routes[0].stats.matched.store(5, Ordering::Relaxed);
        let mut next = RouteTable::builtin();
        next.routes
            .push(route("a", Source::DeviceMessages, "true", vec![0]));
        next.routes
            .push(route("c", Source::DeviceMessages, "true", vec![0]));
        next.carry_stats_from(&t);
        assert_eq!(next.routes[0].stats.matched.load(Ordering::Relaxed), 5);
        assert_eq!(next.routes[1].stats.matched.load(Ordering::Relaxed), 0);
        assert!(Arc::ptr_eq(&next.routes[0].stats, &t.routes[0].stats));
    }

    fn view<'a>(
        props: &'a [(String, String)],
        body: Option<&'a serde_json::Value>,
    ) -> MessageView<'a> {
        MessageView {
            device_id: "d1",
            content_type: Some("application/json"),
            content_encoding: Some("utf-8"),
            enqueued_time: "2026-12-07T00:00:00Z",
            properties: props,
            body,
            twin: None,
        }
    }

    #[test]
    fn builtin_sends_device_messages_to_events_only() {
        let t = RouteTable::builtin();
        let (mut out, mut m) = (Vec::new(), Vec::new());
        t.select(Source::DeviceMessages, &view(&[], None), &mut out, &mut m);
        assert_eq!(out, vec![RouteTable::EVENTS]);
        t.select(Source::TwinChangeEvents, &view(&[], None), &mut out, &mut m);
        assert!(out.is_empty());
    }

    #[test]
    fn matching_routes_give_each_endpoint_once_and_fallback_only_when_none_matched() {
        let mut t = RouteTable::builtin();
        t.endpoints.push(Endpoint {
            name: "alerts".into(),
            kind: EndpointKind::Mongodb {
                collection: "a".into(),
            },
        });
        t.routes.push(route(
            "low",
            Source::DeviceMessages,
            "$body.b < 0.2",
            vec![1],
        ));
        t.routes.push(route(
            "hi",
            Source::DeviceMessages,
            "alarm = 'high'",
            vec![1, 0],
        ));
        let body = serde_json::json!({"b": 0.1});
        let props = vec![("alarm".to_string(), "high".to_string())];
        let (mut out, mut m) = (Vec::new(), Vec::new());
        t.select(
            Source::DeviceMessages,
            &view(&props, Some(&body)),
            &mut out,
            &mut m,
        );
        assert_eq!(out, vec![0, 1]);
        assert_eq!(m, vec![0, 1]);
        let high = serde_json::json!({"b": 0.9});
        t.select(
            Source::DeviceMessages,
            &view(&[], Some(&high)),
            &mut out,
            &mut m,
        );
        assert_eq!(out, vec![RouteTable::EVENTS], "fallback");
        t.fallback = false;
        t.select(
            Source::DeviceMessages,
            &view(&[], Some(&high)),
            &mut out,
            &mut m,
        );
        assert!(out.is_empty());
        assert_eq!(t.routes[0].stats.matched.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn enrichments_read_literals_hub_name_and_twin() {
        let mut t = RouteTable::builtin();
        t.enrichments = vec![
            Enrichment {
                key: "k".into(),
                value: EnrichmentValue::Literal("v".into()),
                endpoints: vec![0],
            },
            Enrichment {
                key: "hub".into(),
                value: EnrichmentValue::HubName,
                endpoints: vec![0],
            },
            Enrichment {
                key: "site".into(),
                value: EnrichmentValue::Twin(
                    vec![Step::Key("tags".into()), Step::Key("site".into())].into(),
                ),
                endpoints: vec![0],
            },
            Enrichment {
                key: "other".into(),
                value: EnrichmentValue::Literal("x".into()),
                endpoints: vec![1],
            },
        ];
        let twin = serde_json::json!({"tags": {"site": "lab"}});
        let mut v = view(&[], None);
        v.twin = Some(&twin);
        let mut out = Vec::new();
        t.enrich(0, &v, "hub.local", &mut out);
        let want: Vec<(String, String)> = [("k", "v"), ("hub", "hub.local"), ("site", "lab")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(out, want);
    }
}
