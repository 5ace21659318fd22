use super::*;

const TOPIC: &str = "devices/dev1/messages/events/";

fn full(date: &str) -> String {
    format!(
        r#"{{"device_id":"dev1","device_name":1000001,"device_latitude":-35.123456,"device_longitude":-65.5,"device_battery_level":0.97,"signal_date":"{date}"}}"#
    )
}

fn reason(topic: &str, payload: &[u8]) -> String {
    validate(topic, payload).unwrap_err().reason
}

#[test]
fn a_prototype_message_becomes_a_reading_with_a_stable_id() {
    let r = validate(TOPIC, full("2024-05-01 12:00:00.123456").as_bytes()).unwrap();
    assert_eq!(r.len(), 1);
    let r = &r[0];
    assert_eq!(r.device_name, Some(DeviceName::Int(1000001)));
    assert_eq!(r.latitude, Some(-35.123456));
    assert_eq!(r.battery, Some(0.97));
    assert_eq!(r.id(), "dev1:2024-05-01T12:00:00.123456Z");
    // the same instant written as RFC 3339 with an offset has the same id
    let again = validate(TOPIC, full("2024-05-01T14:00:00.123456+02:00").as_bytes()).unwrap();
    assert_eq!(again[0].id(), r.id());
}

#[test]
fn dates_without_fraction_and_with_nanoseconds_are_keyed_in_micros() {
    let a = validate(TOPIC, full("2024-05-01 12:00:00").as_bytes()).unwrap();
    assert_eq!(a[0].id(), "dev1:2024-05-01T12:00:00.000000Z");
    let b = validate(TOPIC, full("2024-05-01T12:00:00.123456789Z").as_bytes()).unwrap();
    assert_eq!(b[0].id(), "dev1:2024-05-01T12:00:00.123456Z");
}

#[test]
fn topic_suffixes_and_property_bags_are_accepted() {
    assert_eq!(
        crate::topics::events_device_id("devices/a/messages/events/"),
        Some("a")
    );
    assert_eq!(
        crate::topics::events_device_id("devices/a/messages/events"),
        Some("a")
    );
    assert_eq!(
        crate::topics::events_device_id("devices/a/messages/events/%24.ct=application%2Fjson"),
        Some("a")
    );
    assert_eq!(
        crate::topics::events_device_id("devices//messages/events/"),
        None
    );
    assert_eq!(
        crate::topics::events_device_id("devices/a/messages/devicebound/"),
        None
    );
    assert_eq!(
        crate::topics::events_device_id("other/a/messages/events/"),
        None
    );
}

#[test]
fn batches_are_all_or_nothing() {
    let two = format!(
        "[{},{}]",
        full("2024-05-01 12:00:00.000001"),
        full("2024-05-01 12:00:00.000002")
    );
    assert_eq!(validate(TOPIC, two.as_bytes()).unwrap().len(), 2);
    let bad = format!(
        "[{},{{\"device_id\":\"dev1\"}}]",
        full("2024-05-01 12:00:00")
    );
    assert!(reason(TOPIC, bad.as_bytes()).starts_with("reading 1: missing field signal_date"));
    assert!(reason(TOPIC, b"[]").contains("empty array"));
    assert!(reason(TOPIC, b"[1]").contains("reading 0"));
}

#[test]
fn every_kind_of_bad_input_has_a_reason() {
    let cases: Vec<(String, Vec<u8>, &str)> = vec![
        (TOPIC.into(), b"{not json".to_vec(), "not JSON"),
        (TOPIC.into(), vec![0xff, 0xfe, b'{'], "not UTF-8"),
        (TOPIC.into(), vec![b' '; MAX_PAYLOAD + 1], "at most 262144"),
        (TOPIC.into(), b"42".to_vec(), "must be a JSON object"),
        (
            "bad/topic".into(),
            full("2024-05-01 12:00:00").into_bytes(),
            "not devices/",
        ),
        (
            "devices/other/messages/events/".into(),
            full("2024-05-01 12:00:00").into_bytes(),
            "differs from the topic",
        ),
        (
            TOPIC.into(),
            full("2024-05-01 12:00:00")
                .replace("-35.123456", "91")
                .into_bytes(),
            "device_latitude is 91",
        ),
        (
            TOPIC.into(),
            full("2024-05-01 12:00:00")
                .replace("-65.5", "-180.5")
                .into_bytes(),
            "device_longitude is -180.5",
        ),
        (
            TOPIC.into(),
            full("2024-05-01 12:00:00")
                .replace("0.97", "1.01")
                .into_bytes(),
            "device_battery_level is 1.01",
        ),
        (
            TOPIC.into(),
            full("2024-05-01 12:00:00")
                .replace("0.97", "\"full\"")
                .into_bytes(),
            "must be a number, found a string",
        ),
        (TOPIC.into(), full("yesterday").into_bytes(), "not RFC 3339"),
        (
            TOPIC.into(),
            full("2024-13-01 12:00:00").into_bytes(),
            "not RFC 3339",
        ),
        (
            TOPIC.into(),
            full("2024-05-01 12:00:00")
                .replace("1000001", "1.5")
                .into_bytes(),
            "device_name must be an integer",
        ),
        (
            TOPIC.into(),
            br#"{"device_id":"dev1","signal_date":"2024-05-01 12:00:00","colour":1}"#.to_vec(),
            "unknown field `colour`",
        ),
        (
            TOPIC.into(),
            br#"{"device_id":7,"signal_date":"2024-05-01 12:00:00"}"#.to_vec(),
            "device_id must be a string",
        ),
    ];
    for (topic, payload, want) in cases {
        let r = reason(&topic, &payload);
        assert!(r.contains(want), "expected {want:?} in {r:?}");
    }
}

#[test]
fn only_id_and_date_are_required() {
    let r = validate(
        TOPIC,
        br#"{"device_id":"dev1","signal_date":"2024-05-01T00:00:00Z","device_name":"lab-7"}"#,
    )
    .unwrap();
    assert_eq!(r[0].latitude, None);
    assert_eq!(r[0].device_name, Some(DeviceName::Text("lab-7".into())));
}

#[test]
fn truncation_respects_characters() {
    assert_eq!(truncate("héllo", 2), "h");
    assert_eq!(truncate("abc", 10), "abc");
}
