use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::settings::Durability;
use crate::telemetry::routing::stage::FixedRoutes;
use crate::telemetry::routing::RouteTable;

/// A real HTTP server answering every POST with `status`, sending the
/// bodies it took (2xx only) to `tx`.
async fn webhook(status: u16) -> (String, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/ingest", l.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break buf[end + 4..end + 4 + len].to_vec();
                    }
                };
                if (200..300).contains(&status) {
                    let _ = tx.send(body);
                }
                let _ = s
                    .write_all(
                        format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                    )
                    .await;
            });
        }
    });
    (url, rx)
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

fn open(store: &StateStore, shutdown: &CancellationToken) -> Arc<Outbox> {
    let routes = Arc::new(FixedRoutes(Arc::new(RouteTable::builtin())));
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
async fn rows_survive_a_restart_and_reach_the_webhook_in_order() {
    let d = tempfile::tempdir().unwrap();
    // A port nobody listens on: the endpoint is down.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/ingest", l.local_addr().unwrap())
    };
    {
        let store = StateStore::open(d.path(), Durability::Fsync).unwrap();
        let stop = CancellationToken::new();
        let o = open(&store, &stop);
        o.enqueue((0..5).map(|n| row(&dead, "d1", n)).collect())
            .await
            .unwrap();
        wait_until("a failed attempt", || o.stats.get("hook").failures > 0).await;
        assert_eq!(o.pending("hook"), 5, "a failing endpoint keeps its rows");
        stop.cancel();
    }
    // Restarted with the endpoint back (the rows name their URL: point them
    // at the live server by rewriting it, as an operator's fix would).
    let (url, mut got) = webhook(200).await;
    let conn = rusqlite::Connection::open(d.path().join(crate::state::DB_FILE)).unwrap();
    conn.execute("UPDATE route_outbox SET target = ?1", [&url])
        .unwrap();
    drop(conn);
    let store = StateStore::open(d.path(), Durability::Fsync).unwrap();
    let stop = CancellationToken::new();
    let o = open(&store, &stop);
    o.start();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let b = tokio::time::timeout(Duration::from_secs(10), got.recv())
            .await
            .expect("delivered")
            .unwrap();
        seen.push(String::from_utf8(b).unwrap());
    }
    let want: Vec<String> = (0..5).map(|n| format!("{{\"n\":{n}}}")).collect();
    assert_eq!(seen, want);
    wait_until("the rows deleted", || o.pending("hook") == 0).await;
    assert_eq!(o.stats.delivered("hook"), 5);
    stop.cancel();
}

#[tokio::test]
async fn a_full_endpoint_drops_its_oldest_and_counts_them() {
    let d = tempfile::tempdir().unwrap();
    let store = StateStore::open(d.path(), Durability::Os).unwrap();
    let stop = CancellationToken::new();
    let (refusing, _rx) = webhook(503).await;
    let o = open(&store, &stop);
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
