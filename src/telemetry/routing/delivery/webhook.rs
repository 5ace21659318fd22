//! `webhook` endpoints: an HTTP POST of the envelope JSON; any 2xx answer
//! takes it. A URL's `user:password@` goes as Basic authorization, and
//! what is logged shows the URL redacted (no password, no query values).

use super::ATTEMPT_TIMEOUT;
use crate::telemetry::routing::load::{basic_auth, redact_url, without_userinfo};

pub async fn post(url: &str, envelope: &[u8]) -> Result<(), String> {
    let plain = without_userinfo(url);
    let auth = basic_auth(url);
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let shown = || redact_url(url);
    let r = crate::http_client::request("POST", &plain, &headers, Some(envelope), ATTEMPT_TIMEOUT)
        .await
        .map_err(|e| format!("{e:#}").replace(&plain, &shown()))?;
    if (200..300).contains(&r.status) {
        Ok(())
    } else {
        Err(format!("POST {}: HTTP {}", shown(), r.status))
    }
}

#[cfg(test)]
mod tests {
    use crate::telemetry::routing::load::{basic_auth, without_userinfo};

    #[test]
    fn userinfo_becomes_basic_authorization_and_leaves_the_url() {
        let url = "http://hook:s3cret@127.0.0.1:9000/ingest?code=k";
        assert_eq!(without_userinfo(url), "http://127.0.0.1:9000/ingest?code=k");
        // base64("hook:s3cret")
        assert_eq!(basic_auth(url).as_deref(), Some("Basic aG9vazpzM2NyZXQ="));
        assert_eq!(basic_auth("http://127.0.0.1/x"), None);
    }
}
