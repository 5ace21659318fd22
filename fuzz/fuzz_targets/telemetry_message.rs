//! Arbitrary MQTT (topic, payload) into the telemetry validator: it must
//! accept or reject with a reason, never panic, and every accepted reading
//! must respect the world bounds and carry the topic's device id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ztpd::telemetry::message;

fuzz_target!(|data: &[u8]| {
    // First byte picks the topic shape so both valid and odd topics are hit.
    let (topic, payload) = match data.split_first() {
        Some((b, rest)) if b % 4 == 0 => ("devices/dev1/messages/events/".to_string(), rest),
        Some((b, rest)) if b % 4 == 1 => {
            let cut = rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len());
            (
                String::from_utf8_lossy(&rest[..cut]).into_owned(),
                &rest[cut.min(rest.len())..],
            )
        }
        Some((_, rest)) => ("devices/dev1/messages/events/$.ct=json".to_string(), rest),
        None => return,
    };
    if let Ok(readings) = message::validate(&topic, payload) {
        let id = ztpd::topics::events_device_id(&topic).expect("accepted only on event topics");
        for r in readings {
            assert_eq!(r.device_id, id);
            assert!(r.latitude.is_none_or(|x| (-90.0..=90.0).contains(&x)));
            assert!(r.longitude.is_none_or(|x| (-180.0..=180.0).contains(&x)));
            assert!(r.battery.is_none_or(|x| (0.0..=1.0).contains(&x)));
            let _ = r.id();
        }
    }
});
