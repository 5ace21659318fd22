//! Scale-out on existing engines (docs/scale-out.md): several `ztpd bridge`
//! processes on one MQTT shared subscription (`$share/ztpd/...`) against a
//! real Mosquitto store every message exactly once into a real MongoDB-wire
//! server (nx-27017), and each bridge stores a share of the stream, also when
//! one of them is stopped mid-way and comes back.
//!
//! Who stored what comes from each bridge process itself: `ztpd bridge`
//! ends every run with a `bridge stopped: N received, N stored, ...` line,
//! and the stored counts of all runs must add up to what the collection
//! holds.

mod support;

use std::time::Duration;

use support::mongo::{self};
use support::mqtt::*;

const DB: &str = mongo::DEFAULT_DATABASE;
const COLL: &str = mongo::DEFAULT_COLLECTION;
/// Long enough for a loaded 2-core machine (nx-27017 writes ~7k docs/s).
const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn bridges_on_one_shared_subscription_split_the_stream_and_store_each_message_once() {
    let Some(stack) = Stack::start("") else {
        return;
    };
    let (m, nx, cfg) = (&stack.mqtt, &stack.nx, &stack.cfg);

    let mut a = Bridge::start(cfg, "t-scale-a");
    let mut b = Bridge::start(cfg, "t-scale-b");
    a.wait_subscribed();
    b.wait_subscribed();
    for bridge in [&a, &b] {
        assert!(
            bridge
                .log()
                .contains("$share/ztpd/devices/+/messages/events/#"),
            "the bridge did not use the shared subscription:\n{}",
            bridge.log()
        );
    }
    let devices = [("sc1", 1), ("sc2", 2), ("sc3", 3)];

    // Both bridges up: the broker hands each message of the group to one of them.
    let mut ids = publish_readings(m, &devices, 0..500);
    mongo::wait_count(&nx.uri(), DB, COLL, ids.len() as u64, LIMIT);

    // Bridge b stops mid-way. Its persistent session stays in the group:
    // what the broker gives it meanwhile waits there until b reconnects
    // under the same client id (docs/scale-out.md), and what b stored but
    // had not yet acknowledged comes again as a duplicate.
    b.stop();
    let b_first = b.runs();
    ids.extend(publish_readings(m, &devices, 500..1000));
    b = Bridge::start(cfg, "t-scale-b");
    mongo::wait_count(&nx.uri(), DB, COLL, ids.len() as u64, LIMIT);
    mongo::assert_ids_exactly(&nx.uri(), DB, COLL, &ids);

    a.stop();
    b.stop();
    let (a_runs, b_runs) = (a.runs(), b.runs());
    eprintln!("bridge a: {a_runs:?}\nbridge b: {b_runs:?}");
    assert_eq!(a_runs.len(), 1, "bridge a's exit line:\n{}", a.log());
    assert_eq!(b_first.len(), 1, "bridge b's first exit line:\n{}", b.log());
    assert_eq!(b_runs.len(), 2, "bridge b's exit lines:\n{}", b.log());
    assert!(a_runs[0].stored > 0, "bridge a stored nothing: {a_runs:?}");
    assert!(
        b_runs[0].stored > 0,
        "bridge b stored nothing before it was stopped: {b_runs:?}"
    );
    let stored: u64 = a_runs.iter().chain(&b_runs).map(|r| r.stored).sum();
    assert_eq!(
        stored,
        ids.len() as u64,
        "the bridges' own stored counts must add up to the collection: a {a_runs:?}, b {b_runs:?}"
    );
    for r in a_runs.iter().chain(&b_runs) {
        assert_eq!(r.rejected, 0, "valid readings rejected: {r:?}");
    }
}
