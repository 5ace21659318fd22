use serde_json::json;

use super::condition::{parse, SyntaxError};
use super::eval::{body_is_routable, eval, matches, why_body_not_evaluated, MessageView, Val};
use super::PropertyBag;

/// A prototype-shaped reading, sent as the SDK sends it with
/// `content_type = "application/json"`, `content_encoding = "utf-8"` and two
/// custom properties.
const TOPIC: &str = "devices/sensor-1/messages/events/\
    %24.ct=application%2Fjson&%24.ce=utf-8&%24.mid=m-17&alarm=high&zone=b%201";

fn reading() -> serde_json::Value {
    json!({"device_name": 7, "device_battery_level": 0.15, "latitude": 51.5,
           "tags": ["a", "b"], "nested": {"n": null, "ok": true}})
}

fn check(cond: &str, body: Option<&serde_json::Value>) -> bool {
    let bag = PropertyBag::from_topic(TOPIC);
    let view = MessageView {
        device_id: "sensor-1",
        content_type: bag.content_type.as_deref(),
        content_encoding: bag.content_encoding.as_deref(),
        enqueued_time: "2026-12-06T23:00:00.000Z",
        properties: &bag.properties,
        body,
        twin: None,
    };
    let expr = parse(cond).unwrap_or_else(|e| panic!("{cond}: {e:?}"));
    matches(&expr, &view)
}

fn error(cond: &str) -> SyntaxError {
    parse(cond).expect_err(cond)
}

#[test]
fn the_property_bag_is_read_from_the_topic() {
    let bag = PropertyBag::from_topic(TOPIC);
    assert_eq!(bag.content_type.as_deref(), Some("application/json"));
    assert_eq!(bag.content_encoding.as_deref(), Some("utf-8"));
    assert_eq!(bag.message_id.as_deref(), Some("m-17"));
    assert_eq!(
        bag.properties,
        vec![
            ("alarm".into(), "high".into()),
            ("zone".into(), "b 1".into())
        ]
    );
    assert_eq!(
        PropertyBag::from_topic("devices/x/messages/events/"),
        PropertyBag::default()
    );
    // Malformed escapes are kept as written.
    let odd = PropertyBag::from_topic("devices/x/messages/events/a=%zz&b&%FF=1");
    assert_eq!(odd.properties[0], ("a".into(), "%zz".into()));
    assert_eq!(odd.properties[1], ("b".into(), "".into()));
    assert_eq!(odd.properties[2].0, "\u{FFFD}");
}

#[test]
fn body_conditions_read_json_only_with_content_type_and_encoding() {
    let body = reading();
    assert!(check("$body.device_battery_level < 0.2", Some(&body)));
    assert!(!check("$body.device_battery_level >= 0.2", Some(&body)));
    assert!(check("$body.tags[1] = 'b'", Some(&body)));
    assert!(check("$body['latitude'] > 50", Some(&body)));
    assert!(check("$body.nested.ok", Some(&body)));
    // Without a routable body, $body is undefined: neither < nor >= holds.
    assert!(!check("$body.device_battery_level < 0.2", None));
    assert!(!check("NOT ($body.device_battery_level < 0.2)", None));
    assert!(check("NOT IS_DEFINED($body.device_battery_level)", None));

    assert!(body_is_routable(Some("application/json"), Some("utf-8")));
    assert!(body_is_routable(Some("Application/JSON"), Some("UTF-8")));
    assert!(!body_is_routable(Some("application/json"), None));
    assert!(!body_is_routable(None, Some("utf-8")));
    assert!(!body_is_routable(Some("text/plain"), Some("utf-8")));
    let view = MessageView {
        device_id: "d",
        content_type: None,
        content_encoding: None,
        enqueued_time: "",
        properties: &[],
        body: None,
        twin: None,
    };
    let why = why_body_not_evaluated(&view).unwrap();
    assert!(why.contains("no content type"), "{why}");
}

#[test]
fn undefined_and_null_are_false_and_logic_is_three_valued() {
    let body = reading();
    let b = Some(&body);
    assert!(!check("missing = 'x'", b));
    assert!(!check("missing != 'x'", b));
    assert!(!check("$body.nested.n", b));
    assert!(check("IS_NULL($body.nested.n)", b));
    assert!(check("$body.nested.n = null", b));
    // false AND undefined is false; true OR undefined is true.
    assert!(check("NOT (false AND missing = 1)", b));
    assert!(check("true OR missing = 1", b));
    assert!(!check("true AND missing = 1", b));
    // A comparison across types is undefined, not false.
    assert!(!check("$body.device_name = '7'", b));
    assert!(!check("NOT ($body.device_name = '7')", b));
    assert!(check("$body.device_name = 7", b));
}

#[test]
fn properties_system_properties_and_functions() {
    let body = reading();
    let b = Some(&body);
    assert!(check("alarm = 'high' AND zone = \"b 1\"", b));
    assert!(check("alarm <> 'low' OR zone = 'x'", b));
    assert!(check("$connectionDeviceId = 'sensor-1'", b));
    // SPEC §14: content type and encoding compare without case.
    assert!(check("$contentType = 'APPLICATION/JSON'", b));
    assert!(check("$contentEncoding = 'UTF-8'", b));
    assert!(check("$enqueuedTime > '2026-01-01'", b));
    assert!(!check("$connectionDeviceId = 'SENSOR-1'", b));
    for (cond, want) in [
        ("UPPER(alarm) = 'HIGH'", true),
        ("lower('AbC') = 'abc'", true),
        ("CONTAINS(zone, ' ')", true),
        ("STARTS_WITH(alarm, 'hi') AND ENDS_WITH(alarm, 'gh')", true),
        ("LENGTH(alarm) = 4", true),
        ("SUBSTRING('sensor', 1, 3) = 'ens'", true),
        ("INDEX_OF('sensor', 'n') = 2", true),
        ("INDEX_OF('sensor', 'q') = -1", true),
        ("CONCAT(alarm, '-', zone) = 'high-b 1'", true),
        ("CONCAT(alarm, 1) = 'high1'", false),
        ("AS_NUMBER('0.5') + 1 = 1.5", true),
        ("AS_NUMBER('x') = 0", false),
        ("ABS(-2) = 2 AND CEILING(1.2) = 2 AND FLOOR(1.8) = 1", true),
        ("SIGN(-3) = -1 AND SQRT(9) = 3 AND SQUARE(3) = 9", true),
        ("POWER(2, 10) = 1024 AND EXP(0) = 1", true),
        (
            "IS_NUMBER($body.latitude) AND IS_STRING(alarm) AND IS_BOOL(true)",
            true,
        ),
        ("IS_ARRAY($body.tags) AND IS_OBJECT($body.nested)", true),
        ("IS_DEFINED(nothing)", false),
        ("7 % 4 = 3 AND 2 * 3 - 1 = 5 AND 1 / 0 = 1", false),
        ("7 % 4 = 3 AND 2 * 3 - 1 = 5 AND 10 / 4 = 2.5", true),
        ("1 + 2 * 3 = 7 AND (1 + 2) * 3 = 9", true),
        ("-$body.latitude < 0", true),
    ] {
        assert_eq!(check(cond, b), want, "{cond}");
    }
}

#[test]
fn the_evaluator_borrows_from_the_message() {
    let body = reading();
    let bag = PropertyBag::from_topic(TOPIC);
    let view = MessageView {
        device_id: "sensor-1",
        content_type: None,
        content_encoding: None,
        enqueued_time: "",
        properties: &bag.properties,
        body: Some(&body),
        twin: None,
    };
    let e = parse("alarm").unwrap();
    assert!(matches!(
        eval(&e, &view),
        Val::Str(std::borrow::Cow::Borrowed("high"))
    ));
    let e = parse("$body.tags").unwrap();
    assert!(matches!(eval(&e, &view), Val::Array(a) if a.len() == 2));
}

#[test]
fn syntax_errors_point_at_their_column() {
    let e = error("$body.level < ");
    assert_eq!(e.span, 12..13, "{e:?}");
    assert!(e.message.contains("the end of the condition"), "{e:?}");

    let e = error("alarm = 'high' AND AND x");
    assert_eq!(e.span, 19..22, "{e:?}");

    let e = error("BATTERY(x) < 1");
    assert_eq!(e.code, "unknown_function");
    assert_eq!(e.span, 0..7);
    assert!(e.help.contains("IS_DEFINED"), "{e:?}");

    let e = error("$foo = 1");
    assert_eq!(e.code, "unknown_property");
    assert!(e.help.contains("$contentType"), "{e:?}");

    let e = error("$twin.deviceId = 'x'");
    assert_eq!(e.code, "twin_path");
    assert_eq!(e.span, 0..14, "{e:?}");
    assert!(e.help.contains("$twin.tags.site"), "{e:?}");
    assert_eq!(error("$twin.properties.x = 1").code, "twin_path");
    assert_eq!(error("$twin = 1").code, "twin_path");

    let e = error("LOWER('a', 'b') = 'a'");
    assert!(e.message.contains("takes 1 argument"), "{e:?}");
    assert_eq!(e.span, 0..15);

    let e = error("alarm = 'high");
    assert!(e.message.contains("not closed"), "{e:?}");
    assert_eq!(e.span.start, 8);

    let e = error("a = 1 ) ");
    assert_eq!(e.span, 6..7, "{e:?}");
    assert!(error("").message.contains("empty"));
    assert!(error("a # b").message.contains("unexpected character `#`"));
    assert!(error(&"(".repeat(200)).message.contains("deeper"));
    assert!(error(&"a".repeat(5000)).message.contains("at most"));
    assert!(error(&["a = 1"; 300].join(" AND "))
        .message
        .contains("more than 256 operators"));
}

/// A twin as the local hub keeps it: tags, desired and reported.
fn twin() -> serde_json::Value {
    json!({"tags": {"site": "lab", "floor": 2, "roles": ["leaf", "edge"]},
           "properties": {"desired": {"interval": 30},
                          "reported": {"firmware": "4.30.1F", "battery": {"low": true}}}})
}

fn check_twin(cond: &str, twin: Option<&serde_json::Value>) -> bool {
    let expr = parse(cond).unwrap_or_else(|e| panic!("{cond}: {e:?}"));
    let view = MessageView {
        device_id: "sensor-1",
        content_type: None,
        content_encoding: None,
        enqueued_time: "2026-12-06T23:00:00.000Z",
        properties: &[],
        body: None,
        twin,
    };
    matches(&expr, &view)
}

#[test]
fn twin_paths_read_tags_and_desired_and_reported_properties() {
    let t = twin();
    for (cond, want) in [
        ("$twin.tags.site = 'lab'", true),
        ("$twin.tags.site = 'plant'", false),
        ("$twin.tags.floor > 1", true),
        ("$twin.tags.roles[1] = 'edge'", true),
        ("$twin.tags['site'] = 'lab'", true),
        ("$twin.properties.desired.interval = 30", true),
        ("$twin.properties.reported.firmware = '4.30.1F'", true),
        ("$twin.properties.reported.battery.low", true),
        ("IS_OBJECT($twin.tags)", true),
        (
            "STARTS_WITH($twin.properties.reported.firmware, '4.')",
            true,
        ),
        // Absent paths are undefined, so false either way.
        ("$twin.tags.missing = 'x'", false),
        ("$twin.tags.missing != 'x'", false),
        ("IS_DEFINED($twin.properties.desired.firmware)", false),
        ("NOT IS_DEFINED($twin.tags.missing)", true),
        // A string is no object: a path through it is undefined.
        ("IS_DEFINED($twin.tags.site.x)", false),
    ] {
        assert_eq!(check_twin(cond, Some(&t)), want, "{cond}");
    }
    // No twin (the source has none, or the device has none yet): every
    // $twin path is undefined.
    assert!(!check_twin("$twin.tags.site = 'lab'", None));
    assert!(check_twin("NOT IS_DEFINED($twin.tags.site)", None));
}

#[test]
fn conditions_say_whether_they_read_the_twin_and_where() {
    use super::condition::twin_span;
    assert!(parse("a = 1 OR LOWER($twin.tags.x) = 'y'")
        .unwrap()
        .reads_twin());
    assert!(parse("NOT ($twin.properties.reported.x > 1)")
        .unwrap()
        .reads_twin());
    assert!(!parse("$body.x = 1 AND a = 'b'").unwrap().reads_twin());
    assert!(parse("$body.x = 1 AND a = 'b'").unwrap().reads_body());
    assert_eq!(twin_span("a = 1 AND $twin.tags.x = 2"), Some(10..15));
    assert_eq!(twin_span("a = '$twin'"), None, "inside a string");
}
