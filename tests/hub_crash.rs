//! Store-then-ack on the local hub (SPEC §9): `kill -9` of ztpd while a
//! device publishes at QoS 1 as fast as its in-flight window allows. After
//! the restart every message the device saw acknowledged is in the store;
//! the device then sends again what was not acknowledged (as the SDKs do
//! after a reconnect) and every message is stored exactly once.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rumqttc::{Event, Outgoing, Packet, QoS};
use support::mqtt::{reading_json, topic};
use support::Daemon;
use ztpd::credentials::{device_key, sas, EnrollmentKey};

const DEVICE: &str = "crash-dev-1";
/// Messages the device has to send; the daemon is killed long before.
const TOTAL: usize = 200_000;
/// Acknowledged messages seen before the kill.
const KILL_AFTER: usize = 3_000;

fn token(root: &std::path::Path) -> String {
    let text = std::fs::read_to_string(root.join("state/hub.key")).unwrap();
    let key = EnrollmentKey::from_base64(&text).unwrap();
    let expiry = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    sas::generate("localhost", DEVICE, &device_key(&key, DEVICE), expiry)
}

/// Publish messages `from..` in order until the connection fails or `stop`
/// says so; the indexes the hub acknowledged.
fn publish(
    port: u16,
    token: &str,
    send: Vec<usize>,
    stop: impl Fn(usize) -> bool + Send,
) -> BTreeSet<usize> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    rt.block_on(async {
        let mut o = rumqttc::MqttOptions::new(DEVICE, "127.0.0.1", port);
        o.set_credentials(format!("localhost/{DEVICE}/?api-version=2021-04-12"), token);
        o.set_inflight(100);
        o.set_keep_alive(Duration::from_secs(30));
        let (client, mut events) = rumqttc::AsyncClient::new(o, 256);
        let feeder = {
            let send = send.clone();
            tokio::spawn(async move {
                for n in send {
                    let body = reading_json(DEVICE, 1, n);
                    if client
                        .publish(topic(DEVICE), QoS::AtLeastOnce, false, body)
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            })
        };
        // The k-th outgoing PUBLISH is the k-th message sent; its pkid maps
        // back to the message until the PUBACK frees it.
        let mut order = send.into_iter();
        let mut by_pkid = std::collections::HashMap::new();
        loop {
            match tokio::time::timeout(Duration::from_secs(20), events.poll()).await {
                Ok(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => {
                    if let Some(n) = order.next() {
                        by_pkid.insert(pkid, n);
                    }
                }
                Ok(Ok(Event::Incoming(Packet::PubAck(a)))) => {
                    if let Some(n) = by_pkid.remove(&a.pkid) {
                        let mut set = acked.lock().unwrap();
                        set.insert(n);
                        if stop(set.len()) {
                            break;
                        }
                    }
                }
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => break,
            }
        }
        feeder.abort();
    });
    let set = acked.lock().unwrap().clone();
    set
}

/// The message indexes stored for DEVICE, read from the embedded store's
/// SQLite file (each `_id` ends with the signal date's microseconds, which
/// are the index).
fn stored(root: &std::path::Path) -> Vec<usize> {
    let db = rusqlite::Connection::open(root.join("state/telemetry.sqlite")).unwrap();
    let mut st = db
        .prepare("SELECT id FROM readings WHERE device_id = ?1")
        .unwrap();
    let ids = st
        .query_map([DEVICE], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|r| r.unwrap())
        .map(|id| {
            let frac = id.rsplit('.').next().unwrap().trim_end_matches('Z');
            frac.parse::<usize>().unwrap()
        })
        .collect();
    ids
}

#[test]
fn nothing_a_device_saw_acknowledged_is_lost_when_ztpd_is_killed() {
    let mut d = Daemon::builder().fixture("good").broker("").start();
    let port = d.broker.unwrap();
    let token = token(&d.root);

    let all: Vec<usize> = (0..TOTAL).collect();
    // The daemon dies while the device publishes: a thread kills it once
    // KILL_AFTER acknowledgements arrived, the publisher keeps going.
    let (tx, rx) = std::sync::mpsc::channel();
    let acked = std::thread::scope(|s| {
        let t = s.spawn(|| {
            publish(port, &token, all.clone(), move |n| {
                if n == KILL_AFTER {
                    let _ = tx.send(());
                }
                false
            })
        });
        rx.recv_timeout(Duration::from_secs(120))
            .expect("the hub acknowledged fewer than KILL_AFTER messages");
        d.kill9();
        t.join().unwrap()
    });
    assert!(acked.len() >= KILL_AFTER, "{} acknowledged", acked.len());
    assert!(
        acked.len() < TOTAL,
        "the kill came after everything was sent"
    );

    d.restart();
    let after_crash: BTreeSet<usize> = stored(&d.root).into_iter().collect();
    let lost: Vec<_> = acked.difference(&after_crash).take(10).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but not stored after the crash: {lost:?} ..."
    );

    // The device sends again what it did not see acknowledged.
    let resend: Vec<usize> = all
        .iter()
        .copied()
        .filter(|n| !acked.contains(n) && *n <= *acked.last().unwrap() + 200)
        .collect();
    let want = resend.len();
    let again = publish(port, &token, resend, move |n| n == want);
    assert_eq!(again.len(), want);
    let rows = stored(&d.root);
    let distinct: BTreeSet<usize> = rows.iter().copied().collect();
    assert_eq!(rows.len(), distinct.len(), "a message was stored twice");
    let expected: BTreeSet<usize> = acked.union(&again).copied().collect();
    let missing: Vec<_> = expected.difference(&distinct).take(10).collect();
    assert!(missing.is_empty(), "never stored: {missing:?}");
    let extra: Vec<_> = distinct.difference(&expected).take(10).collect();
    // Messages the hub stored but whose PUBACK the kill cut off are stored
    // and also resent: the `_id` made the resend a duplicate, not a second row.
    assert!(extra.is_empty(), "stored but never sent: {extra:?}");
    eprintln!(
        "acknowledged before the kill: {}; stored after the restart: {}; resent: {want}",
        acked.len(),
        after_crash.len()
    );
}
