//! `ztpd credentials create|regenerate` (SPEC §2, §6).

use std::process::ExitCode;

use rand::RngCore;
use sha1::{Digest, Sha1};

use super::EXIT_INVALID;
use crate::credentials::{function, hub, store::StoreError, Store};
use crate::settings::Resolved;

#[derive(Debug, clap::Subcommand)]
pub enum CredentialsCommand {
    /// Create one device credential (a device keeps its name if it had one).
    Create {
        /// The device id (factory serial), `[A-Za-z0-9._-]+`.
        #[arg(required_unless_present = "new", conflicts_with = "new")]
        device_id: Option<String>,
        /// Make a simulated device id (SHA-1 hex digest of random bytes).
        #[arg(long)]
        new: bool,
        /// Device function: `templates/device_function/<NAME>.toml`.
        #[arg(long, value_name = "NAME", default_value = "default")]
        function: String,
    },
    /// Rewrite every existing credential, keeping each device's name.
    Regenerate,
}

pub fn run(resolved: &Resolved, action: CredentialsCommand) -> ExitCode {
    let hub = match hub::load(resolved) {
        Ok(h) => h,
        Err(e) => return fail_invalid(&e.to_string()),
    };
    let store = Store::new(resolved.credentials_dir());
    let templates = resolved.templates_dir();
    match action {
        CredentialsCommand::Create {
            device_id,
            new,
            function: fname,
        } => {
            let id = match device_id {
                Some(id) if !new => id,
                _ => simulated_id(),
            };
            let function = match function::load(&templates, &fname) {
                Ok(f) => f,
                Err(e) => return fail_invalid(&e.to_string()),
            };
            match store.create(&hub, &id, function) {
                Ok(c) => {
                    println!(
                        "{}\tdevice_id={}\tdevice_name={}",
                        store.path_of(&c.device_id).display(),
                        c.device_id,
                        c.device_name
                    );
                    ExitCode::SUCCESS
                }
                Err(e @ StoreError::BadId(_)) => fail_invalid(&e.to_string()),
                Err(e) => fail(&e.to_string()),
            }
        }
        CredentialsCommand::Regenerate => {
            match store.regenerate_all(&hub, |n| function::load(&templates, n)) {
                Ok(r) => {
                    for (id, why) in &r.failed {
                        eprintln!("error: {id}: {why}");
                    }
                    println!(
                        "regenerated {} credentials in {}{}",
                        r.written.len(),
                        store.dir().display(),
                        if r.failed.is_empty() {
                            String::new()
                        } else {
                            format!("; {} left unchanged (see errors)", r.failed.len())
                        }
                    );
                    if r.failed.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => fail(&e.to_string()),
            }
        }
    }
}

/// A simulated device id: the SHA-1 hex digest of random bytes (prototype).
pub fn simulated_id() -> String {
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    Sha1::digest(seed)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn fail_invalid(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(EXIT_INVALID)
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    #[test]
    fn simulated_ids_are_sha1_hex_and_distinct() {
        let a = super::simulated_id();
        let b = super::simulated_id();
        assert_eq!(a.len(), 40);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
