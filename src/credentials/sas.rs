//! Azure IoT Hub SAS tokens for devices (SPEC §9):
//! `SharedAccessSignature sr=<url-encoded hub/devices/id>&sig=<url-encoded
//! base64 sig>&se=<expiry>`, where sig = HMAC-SHA256(device key,
//! `<url-encoded resource>\n<expiry>`).
//!
//! The embedded broker and the files access hook call [`verify`].

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::derive::{device_key, hmac_sha256, DeviceKey};
use super::hub::Hub;

const PREFIX: &str = "SharedAccessSignature ";
/// Longest lifetime a token may claim: its `se` at most this far after the
/// moment it is checked. Without a cap, `se = 2^64-1` never expires, so a
/// leaked token would be good forever; Azure's SDKs ask for an hour, and a
/// device that signs its own tokens for a year still fits.
pub const MAX_TOKEN_LIFETIME_SECS: u64 = 365 * 24 * 3600;
/// Longest token accepted: a resource of a 128-character id on a long hub
/// name, a 44-character signature and some extra fields fit well below it.
pub const MAX_TOKEN_LEN: usize = 2048;

/// The resource a device token grants: `<hostname>/devices/<device_id>`.
pub fn resource(hostname: &str, device_id: &str) -> String {
    format!("{hostname}/devices/{device_id}")
}

/// Make a token for `device_id` valid until `expiry` (Unix seconds).
pub fn generate(hostname: &str, device_id: &str, key: &DeviceKey, expiry: u64) -> String {
    let sr = url_encode(&resource(hostname, device_id));
    let sig = STANDARD.encode(hmac_sha256(key.raw(), format!("{sr}\n{expiry}").as_bytes()));
    format!("{PREFIX}sr={sr}&sig={}&se={expiry}", url_encode(&sig))
}

impl Hub {
    /// A token for `device_id` on this hub, valid until `expiry` (Unix seconds).
    pub fn sas_token(&self, device_id: &str, expiry: u64) -> String {
        generate(
            &self.hostname,
            device_id,
            &device_key(&self.key, device_id),
            expiry,
        )
    }

    /// Check a device's token against this hub: the embedded broker's and the
    /// files access hook's single entry point.
    pub fn verify_sas(&self, token: &str, device_id: &str, now: u64) -> Result<(), SasError> {
        verify(
            token,
            &self.hostname,
            device_id,
            &device_key(&self.key, device_id),
            now,
        )
    }
}

/// Why a token was refused. Messages never include the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SasError {
    #[error("malformed SAS token: {0}")]
    Malformed(String),
    #[error("SAS token is for `{found}`, not `{expected}`")]
    WrongResource { expected: String, found: String },
    #[error("SAS token signature does not match this device's key")]
    BadSignature,
    #[error("SAS token expired at {expiry} (now {now})")]
    Expired { expiry: u64, now: u64 },
    #[error(
        "SAS token expires at {expiry}, more than {max_days} days from now ({now}): \
         sign tokens with a shorter lifetime"
    )]
    TooLong {
        expiry: u64,
        now: u64,
        max_days: u64,
    },
}

/// A token split into its fields; `sr_raw` is the resource exactly as sent
/// (the signed text), `resource` its decoded form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub sr_raw: String,
    pub resource: String,
    pub signature: Vec<u8>,
    pub expiry: u64,
}

/// Split a token into its fields. Field order is free; unknown fields
/// (`skn`) are ignored; each known one must appear once.
pub fn parse(token: &str) -> Result<Parsed, SasError> {
    let bad = |m: &str| SasError::Malformed(m.to_string());
    if token.len() > MAX_TOKEN_LEN {
        return Err(bad("longer than 2048 bytes"));
    }
    // The scheme is case-insensitive (RFC 7235 §2.1), as Azure's is.
    let token = token.trim();
    let body = token
        .get(..PREFIX.len())
        .filter(|scheme| scheme.eq_ignore_ascii_case(PREFIX))
        .map(|_| &token[PREFIX.len()..])
        .ok_or_else(|| bad("expected it to start with `SharedAccessSignature `"))?;
    let (mut sr, mut sig, mut se) = (None, None, None);
    for field in body.split('&') {
        let (name, value) = field
            .split_once('=')
            .ok_or_else(|| bad("expected `name=value` fields separated by `&`"))?;
        let slot = match name {
            "sr" => &mut sr,
            "sig" => &mut sig,
            "se" => &mut se,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(SasError::Malformed(format!("`{name}` appears twice")));
        }
    }
    let sr_raw = sr.ok_or_else(|| bad("no `sr` (resource) field"))?;
    let sig = sig.ok_or_else(|| bad("no `sig` field"))?;
    let se = se.ok_or_else(|| bad("no `se` (expiry) field"))?;
    let resource = url_decode(sr_raw).ok_or_else(|| bad("`sr` is not valid URL encoding"))?;
    let sig_text = url_decode(sig).ok_or_else(|| bad("`sig` is not valid URL encoding"))?;
    let signature = STANDARD
        .decode(sig_text)
        .map_err(|_| bad("`sig` is not base64"))?;
    let expiry = se
        .parse()
        .map_err(|_| bad("`se` is not a number of seconds since 1970"))?;
    Ok(Parsed {
        sr_raw: sr_raw.to_string(),
        resource,
        signature,
        expiry,
    })
}

/// Accept `token` only if it grants exactly `<hostname>/devices/<device_id>`,
/// is signed with `key` and expires after `now` (Unix seconds).
pub fn verify(
    token: &str,
    hostname: &str,
    device_id: &str,
    key: &DeviceKey,
    now: u64,
) -> Result<(), SasError> {
    verify_resource(token, &resource(hostname, device_id), key, now)
}

/// The resource a registration token grants (SPEC §13):
/// `<id_scope>/registrations/<registration_id>`.
pub fn registration_resource(id_scope: &str, registration_id: &str) -> String {
    format!("{id_scope}/registrations/{registration_id}")
}

/// Accept a provisioning token of `registration_id` (with or without
/// `skn=registration`), signed with its key derived from `hub`'s enrollment key.
pub fn verify_registration(
    token: &str,
    hub: &Hub,
    id_scope: &str,
    registration_id: &str,
    now: u64,
) -> Result<(), SasError> {
    let key = device_key(&hub.key, registration_id);
    verify_resource(
        token,
        &registration_resource(id_scope, registration_id),
        &key,
        now,
    )
}

/// Accept `token` only if it grants exactly `expected`, is signed with
/// `key` and expires after `now`.
fn verify_resource(token: &str, expected: &str, key: &DeviceKey, now: u64) -> Result<(), SasError> {
    let t = parse(token)?;
    let expected = expected.to_string();
    if !same_resource(&t.resource, &expected) {
        return Err(SasError::WrongResource {
            expected,
            found: t.resource,
        });
    }
    // The signed text is the resource as the client encoded it.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.raw()).expect("HMAC accepts keys of any length");
    mac.update(format!("{}\n{}", t.sr_raw, t.expiry).as_bytes());
    mac.verify_slice(&t.signature)
        .map_err(|_| SasError::BadSignature)?;
    if t.expiry <= now {
        return Err(SasError::Expired {
            expiry: t.expiry,
            now,
        });
    }
    if t.expiry - now > MAX_TOKEN_LIFETIME_SECS {
        return Err(SasError::TooLong {
            expiry: t.expiry,
            now,
            max_days: MAX_TOKEN_LIFETIME_SECS / 86_400,
        });
    }
    Ok(())
}

/// Host names compare case-insensitively (DNS); the device id part exactly
/// (IoT Hub device ids are case-sensitive).
fn same_resource(found: &str, expected: &str) -> bool {
    match (found.split_once('/'), expected.split_once('/')) {
        (Some((fh, fp)), Some((eh, ep))) => fh.eq_ignore_ascii_case(eh) && fp == ep,
        _ => false,
    }
}

/// Percent-encode everything but RFC 3986 unreserved characters, as Azure's
/// SDKs do (`/` -> `%2F`, `=` -> `%3D`, `+` -> `%2B`).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3 / 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decode `%XX` escapes (either case). `+` stays `+`: a client that forgot to
/// encode the signature's `+` still gets the right bytes.
pub fn url_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::{device_key, EnrollmentKey};

    const HUB: &str = "myhub.azure-devices.net";
    const NOW: u64 = 1_800_000_000;

    fn keys() -> (DeviceKey, DeviceKey) {
        let group = EnrollmentKey::generate();
        (device_key(&group, "dev1"), device_key(&group, "dev2"))
    }

    #[test]
    fn token_has_azure_shape() {
        let (k, _) = keys();
        let t = generate(HUB, "dev1", &k, NOW + 3600);
        let rest = t.strip_prefix("SharedAccessSignature sr=").unwrap();
        assert!(
            rest.starts_with("myhub.azure-devices.net%2Fdevices%2Fdev1&sig="),
            "{t}"
        );
        assert!(t.ends_with(&format!("&se={}", NOW + 3600)), "{t}");
        let sig = rest
            .split("&sig=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap();
        assert!(
            !sig.contains(['+', '/', '=']),
            "signature not url-encoded: {sig}"
        );
    }

    /// Independent check of the signed text against Azure's documented
    /// recipe, with a fixed key: HMAC over `<encoded sr>\n<se>`.
    #[test]
    fn signature_is_over_encoded_resource_and_expiry() {
        let k = DeviceKey::from_base64("Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=").unwrap();
        let t = generate("h.net", "d", &k, 1000);
        let p = parse(&t).unwrap();
        assert_eq!(p.sr_raw, "h.net%2Fdevices%2Fd");
        assert_eq!(p.resource, "h.net/devices/d");
        let mut mac = Hmac::<Sha256>::new_from_slice(k.raw()).unwrap();
        mac.update(b"h.net%2Fdevices%2Fd\n1000");
        assert_eq!(p.signature, mac.finalize().into_bytes().to_vec());
    }

    #[test]
    fn valid_token_verifies() {
        let (k, _) = keys();
        let t = generate(HUB, "dev1", &k, NOW + 60);
        assert_eq!(verify(&t, HUB, "dev1", &k, NOW), Ok(()));
        assert_eq!(
            verify(&t, "MYHUB.azure-devices.net", "dev1", &k, NOW),
            Ok(())
        );
    }

    #[test]
    fn wrong_key_is_refused() {
        let (k1, k2) = keys();
        let t = generate(HUB, "dev1", &k2, NOW + 60);
        assert_eq!(
            verify(&t, HUB, "dev1", &k1, NOW),
            Err(SasError::BadSignature)
        );
    }

    #[test]
    fn expired_is_refused() {
        let (k, _) = keys();
        let t = generate(HUB, "dev1", &k, NOW);
        assert_eq!(
            verify(&t, HUB, "dev1", &k, NOW),
            Err(SasError::Expired {
                expiry: NOW,
                now: NOW
            })
        );
    }

    #[test]
    fn other_device_is_refused_even_with_its_own_valid_token() {
        let (k1, k2) = keys();
        let t2 = generate(HUB, "dev2", &k2, NOW + 60);
        assert!(matches!(
            verify(&t2, HUB, "dev1", &k1, NOW),
            Err(SasError::WrongResource { .. })
        ));
        assert!(matches!(
            verify(&t2, "otherhub.azure-devices.net", "dev2", &k2, NOW),
            Err(SasError::WrongResource { .. })
        ));
        assert!(matches!(
            verify(&t2, HUB, "DEV2", &k2, NOW),
            Err(SasError::WrongResource { .. })
        ));
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let (k, _) = keys();
        let t = generate(HUB, "dev1", &k, NOW + 60);
        // Extending the expiry invalidates the signature.
        let later = t.replace(&format!("se={}", NOW + 60), &format!("se={}", NOW + 6000));
        assert_eq!(
            verify(&later, HUB, "dev1", &k, NOW),
            Err(SasError::BadSignature)
        );
        // Pointing it at another device is caught as a resource mismatch.
        let other = t.replace("dev1", "dev2");
        assert!(verify(&other, HUB, "dev2", &k, NOW).is_err());
        // A flipped signature character.
        let sig_at = t.find("&sig=").unwrap() + 5;
        let mut bytes = t.clone().into_bytes();
        bytes[sig_at] = if bytes[sig_at] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert!(verify(&flipped, HUB, "dev1", &k, NOW).is_err());
    }

    #[test]
    fn malformed_tokens_say_what_is_wrong() {
        let (k, _) = keys();
        for (t, want) in [
            ("", "start with"),
            ("Bearer abc", "start with"),
            ("SharedAccessSignature sr=a", "no `sig`"),
            ("SharedAccessSignature sr=a&sig=AA==&se=x", "`se`"),
            ("SharedAccessSignature sr=a&sig=%ZZ&se=1", "URL encoding"),
            ("SharedAccessSignature sr=a&sr=b&sig=AA==&se=1", "twice"),
            ("SharedAccessSignature garbage", "name=value"),
        ] {
            match verify(t, HUB, "dev1", &k, NOW) {
                Err(SasError::Malformed(m)) => assert!(m.contains(want), "{t}: {m}"),
                other => panic!("{t}: {other:?}"),
            }
        }
        let long = format!("SharedAccessSignature sr={}", "a".repeat(MAX_TOKEN_LEN));
        assert!(matches!(parse(&long), Err(SasError::Malformed(_))));
    }

    #[test]
    fn hub_helpers_sign_and_verify_with_the_derived_key() {
        let hub = Hub {
            hostname: HUB.into(),
            broker: "mqtt://127.0.0.1:1883".into(),
            key: EnrollmentKey::generate(),
            source: crate::credentials::hub::HubSource::Local("k".into()),
            dps: Default::default(),
        };
        let t = hub.sas_token("dev1", NOW + 60);
        assert_eq!(hub.verify_sas(&t, "dev1", NOW), Ok(()));
        let k = device_key(&hub.key, "dev1");
        assert_eq!(verify(&t, HUB, "dev1", &k, NOW), Ok(()));
        assert!(hub.verify_sas(&t, "dev2", NOW).is_err());
        let other = Hub {
            key: EnrollmentKey::generate(),
            ..hub.clone()
        };
        assert_eq!(
            other.verify_sas(&t, "dev1", NOW),
            Err(SasError::BadSignature)
        );
    }

    #[test]
    fn url_encoding_round_trips() {
        let s = "a/b=c+d e%~._-";
        assert_eq!(url_encode(s), "a%2Fb%3Dc%2Bd%20e%25~._-");
        assert_eq!(url_decode(&url_encode(s)).unwrap(), s);
        assert_eq!(url_decode("%2f").unwrap(), "/");
        assert!(url_decode("%4").is_none());
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_lifetimes_are_capped() {
        let key = DeviceKey::from_base64("Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=").unwrap();
        let now = 1_700_000_000;
        let t = generate("hub", "d1", &key, now + 60);
        let lower = t.replacen("SharedAccessSignature", "sharedaccesssignature", 1);
        assert_eq!(verify(&lower, "hub", "d1", &key, now), Ok(()));
        let forever = generate("hub", "d1", &key, u64::MAX);
        assert!(matches!(
            verify(&forever, "hub", "d1", &key, now),
            Err(SasError::TooLong { max_days: 365, .. })
        ));
        let edge = generate("hub", "d1", &key, now + MAX_TOKEN_LIFETIME_SECS);
        assert_eq!(verify(&edge, "hub", "d1", &key, now), Ok(()));
        let beyond = generate("hub", "d1", &key, now + MAX_TOKEN_LIFETIME_SECS + 1);
        assert!(verify(&beyond, "hub", "d1", &key, now).is_err());
    }
}
