//! What a connected device may publish and subscribe to on the local hub
//! (SPEC §9): only its own topics, as on Azure IoT Hub. Pure functions of
//! (device id, topic), so every rule is unit-tested.

/// What a device's PUBLISH is, when it is allowed at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publish<'a> {
    /// `devices/<id>/messages/events/...`: telemetry for the store.
    Telemetry,
    /// `$iothub/twin/GET/?$rid=R`.
    TwinGet { rid: &'a str },
    /// `$iothub/twin/PATCH/properties/reported/?$rid=R`.
    TwinReported { rid: &'a str },
}

/// The topic of a device's PUBLISH, classified; `None`: not its own topic
/// (another device's, or nothing IoT Hub offers a device), so it is refused.
pub fn publish<'a>(device_id: &str, topic: &'a str) -> Option<Publish<'a>> {
    if crate::topics::events_device_id(topic) == Some(device_id) {
        return Some(Publish::Telemetry);
    }
    if let Some(q) = topic.strip_prefix("$iothub/twin/GET/?") {
        return request_id(q).map(|rid| Publish::TwinGet { rid });
    }
    if let Some(q) = topic.strip_prefix("$iothub/twin/PATCH/properties/reported/?") {
        return request_id(q).map(|rid| Publish::TwinReported { rid });
    }
    None
}

/// The `$rid` of a twin request's query string: present, short, and made of
/// characters that are safe to echo back in a topic.
fn request_id(query: &str) -> Option<&str> {
    let rid = query.split('&').find_map(|kv| kv.strip_prefix("$rid="))?;
    let ok = !rid.is_empty()
        && rid.len() <= 128
        && rid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    ok.then_some(rid)
}

/// What a device's subscription is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    /// `devices/<id>/messages/devicebound/#`: ZTP events and actions.
    Devicebound,
    /// `$iothub/twin/res/#`: answers to twin requests.
    TwinResponses,
    /// `$iothub/twin/PATCH/properties/desired/#`: desired-property patches.
    DesiredPatches,
    /// `$iothub/methods/POST/#`: direct methods (the SDKs subscribe; this
    /// hub never calls one).
    Methods,
}

/// A device's SUBSCRIBE filter, classified; `None`: refused (the SUBACK
/// carries the failure code for it).
pub fn subscribe(device_id: &str, filter: &str) -> Option<Subscription> {
    if filter == crate::topics::devicebound_filter(device_id) {
        return Some(Subscription::Devicebound);
    }
    match filter {
        "$iothub/twin/res/#" => Some(Subscription::TwinResponses),
        "$iothub/twin/PATCH/properties/desired/#" => Some(Subscription::DesiredPatches),
        "$iothub/methods/POST/#" => Some(Subscription::Methods),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_publishes_only_its_own_telemetry_and_twin_requests() {
        assert_eq!(
            publish("a", "devices/a/messages/events/"),
            Some(Publish::Telemetry)
        );
        assert_eq!(
            publish("a", "devices/a/messages/events/%24.ct=application%2Fjson"),
            Some(Publish::Telemetry)
        );
        assert_eq!(
            publish("a", "$iothub/twin/GET/?$rid=42"),
            Some(Publish::TwinGet { rid: "42" })
        );
        assert_eq!(
            publish("a", "$iothub/twin/PATCH/properties/reported/?$rid=7-x"),
            Some(Publish::TwinReported { rid: "7-x" })
        );
        for refused in [
            "devices/b/messages/events/",
            "devices/a/messages/devicebound/",
            "devices/b/messages/devicebound/",
            "devices/a/messages/eventsX",
            "$iothub/twin/GET/",
            "$iothub/twin/GET/?$rid=",
            "$iothub/twin/GET/?$rid=a/b",
            "$iothub/twin/res/200/?$rid=1",
            "$iothub/twin/PATCH/properties/desired/?$version=1",
            "#",
            "devices/+/messages/events/",
        ] {
            assert_eq!(publish("a", refused), None, "{refused}");
        }
    }

    #[test]
    fn a_device_subscribes_only_to_its_own_topics() {
        assert_eq!(
            subscribe("a", "devices/a/messages/devicebound/#"),
            Some(Subscription::Devicebound)
        );
        assert_eq!(
            subscribe("a", "$iothub/twin/res/#"),
            Some(Subscription::TwinResponses)
        );
        assert_eq!(
            subscribe("a", "$iothub/twin/PATCH/properties/desired/#"),
            Some(Subscription::DesiredPatches)
        );
        for refused in [
            "devices/b/messages/devicebound/#",
            "devices/+/messages/devicebound/#",
            "devices/+/messages/events/#",
            "devices/a/messages/events/#",
            "#",
            "$share/g/devices/a/messages/devicebound/#",
            "$SYS/#",
        ] {
            assert_eq!(subscribe("a", refused), None, "{refused}");
        }
    }
}
