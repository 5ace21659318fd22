//! The routing stage's cost in the local hub's pipeline (issue 24 target:
//! with 10 routes whose conditions read `$body`, at least 0.8x the
//! throughput of no routes). In process: device tasks hand messages to the
//! hub's `Ingest` as a hub connection does (Azure SDK topics, JSON content
//! type), the pipeline routes, stores in the embedded store (fsync per
//! batch) and acknowledges; each device keeps 20 messages in flight, as
//! `mosquitto_pub` does. The 10 routes match no prototype reading, so every
//! message also goes to `events` through the fallback: both runs store the
//! same documents, the difference is the stage. Rounds alternate the two.
//!
//!   cargo bench --bench routing_stage [-- DEVICES PER_DEVICE ROUNDS]
//!
//! Under `cargo test` it runs one tiny round of each, timing nothing.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio_util::sync::CancellationToken;

use ztpd::telemetry::pipeline::{self, Batching, BridgeStats};
use ztpd::telemetry::routing::stage::{FixedRoutes, Router};
use ztpd::telemetry::routing::table::{Route, RouteTable, Source};
use ztpd::telemetry::store::EmbeddedStore;

const WINDOW: usize = 20;

fn ten_body_routes() -> RouteTable {
    let mut t = RouteTable::builtin();
    t.file = Some("routes.toml".into());
    t.routes = (0..10)
        .map(|i| {
            let cond = format!(
                "$body.device_battery_level < -{i} AND $body.device_latitude > {}",
                -90 + i
            );
            Route::new(&format!("r{i}"), Source::DeviceMessages, &cond, vec![0]).expect("parses")
        })
        .collect();
    t
}

fn body(device: usize, n: usize) -> Bytes {
    Bytes::from(format!(
        r#"{{"device_id":"sensor-{device}","device_name":{device},"device_latitude":{:.6},"device_longitude":-68.2,"device_battery_level":{:.3},"signal_date":"2024-05-01 00:00:{:02}.{:06}"}}"#,
        -37.0 + (n % 500) as f64 * 0.001,
        1.0 - (n / 10) as f64 * 0.0001,
        (n / 1_000_000) % 60,
        n % 1_000_000,
    ))
}

/// Messages per second through Ingest -> routing -> store -> ack.
async fn round(routes: Option<RouteTable>, devices: usize, per_device: usize) -> f64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(&dir.path().join("telemetry.sqlite")).expect("store");
    let router = Arc::new(match routes {
        Some(t) => Router::new(Arc::new(FixedRoutes(Arc::new(t))), None, String::new()),
        None => Router::builtin(),
    });
    let stats = Arc::new(BridgeStats::default());
    let (ingest, rx) = pipeline::channel(stats.clone());
    let stop = CancellationToken::new();
    let run = {
        let (router, stats, stop) = (router.clone(), stats.clone(), stop.clone());
        tokio::spawn(async move {
            pipeline::run_local(Batching::default(), store, &router, rx, stats, stop).await
        })
    };
    let started = Instant::now();
    let mut senders = Vec::new();
    for d in 0..devices {
        let ingest = ingest.clone();
        senders.push(tokio::spawn(async move {
            let topic = format!(
                "devices/sensor-{d}/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8"
            );
            let mut inflight = FuturesUnordered::new();
            for n in 0..per_device {
                if inflight.len() >= WINDOW {
                    inflight.next().await;
                }
                let rx = ingest
                    .submit_local(topic.clone(), body(d, n))
                    .await
                    .expect("pipeline running");
                inflight.push(rx);
            }
            while inflight.next().await.is_some() {}
        }));
    }
    drop(ingest);
    for s in senders {
        s.await.expect("sender");
    }
    let rate = (devices * per_device) as f64 / started.elapsed().as_secs_f64();
    stop.cancel();
    let _ = run.await;
    rate
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let timed = args.iter().any(|a| a == "--bench");
    let nums: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let (devices, per_device, rounds) = match (timed, nums.as_slice()) {
        (true, [d, p, r, ..]) => (*d, *p, *r),
        (true, _) => (10, 5_000, 3),
        (false, _) => (2, 50, 1),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (mut none, mut routed) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        none.push(rt.block_on(round(None, devices, per_device)));
        routed.push(rt.block_on(round(Some(ten_body_routes()), devices, per_device)));
    }
    let (a, b) = (median(none.clone()), median(routed.clone()));
    println!("routing stage, {devices} devices x {per_device} messages, {rounds} rounds (medians)");
    println!("  no routes:                 {a:>10.0} msg/s  {none:.0?}");
    println!("  10 routes reading $body:   {b:>10.0} msg/s  {routed:.0?}");
    println!("  ratio: {:.2}x (target >= 0.8x)", b / a);
}
