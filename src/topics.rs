//! The IoT Hub MQTT topic names (SPEC §9), in one place: devices publish
//! telemetry on their events topic and receive ZTP events and actions on
//! their devicebound topic; the bridge subscribes to every device's events.

/// Every device's telemetry (the bridge's subscription).
pub const EVENTS_FILTER: &str = "devices/+/messages/events/#";

/// Where a device publishes its telemetry.
pub fn events(device_id: &str) -> String {
    format!("devices/{device_id}/messages/events/")
}

/// Where a device receives ZTP events and actions.
pub fn devicebound(device_id: &str) -> String {
    format!("devices/{device_id}/messages/devicebound/")
}

/// What a device subscribes to for its devicebound messages.
pub fn devicebound_filter(device_id: &str) -> String {
    format!("devices/{device_id}/messages/devicebound/#")
}

/// `EVENTS_FILTER` through the MQTT shared-subscription group `group`.
pub fn shared_events_filter(group: &str) -> String {
    format!("$share/{group}/{EVENTS_FILTER}")
}

/// The device id of an events topic `devices/<id>/messages/events[/...]`.
pub fn events_device_id(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix("devices/")?;
    let (id, tail) = rest.split_once('/')?;
    if id.is_empty() || !(tail == "messages/events" || tail.starts_with("messages/events/")) {
        return None;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_their_parser_agree() {
        assert_eq!(events_device_id(&events("sn-1")), Some("sn-1"));
        assert_eq!(
            events_device_id("devices/sn-1/messages/events/a=b"),
            Some("sn-1")
        );
        assert_eq!(
            events_device_id("devices/sn-1/messages/events"),
            Some("sn-1")
        );
        assert_eq!(events_device_id(&devicebound("sn-1")), None);
        assert_eq!(events_device_id("devices//messages/events/"), None);
        assert_eq!(events_device_id("devices/sn-1/messages/eventsX"), None);
        assert!(devicebound_filter("d").starts_with(&devicebound("d")));
        assert_eq!(
            shared_events_filter("ztpd"),
            "$share/ztpd/devices/+/messages/events/#"
        );
    }
}
