//! `mqtt` endpoints: the envelope published at QoS 1 on `telemetry.broker`.
//! Each endpoint's worker has its own client and one message in flight: a
//! message is done when the PUBACK for its packet id came back.

use bytes::Bytes;
use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, QoS};

use super::ATTEMPT_TIMEOUT;
use crate::telemetry::mqtt::BrokerUrl;

pub struct Publisher {
    client: AsyncClient,
    eventloop: EventLoop,
}

impl Publisher {
    /// Connects on the first publish. A clean session: what was in flight
    /// on a broken connection is not resent by the client, the outbox
    /// retries it itself (a failed publisher is dropped, not reused).
    pub fn connect(broker: &BrokerUrl, client_id: &str) -> Publisher {
        let mut o = broker.options(client_id);
        o.set_clean_session(true);
        // The event loop is polled only while a message is in flight: with
        // keep-alive pings due while idle the broker would drop the
        // connection between messages. A dead connection shows at the next
        // publish instead (an error, or no PUBACK in time), and is made anew.
        o.set_keep_alive(std::time::Duration::ZERO);
        let (client, eventloop) = AsyncClient::new(o, 4);
        Publisher { client, eventloop }
    }

    pub async fn publish(&mut self, topic: &str, payload: Bytes) -> Result<(), String> {
        self.client
            .publish_bytes(topic, QoS::AtLeastOnce, false, payload)
            .await
            .map_err(|e| format!("publish to {topic}: {e}"))?;
        tokio::time::timeout(ATTEMPT_TIMEOUT, self.await_puback())
            .await
            .map_err(|_| format!("publish to {topic}: no PUBACK within {ATTEMPT_TIMEOUT:?}"))?
    }

    async fn await_puback(&mut self) -> Result<(), String> {
        let mut sent = None;
        loop {
            match self.eventloop.poll().await {
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => sent = Some(pkid),
                Ok(Event::Incoming(Packet::PubAck(ack))) if Some(ack.pkid) == sent => return Ok(()),
                Ok(Event::Incoming(Packet::ConnAck(ack)))
                    if ack.code != rumqttc::ConnectReturnCode::Success =>
                {
                    return Err(format!("broker refused the connection: {:?}", ack.code));
                }
                Ok(_) => {}
                Err(e) => return Err(format!("broker connection: {e}")),
            }
        }
    }
}
