//! Message routing (SPEC §14): the condition language ([`condition`]:
//! parsed once, with spans for diagnostics), its evaluator ([`eval`]: IoT
//! Hub's semantics, reading the message in place), `routes.toml` read into
//! the compiled [`RouteTable`] ([`load`], with the plans), the message's
//! properties as the device SDKs put them in the topic ([`PropertyBag`]),
//! the pipeline's routing stage ([`stage`]), the envelope other endpoints
//! receive ([`envelope`]) and the outbox that delivers to `mqtt` and
//! `webhook` endpoints ([`outbox`], [`delivery`]).

pub mod condition;
pub mod delivery;
pub mod envelope;
pub mod eval;
pub mod load;
pub mod outbox;
pub mod stage;
mod string_span;
pub mod table;

pub use table::{EndpointId, RouteTable, Source};

#[cfg(test)]
mod tests;

/// The properties of a device-to-cloud message, from the property bag that
/// follows `devices/<id>/messages/events/` in its topic (`%24.ct=application
/// %2Fjson&%24.ce=utf-8&alarm=high`): system properties are the `$.` keys,
/// the rest are application properties. Keys and values are percent-decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PropertyBag {
    /// `$.ct`
    pub content_type: Option<String>,
    /// `$.ce`
    pub content_encoding: Option<String>,
    /// `$.mid`
    pub message_id: Option<String>,
    /// `$.cid`
    pub correlation_id: Option<String>,
    /// Application properties in the order they came; a repeated key keeps
    /// each (the first wins in conditions).
    pub properties: Vec<(String, String)>,
}

/// Longest property bag read (IoT Hub's limit on the properties of a
/// message is 81,920 bytes; the topic is bounded by MQTT already).
const MAX_BAG: usize = 81_920;

impl PropertyBag {
    /// Read the bag of an events topic; a topic without one has none.
    pub fn from_topic(topic: &str) -> PropertyBag {
        let mut bag = PropertyBag::default();
        let Some(rest) = topic
            .split_once("/messages/events/")
            .map(|(_, rest)| rest)
            .filter(|r| !r.is_empty() && r.len() <= MAX_BAG)
        else {
            return bag;
        };
        for pair in rest.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let (k, v) = (percent_decode(k), percent_decode(v));
            match k.as_str() {
                "$.ct" => bag.content_type = Some(v),
                "$.ce" => bag.content_encoding = Some(v),
                "$.mid" => bag.message_id = Some(v),
                "$.cid" => bag.correlation_id = Some(v),
                // Other system keys ($.to, $.uid, $.exp, ...) are not
                // application properties.
                k if k.starts_with("$.") => {}
                _ => bag.properties.push((k, v)),
            }
        }
        bag
    }
}

/// `%XX` decoded; a malformed escape is kept as written, and bytes that do
/// not form UTF-8 are replaced (U+FFFD), so any topic reads.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied(), b.get(i + 2).copied()) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                let (h, l) = (hex(h).unwrap_or(0), hex(l).unwrap_or(0));
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, ..) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
