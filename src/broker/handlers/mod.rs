//! One small handler per kind of request a connection makes: telemetry,
//! twin, provisioning (DPS), direct methods. Each takes the hub and the request and gives
//! the answer; the session only reads packets, dispatches, and writes.

pub mod dps;
pub mod methods;
pub mod telemetry;
pub mod twin;

use bytes::Bytes;

use super::acl::Subscription;

/// An answer to a request: a QoS 0 PUBLISH, sent when the client is
/// subscribed to `subscription` (as IoT Hub does).
pub struct Reply {
    pub topic: String,
    pub body: Bytes,
    pub subscription: Subscription,
}
