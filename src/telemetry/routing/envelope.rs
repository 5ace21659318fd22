//! What a routed message looks like to an endpoint other than `events`
//! (SPEC §14 "What an endpoint receives"): a `mongodb` endpoint stores it, a
//! `webhook` POSTs it and an `mqtt` endpoint publishes it, as JSON.

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{PropertyBag, Source};

/// `{_id, device_id, source, enqueued_time, system_properties, properties,
/// body}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// `<device_id>:<message id>`, or `<device_id>:` and the first 16 hex
    /// digits of the SHA-256 of the raw body: a message the device resends
    /// after a crash gets the same id, so a store keeps it once.
    #[serde(rename = "_id")]
    pub id: String,
    pub device_id: String,
    pub source: String,
    /// RFC 3339, when the routing stage took the message.
    pub enqueued_time: String,
    /// IoT Hub's names: `contentType`, `contentEncoding`, `messageId`,
    /// `correlationId`, `connectionDeviceId`; `bodyEncoding` is `base64`
    /// when `body` is the raw body in base64 (it was not JSON).
    pub system_properties: Map<String, Value>,
    /// Application properties, enrichments included (a repeated key keeps
    /// its first value, as conditions read it).
    pub properties: Map<String, Value>,
    /// The body as JSON when it parses, else its bytes in base64.
    pub body: Value,
}

/// The `_id` of a message (see [`Envelope::id`]).
pub fn message_id(device_id: &str, message_id: Option<&str>, raw: &[u8]) -> String {
    match message_id.filter(|m| !m.is_empty()) {
        Some(m) => format!("{device_id}:{m}"),
        None => {
            let digest = Sha256::digest(raw);
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("{device_id}:{hex}")
        }
    }
}

/// What an envelope is made from; the stage builds one per message and
/// endpoint (enrichments differ per endpoint).
pub struct Parts<'a> {
    pub device_id: &'a str,
    pub source: Source,
    pub enqueued_time: &'a str,
    pub bag: &'a PropertyBag,
    pub raw: &'a [u8],
    /// The body parsed as JSON, whatever its content type; `None`: it did
    /// not parse (it goes as base64).
    pub parsed: Option<&'a Value>,
}

impl Parts<'_> {
    pub fn envelope(&self, enrichments: &[(String, String)]) -> Envelope {
        let bag = self.bag;
        let mut system = Map::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                system.insert(k.into(), Value::String(v.into()));
            }
        };
        put("contentType", bag.content_type.as_deref());
        put("contentEncoding", bag.content_encoding.as_deref());
        put("messageId", bag.message_id.as_deref());
        put("correlationId", bag.correlation_id.as_deref());
        put("connectionDeviceId", Some(self.device_id));
        let body = match self.parsed {
            Some(v) => v.clone(),
            None => {
                put("bodyEncoding", Some("base64"));
                Value::String(base64::engine::general_purpose::STANDARD.encode(self.raw))
            }
        };
        let mut properties = Map::new();
        for (k, v) in bag.properties.iter().chain(enrichments) {
            properties
                .entry(k.clone())
                .or_insert_with(|| Value::String(v.clone()));
        }
        Envelope {
            id: message_id(self.device_id, bag.message_id.as_deref(), self.raw),
            device_id: self.device_id.into(),
            source: self.source.name().into(),
            enqueued_time: self.enqueued_time.into(),
            system_properties: system,
            properties,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(bag: &'a PropertyBag, raw: &'a [u8], parsed: Option<&'a Value>) -> Parts<'a> {
        Parts {
            device_id: "d1",
            source: Source::DeviceMessages,
            enqueued_time: "2026-12-07T00:00:00Z",
            bag,
            raw,
            parsed,
        }
    }

    #[test]
    fn json_body_with_properties_and_enrichments() {
        let bag = PropertyBag::from_topic(
            "devices/d1/messages/events/%24.ct=application%2Fjson&%24.ce=utf-8&alarm=high",
        );
        let raw = br#"{"b":0.1}"#;
        let parsed: Value = serde_json::from_slice(raw).unwrap();
        let env = parts(&bag, raw, Some(&parsed)).envelope(&[("site".into(), "lab".into())]);
        let json = serde_json::to_value(&env).unwrap();
        let digest = Sha256::digest(raw);
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(json["_id"], format!("d1:{hex}"));
        assert_eq!(json["body"]["b"], 0.1);
        assert_eq!(json["properties"]["alarm"], "high");
        assert_eq!(json["properties"]["site"], "lab");
        assert_eq!(json["system_properties"]["contentType"], "application/json");
        assert_eq!(json["system_properties"]["connectionDeviceId"], "d1");
        assert_eq!(json["source"], "DeviceMessages");
        assert!(json["system_properties"].get("bodyEncoding").is_none());
    }

    #[test]
    fn message_id_wins_and_other_bodies_go_as_base64() {
        let bag = PropertyBag::from_topic("devices/d1/messages/events/%24.mid=m-7&k=1&k=2");
        let env = parts(&bag, b"\xff\x00", None).envelope(&[("k".into(), "enriched".into())]);
        assert_eq!(env.id, "d1:m-7");
        assert_eq!(env.body, Value::String("/wA=".into()));
        assert_eq!(env.system_properties["bodyEncoding"], "base64");
        assert_eq!(env.properties["k"], "1", "the first value of a key wins");
    }

    #[test]
    fn ids_without_a_message_id_are_stable_per_body() {
        let a = message_id("d", None, b"x");
        assert_eq!(a, message_id("d", Some(""), b"x"));
        assert_ne!(a, message_id("d", None, b"y"));
        assert_eq!(a.len(), "d:".len() + 16);
    }
}
