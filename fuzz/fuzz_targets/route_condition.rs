//! Arbitrary condition text into the route-condition parser, and every
//! condition that parses evaluated against a message with and without a
//! body and a twin: parse errors carry a span inside the text, a condition
//! that reads `$twin` has a `$twin` the loader can point at, and nothing
//! panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztpd::telemetry::routing::{condition, eval, PropertyBag};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is the condition, the rest a topic's property bag.
    let (cond, bag) = text.split_once('\n').unwrap_or((text, ""));
    let expr = match condition::parse(cond) {
        Ok(e) => e,
        Err(e) => {
            assert!(e.span.start <= e.span.end && e.span.end <= cond.len());
            assert!(cond.is_char_boundary(e.span.start) && cond.is_char_boundary(e.span.end));
            return;
        }
    };
    let bag = PropertyBag::from_topic(&format!("devices/d/messages/events/{bag}"));
    let body = serde_json::json!({"a": [1, "x", null, {"b": true}], "n": 0.5, "s": "text"});
    let twin = serde_json::json!({"tags": {"site": "lab", "a": [1, {"b": "c"}]},
        "properties": {"desired": {"n": 1}, "reported": {"s": "x", "o": {"p": null}}}});
    for (body, twin) in [(None, None), (Some(&body), Some(&twin))] {
        let view = eval::MessageView {
            device_id: "d",
            content_type: bag.content_type.as_deref(),
            content_encoding: bag.content_encoding.as_deref(),
            enqueued_time: "2026-01-01T00:00:00Z",
            properties: &bag.properties,
            body,
            twin,
        };
        let _ = eval::matches(&expr, &view);
        if expr.reads_twin() {
            assert!(condition::twin_span(cond).is_some(), "{cond}");
        }
    }
});
