//! Who may connect to the local hub: the pure decision, a function of (the
//! hub's view, CONNECT fields, now). Nothing here does I/O, so every rule is
//! unit-tested.
//!
//! Two identities get in (SPEC §9, §13):
//! - a registering device (the provisioning service): client id =
//!   registration id, username `<id_scope>/registrations/<id>/api-version=<v>`
//!   (further `&key=value` accepted), password a SAS token over
//!   `<id_scope>/registrations/<id>` signed with the key derived for that id,
//!   and under `[dps] allow = "planned"` only a planned id;
//! - a device: client id = device id, username
//!   `<hub hostname>/<device_id>/?api-version=<v>[&key=value...]` (the Azure
//!   IoT device SDKs add `DeviceClientType` and others), password a valid,
//!   unexpired SAS token for `<hostname>/devices/<device_id>` signed with
//!   that device's key derived from the hub's enrollment key.
//!
//! Anyone else is refused, with a reason for the log that never quotes the
//! token.

use super::view::HubView;
use crate::credentials::sas::SasError;

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
    #[error(
        "registration `{registration_id}` is for id scope `{found}`, this hub's is `{expected}`"
    )]
    WrongScope {
        registration_id: String,
        expected: String,
        found: String,
    },
    #[error("registration `{0}`: not a planned device, and [dps] allow = \"planned\"")]
    NotPlanned(String),
}

impl Refused {
    /// Refusals CONNACK answers with "identifier rejected" (the rest:
    /// "bad user name or password", or "server unavailable" without a hub).
    pub fn bad_client_id(&self) -> bool {
        matches!(
            self,
            Refused::ClientIdMismatch { .. } | Refused::BadDeviceId { .. }
        )
    }
}

/// Who a connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// A device of the hub: telemetry, twin, methods, devicebound.
    Device(String),
    /// A device registering with the provisioning service.
    Registration(String),
}

impl Identity {
    /// The device or registration id.
    pub fn id(&self) -> &str {
        match self {
            Identity::Device(id) | Identity::Registration(id) => id,
        }
    }
}

/// The CONNECT fields the decision looks at.
#[derive(Clone, Copy)]
pub struct Login<'a> {
    pub client_id: &'a str,
    pub username: &'a str,
    pub password: &'a str,
}

/// The one decision: who is let in, or why not.
pub fn decide(view: &HubView, login: Login<'_>, now: u64) -> Result<Identity, Refused> {
    if login.username.is_empty() {
        return Err(Refused::Anonymous);
    }
    if let Some((scope, id)) = split_registration_username(login.username) {
        return decide_registration(view, login, (scope, id), now).map(Identity::Registration);
    }
    let Some((host, device_id)) = split_device_username(login.username) else {
        return Err(Refused::UnknownUser(login.username.to_string()));
    };
    check_id(login, device_id)?;
    let Some(hub) = view.hub.as_deref() else {
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
    Ok(Identity::Device(device_id.to_string()))
}

/// The id is an identifier, and the client id is that id.
fn check_id(login: Login<'_>, id: &str) -> Result<(), Refused> {
    if let Err(reason) = crate::credentials::validate_device_id(id) {
        return Err(Refused::BadDeviceId {
            device_id: id.to_string(),
            reason,
        });
    }
    if login.client_id != id {
        return Err(Refused::ClientIdMismatch {
            client_id: login.client_id.to_string(),
            device_id: id.to_string(),
        });
    }
    Ok(())
}

fn decide_registration(
    view: &HubView,
    login: Login<'_>,
    (scope, id): (&str, &str),
    now: u64,
) -> Result<String, Refused> {
    check_id(login, id)?;
    let Some(hub) = view.hub.as_deref() else {
        return Err(Refused::NoHub {
            device_id: id.to_string(),
        });
    };
    if !scope.eq_ignore_ascii_case(&view.id_scope) {
        return Err(Refused::WrongScope {
            registration_id: id.to_string(),
            expected: view.id_scope.clone(),
            found: scope.to_string(),
        });
    }
    crate::credentials::sas::verify_registration(login.password, hub, &view.id_scope, id, now)
        .map_err(|error| Refused::Sas {
            device_id: id.to_string(),
            error,
        })?;
    if !view.may_register(id) {
        return Err(Refused::NotPlanned(id.to_string()));
    }
    Ok(id.to_string())
}

/// `<id_scope>/registrations/<id>/api-version=<v>[&...]` -> (id_scope, id).
fn split_registration_username(username: &str) -> Option<(&str, &str)> {
    let mut parts = username.splitn(4, '/');
    let scope = parts.next().filter(|h| !h.is_empty())?;
    if parts.next()? != "registrations" {
        return None;
    }
    let id = parts.next()?;
    let query = parts.next()?.strip_prefix("api-version=")?;
    let version = query.split('&').next().unwrap_or_default();
    (!version.is_empty()).then_some((scope, id))
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
    use crate::credentials::{EnrollmentKey, Hub};
    use std::sync::Arc;

    const NOW: u64 = 1_800_000_000;

    fn hub() -> Hub {
        Hub {
            hostname: "localhost".into(),
            broker: "mqtt://127.0.0.1:1883".into(),
            key: EnrollmentKey::generate(),
            source: HubSource::Local("state/hub.key".into()),
            dps: Default::default(),
        }
    }

    fn view(h: &Hub) -> HubView {
        HubView {
            hub: Some(Arc::new(h.clone())),
            id_scope: "0ne0000ABCD".into(),
            ..HubView::default()
        }
    }

    fn user(id: &str) -> String {
        format!("localhost/{id}/?api-version=2021-04-12")
    }

    /// `id` logging in with `username` and `password` (client id = `id`).
    fn login(v: &HubView, id: &str, username: &str, password: &str) -> Result<Identity, Refused> {
        let l = Login {
            client_id: id,
            username,
            password,
        };
        decide(v, l, NOW)
    }

    fn device(h: &Hub, id: &str, password: &str) -> Result<Identity, Refused> {
        login(&view(h), id, &user(id), password)
    }

    #[test]
    fn a_device_with_its_own_valid_token_is_accepted() {
        let h = hub();
        let t = h.sas_token("dev1", NOW + 60);
        assert_eq!(device(&h, "dev1", &t), Ok(Identity::Device("dev1".into())));
        // hub host names compare case-insensitively, as DNS does
        let u = "LOCALHOST/dev1/?api-version=2021-04-12&DeviceClientType=x";
        let login = Login {
            client_id: "dev1",
            username: u,
            password: &t,
        };
        assert!(decide(&view(&h), login, NOW).is_ok());
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
            &view(&h),
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
            &view(&h),
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
            let r = decide(&view(&h), login(u), NOW);
            assert!(matches!(r, Err(Refused::UnknownUser(_))), "{u}: {r:?}");
        }
        let r = decide(&view(&h), login("localhost/a b/?api-version=1"), NOW);
        assert!(matches!(r, Err(Refused::BadDeviceId { .. })), "{r:?}");
    }

    #[test]
    fn without_a_hub_no_device_gets_in() {
        let h = hub();
        let t = h.sas_token("dev1", NOW + 60);
        let u = user("dev1");
        let r = decide(
            &HubView::default(),
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
            decide(&view(&h), login("bridge", "s3cret-bridge"), NOW),
            Err(Refused::UnknownUser("bridge".into()))
        );
        assert_eq!(
            decide(&view(&h), login("", ""), NOW),
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
                &view(&h),
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

    /// A registration token as the Azure SDK makes it: `sr` the
    /// url-encoded `<scope>/registrations/<id>`, optionally `skn=registration`.
    fn registration_token(h: &Hub, scope: &str, id: &str, skn: bool) -> String {
        use base64::Engine;
        let key = crate::credentials::device_key(&h.key, id);
        let sr = crate::credentials::sas::url_encode(&format!("{scope}/registrations/{id}"));
        let exp = NOW + 3600;
        let sig = base64::engine::general_purpose::STANDARD.encode(
            crate::credentials::derive::hmac_sha256(key.raw(), format!("{sr}\n{exp}").as_bytes()),
        );
        let sig = crate::credentials::sas::url_encode(&sig);
        let skn = if skn { "&skn=registration" } else { "" };
        format!("SharedAccessSignature sr={sr}&sig={sig}&se={exp}{skn}")
    }

    fn register(v: &HubView, scope: &str, id: &str, password: &str) -> Result<Identity, Refused> {
        let u = format!("{scope}/registrations/{id}/api-version=2019-03-31&ClientVersion=x");
        login(v, id, &u, password)
    }

    #[test]
    fn a_registration_with_a_derived_key_is_accepted_with_or_without_skn() {
        let h = hub();
        let v = view(&h);
        for skn in [false, true] {
            let t = registration_token(&h, "0ne0000ABCD", "sn-1", skn);
            assert_eq!(
                register(&v, "0ne0000ABCD", "sn-1", &t),
                Ok(Identity::Registration("sn-1".into()))
            );
        }
        // another enrollment key's derived key is refused
        let other = Hub {
            key: EnrollmentKey::generate(),
            ..h.clone()
        };
        let forged = registration_token(&other, "0ne0000ABCD", "sn-1", false);
        assert!(matches!(
            register(&v, "0ne0000ABCD", "sn-1", &forged),
            Err(Refused::Sas {
                error: SasError::BadSignature,
                ..
            })
        ));
        // a hub token is not a registration token
        let device_token = h.sas_token("sn-1", NOW + 60);
        assert!(register(&v, "0ne0000ABCD", "sn-1", &device_token).is_err());
        let t = registration_token(&h, "0ne0000FFFF", "sn-1", false);
        assert!(matches!(
            register(&v, "0ne0000FFFF", "sn-1", &t),
            Err(Refused::WrongScope { .. })
        ));
        let t = registration_token(&h, "0ne0000ABCD", "a b", false);
        assert!(matches!(
            register(&v, "0ne0000ABCD", "a b", &t),
            Err(Refused::BadDeviceId { .. })
        ));
    }

    #[test]
    fn allow_planned_admits_only_planned_ids() {
        let mut h = hub();
        h.dps.allow = crate::credentials::dps::Allow::Planned;
        let mut v = view(&h);
        v.planned.insert("sn-1".into(), Default::default());
        let ok = registration_token(&h, "0ne0000ABCD", "sn-1", false);
        assert!(register(&v, "0ne0000ABCD", "sn-1", &ok).is_ok());
        let t = registration_token(&h, "0ne0000ABCD", "sn-2", false);
        assert_eq!(
            register(&v, "0ne0000ABCD", "sn-2", &t),
            Err(Refused::NotPlanned("sn-2".into()))
        );
    }
}
