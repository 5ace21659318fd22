//! `webhook` endpoints: an HTTP POST of the envelope JSON; any 2xx answer
//! takes it.

use super::ATTEMPT_TIMEOUT;

pub async fn post(url: &str, envelope: &[u8]) -> Result<(), String> {
    let r = crate::http_client::request("POST", url, &[], Some(envelope), ATTEMPT_TIMEOUT)
        .await
        .map_err(|e| format!("{e:#}"))?;
    if (200..300).contains(&r.status) {
        Ok(())
    } else {
        Err(format!("POST {url}: HTTP {}", r.status))
    }
}
