//! Arbitrary bytes as a device connection to the local hub: the CONNECT
//! checks, then every packet the codec reads, through the topic rules a
//! session applies. Nothing may panic; a packet is read only whole, every
//! accepted telemetry topic is the device's own, and every accepted
//! subscription is one of the device's own filters.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rumqttc::mqttbytes::v4::Packet;
use ztpd::broker::{acl, packets, session::MAX_PACKET};

const DEVICE: &str = "dev1";

fuzz_target!(|data: &[u8]| {
    let _ = packets::check_connect(data, MAX_PACKET);
    let mut buf = BytesMut::from(data);
    for _ in 0..64 {
        let before = buf.len();
        match packets::read(&mut buf, MAX_PACKET) {
            Ok(Some(p)) => {
                assert!(buf.len() < before, "a packet was read without consuming bytes");
                match p {
                    Packet::Publish(p) => {
                        if let Some(acl::Publish::Telemetry) = acl::publish(DEVICE, &p.topic) {
                            assert_eq!(ztpd::topics::events_device_id(&p.topic), Some(DEVICE));
                        }
                    }
                    Packet::Subscribe(s) => {
                        for f in &s.filters {
                            if acl::subscribe(DEVICE, &f.path).is_some() {
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
