//! The IoT Hub and DPS MQTT topic names (SPEC §9, §13), in one place:
//! devices publish telemetry on their events topic and receive ZTP events
//! and actions on their devicebound topic; the bridge subscribes to every
//! device's events; twin, method and provisioning requests and their
//! answers are built and read here, and nowhere else.

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

// --- `$iothub` and `$dps`: what a device asks and what the hub answers --------

/// What a device subscribes to for answers to its twin requests.
pub const TWIN_RESPONSES_FILTER: &str = "$iothub/twin/res/#";
/// What a device subscribes to for desired-property patches.
pub const DESIRED_PATCHES_FILTER: &str = "$iothub/twin/PATCH/properties/desired/#";
/// What a device subscribes to for direct methods.
pub const METHODS_FILTER: &str = "$iothub/methods/POST/#";
/// What a registering device subscribes to for the provisioning answers.
pub const DPS_RESPONSES_FILTER: &str = "$dps/registrations/res/#";

const TWIN_GET: &str = "$iothub/twin/GET/?";
const TWIN_REPORTED: &str = "$iothub/twin/PATCH/properties/reported/?";
const METHOD_RESPONSE: &str = "$iothub/methods/res/";
const DPS_REGISTER: &str = "$dps/registrations/PUT/iotdps-register/?";
const DPS_STATUS: &str = "$dps/registrations/GET/iotdps-get-operationstatus/?";

/// A request a device publishes on a `$iothub` or `$dps` topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// `$iothub/twin/GET/?$rid=R`.
    TwinGet { rid: &'a str },
    /// `$iothub/twin/PATCH/properties/reported/?$rid=R`.
    TwinReported { rid: &'a str },
    /// `$iothub/methods/res/<status>/?$rid=R`: a device's answer to a method.
    MethodResponse { status: u16, rid: &'a str },
    /// `$dps/registrations/PUT/iotdps-register/?$rid=R`.
    DpsRegister { rid: &'a str },
    /// `$dps/registrations/GET/iotdps-get-operationstatus/?$rid=R&operationId=O`.
    DpsStatus { rid: &'a str, operation_id: &'a str },
}

/// The request a `$iothub`/`$dps` topic names; `None` for any other topic
/// or one without a usable `$rid`.
pub fn request(topic: &str) -> Option<Request<'_>> {
    if let Some(q) = topic.strip_prefix(TWIN_GET) {
        return Some(Request::TwinGet { rid: rid(q)? });
    }
    if let Some(q) = topic.strip_prefix(TWIN_REPORTED) {
        return Some(Request::TwinReported { rid: rid(q)? });
    }
    if let Some(rest) = topic.strip_prefix(METHOD_RESPONSE) {
        let (status, q) = rest.split_once("/?")?;
        let status = status.parse().ok().filter(|s| (100..1000).contains(s))?;
        return Some(Request::MethodResponse {
            status,
            rid: rid(q)?,
        });
    }
    if let Some(q) = topic.strip_prefix(DPS_REGISTER) {
        return Some(Request::DpsRegister { rid: rid(q)? });
    }
    if let Some(q) = topic.strip_prefix(DPS_STATUS) {
        let operation_id = query_value(q, "operationId").filter(|v| safe(v))?;
        return Some(Request::DpsStatus {
            rid: rid(q)?,
            operation_id,
        });
    }
    None
}

fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// The `$rid` of a request's query string: present, short, and made of
/// characters that are safe to echo back in a topic.
fn rid(query: &str) -> Option<&str> {
    query_value(query, "$rid").filter(|r| safe(r))
}

fn safe(v: &str) -> bool {
    !v.is_empty()
        && v.len() <= 128
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The status of an answer on a `$iothub` or `$dps` response topic: the
/// HTTP codes IoT Hub and DPS use there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    Accepted,
    NoContent,
    BadRequest,
    Unauthorized,
    NotFound,
    TooManyRequests,
    InternalError,
}

impl Status {
    pub fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::Accepted => 202,
            Status::NoContent => 204,
            Status::BadRequest => 400,
            Status::Unauthorized => 401,
            Status::NotFound => 404,
            Status::TooManyRequests => 429,
            Status::InternalError => 500,
        }
    }
}

/// The answer to a twin request; `version`: the new reported version of a
/// reported patch.
pub fn twin_response(status: Status, rid: &str, version: Option<u64>) -> String {
    let code = status.code();
    match version {
        Some(v) => format!("$iothub/twin/res/{code}/?$rid={rid}&$version={v}"),
        None => format!("$iothub/twin/res/{code}/?$rid={rid}"),
    }
}

/// Where a desired-property patch of version `version` goes.
pub fn desired_patch(version: u64) -> String {
    format!("$iothub/twin/PATCH/properties/desired/?$version={version}")
}

/// Where method `name` is called on a device.
pub fn method_request(name: &str, rid: &str) -> String {
    format!("$iothub/methods/POST/{name}/?$rid={rid}")
}

/// The request id of a method call topic built by [`method_request`].
pub fn method_request_rid(topic: &str) -> Option<&str> {
    let rest = topic.strip_prefix("$iothub/methods/POST/")?;
    rest.rsplit_once("/?$rid=").map(|(_, rid)| rid)
}

/// The answer to a provisioning request. The SDK splits the topic on `$`:
/// only `$rid` carries one, `retry-after` is an integer, no trailing `&`.
pub fn dps_response(status: Status, rid: &str, retry_after: Option<u64>) -> String {
    let code = status.code();
    match retry_after {
        Some(s) => format!("$dps/registrations/res/{code}/?$rid={rid}&retry-after={s}"),
        None => format!("$dps/registrations/res/{code}/?$rid={rid}"),
    }
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

    #[test]
    fn requests_are_read_and_answers_built_in_one_place() {
        assert_eq!(
            request("$iothub/twin/GET/?$rid=42"),
            Some(Request::TwinGet { rid: "42" })
        );
        assert_eq!(
            request("$iothub/twin/PATCH/properties/reported/?$rid=7-x"),
            Some(Request::TwinReported { rid: "7-x" })
        );
        assert_eq!(
            request("$iothub/methods/res/200/?$rid=9"),
            Some(Request::MethodResponse {
                status: 200,
                rid: "9"
            })
        );
        assert_eq!(
            request("$dps/registrations/PUT/iotdps-register/?$rid=a1"),
            Some(Request::DpsRegister { rid: "a1" })
        );
        assert_eq!(
            request("$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=op.1"),
            Some(Request::DpsStatus {
                rid: "2",
                operation_id: "op.1"
            })
        );
        for refused in [
            "$iothub/twin/GET/",
            "$iothub/twin/GET/?$rid=",
            "$iothub/twin/GET/?$rid=a/b",
            "$iothub/twin/res/200/?$rid=1",
            "$iothub/methods/res/abc/?$rid=1",
            "$iothub/methods/res/99999/?$rid=1",
            "$iothub/methods/POST/x/?$rid=1",
            "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2",
            "$dps/registrations/GET/iotdps-get-operationstatus/?$rid=2&operationId=a$b",
            "$dps/registrations/res/200/?$rid=1",
        ] {
            assert_eq!(request(refused), None, "{refused}");
        }
        assert_eq!(
            twin_response(Status::NoContent, "3", Some(4)),
            "$iothub/twin/res/204/?$rid=3&$version=4"
        );
        assert_eq!(
            twin_response(Status::TooManyRequests, "3", None),
            "$iothub/twin/res/429/?$rid=3"
        );
        // The SDK splits a DPS answer on `$`: one in `$rid`, none after.
        let t = dps_response(Status::Accepted, "r1", Some(3));
        assert_eq!(t, "$dps/registrations/res/202/?$rid=r1&retry-after=3");
        assert_eq!(t.matches('$').count(), 2);
        assert_eq!(
            desired_patch(5),
            "$iothub/twin/PATCH/properties/desired/?$version=5"
        );
        assert_eq!(
            method_request("reboot", "1"),
            "$iothub/methods/POST/reboot/?$rid=1"
        );
    }
}
