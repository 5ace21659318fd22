//! The routing stage in process (SPEC §14), with real parts: the local
//! hub's pipeline (`Ingest` -> routing stage -> store -> acknowledgement),
//! the embedded store, the state store's route outbox, a real HTTP server
//! as the webhook, a real Mosquitto for the `mqtt` endpoint and a real
//! `mosquitto_sub` watching it. The table is built in code, as the
//! routes.toml loader will build it; topics are the Azure SDK's.
//!
//! What it shows: a `$body` route takes only messages whose content type
//! and encoding let the body be read; an application-property route reaches
//! the webhook and the MQTT topic; everything reaches `events` through its
//! route or the fallback; a resent message is stored once; and a dead
//! webhook holds neither the PUBACKs nor the other endpoints.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use support::mqtt::{Devicebound, Mosquitto};
use support::webhook::webhook;
use ztpd::metrics::MetricsSource;
use ztpd::settings::Durability;
use ztpd::state::StateStore;
use ztpd::telemetry::mqtt::BrokerUrl;
use ztpd::telemetry::pipeline::{self, Batching, BridgeStats};
use ztpd::telemetry::routing::outbox::{Delivery, Outbox, Target};
use ztpd::telemetry::routing::stage::{FixedRoutes, Router, RoutesSource};
use ztpd::telemetry::routing::table::{
    Endpoint, EndpointKind, Enrichment, EnrichmentValue, Route, RouteTable, Source,
};
use ztpd::telemetry::store::{EmbeddedStore, Store};

fn route(name: &str, cond: &str, endpoints: Vec<usize>) -> Route {
    Route::new(name, Source::DeviceMessages, cond, endpoints).expect("condition parses")
}

/// events(0), alerts(1, mongodb), ops(2, mqtt), hook(3, webhook).
fn table(hook: &str) -> RouteTable {
    let mut t = RouteTable::builtin();
    t.file = Some("routes.toml".into());
    let ep = |name: &str, kind| Endpoint {
        name: name.into(),
        kind,
    };
    t.endpoints.push(ep(
        "alerts",
        EndpointKind::Mongodb {
            collection: "battery_alerts".into(),
        },
    ));
    t.endpoints.push(ep(
        "ops",
        EndpointKind::Mqtt {
            topic: "ztpd/alerts/{deviceId}/{route}".into(),
        },
    ));
    t.endpoints
        .push(ep("hook", EndpointKind::Webhook { url: hook.into() }));
    t.routes = vec![
        route(
            "low-battery",
            "$body.device_battery_level < 0.2",
            vec![1, 0],
        ),
        route("alarm", "alarm = 'high'", vec![2, 3, 0]),
    ];
    t.enrichments = vec![
        Enrichment {
            key: "site".into(),
            value: EnrichmentValue::Literal("lab-3".into()),
            endpoints: vec![1],
        },
        Enrichment {
            key: "hub".into(),
            value: EnrichmentValue::HubName,
            endpoints: vec![1, 3],
        },
    ];
    t
}

fn reading(device: &str, n: usize, battery: f64) -> Bytes {
    Bytes::from(format!(
        r#"{{"device_id":"{device}","device_name":{n},"device_latitude":-37.1,"device_longitude":-68.2,"device_battery_level":{battery},"signal_date":"2024-05-01 00:00:00.{n:06}"}}"#
    ))
}

/// The Azure SDK's topic: system properties first, custom ones after.
const JSON: &str = "%24.ct=application%2Fjson&%24.ce=utf-8";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_reach_every_endpoint_and_a_dead_webhook_holds_nothing() {
    if !support::tools::have_all(
        "routes_reach_every_endpoint",
        &["mosquitto", "mosquitto_sub", "stdbuf"],
    ) {
        return;
    }
    ztpd::telemetry::mqtt::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let mosq = Mosquitto::start(&dir.path().join("mosquitto"));
    let sub = Devicebound::subscribe_filter(mosq.port, &[], "ztpd/alerts/#", 2);
    let up = Arc::new(AtomicBool::new(false));
    let (hook_url, mut hook) = webhook(up.clone()).await;

    let table = Arc::new(table(&hook_url));
    let routes = Arc::new(FixedRoutes(table.clone()));
    let state = StateStore::open(&dir.path().join("state"), Durability::Fsync).unwrap();
    let shutdown = CancellationToken::new();
    let outbox = Outbox::open(
        &state,
        routes.clone(),
        Some(BrokerUrl::parse(&mosq.url()).unwrap()),
        format!("routing-test-{}", std::process::id()),
        shutdown.clone(),
    )
    .unwrap();
    let router = Arc::new(Router::new(routes, Some(outbox.clone()), "hub.test".into()));
    let store = EmbeddedStore::open(&dir.path().join("state/telemetry.sqlite")).unwrap();
    let stats = Arc::new(BridgeStats::default());
    let (ingest, rx) = pipeline::channel(stats.clone());
    let run = {
        let (store, router, stats, shutdown) = (
            store.clone(),
            router.clone(),
            stats.clone(),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            pipeline::run_local(Batching::default(), store, &router, rx, stats, shutdown).await
        })
    };

    let messages: Vec<(String, Bytes)> = vec![
        // 0: low battery, JSON: alerts + events
        (
            format!("devices/d1/messages/events/{JSON}"),
            reading("d1", 1, 0.1),
        ),
        // 1: low battery without a content type: $body is not read; fallback
        ("devices/d1/messages/events/".into(), reading("d1", 2, 0.1)),
        // 2: alarm: ops + hook + events
        (
            format!("devices/d2/messages/events/{JSON}&alarm=high"),
            reading("d2", 3, 0.9),
        ),
        // 3: nothing matches: fallback
        (
            format!("devices/d2/messages/events/{JSON}&alarm=low"),
            reading("d2", 4, 0.5),
        ),
        // 4: message 0 resent (same body): stored once
        (
            format!("devices/d1/messages/events/{JSON}"),
            reading("d1", 1, 0.1),
        ),
        // 5: both, with a message id
        (
            format!("devices/d3/messages/events/{JSON}&%24.mid=m-1&alarm=high"),
            reading("d3", 5, 0.05),
        ),
    ];
    for (topic, payload) in &messages {
        let acked = ingest
            .submit_local(topic.clone(), payload.clone())
            .await
            .expect("pipeline running");
        // Each PUBACK comes while the webhook answers 503.
        tokio::time::timeout(Duration::from_secs(20), acked)
            .await
            .expect("acknowledged while the webhook is down")
            .expect("stored");
    }

    // events: every message through its route or the fallback, message 4
    // a duplicate of 0.
    assert_eq!(store.counts().await.unwrap(), (5, 0));
    let events = store.analyze(None).await.unwrap();
    let per: Vec<(String, u64)> = events
        .iter()
        .map(|s| (s.device_id.clone(), s.count))
        .collect();
    assert_eq!(
        per,
        vec![("d1".into(), 2), ("d2".into(), 2), ("d3".into(), 1)]
    );

    // alerts: the $body matches only, once each, enriched.
    let alerts = store.envelopes("battery_alerts").await.unwrap();
    let ids: Vec<&str> = alerts.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(alerts.len(), 2, "{ids:?}");
    assert!(ids.contains(&"d3:m-1"), "{ids:?}");
    let d1 = alerts
        .iter()
        .find(|e| e.device_id == "d1")
        .expect("d1 alert");
    assert_eq!(d1.body["device_battery_level"], 0.1);
    assert_eq!(d1.properties["site"], "lab-3");
    assert_eq!(d1.properties["hub"], "hub.test");
    assert_eq!(d1.system_properties["contentType"], "application/json");
    assert_eq!(d1.source, "DeviceMessages");

    // mqtt: delivered while the webhook still fails.
    let mut seen = [sub.next(), sub.next()];
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(seen[0].0, "ztpd/alerts/d2/alarm");
    assert_eq!(seen[1].0, "ztpd/alerts/d3/alarm");
    assert_eq!(seen[0].1["properties"]["alarm"], "high");
    assert_eq!(seen[1].1["_id"], "d3:m-1");
    assert!(
        seen[0].1["properties"].get("site").is_none(),
        "enrichments go only to their endpoints"
    );
    assert_eq!(outbox.pending("hook"), 2, "the webhook's rows wait");

    // The webhook comes back: its rows arrive, in order.
    up.store(true, Ordering::SeqCst);
    let mut got = Vec::new();
    for _ in 0..2 {
        let b = tokio::time::timeout(Duration::from_secs(20), hook.recv())
            .await
            .expect("the webhook gets its rows once it is back")
            .unwrap();
        got.push(serde_json::from_slice::<serde_json::Value>(&b).unwrap());
    }
    assert_eq!(got[0]["device_id"], "d2");
    assert_eq!(got[1]["device_id"], "d3");
    assert_eq!(got[1]["properties"]["hub"], "hub.test");

    // Counts per route: low-battery matched 0, 4 and 5 (0 and 4 are one
    // message stored twice over: alerts and events each count it).
    let stat = |i: usize| {
        let s = &table.routes[i].stats;
        (
            s.matched.load(Ordering::Relaxed),
            s.delivered.load(Ordering::Relaxed),
        )
    };
    assert_eq!(stat(0), (3, 6));
    support::poll::wait_until("alarm deliveries counted", Duration::from_secs(10), || {
        stat(1) == (2, 6)
    });
    shutdown.cancel();
    let _ = run.await;
}

/// Hub events (what the hub's twin handler, sessions and DPS hand over)
/// go where the routes of their source send them, never to `events`, and
/// not at all when no route reads their source.
#[tokio::test]
async fn hub_events_reach_the_endpoints_of_their_routes() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = RouteTable::builtin();
    t.file = Some("routes.toml".into());
    t.endpoints.push(Endpoint {
        name: "audit".into(),
        kind: EndpointKind::Mongodb {
            collection: "audit".into(),
        },
    });
    let mut twin = route(
        "reported-fw",
        "IS_DEFINED($body.properties.reported.firmware)",
        vec![1, 0],
    );
    twin.source = Source::TwinChangeEvents;
    let mut conn = route("disconnects", "opType = 'deviceDisconnected'", vec![1]);
    conn.source = Source::DeviceConnectionStateEvents;
    t.routes = vec![twin, conn];
    let router = Arc::new(Router::new(
        Arc::new(FixedRoutes(Arc::new(t))),
        None,
        String::new(),
    ));
    let store = EmbeddedStore::open(&dir.path().join("telemetry.sqlite")).unwrap();
    let stats = Arc::new(BridgeStats::default());
    let (ingest, rx) = pipeline::channel(stats.clone());
    let shutdown = CancellationToken::new();
    let run = {
        let (store, router, shutdown) = (store.clone(), router.clone(), shutdown.clone());
        tokio::spawn(async move {
            pipeline::run_local(Batching::default(), store, &router, rx, stats, shutdown).await
        })
    };

    ingest.route_event(
        Source::TwinChangeEvents,
        "d1",
        "updateTwin",
        &serde_json::json!({"version": 2, "properties": {"reported": {"firmware": "1.2"}}}),
    );
    ingest.route_event(
        Source::TwinChangeEvents,
        "d1",
        "updateTwin",
        &serde_json::json!({"version": 3, "properties": {"reported": {"uptime": 5}}}),
    );
    for op in ["deviceConnected", "deviceDisconnected"] {
        ingest.route_event(
            Source::DeviceConnectionStateEvents,
            "d2",
            op,
            &serde_json::json!({"deviceId": "d2", "opType": op}),
        );
    }
    ingest.route_event(
        Source::DeviceLifecycleEvents,
        "d3",
        "createDeviceIdentity",
        &serde_json::json!({"deviceId": "d3"}),
    );
    // A device message after them: once it is acknowledged, the events
    // queued before it are committed too (batches commit in order).
    let acked = ingest
        .submit_local("devices/d1/messages/events/".into(), reading("d1", 1, 0.5))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), acked)
        .await
        .expect("acknowledged")
        .unwrap();
    let audit = store.envelopes("audit").await.unwrap();
    let mut got: Vec<(String, String)> = audit
        .iter()
        .map(|e| (e.source.clone(), e.device_id.clone()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("DeviceConnectionStateEvents".to_string(), "d2".to_string()),
            ("TwinChangeEvents".to_string(), "d1".to_string()),
        ]
    );
    let twin = audit.iter().find(|e| e.device_id == "d1").unwrap();
    assert_eq!(twin.body["properties"]["reported"]["firmware"], "1.2");
    assert_eq!(twin.properties["opType"], "updateTwin");
    // `events` got the device message only (fallback), no event.
    assert_eq!(store.counts().await.unwrap(), (1, 0));
    shutdown.cancel();
    let _ = run.await;
}

/// A `mongodb` endpoint on a MongoDB-wire server (nx-27017): envelopes land
/// in their own collection of the telemetry database, JSON bodies as
/// documents, and a redelivered envelope is a duplicate that counts as
/// success (insert_many unordered, duplicate keys ignored).
#[test]
fn envelopes_land_in_their_collection_on_a_mongodb_server_once() {
    let Some(bin) = support::mongo::nx_binary() else {
        eprintln!("skip: nx-27017 is not installed (scripts/install-test-deps.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let nx = support::mongo::Nx::start(&bin, &dir.path().join("nx"));
    let uri = nx.uri();
    let table = table("http://127.0.0.1:9/unused");
    let router = Router::new(
        Arc::new(FixedRoutes(Arc::new(table))),
        None,
        "hub.test".into(),
    );
    let topic = format!("devices/d1/messages/events/{JSON}");
    let body = reading("d1", 1, 0.1);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcomes = rt.block_on(async {
        let store = ztpd::telemetry::store::MongoStore::connect(&uri, "routing_db", "readings")
            .await
            .unwrap();
        let mut outcomes = Vec::new();
        for _ in 0..2 {
            let routed =
                router.route([(Source::DeviceMessages, topic.as_str(), &body[..])].into_iter());
            let envelopes = &routed.envelopes["battery_alerts"];
            outcomes.push(
                store
                    .write_envelopes("battery_alerts", envelopes)
                    .await
                    .unwrap(),
            );
        }
        outcomes
    });
    assert_eq!((outcomes[0].inserted, outcomes[0].duplicates), (1, 0));
    assert_eq!((outcomes[1].inserted, outcomes[1].duplicates), (0, 1));
    let docs = support::mongo::docs(&uri, "routing_db", "battery_alerts");
    assert_eq!(docs.len(), 1);
    let d = &docs[0];
    assert!(d.get_str("_id").unwrap().starts_with("d1:"));
    let body = d.get_document("body").expect("the JSON body as a document");
    assert_eq!(body.get_f64("device_battery_level"), Ok(0.1));
    let props = d.get_document("properties").unwrap();
    assert_eq!(props.get_str("site"), Ok("lab-3"));
}

/// Routes a test replaces, as a reload replaces the snapshot's.
struct Reloadable(std::sync::Mutex<Arc<RouteTable>>);

impl RoutesSource for Reloadable {
    fn current(&self) -> Arc<RouteTable> {
        self.0.lock().unwrap().clone()
    }
}

impl Reloadable {
    fn reload(&self, t: RouteTable) {
        *self.0.lock().unwrap() = Arc::new(t);
    }
}

/// `events` and a webhook endpoint `hook` at `url`.
fn hook_only(url: &str) -> RouteTable {
    let mut t = RouteTable::builtin();
    t.file = Some("routes.toml".into());
    t.endpoints.push(Endpoint {
        name: "hook".into(),
        kind: EndpointKind::Webhook { url: url.into() },
    });
    t
}

fn queued(url: &str, n: usize) -> Delivery {
    Delivery {
        endpoint: "hook".into(),
        target: Target::Webhook(url.into()),
        device_id: "d1".into(),
        route: "r".into(),
        payload: Bytes::from(format!("{{\"n\":{n}}}")),
    }
}

fn failures(outbox: &Outbox) -> u64 {
    let mut text = String::new();
    outbox.stats.write_metrics(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix("ztpd_route_delivery_failures_total{endpoint=\"hook\"} "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Rows waiting for a webhook follow the routes in force: a reload that
/// points the endpoint at another receiver takes them there, in order; one
/// that removes the endpoint drops them (counted), and the state store
/// never holds the webhook's password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_webhook_rows_follow_a_reload_and_the_store_keeps_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let (dead_url, _dead) = webhook(Arc::new(AtomicBool::new(false))).await;
    let dead_url = dead_url.replacen("http://", "http://ops:s3cret@", 1);
    let (live_url, mut live) = webhook(Arc::new(AtomicBool::new(true))).await;
    let routes = Arc::new(Reloadable(std::sync::Mutex::new(Arc::new(hook_only(
        &dead_url,
    )))));
    let state_dir = dir.path().join("state");
    let state = StateStore::open(&state_dir, Durability::Fsync).unwrap();
    let shutdown = CancellationToken::new();
    let outbox = Outbox::open(&state, routes.clone(), None, "t".into(), shutdown.clone()).unwrap();

    outbox
        .enqueue((0..3).map(|n| queued(&dead_url, n)).collect())
        .await
        .unwrap();
    let db = rusqlite::Connection::open(state_dir.join(ztpd::state::DB_FILE)).unwrap();
    let stored: Vec<String> = db
        .prepare("SELECT target FROM route_outbox ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(stored.len(), 3);
    for t in &stored {
        assert!(
            !t.contains("s3cret") && t.contains("ops:***@"),
            "the outbox row keeps the URL as shown, not its password: {t}"
        );
    }
    for _ in 0..250 {
        if failures(&outbox) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failures(&outbox) > 0, "the first receiver refused");
    assert_eq!(outbox.pending("hook"), 3);

    // The receiver moved; the reload says so.
    routes.reload(hook_only(&live_url));
    for n in 0..3 {
        let b = tokio::time::timeout(Duration::from_secs(20), live.recv())
            .await
            .expect("the waiting rows reach the endpoint's new URL")
            .unwrap();
        assert_eq!(b, format!("{{\"n\":{n}}}").into_bytes(), "in order");
    }
    for _ in 0..250 {
        if outbox.pending("hook") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(outbox.pending("hook"), 0);

    // Rows for a receiver that refuses, then a reload without the endpoint.
    routes.reload(hook_only(&dead_url));
    let before = failures(&outbox);
    outbox
        .enqueue((3..5).map(|n| queued(&dead_url, n)).collect())
        .await
        .unwrap();
    for _ in 0..250 {
        if failures(&outbox) > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failures(&outbox) > before);
    routes.reload(RouteTable::builtin());
    for _ in 0..500 {
        if outbox.pending("hook") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        outbox.pending("hook"),
        0,
        "a removed endpoint holds nothing"
    );
    assert_eq!(outbox.stats.dropped("hook"), 2, "and its rows are counted");
    assert!(
        live.try_recv().is_err(),
        "nothing went to the old receiver's successor"
    );
    for _ in 0..100 {
        let left: i64 = db
            .query_row("SELECT COUNT(*) FROM route_outbox", [], |r| r.get(0))
            .unwrap();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let left: i64 = db
        .query_row("SELECT COUNT(*) FROM route_outbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0, "dropped rows leave the state store too");
    shutdown.cancel();
}
