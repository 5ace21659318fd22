//! The provisioning-service part of `hub.toml` (SPEC §13): `id_scope`,
//! `provisioning_host`, `[dps] allow`, `[[dps.hubs]]`, and the stable
//! weighted assignment of a registration id to one of those hubs.

use std::path::Path;

use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// File under `paths.state` holding the id scope made when hub.toml names none.
pub const ID_SCOPE_FILE: &str = "id_scope";

/// Who may register (`[dps] allow`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Allow {
    /// As a DPS group enrollment: any id holding a key derived from the
    /// enrollment key.
    #[default]
    Any,
    /// Only the ids of planned devices.
    Planned,
}

/// A hub registrations are assigned to (`[[dps.hubs]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignedHub {
    pub hostname: String,
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// `[dps]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDps {
    #[serde(default)]
    pub allow: Allow,
    #[serde(default)]
    pub hubs: Vec<AssignedHub>,
}

/// The provisioning settings of a hub.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dps {
    /// `id_scope`; absent: the one generated in `state/`.
    pub id_scope: Option<String>,
    /// `provisioning_host`; absent: the hub's hostname.
    pub provisioning_host: Option<String>,
    pub allow: Allow,
    /// Absent: this hub alone.
    pub hubs: Vec<AssignedHub>,
}

impl Dps {
    /// Check what was read from hub.toml; the message names the key.
    pub fn from_raw(
        id_scope: Option<String>,
        provisioning_host: Option<String>,
        raw: RawDps,
    ) -> Result<Dps, String> {
        if let Some(s) = &id_scope {
            check_id_scope(s)?;
        }
        if let Some(h) = &provisioning_host {
            if h.is_empty() || h.contains(['/', ' ', ';', ':']) {
                return Err(format!(
                    "`provisioning_host = \"{}\"` is not a host name; expected e.g. \"dps.lab.example\"",
                    h.escape_debug()
                ));
            }
        }
        for h in &raw.hubs {
            if h.hostname.is_empty() || h.hostname.contains(['/', ' ', ';']) {
                return Err(format!(
                    "`[[dps.hubs]] hostname = \"{}\"` is not a host name",
                    h.hostname.escape_debug()
                ));
            }
            if h.weight == 0 {
                return Err(format!(
                    "`[[dps.hubs]] hostname = \"{}\"` has weight 0; expected 1 or more \
                     (remove the hub to assign it nothing)",
                    h.hostname
                ));
            }
        }
        Ok(Dps {
            id_scope,
            provisioning_host,
            allow: raw.allow,
            hubs: raw.hubs,
        })
    }
}

/// An id scope is what DPS shows (`0ne` + 8 hex digits), or any short
/// identifier: it is the first segment of a registering device's username.
fn check_id_scope(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    ok.then_some(()).ok_or_else(|| {
        format!(
            "`id_scope = \"{}\"` is not an id scope; expected letters, digits, `-`, `_`, `.` \
             (DPS shows one such as \"0ne00ABCDEF\")",
            s.escape_debug()
        )
    })
}

/// The id scope kept in `state_dir` (made once, as DPS shows them:
/// `0ne` and 8 hex digits).
pub fn local_id_scope(state_dir: &Path) -> std::io::Result<String> {
    let path = state_dir.join(ID_SCOPE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if check_id_scope(s.trim()).is_ok() => return Ok(s.trim().to_string()),
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} does not hold an id scope; delete it to make a new one",
                    path.display()
                ),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut b = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let scope = format!("0ne{:08X}", u32::from_be_bytes(b));
    crate::secret_file::write_public(&path, scope.as_bytes())?;
    Ok(scope)
}

/// The hub of `hubs` a registration id is assigned to: a stable weighted
/// hash (rendezvous hashing), so every ztpd sharing one enrollment key and
/// one `[[dps.hubs]]` list assigns an id to the same hub, every time, and
/// adding a hub moves only the ids it takes. `None` when `hubs` is empty.
pub fn assign<'a>(hubs: &'a [AssignedHub], registration_id: &str) -> Option<&'a str> {
    hubs.iter()
        .map(|h| {
            let mut d = Sha256::new();
            d.update(h.hostname.to_ascii_lowercase().as_bytes());
            d.update([0]);
            d.update(registration_id.as_bytes());
            let x = u64::from_be_bytes(d.finalize()[..8].try_into().expect("8 bytes"));
            // A uniform draw in (0, 1]; score = -weight / ln(u) (weighted
            // rendezvous): the highest score wins with probability weight/total.
            let u = (x as f64 + 1.0) / (u64::MAX as f64 + 2.0);
            (-(f64::from(h.weight)) / u.ln(), h.hostname.as_str())
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, h)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(h: &str, weight: u32) -> AssignedHub {
        AssignedHub {
            hostname: h.into(),
            weight,
        }
    }

    #[test]
    fn assignment_is_stable_and_follows_the_weights() {
        let hubs = [hub("a.lab", 1), hub("b.lab", 3)];
        let mut on_b = 0;
        for i in 0..4000 {
            let id = format!("sn-{i}");
            let h = assign(&hubs, &id).unwrap();
            assert_eq!(assign(&hubs, &id), Some(h), "same id, same hub");
            // order of the list does not matter
            let rev = [hubs[1].clone(), hubs[0].clone()];
            assert_eq!(assign(&rev, &id), Some(h));
            on_b += usize::from(h == "b.lab");
        }
        assert!((2800..3200).contains(&on_b), "{on_b} of 4000 on the 3x hub");
        // a new hub takes ids only from the others, never moves them between them
        let more = [hub("a.lab", 1), hub("b.lab", 3), hub("c.lab", 1)];
        for i in 0..500 {
            let id = format!("sn-{i}");
            let after = assign(&more, &id).unwrap();
            assert!(after == "c.lab" || Some(after) == assign(&hubs, &id));
        }
        assert_eq!(assign(&[], "x"), None);
    }

    #[test]
    fn bad_settings_name_the_key() {
        let e = Dps::from_raw(Some("a b".into()), None, RawDps::default()).unwrap_err();
        assert!(e.contains("id_scope"), "{e}");
        let e = Dps::from_raw(None, Some("h:1".into()), RawDps::default()).unwrap_err();
        assert!(e.contains("provisioning_host"), "{e}");
        let raw = RawDps {
            hubs: vec![hub("a", 0)],
            ..RawDps::default()
        };
        let e = Dps::from_raw(None, None, raw).unwrap_err();
        assert!(e.contains("weight 0"), "{e}");
    }

    #[test]
    fn a_local_id_scope_is_made_once() {
        let d = tempfile::tempdir().unwrap();
        let s = local_id_scope(d.path()).unwrap();
        assert!(s.starts_with("0ne") && s.len() == 11, "{s}");
        assert_eq!(local_id_scope(d.path()).unwrap(), s);
    }
}
