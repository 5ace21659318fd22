//! Per-device keys the Azure DPS group-enrollment way:
//! `base64(HMAC-SHA256(base64decode(enrollment_key), device_id))`, so one
//! leaked credential file exposes one device only.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::hub::EnrollmentKey;

type HmacSha256 = Hmac<Sha256>;

/// A device's symmetric key (base64 text, as in `SharedAccessKey=`).
/// Debug and Display never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKey {
    base64: String,
    raw: Vec<u8>,
}

impl DeviceKey {
    /// The key as it appears in the connection string.
    pub fn expose_base64(&self) -> &str {
        &self.base64
    }

    /// The decoded key bytes, the HMAC key of SAS signatures.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Read a key from a connection string's `SharedAccessKey`. Derived keys
    /// are 32 bytes; Azure accepts symmetric keys of 16 to 64 bytes.
    pub fn from_base64(text: &str) -> Result<DeviceKey, String> {
        let raw = STANDARD
            .decode(text.trim())
            .map_err(|_| "the device key is not valid base64".to_string())?;
        if !(16..=64).contains(&raw.len()) {
            return Err(format!(
                "the device key decodes to {} bytes; expected 16 to 64",
                raw.len()
            ));
        }
        Ok(DeviceKey {
            base64: STANDARD.encode(&raw),
            raw,
        })
    }
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(<redacted>)")
    }
}

impl std::fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted device key>")
    }
}

/// Derive the key of `device_id` from the hub's enrollment key.
pub fn device_key(enrollment: &EnrollmentKey, device_id: &str) -> DeviceKey {
    let raw = hmac_sha256(enrollment.raw(), device_id.as_bytes());
    DeviceKey {
        base64: STANDARD.encode(raw),
        raw: raw.to_vec(),
    }
}

/// HMAC-SHA256; any key length is valid for HMAC.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Microsoft's published DPS group-enrollment vector (TESTING.md).
    #[test]
    fn matches_microsoft_dps_vector() {
        let group = EnrollmentKey::from_base64(
            "8isrFI1sGsIlvvFSSFRiMfCNzv21fjbE/+ah/lSh3lF8e2YG1Te7w1KpZhJFFXJrqYKi9yegxkqIChbqOS9Egw==",
        )
        .unwrap();
        let key = device_key(&group, "sn-007-888-abc-mac-a1-b2-c3-d4-e5-f6");
        assert_eq!(
            key.expose_base64(),
            "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc="
        );
    }

    #[test]
    fn each_device_gets_its_own_key_and_it_never_prints() {
        let group = EnrollmentKey::generate();
        let a = device_key(&group, "dev-a");
        let b = device_key(&group, "dev-b");
        assert_ne!(a, b);
        assert_eq!(a, device_key(&group, "dev-a"));
        assert!(!format!("{a:?} {a}").contains(a.expose_base64()));
        let back = DeviceKey::from_base64(a.expose_base64()).unwrap();
        assert_eq!(back, a);
        assert!(DeviceKey::from_base64("AAAA").is_err());
    }
}
