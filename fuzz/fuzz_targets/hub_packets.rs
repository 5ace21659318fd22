//! Arbitrary bytes as a device connection to the local hub: the CONNECT
//! checks, then every packet the codec reads, through the topic rules a
//! session applies, as a device and as a registering device (DPS), and a
//! PUBLISH's payload as a DPS register request. Nothing may panic; a packet
//! is read only whole, every accepted telemetry topic is the device's own,
//! every accepted subscription is one of the client's own filters, and a
//! registering device reaches only `$dps` topics.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rumqttc::mqttbytes::v4::Packet;
use ztpd::broker::auth::Identity;
use ztpd::broker::{acl, handlers, packets, session::MAX_PACKET};

const DEVICE: &str = "dev1";

fuzz_target!(|data: &[u8]| {
    let device = Identity::Device(DEVICE.into());
    let registration = Identity::Registration(DEVICE.into());
    let _ = packets::check_connect(data, MAX_PACKET);
    let mut buf = BytesMut::from(data);
    for _ in 0..64 {
        let before = buf.len();
        match packets::read(&mut buf, MAX_PACKET) {
            Ok(Some(p)) => {
                assert!(buf.len() < before, "a packet was read without consuming bytes");
                match p {
                    Packet::Publish(p) => {
                        if let Some(acl::Publish::Telemetry) = acl::publish(&device, &p.topic) {
                            assert_eq!(ztpd::topics::events_device_id(&p.topic), Some(DEVICE));
                        }
                        if acl::publish(&registration, &p.topic).is_some() {
                            assert!(p.topic.starts_with("$dps/registrations/"), "{}", p.topic);
                        }
                        let _ = handlers::dps::parse_request(DEVICE, &p.payload);
                    }
                    Packet::Subscribe(s) => {
                        for f in &s.filters {
                            if acl::subscribe(&registration, &f.path).is_some() {
                                assert_eq!(f.path, ztpd::topics::DPS_RESPONSES_FILTER);
                            }
                            if acl::subscribe(&device, &f.path).is_some() {
                                assert!(
                                    f.path == ztpd::topics::devicebound_filter(DEVICE)
                                        || f.path.starts_with("$iothub/"),
                                    "{}",
                                    f.path
                                );
                            }
                        }
                    }
                    _ => {}
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
});
