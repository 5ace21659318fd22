//! A simulated device's readings, driven by its device function: pure and
//! seedable, so the prototype's behaviour is testable without a broker.
//!
//! The prototype: battery starts at `initial` (1.0); every `drain_every`th
//! message (10) it drops by a uniform amount in `[0, drain_max]` rounded to
//! 2 decimals; the device sends its reading at 0 and stops. Coordinates are
//! uniform in the box with `precision` decimals. No two readings of a device
//! carry the same `signal_date`.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};

use super::device_function::{DeviceFunction, Field};
use super::message::format_date;

#[derive(Debug, Clone, PartialEq)]
pub enum DeviceNameValue {
    Int(i64),
    Text(String),
}

pub struct SimulatedDevice {
    pub device_id: String,
    pub device_name: DeviceNameValue,
    pub function: DeviceFunction,
    battery: f64,
    readings: u64,
    last_date: Option<DateTime<Utc>>,
    stopped: bool,
    rng: StdRng,
}

fn round_to(x: f64, decimals: u32) -> f64 {
    let f = 10f64.powi(decimals as i32);
    (x * f).round() / f
}

impl SimulatedDevice {
    pub fn new(
        device_id: &str,
        device_name: DeviceNameValue,
        function: DeviceFunction,
        seed: Option<u64>,
    ) -> Self {
        SimulatedDevice {
            device_id: device_id.to_string(),
            device_name,
            battery: round_to(function.battery.initial, 2),
            function,
            readings: 0,
            last_date: None,
            stopped: false,
            rng: match seed {
                Some(s) => StdRng::seed_from_u64(s),
                None => StdRng::from_entropy(),
            },
        }
    }

    /// True once the battery reached 0 and that reading was produced.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    pub fn battery(&self) -> f64 {
        self.battery
    }

    /// Swap the device function (credential refreshed); the battery level
    /// and the message count carry on.
    pub fn set_function(&mut self, f: DeviceFunction) {
        self.function = f;
    }

    /// The next reading taken at `now`, or `None` when stopped.
    pub fn next_reading(&mut self, now: DateTime<Utc>) -> Option<Map<String, Value>> {
        if self.stopped {
            return None;
        }
        let f = &self.function;
        if self.readings > 0 && self.readings % u64::from(f.battery.drain_every) == 0 {
            let drop = round_to(self.rng.gen_range(0.0..=f.battery.drain_max), 2);
            self.battery = round_to((self.battery - drop).max(0.0), 2);
        }
        self.readings += 1;
        // never the same signal_date twice (the bridge keys readings on it)
        let mut date = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
        if let Some(last) = self.last_date {
            if date <= last {
                date = last + ChronoDuration::microseconds(1);
            }
        }
        self.last_date = Some(date);
        let loc = &f.location;
        let coord = |rng: &mut StdRng, (lo, hi): (f64, f64)| {
            let x = if lo < hi { rng.gen_range(lo..=hi) } else { lo };
            round_to(x, loc.precision).clamp(lo, hi)
        };
        let lat = coord(&mut self.rng, loc.latitude);
        let lon = coord(&mut self.rng, loc.longitude);
        let mut m = Map::new();
        for field in &f.fields {
            let v = match field {
                Field::DeviceId => Value::from(self.device_id.clone()),
                Field::DeviceName => match &self.device_name {
                    DeviceNameValue::Int(i) => Value::from(*i),
                    DeviceNameValue::Text(t) => Value::from(t.clone()),
                },
                Field::Latitude => Value::from(lat),
                Field::Longitude => Value::from(lon),
                Field::Battery => Value::from(self.battery),
                Field::SignalDate => Value::from(format_date(&date)),
            };
            m.insert(field.name().to_string(), v);
        }
        if self.battery <= 0.0 {
            self.stopped = true;
        }
        Some(m)
    }

    /// One message: a reading, or `batch` readings as a JSON array (fewer
    /// when the device stops). `None` when stopped.
    pub fn next_message(&mut self, now: DateTime<Utc>) -> Option<(String, usize)> {
        let batch = self.function.batch.max(1) as usize;
        if batch == 1 {
            return self
                .next_reading(now)
                .map(|r| (Value::Object(r).to_string(), 1));
        }
        let step = self.function.interval;
        let mut items = Vec::with_capacity(batch);
        for i in 0..batch {
            let at = now + ChronoDuration::from_std(step * i as u32).unwrap_or_default();
            match self.next_reading(at) {
                Some(r) => items.push(Value::Object(r)),
                None => break,
            }
        }
        let n = items.len();
        (n > 0).then(|| (Value::Array(items).to_string(), n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::message;

    fn device(seed: u64, f: DeviceFunction) -> SimulatedDevice {
        SimulatedDevice::new("sim1", DeviceNameValue::Int(1000001), f, Some(seed))
    }

    #[test]
    fn battery_follows_the_prototype_and_the_device_stops_at_zero() {
        for seed in 0..20 {
            let mut d = device(seed, DeviceFunction::default());
            let now = Utc::now();
            let mut levels = Vec::new();
            while let Some(r) = d.next_reading(now) {
                let lat = r["device_latitude"].as_f64().unwrap();
                let lon = r["device_longitude"].as_f64().unwrap();
                assert!((-37.36..=-32.04).contains(&lat) && (-68.22..=-61.69).contains(&lon));
                assert_eq!(round_to(lat, 6), lat);
                levels.push(r["device_battery_level"].as_f64().unwrap());
                assert!(levels.len() < 100_000, "never stopped");
            }
            assert_eq!(levels[0], 1.0);
            assert_eq!(*levels.last().unwrap(), 0.0);
            for (i, w) in levels.windows(2).enumerate() {
                let k = i + 1; // index of w[1]
                assert!(w[1] <= w[0], "increased at {k}");
                assert!(
                    w[0] - w[1] <= 0.03 + 1e-9,
                    "dropped more than drain_max at {k}"
                );
                if k % 10 != 0 {
                    assert_eq!(w[1], w[0], "changed at message {k}, not a 10th");
                }
                assert_eq!(round_to(w[1], 2), w[1]);
            }
            assert!(d.next_reading(now).is_none());
        }
    }

    #[test]
    fn dates_never_repeat_and_messages_validate() {
        let mut d = device(1, DeviceFunction::default());
        let now = Utc::now();
        let mut ids = std::collections::HashSet::new();
        for _ in 0..100 {
            let (payload, n) = d.next_message(now).unwrap();
            assert_eq!(n, 1);
            let r = message::validate("devices/sim1/messages/events/", payload.as_bytes()).unwrap();
            assert!(ids.insert(r[0].id()), "repeated signal_date");
        }
    }

    #[test]
    fn batches_and_field_selection_follow_the_function() {
        let f = DeviceFunction {
            fields: vec![Field::DeviceId, Field::Battery, Field::SignalDate],
            batch: 5,
            ..DeviceFunction::default()
        };
        let mut d = device(2, f);
        let (payload, n) = d.next_message(Utc::now()).unwrap();
        assert_eq!(n, 5);
        let r = message::validate("devices/sim1/messages/events/", payload.as_bytes()).unwrap();
        assert_eq!(r.len(), 5);
        assert!(r
            .iter()
            .all(|x| x.latitude.is_none() && x.battery.is_some()));
    }
}
