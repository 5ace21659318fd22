//! The telemetry message validator (SPEC §9): a pure function from (topic,
//! payload bytes) to the readings to store, or a rejection with a reason.
//! Nothing here panics on any input; it is fuzzed (`fuzz/telemetry_message`).

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use super::device_function::Field;

/// IoT Hub's device-to-cloud message limit.
pub const MAX_PAYLOAD: usize = 256 * 1024;
/// Longest device id (IoT Hub allows 128 characters).
const MAX_DEVICE_ID: usize = 128;
/// Longest textual device_name kept.
const MAX_NAME: usize = 128;

/// `device_name` as devices send it: the prototype's integer, or text.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceName {
    Int(i64),
    Text(String),
}

/// One validated reading, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub device_id: String,
    pub device_name: Option<DeviceName>,
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    pub battery: Option<f64>,
    /// Truncated to microseconds, so the `_id` and the stored date agree.
    pub signal_date: DateTime<Utc>,
}

impl Reading {
    /// The deterministic `_id` that makes a redelivery a no-op.
    pub fn id(&self) -> String {
        format!("{}:{}", self.device_id, format_date(&self.signal_date))
    }
}

/// RFC 3339, UTC, microseconds: how signal dates are emitted and keyed.
pub fn format_date(d: &DateTime<Utc>) -> String {
    d.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A message that is not stored as telemetry, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub reason: String,
}

/// Validate one MQTT message. A batched message (a JSON array) is accepted
/// or rejected as a whole, so a device never sees half its batch stored.
pub fn validate(topic: &str, payload: &[u8]) -> Result<Vec<Reading>, Rejection> {
    let reject = |reason: String| Err(Rejection { reason });
    let Some(topic_id) = crate::topics::events_device_id(topic) else {
        return reject(format!(
            "topic `{}` is not devices/<device_id>/messages/events/",
            truncate(topic, 200)
        ));
    };
    if payload.len() > MAX_PAYLOAD {
        return reject(format!(
            "payload is {} bytes; at most {MAX_PAYLOAD} are accepted",
            payload.len()
        ));
    }
    let text = match std::str::from_utf8(payload) {
        Ok(t) => t,
        Err(e) => {
            return reject(format!(
                "payload is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ))
        }
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return reject(format!("payload is not JSON: {e}")),
    };
    match value {
        Value::Object(o) => read_object(&o, topic_id).map(|r| vec![r]).or_else(reject),
        Value::Array(items) if items.is_empty() => reject("payload is an empty array".into()),
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let Value::Object(o) = item else {
                    return reject(format!("reading {i}: expected a JSON object"));
                };
                match read_object(o, topic_id) {
                    Ok(r) => out.push(r),
                    Err(e) => return reject(format!("reading {i}: {e}")),
                }
            }
            Ok(out)
        }
        _ => reject("payload must be a JSON object (or an array of them)".into()),
    }
}

fn read_object(o: &Map<String, Value>, topic_id: &str) -> Result<Reading, String> {
    if let Some(k) = o.keys().find(|k| Field::from_name(k).is_none()) {
        return Err(format!(
            "unknown field `{}`; expected only device_id, device_name, device_latitude, device_longitude, device_battery_level, signal_date",
            truncate(k, 64)
        ));
    }
    let device_id = match o.get("device_id") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_DEVICE_ID => s.clone(),
        Some(Value::String(_)) => {
            return Err(format!("device_id must be 1 to {MAX_DEVICE_ID} characters"))
        }
        Some(v) => return Err(format!("device_id must be a string, found {}", kind(v))),
        None => return Err("missing field device_id".into()),
    };
    if device_id != topic_id {
        return Err(format!(
            "device_id `{}` differs from the topic's device `{}`",
            truncate(&device_id, 64),
            truncate(topic_id, 64)
        ));
    }
    let device_name =
        match o.get("device_name") {
            None => None,
            Some(Value::Number(n)) => Some(DeviceName::Int(n.as_i64().ok_or_else(|| {
                format!("device_name must be an integer or a string, found {n}")
            })?)),
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_NAME => {
                Some(DeviceName::Text(s.clone()))
            }
            Some(Value::String(_)) => {
                return Err(format!("device_name must be 1 to {MAX_NAME} characters"))
            }
            Some(v) => {
                return Err(format!(
                    "device_name must be an integer or a string, found {}",
                    kind(v)
                ))
            }
        };
    let signal_date = match o.get("signal_date") {
        Some(Value::String(s)) => parse_date(s)?,
        Some(v) => return Err(format!("signal_date must be a string, found {}", kind(v))),
        None => return Err("missing field signal_date".into()),
    };
    Ok(Reading {
        device_id,
        device_name,
        latitude: bounded(o, "device_latitude", -90.0, 90.0)?,
        longitude: bounded(o, "device_longitude", -180.0, 180.0)?,
        battery: bounded(o, "device_battery_level", 0.0, 1.0)?,
        signal_date,
    })
}

fn bounded(o: &Map<String, Value>, key: &str, lo: f64, hi: f64) -> Result<Option<f64>, String> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x.is_finite() && lo <= x && x <= hi => Ok(Some(x)),
            _ => Err(format!("{key} is {n}; expected a number from {lo} to {hi}")),
        },
        Some(v) => Err(format!("{key} must be a number, found {}", kind(v))),
    }
}

/// RFC 3339 (any offset, converted to UTC), or the prototype's
/// `YYYY-MM-DD HH:MM:SS[.ffffff]` read as UTC. Truncated to microseconds.
pub fn parse_date(s: &str) -> Result<DateTime<Utc>, String> {
    let parsed = DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").map(|n| n.and_utc()));
    match parsed {
        Ok(d) => {
            let micros = d.timestamp_micros();
            DateTime::from_timestamp_micros(micros)
                .ok_or_else(|| format!("signal_date `{}` is out of range", truncate(s, 64)))
        }
        Err(_) => Err(format!(
            "signal_date `{}` is not RFC 3339 (2024-05-01T12:00:00.000000Z) or YYYY-MM-DD HH:MM:SS[.ffffff]",
            truncate(s, 64)
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// At most `max` bytes of `s`, cut on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut i = max;
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[..i]
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
