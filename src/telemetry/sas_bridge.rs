//! The one place telemetry asks for a SAS token. SAS signing and device-key
//! handling belong to the credentials module (SPEC §6); this file only
//! adapts its API to what the simulator has (a parsed connection string).

use std::time::Duration;

use super::simulate::ConnectionString;

/// `SharedAccessSignature sr=..&sig=..&se=..` for this device, valid `ttl`.
pub fn password(c: &ConnectionString, ttl: Duration) -> Result<String, String> {
    // Until the credentials module is merged there is no SAS implementation
    // to call; a local anonymous broker ignores the password. Replaced by
    // `crate::credentials::sas::generate` at merge.
    let _ = (c, ttl);
    Ok(String::new())
}
