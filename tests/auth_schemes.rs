//! Authorization headers (issue 15 defect 8): the scheme is case-insensitive
//! (RFC 7235), and a SAS token may not claim a lifetime beyond
//! `MAX_TOKEN_LIFETIME_SECS` (`se = 2^64-1` used to never expire).

mod support;

use std::time::Duration;

use support::curl::fetch;
use support::Daemon;
use ztpd::credentials::connection_string::ConnectionString;
use ztpd::credentials::sas::{self, MAX_TOKEN_LIFETIME_SECS};
use ztpd::credentials::DeviceKey;

const SENSOR: &str = "24c319455312bcd559b333c986024211";

fn status_with(d: &Daemon, auth: &str) -> u16 {
    let h = format!("Authorization: {auth}");
    fetch(&d.http_url("/api/v1/status"), &["-H", &h]).0
}

#[test]
fn the_bearer_scheme_is_case_insensitive() {
    let d = Daemon::start("good", "", &[]);
    let t = d.token();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_eq!(status_with(&d, &format!("{scheme} {t}")), 200, "{scheme}");
    }
    assert_eq!(status_with(&d, &format!("bearer  {t} ")), 200);
    assert_eq!(status_with(&d, "bearer wrong"), 401);
    assert_eq!(status_with(&d, &format!("Basic {t}")), 401);
    assert_eq!(status_with(&d, &format!("Bearer{t}")), 401);
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn sas_tokens_have_a_bounded_lifetime_and_any_case_scheme() {
    let d = Daemon::start("good", "", &[]);
    let path = d.path(&format!("device_credentials/device_{SENSOR}.json"));
    let cred: serde_json::Value =
        d.wait_for("the sensor's credential", Duration::from_secs(30), || {
            serde_json::from_slice(&std::fs::read(&path).ok()?).ok()
        });
    let c = ConnectionString::parse(cred["CONNECTION_STR_PUB"].as_str().unwrap()).unwrap();
    let key = DeviceKey::from_base64(&c.shared_access_key).unwrap();
    let url = d.http_url(&format!("/files/credentials/device_{SENSOR}.json"));
    let get = |token: &str| fetch(&url, &["-H", &format!("Authorization: {token}")]).0;
    let token = |se: u64| sas::generate(&c.host_name, SENSOR, &key, se);

    assert_eq!(get(&token(now() + 600)), 200);
    // Signed with the right key, but claiming to last (almost) forever.
    assert_eq!(get(&token(u64::MAX)), 403, "se = 2^64-1");
    assert_eq!(get(&token(now() + MAX_TOKEN_LIFETIME_SECS + 3600)), 403);
    assert_eq!(get(&token(now() + MAX_TOKEN_LIFETIME_SECS - 3600)), 200);
    assert_eq!(get(&token(now() - 1)), 403);
    let lower = token(now() + 600).replacen("SharedAccessSignature", "sharedaccesssignature", 1);
    assert_eq!(get(&lower), 200, "{lower}");
}
