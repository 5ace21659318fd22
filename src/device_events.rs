//! ZTP events to devices over MQTT (SPEC §9): JSON `{type, ...}` on
//! `devices/<device_id>/messages/devicebound/`, on the broker the devices
//! use. The same events are also queued as actions on
//! `/ztp/v1/devices/<serial>/actions` by the caller.

/// Where device events go. Implementations must not block for long: they
/// are called from the reload path.
pub trait DeviceEvents: Send + Sync {
    fn send(&self, device_id: &str, event: &serde_json::Value);
}

/// No broker to publish on (the embedded broker is disabled and no external
/// one is configured): devices learn of events through the actions endpoint.
pub struct ActionsOnly;

impl DeviceEvents for ActionsOnly {
    fn send(&self, device_id: &str, event: &serde_json::Value) {
        tracing::debug!(device_id, %event, "no MQTT broker configured: event queued as an action only");
    }
}

/// Every publisher gets every event (the local hub and `telemetry.broker`,
/// when devices may be on either).
pub struct Fanout(pub Vec<std::sync::Arc<dyn DeviceEvents>>);

impl DeviceEvents for Fanout {
    fn send(&self, device_id: &str, event: &serde_json::Value) {
        for p in &self.0 {
            p.send(device_id, event);
        }
    }
}

/// Events published (QoS 1) on the broker in `telemetry.broker`, with its
/// account. While the broker is unreachable, up to [`QUEUE`] events wait in
/// memory; the actions endpoint has them too.
pub struct MqttEvents {
    client: rumqttc::AsyncClient,
}

/// Events waiting for the broker; more are dropped with a warning (the
/// same events are still queued as actions).
const QUEUE: usize = 1024;

/// Drives the MQTT connection of [`MqttEvents`]; the daemon runs it in its
/// task set, so the shutdown drain waits for it.
pub struct MqttEventsDriver {
    events: rumqttc::EventLoop,
}

impl MqttEvents {
    /// The publisher on `telemetry.broker`, and the driver to run.
    pub fn start(url: &str) -> Result<(MqttEvents, MqttEventsDriver), String> {
        let broker = crate::telemetry::mqtt::BrokerUrl::parse(url)?;
        Ok(MqttEvents::start_on(
            &broker,
            &format!("ztpd-events-{}", std::process::id()),
        ))
    }

    /// [`MqttEvents::start`] on a parsed broker URL with this client id.
    pub fn start_on(
        broker: &crate::telemetry::mqtt::BrokerUrl,
        client_id: &str,
    ) -> (MqttEvents, MqttEventsDriver) {
        let mut opts = broker.options(client_id);
        // Events are fire-and-forget per run: no session to keep on the broker.
        opts.set_clean_session(true);
        let (client, events) = rumqttc::AsyncClient::new(opts, QUEUE);
        (MqttEvents { client }, MqttEventsDriver { events })
    }
}

impl MqttEventsDriver {
    /// Connect, reconnect with backoff, until shutdown.
    pub async fn run(mut self, shutdown: tokio_util::sync::CancellationToken) {
        let mut backoff = crate::telemetry::mqtt::Backoff::default();
        let mut warned = false;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                ev = self.events.poll() => match ev {
                    Ok(_) => {
                        backoff.reset();
                        warned = false;
                    }
                    Err(e) => {
                        if !warned {
                            tracing::warn!("device events: broker unreachable ({e}); retrying");
                            warned = true;
                        }
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                },
            }
        }
    }
}

impl DeviceEvents for MqttEvents {
    fn send(&self, device_id: &str, event: &serde_json::Value) {
        let r = self.client.try_publish(
            crate::topics::devicebound(device_id),
            rumqttc::QoS::AtLeastOnce,
            false,
            event.to_string(),
        );
        if let Err(e) = r {
            tracing::warn!(
                device_id,
                "device event not queued for MQTT ({e}); it is still an action"
            );
        }
    }
}
