//! The one place telemetry asks for a SAS token. SAS signing and device-key
//! handling belong to the credentials module (SPEC §6); this file only
//! adapts its API to what the simulator has (a parsed connection string).

use std::time::Duration;

use crate::credentials::connection_string::ConnectionString;
use crate::credentials::{sas, DeviceKey};

/// `SharedAccessSignature sr=..&sig=..&se=..` for this device, valid `ttl`.
pub fn password(c: &ConnectionString, ttl: Duration) -> Result<String, String> {
    let key = DeviceKey::from_base64(&c.shared_access_key)
        .map_err(|e| format!("SharedAccessKey of {}: {e}", c.device_id))?;
    let now = crate::clock::unix_now();
    Ok(sas::generate(
        &c.host_name,
        &c.device_id,
        &key,
        now.saturating_add(ttl.as_secs()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_verifies_with_the_device_key() {
        let key = "Jsm0lyGpjaVYVP2g3FnmnmG9dI/9qU24wNoykUmermc=";
        let c = ConnectionString {
            host_name: "hub.example".into(),
            device_id: "sn-1".into(),
            shared_access_key: key.into(),
        };
        let token = password(&c, Duration::from_secs(60)).unwrap();
        let k = DeviceKey::from_base64(key).unwrap();
        let now = crate::clock::unix_now();
        sas::verify(&token, "hub.example", "sn-1", &k, now).unwrap();
        assert!(sas::verify(&token, "hub.example", "sn-2", &k, now).is_err());
        let bad = ConnectionString {
            shared_access_key: "not base64!".into(),
            ..c
        };
        assert!(password(&bad, Duration::from_secs(60)).is_err());
    }
}
