//! The route-condition evaluator on a prototype-shaped message (issue 24
//! target: at least 1,000,000 evaluations per second on one core). The
//! conditions are parsed once, as a load does; the body is parsed once per
//! message, as the routing stage will (its cost is shared by every route and
//! timed apart).
//!
//!   cargo bench --bench route_conditions
//!
//! Under `cargo test` (no `--bench` argument) it runs a few iterations, so
//! the suite checks that it still works without timing anything.

use std::hint::black_box;
use std::time::Instant;

use ztpd::telemetry::routing::condition::parse;
use ztpd::telemetry::routing::eval::{matches, MessageView};
use ztpd::telemetry::routing::PropertyBag;

const TOPIC: &str = "devices/sensor-0042/messages/events/\
    %24.ct=application%2Fjson&%24.ce=utf-8&alarm=high&zone=b";
const BODY: &str = r#"{"device_name":42,"device_latitude":51.50722,"device_longitude":-0.1275,"device_battery_level":0.15,"signal_date":"2026-12-06 23:00:00.000000"}"#;

const CONDITIONS: &[&str] = &[
    "$body.device_battery_level < 0.2",
    "alarm = 'high'",
    "$contentType = 'application/json' AND $body.device_latitude > 50 AND zone <> 'a'",
    "STARTS_WITH($connectionDeviceId, 'sensor-') OR IS_DEFINED($body.missing)",
];

fn main() {
    let timed = std::env::args().any(|a| a == "--bench");
    let n: u64 = if timed { 5_000_000 } else { 1_000 };
    let bag = PropertyBag::from_topic(TOPIC);

    let t = Instant::now();
    for _ in 0..n / 10 {
        black_box(serde_json::from_str::<serde_json::Value>(black_box(BODY)).unwrap());
    }
    let parse_rate = (n / 10) as f64 / t.elapsed().as_secs_f64();
    let body: serde_json::Value = serde_json::from_str(BODY).unwrap();
    let view = MessageView {
        device_id: "sensor-0042",
        content_type: bag.content_type.as_deref(),
        content_encoding: bag.content_encoding.as_deref(),
        enqueued_time: "2026-12-06T23:00:00.000Z",
        properties: &bag.properties,
        body: Some(&body),
        twin: None,
    };
    for text in CONDITIONS {
        let expr = parse(text).expect("bench condition parses");
        assert!(matches(&expr, &view), "{text} matches the bench message");
        let t = Instant::now();
        for _ in 0..n {
            black_box(matches(black_box(&expr), black_box(&view)));
        }
        let rate = n as f64 / t.elapsed().as_secs_f64();
        if timed {
            println!("{rate:>12.0} evaluations/s  {text}");
        }
    }
    if timed {
        println!("{parse_rate:>12.0} body parses/s (once per message, shared by its routes)");
    }
}
