//! How a row of the route outbox reaches its endpoint: one small module
//! per endpoint kind. A delivery is done when the endpoint acknowledged it
//! (HTTP 2xx, MQTT PUBACK); anything else is an error and the outbox retries.

use std::time::Duration;

use bytes::Bytes;

use super::outbox::Target;
use crate::telemetry::mqtt::BrokerUrl;

pub mod mqtt;
pub mod webhook;

/// Longest one attempt may take before it counts as failed: a hung
/// endpoint must not stall its worker longer than this per retry.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// The sender of one endpoint's worker.
pub enum Deliverer {
    Webhook,
    /// Boxed: a client and its event loop are large, the others empty.
    Mqtt(Box<mqtt::Publisher>),
    /// An `mqtt` endpoint without `telemetry.broker` (validate refuses
    /// that; rows left from an older configuration wait here).
    NoBroker,
}

pub fn for_target(target: &Target, broker: Option<&BrokerUrl>, client_id: &str) -> Deliverer {
    match (target, broker) {
        (Target::Webhook(_), _) => Deliverer::Webhook,
        (Target::Mqtt(_), Some(b)) => {
            Deliverer::Mqtt(Box::new(mqtt::Publisher::connect(b, client_id)))
        }
        (Target::Mqtt(_), None) => Deliverer::NoBroker,
    }
}

impl Deliverer {
    /// Whether this sender is the one for `target`'s kind (a reload may
    /// change an endpoint's kind; its worker then needs another sender).
    pub fn serves(&self, target: &Target) -> bool {
        matches!(
            (self, target),
            (Deliverer::Webhook, Target::Webhook(_))
                | (Deliverer::Mqtt(_) | Deliverer::NoBroker, Target::Mqtt(_))
        )
    }

    pub async fn deliver(&mut self, target: &Target, payload: &Bytes) -> Result<(), String> {
        match (self, target) {
            (Deliverer::Webhook, Target::Webhook(url)) => webhook::post(url, payload).await,
            (Deliverer::Mqtt(p), Target::Mqtt(topic)) => p.publish(topic, payload.clone()).await,
            (Deliverer::NoBroker, _) => {
                Err("an mqtt endpoint needs telemetry.broker, which is not set".into())
            }
            _ => Err("this sender is for another kind of endpoint".into()),
        }
    }
}
