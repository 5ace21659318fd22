use std::time::Duration;

use super::*;
use crate::settings::Durability;
use crate::telemetry::routing::stage::FixedRoutes;
use crate::telemetry::routing::RouteTable;

/// A URL nobody listens on: the endpoint is down.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}/ingest", l.local_addr().unwrap())
}

fn row(url: &str, device: &str, n: usize) -> Delivery {
    Delivery {
        endpoint: "hook".into(),
        target: Target::Webhook(url.into()),
        device_id: device.into(),
        route: "r".into(),
        payload: Bytes::from(format!("{{\"n\":{n}}}")),
    }
}

/// An outbox whose routes in force have the webhook endpoint `hook` at `url`.
fn open(store: &StateStore, shutdown: &CancellationToken, url: &str) -> Arc<Outbox> {
    let mut t = RouteTable::builtin();
    t.endpoints
        .push(crate::telemetry::routing::table::Endpoint {
            name: "hook".into(),
            kind: EndpointKind::Webhook { url: url.into() },
        });
    let routes = Arc::new(FixedRoutes(Arc::new(t)));
    Outbox::open(store, routes, None, "test".into(), shutdown.clone()).unwrap()
}

async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn a_failing_endpoint_keeps_its_rows_across_a_restart_in_order() {
    let d = tempfile::tempdir().unwrap();
    let dead = dead_url();
    {
        let store = StateStore::open(d.path(), Durability::Fsync).unwrap();
        let stop = CancellationToken::new();
        let o = open(&store, &stop, &dead);
        o.enqueue((0..5).map(|n| row(&dead, "d1", n)).collect())
            .await
            .unwrap();
        wait_until("a failed attempt", || o.stats.get("hook").failures > 0).await;
        assert_eq!(o.pending("hook"), 5, "a failing endpoint keeps its rows");
        stop.cancel();
    }
    let store = StateStore::open(d.path(), Durability::Fsync).unwrap();
    let stop = CancellationToken::new();
    let o = open(&store, &stop, &dead);
    let q = o.queues.lock().unwrap();
    let kept: Vec<&[u8]> = q["hook"]
        .rows
        .iter()
        .map(|r| &r.delivery.payload[..])
        .collect();
    let want: Vec<String> = (0..5).map(|n| format!("{{\"n\":{n}}}")).collect();
    let want: Vec<&[u8]> = want.iter().map(|w| w.as_bytes()).collect();
    assert_eq!(kept, want);
    assert!(
        o.next.load(Ordering::Relaxed) > 5,
        "new rows come after the kept ones"
    );
    drop(q);
    stop.cancel();
}

#[tokio::test]
async fn a_full_endpoint_drops_its_oldest_and_counts_them() {
    let d = tempfile::tempdir().unwrap();
    let store = StateStore::open(d.path(), Durability::Os).unwrap();
    let stop = CancellationToken::new();
    let refusing = dead_url();
    let o = open(&store, &stop, &refusing);
    o.enqueue(
        (0..MAX_PER_ENDPOINT + 3)
            .map(|n| row(&refusing, "d1", n))
            .collect(),
    )
    .await
    .unwrap();
    assert_eq!(o.pending("hook"), MAX_PER_ENDPOINT);
    assert_eq!(o.stats.dropped("hook"), 3);
    let mut text = String::new();
    o.stats.write_metrics(&mut text);
    assert!(
        text.contains("ztpd_route_dropped_total{endpoint=\"hook\"} 3"),
        "{text}"
    );
    stop.cancel();
}
