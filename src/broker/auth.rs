//! Who may connect to the local hub: the pure decision, a function of (hub,
//! CONNECT fields, now). Nothing here does I/O, so every rule is unit-tested.
//!
//! A device only: client id = device id, username
//! `<hub hostname>/<device_id>/?api-version=<v>[&key=value...]` (the Azure
//! IoT device SDKs add `DeviceClientType` and others), password a valid,
//! unexpired SAS token for `<hostname>/devices/<device_id>` signed with that
//! device's key derived from the hub's enrollment key. Anyone else is
//! refused, with a reason for the log that never quotes the token.

use crate::credentials::sas::SasError;
use crate::credentials::Hub;

/// Why a client was refused. Display is safe to log: it names the client
/// and the rule, never a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("anonymous clients are not accepted: give the device's SAS token")]
    Anonymous,
    #[error("username `{0}` is not `<hub>/<device_id>/?api-version=...` (the local hub has no service accounts)")]
    UnknownUser(String),
    #[error("username is for hub `{found}`, this hub is `{expected}`")]
    WrongHub { expected: String, found: String },
    #[error("client id `{client_id}` differs from the device id `{device_id}` in the username")]
    ClientIdMismatch {
        client_id: String,
        device_id: String,
    },
    #[error("device `{device_id}`: {reason}")]
    BadDeviceId { device_id: String, reason: String },
    #[error("device `{device_id}`: no hub settings loaded, so no SAS token can be checked")]
    NoHub { device_id: String },
    #[error("device `{device_id}`: {error}")]
    Sas { device_id: String, error: SasError },
}

/// The CONNECT fields the decision looks at.
#[derive(Clone, Copy)]
pub struct Login<'a> {
    pub client_id: &'a str,
    pub username: &'a str,
    pub password: &'a str,
}

/// The one decision: the device id let in, or why not.
pub fn decide(hub: Option<&Hub>, login: Login<'_>, now: u64) -> Result<String, Refused> {
    if login.username.is_empty() {
        return Err(Refused::Anonymous);
    }
    let Some((host, device_id)) = split_device_username(login.username) else {
        return Err(Refused::UnknownUser(login.username.to_string()));
    };
    if let Err(reason) = crate::credentials::validate_device_id(device_id) {
        return Err(Refused::BadDeviceId {
            device_id: device_id.to_string(),
            reason,
        });
    }
    if login.client_id != device_id {
        return Err(Refused::ClientIdMismatch {
            client_id: login.client_id.to_string(),
            device_id: device_id.to_string(),
        });
    }
    let Some(hub) = hub else {
        return Err(Refused::NoHub {
            device_id: device_id.to_string(),
        });
    };
    if !host.eq_ignore_ascii_case(&hub.hostname) {
        return Err(Refused::WrongHub {
            expected: hub.hostname.clone(),
            found: host.to_string(),
        });
    }
    hub.verify_sas(login.password, device_id, now)
        .map_err(|error| Refused::Sas {
            device_id: device_id.to_string(),
            error,
        })?;
    Ok(device_id.to_string())
}

/// `<host>/<device_id>/?api-version=<v>[&...]` -> (host, device_id).
fn split_device_username(username: &str) -> Option<(&str, &str)> {
    let mut parts = username.splitn(3, '/');
    let host = parts.next().filter(|h| !h.is_empty())?;
    let device_id = parts.next()?;
    let query = parts.next()?.strip_prefix("?api-version=")?;
    let version = query.split('&').next().unwrap_or_default();
    (!version.is_empty()).then_some((host, device_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::hub::HubSource;
    use crate::credentials::EnrollmentKey;

    const NOW: u64 = 1_800_000_000;

    fn hub() -> Hub {
        Hub {
            hostname: "localhost".into(),
            broker: "mqtt://127.0.0.1:1883".into(),
            key: EnrollmentKey::generate(),
            source: HubSource::Local("state/hub.key".into()),
        }
    }

    fn user(id: &str) -> String {
        format!("localhost/{id}/?api-version=2021-04-12")
    }

    fn device(h: &Hub, id: &str, password: &str) -> Result<String, Refused> {
        let u = user(id);
        decide(
            Some(h),
            Login {
                client_id: id,
                username: &u,
                password,
            },
            NOW,
        )
    }

    #[test]
    fn a_device_with_its_own_valid_token_is_accepted() {
        let h = hub();
        let t = h.sas_token("dev1", NOW + 60);
        assert_eq!(device(&h, "dev1", &t), Ok("dev1".to_string()));
        // hub host names compare case-insensitively, as DNS does
        let u = "LOCALHOST/dev1/?api-version=2021-04-12&DeviceClientType=x";
        let login = Login {
            client_id: "dev1",
            username: u,
            password: &t,
        };
        assert!(decide(Some(&h), login, NOW).is_ok());
    }

    #[test]
    fn wrong_signature_expired_and_other_devices_tokens_are_refused() {
        let h = hub();
        let other_hub = Hub {
            key: EnrollmentKey::generate(),
            ..h.clone()
        };
        let forged = other_hub.sas_token("dev1", NOW + 60);
        assert!(matches!(
            device(&h, "dev1", &forged),
            Err(Refused::Sas {
                error: SasError::BadSignature,
                ..
            })
        ));
        let expired = h.sas_token("dev1", NOW);
        assert!(matches!(
            device(&h, "dev1", &expired),
            Err(Refused::Sas {
                error: SasError::Expired { .. },
                ..
            })
        ));
        let theirs = h.sas_token("dev2", NOW + 60);
        assert!(matches!(
            device(&h, "dev1", &theirs),
            Err(Refused::Sas {
                error: SasError::WrongResource { .. },
                ..
            })
        ));
        assert!(matches!(
            device(&h, "dev1", "not a token"),
            Err(Refused::Sas {
                error: SasError::Malformed(_),
                ..
            })
        ));
    }

    #[test]
    fn the_client_id_must_be_the_device_id() {
        let h = hub();
        let t = h.sas_token("dev1", NOW + 60);
        let u = user("dev1");
        let r = decide(
            Some(&h),
            Login {
                client_id: "dev2",
                username: &u,
                password: &t,
            },
            NOW,
        );
        assert!(matches!(r, Err(Refused::ClientIdMismatch { .. })), "{r:?}");
    }

    #[test]
    fn another_hub_and_malformed_usernames_are_refused() {
        let h = hub();
        let t = h.sas_token("dev1", NOW + 60);
        let login = |u: &'static str| Login {
            client_id: "dev1",
            username: u,
            password: "",
        };
        let r = decide(
            Some(&h),
            Login {
                password: &t,
                ..login("other.azure-devices.net/dev1/?api-version=2021-04-12")
            },
            NOW,
        );
        assert!(matches!(r, Err(Refused::WrongHub { .. })), "{r:?}");
        for u in [
            "localhost/dev1",
            "localhost/dev1/",
            "localhost/dev1/?api-version=",
            "/dev1/?api-version=1",
            "someone",
        ] {
            let r = decide(Some(&h), login(u), NOW);
            assert!(matches!(r, Err(Refused::UnknownUser(_))), "{u}: {r:?}");
        }
        let r = decide(Some(&h), login("localhost/a b/?api-version=1"), NOW);
        assert!(matches!(r, Err(Refused::BadDeviceId { .. })), "{r:?}");
    }

    #[test]
    fn without_a_hub_no_device_gets_in() {
        let h = hub();
        let t = h.sas_token("dev1", NOW + 60);
        let u = user("dev1");
        let r = decide(
            None,
            Login {
                client_id: "dev1",
                username: &u,
                password: &t,
            },
            NOW,
        );
        assert!(matches!(r, Err(Refused::NoHub { .. })), "{r:?}");
    }

    #[test]
    fn service_account_logins_and_anonymous_are_refused() {
        let h = hub();
        let login = |u: &'static str, p: &'static str| Login {
            client_id: "any-client",
            username: u,
            password: p,
        };
        assert_eq!(
            decide(Some(&h), login("bridge", "s3cret-bridge"), NOW),
            Err(Refused::UnknownUser("bridge".into()))
        );
        assert_eq!(
            decide(Some(&h), login("", ""), NOW),
            Err(Refused::Anonymous)
        );
    }

    #[test]
    fn refusals_never_quote_the_password() {
        let h = hub();
        let t = h.sas_token("dev2", NOW + 60);
        let sig = t.split("sig=").nth(1).unwrap().split('&').next().unwrap();
        let refusals = [
            device(&h, "dev1", &t).unwrap_err(),
            decide(
                Some(&h),
                Login {
                    client_id: "x",
                    username: "bridge",
                    password: "guess-123",
                },
                NOW,
            )
            .unwrap_err(),
        ];
        for r in refusals {
            let text = format!("{r} {r:?}");
            assert!(!text.contains(sig), "{text}");
            assert!(!text.contains("guess-123"), "{text}");
        }
    }
}
