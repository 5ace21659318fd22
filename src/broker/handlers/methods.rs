//! Direct methods (SPEC §13): the operator's call waits here for the
//! device's answer on `$iothub/methods/res/<status>/?$rid=R`, matched by
//! request id and device, or for the timeout.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::broker::acl::Subscription;
use crate::broker::calls::Outcome;
use crate::broker::hub::LocalHub;
use crate::broker::registry::Push;

/// Largest method payload sent to a device (IoT Hub's limit).
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;

/// How a call ended.
#[derive(Debug, PartialEq)]
pub enum Called {
    /// The device answered: its status and payload.
    Answered { status: u16, payload: Value },
    /// Not connected, or not subscribed to `$iothub/methods/POST/#`.
    NotConnected,
    /// No answer within the timeout.
    TimedOut,
    /// The payload is over [`MAX_PAYLOAD_BYTES`].
    TooLarge,
}

/// A device's answer on `$iothub/methods/res/<status>`: its payload as JSON
/// (an empty or non-JSON body is `null`, as the SDKs read it).
pub fn answered(hub: &LocalHub, device_id: &str, rid: &str, status: u16, body: &[u8]) {
    let payload = serde_json::from_slice(body).unwrap_or(Value::Null);
    hub.calls
        .resolve(device_id, rid, Outcome::Answered { status, payload });
}

/// Call `method` on a connected device and wait up to `timeout` for its answer.
pub async fn invoke(
    hub: &LocalHub,
    device_id: &str,
    method: &str,
    payload: &Value,
    timeout: Duration,
) -> Called {
    let body = payload.to_string();
    if body.len() > MAX_PAYLOAD_BYTES {
        return Called::TooLarge;
    }
    let rid = format!("m{}", hub.calls.next.fetch_add(1, Ordering::Relaxed) + 1);
    let (tx, rx) = oneshot::channel();
    if let Ok(mut w) = hub.calls.waiting.lock() {
        w.insert(rid.clone(), (device_id.to_string(), tx));
    }
    let pushed = hub.registry.push(
        device_id,
        Push::Publish {
            topic: crate::topics::method_request(method, &rid),
            payload: Bytes::from(body),
            subscription: Subscription::Methods,
        },
    );
    if !pushed {
        hub.calls.forget(&rid);
        return Called::NotConnected;
    }
    let called = match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(Outcome::Answered { status, payload })) => Called::Answered { status, payload },
        Ok(Ok(Outcome::NotSubscribed)) | Ok(Err(_)) => Called::NotConnected,
        Err(_) => Called::TimedOut,
    };
    hub.calls.forget(&rid);
    called
}
