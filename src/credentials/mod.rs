//! Device credentials (SPEC §6): the hub settings and enrollment key, the
//! per-device key derivation (Azure DPS group enrollment), SAS tokens, and
//! the `device_credentials/` store (JSON files + history CSV).
//!
//! Keys are secrets: the key types here never print themselves, and nothing
//! in this module logs a key.

pub mod connection_string;
pub mod derive;
pub mod dps;
pub mod function;
pub mod hub;
pub mod identity_writer;
pub mod keeper;
pub mod sas;
pub mod store;
pub use derive::{device_key, DeviceKey};
pub use hub::{EnrollmentKey, Hub};
pub use identity_writer::IdentityWriter;
pub use store::{CredentialFile, Store};

/// Longest device id accepted; Azure IoT Hub allows 128 characters.
pub const MAX_DEVICE_ID_LEN: usize = 128;

/// Check a device id: `[A-Za-z0-9._-]+` (SPEC §3), since it becomes a file name.
pub fn validate_device_id(id: &str) -> Result<(), String> {
    use crate::identifier::{check, IdentifierError};
    if id.len() > MAX_DEVICE_ID_LEN {
        return Err(format!(
            "device id is {} characters long; at most {MAX_DEVICE_ID_LEN} are allowed",
            id.len()
        ));
    }
    match check(id) {
        Ok(()) => Ok(()),
        Err(IdentifierError::Empty) => {
            Err("a device id cannot be empty; expected [A-Za-z0-9._-]+".into())
        }
        Err(IdentifierError::Char(c)) => Err(format!(
            "device id `{}` contains {c:?}; expected only letters, digits, `.`, `_` and `-`",
            id.escape_debug()
        )),
        Err(IdentifierError::Dots) => Err(format!(
            "device id `{id}` is not a file name: `.` and `..` name directories"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_are_file_name_safe() {
        assert!(validate_device_id("JPE12345678").is_ok());
        assert!(validate_device_id("sn-007.888_abc").is_ok());
        assert!(validate_device_id("").is_err());
        assert!(validate_device_id("../etc/passwd").is_err());
        assert!(validate_device_id("a b").is_err());
        assert!(validate_device_id("a/b").is_err());
        assert!(validate_device_id(&"x".repeat(129)).is_err());
        // `.` and `..` were accepted before the rule was shared; as file
        // names they would be `credentials/..json`.
        assert!(validate_device_id("a..b").is_ok());
        let dots = validate_device_id("..").unwrap_err();
        assert!(dots.contains("`.` and `..`"), "{dots}");
        assert!(validate_device_id(".").is_err());
        let non_ascii = validate_device_id("café").unwrap_err();
        assert!(non_ascii.contains("'é'"), "{non_ascii}");
    }
}
