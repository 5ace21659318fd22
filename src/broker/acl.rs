//! What a connected client may publish and subscribe to on the local hub
//! (SPEC §9, §13): a device only its own topics, as on Azure IoT Hub; a
//! registering device only the provisioning topics. Pure functions of
//! (identity, topic), so every rule is unit-tested; the topic names
//! themselves are read in [`crate::topics`].

use super::auth::Identity;
use crate::topics::{self, Request};

/// What a client's PUBLISH is, when it is allowed at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publish<'a> {
    /// `devices/<id>/messages/events/...`: telemetry for the store.
    Telemetry,
    /// A twin, method-response or provisioning request.
    Request(Request<'a>),
}

/// The topic of a PUBLISH, classified; `None`: not the client's own topic
/// (another device's, or nothing IoT Hub or DPS offers it), so it is refused.
pub fn publish<'a>(who: &Identity, topic: &'a str) -> Option<Publish<'a>> {
    match who {
        Identity::Device(id) => {
            if topics::events_device_id(topic) == Some(id.as_str()) {
                return Some(Publish::Telemetry);
            }
            match topics::request(topic)? {
                r @ (Request::TwinGet { .. }
                | Request::TwinReported { .. }
                | Request::MethodResponse { .. }) => Some(Publish::Request(r)),
                _ => None,
            }
        }
        Identity::Registration(_) => match topics::request(topic)? {
            r @ (Request::DpsRegister { .. } | Request::DpsStatus { .. }) => {
                Some(Publish::Request(r))
            }
            _ => None,
        },
    }
}

/// What a subscription is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription {
    /// `devices/<id>/messages/devicebound/#`: ZTP events and actions.
    Devicebound,
    /// `$iothub/twin/res/#`: answers to twin requests.
    TwinResponses,
    /// `$iothub/twin/PATCH/properties/desired/#`: desired-property patches.
    DesiredPatches,
    /// `$iothub/methods/POST/#`: direct methods.
    Methods,
    /// `$dps/registrations/res/#`: answers of the provisioning service.
    DpsResponses,
}

/// A SUBSCRIBE filter, classified; `None`: refused (the SUBACK carries the
/// failure code for it).
pub fn subscribe(who: &Identity, filter: &str) -> Option<Subscription> {
    match who {
        Identity::Device(id) => {
            if filter == topics::devicebound_filter(id) {
                return Some(Subscription::Devicebound);
            }
            match filter {
                topics::TWIN_RESPONSES_FILTER => Some(Subscription::TwinResponses),
                topics::DESIRED_PATCHES_FILTER => Some(Subscription::DesiredPatches),
                topics::METHODS_FILTER => Some(Subscription::Methods),
                _ => None,
            }
        }
        Identity::Registration(_) => {
            (filter == topics::DPS_RESPONSES_FILTER).then_some(Subscription::DpsResponses)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(id: &str) -> Identity {
        Identity::Device(id.into())
    }

    #[test]
    fn a_device_publishes_only_its_own_telemetry_and_twin_requests() {
        let a = dev("a");
        assert_eq!(
            publish(&a, "devices/a/messages/events/"),
            Some(Publish::Telemetry)
        );
        assert_eq!(
            publish(&a, "devices/a/messages/events/%24.ct=application%2Fjson"),
            Some(Publish::Telemetry)
        );
        assert_eq!(
            publish(&a, "$iothub/twin/GET/?$rid=42"),
            Some(Publish::Request(Request::TwinGet { rid: "42" }))
        );
        assert_eq!(
            publish(&a, "$iothub/twin/PATCH/properties/reported/?$rid=7-x"),
            Some(Publish::Request(Request::TwinReported { rid: "7-x" }))
        );
        assert_eq!(
            publish(&a, "$iothub/methods/res/200/?$rid=1"),
            Some(Publish::Request(Request::MethodResponse {
                status: 200,
                rid: "1"
            }))
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
            "$dps/registrations/PUT/iotdps-register/?$rid=1",
            "#",
            "devices/+/messages/events/",
        ] {
            assert_eq!(publish(&a, refused), None, "{refused}");
        }
    }

    #[test]
    fn a_registration_publishes_only_provisioning_requests() {
        let r = Identity::Registration("a".into());
        assert_eq!(
            publish(&r, "$dps/registrations/PUT/iotdps-register/?$rid=1"),
            Some(Publish::Request(Request::DpsRegister { rid: "1" }))
        );
        for refused in [
            "devices/a/messages/events/",
            "$iothub/twin/GET/?$rid=42",
            "$iothub/methods/res/200/?$rid=1",
        ] {
            assert_eq!(publish(&r, refused), None, "{refused}");
        }
        assert_eq!(
            subscribe(&r, "$dps/registrations/res/#"),
            Some(Subscription::DpsResponses)
        );
        assert_eq!(subscribe(&r, "$iothub/twin/res/#"), None);
        assert_eq!(subscribe(&r, "devices/a/messages/devicebound/#"), None);
    }

    #[test]
    fn a_device_subscribes_only_to_its_own_topics() {
        let a = dev("a");
        assert_eq!(
            subscribe(&a, "devices/a/messages/devicebound/#"),
            Some(Subscription::Devicebound)
        );
        assert_eq!(
            subscribe(&a, "$iothub/twin/res/#"),
            Some(Subscription::TwinResponses)
        );
        assert_eq!(
            subscribe(&a, "$iothub/twin/PATCH/properties/desired/#"),
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
            "$dps/registrations/res/#",
        ] {
            assert_eq!(subscribe(&a, refused), None, "{refused}");
        }
    }
}
