//! ZTP events to devices over MQTT (SPEC §9): JSON `{type, ...}` on
//! `devices/<device_id>/messages/devicebound/`, on the broker the devices
//! use. The same events are also queued as actions on
//! `/ztp/v1/devices/<serial>/actions` by the caller.

/// Where device events go. Implementations must not block for long: they
/// are called from the reload path.
pub trait DeviceEvents: Send + Sync {
    fn send(&self, device_id: &str, event: &serde_json::Value);
}

/// The devicebound topic of a device.
pub fn topic(device_id: &str) -> String {
    format!("devices/{device_id}/messages/devicebound/")
}

/// No broker to publish on (the embedded broker is disabled and no external
/// one is configured): devices learn of events through the actions endpoint.
pub struct ActionsOnly;

impl DeviceEvents for ActionsOnly {
    fn send(&self, device_id: &str, event: &serde_json::Value) {
        tracing::debug!(device_id, %event, "no MQTT broker configured: event queued as an action only");
    }
}
