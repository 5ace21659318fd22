//! Service accounts of the embedded broker: `[broker] users` (password files
//! under `paths.state`, created 0600 with a random password when absent, as
//! the operator token is) and the daemon's own internal account, whose
//! random password lives only in memory for one run.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

use super::auth::ServiceAccount;
use crate::settings::Resolved;

/// Name of the daemon's own account (its bridge and device events). Not a
/// valid `[broker] users` name, so it cannot be shadowed.
pub const INTERNAL_ACCOUNT: &str = "ztpd:internal";
/// Random bytes in a generated password (256 bits).
const PASSWORD_BYTES: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("broker.users[{index}]: name `{name}` {problem}")]
    BadName {
        index: usize,
        name: String,
        problem: &'static str,
    },
    #[error("broker.users[{index}] (`{name}`): password_file {path}: {message}")]
    PasswordFile {
        index: usize,
        name: String,
        path: String,
        message: String,
    },
}

/// A fresh random password (URL-safe base64, so it fits in a broker URL).
pub fn random_password() -> String {
    let mut bytes = [0u8; PASSWORD_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The daemon's own account for this run.
pub fn internal() -> ServiceAccount {
    ServiceAccount::new(INTERNAL_ACCOUNT, random_password())
}

/// Read (or create) the password of every `[broker] users` entry.
pub fn load(resolved: &Resolved) -> Result<Vec<ServiceAccount>, AccountError> {
    let state = resolved.state_dir();
    let mut out: Vec<ServiceAccount> = Vec::new();
    for (index, user) in resolved.settings.broker.users.iter().enumerate() {
        let bad = |problem| AccountError::BadName {
            index,
            name: user.name.clone(),
            problem,
        };
        if user.name.is_empty() {
            return Err(bad("is empty"));
        }
        if user.name.contains(['/', ':']) || user.name.chars().any(char::is_whitespace) {
            return Err(bad(
                "contains `/`, `:` or spaces; those are reserved for device usernames",
            ));
        }
        if out.iter().any(|a| a.name == user.name) {
            return Err(bad("appears twice"));
        }
        let path = if user.password_file.is_absolute() {
            user.password_file.clone()
        } else {
            state.join(&user.password_file)
        };
        let password = read_or_create(&path).map_err(|message| AccountError::PasswordFile {
            index,
            name: user.name.clone(),
            path: path.display().to_string(),
            message,
        })?;
        out.push(ServiceAccount::new(user.name.clone(), password));
    }
    Ok(out)
}

fn read_or_create(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), "broker password file is readable by others; chmod 600 it");
                }
            }
            let password = text.trim();
            if password.is_empty() {
                return Err("is empty; put the account's password in it".into());
            }
            Ok(password.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let password = random_password();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("cannot create: {e}"))?;
            }
            let created = crate::secret_file::create_new(path, format!("{password}\n").as_bytes())
                .map_err(|e| format!("cannot create: {e}"))?;
            if !created {
                // Another process wrote it meanwhile: that one counts.
                return std::fs::read_to_string(path)
                    .map(|t| t.trim().to_string())
                    .map_err(|e| format!("cannot read: {e}"));
            }
            tracing::info!(path = %path.display(), "created a broker service-account password (0600)");
            Ok(password)
        }
        Err(e) => Err(format!("cannot read: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{ServiceAccount as UserSetting, Settings};

    fn resolved(root: &Path, users: &[(&str, &str)]) -> Resolved {
        let mut settings = Settings::default();
        settings.broker.users = users
            .iter()
            .map(|(n, f)| UserSetting {
                name: n.to_string(),
                password_file: f.into(),
            })
            .collect();
        Resolved {
            root: root.to_path_buf(),
            file: None,
            settings,
        }
    }

    #[test]
    fn reads_existing_and_creates_missing_password_files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("state")).unwrap();
        std::fs::write(d.path().join("state/ops.pass"), "hunter22\n").unwrap();
        let r = resolved(d.path(), &[("ops", "ops.pass"), ("bridge", "bridge.pass")]);
        let a = load(&r).unwrap();
        assert_eq!(a[0].name, "ops");
        assert_eq!(a[0].expose_password(), "hunter22");
        let created = d.path().join("state/bridge.pass");
        let mode = std::fs::metadata(&created).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&created).unwrap();
        assert_eq!(text.trim(), a[1].expose_password());
        assert!(a[1].expose_password().len() >= 43);
        // kept, not regenerated
        assert_eq!(
            load(&r).unwrap()[1].expose_password(),
            a[1].expose_password()
        );
    }

    #[test]
    fn bad_names_and_empty_files_are_errors_naming_the_entry() {
        let d = tempfile::tempdir().unwrap();
        for (name, want) in [
            ("", "is empty"),
            ("a/b", "reserved"),
            (INTERNAL_ACCOUNT, "reserved"),
        ] {
            let e = load(&resolved(d.path(), &[(name, "x.pass")]))
                .unwrap_err()
                .to_string();
            assert!(e.contains("broker.users[0]") && e.contains(want), "{e}");
        }
        let e = load(&resolved(d.path(), &[("a", "a.pass"), ("a", "b.pass")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("broker.users[1]") && e.contains("twice"), "{e}");
        std::fs::create_dir_all(d.path().join("state")).unwrap();
        std::fs::write(d.path().join("state/empty.pass"), "\n").unwrap();
        let e = load(&resolved(d.path(), &[("e", "empty.pass")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty.pass") && e.contains("is empty"), "{e}");
    }

    #[test]
    fn internal_passwords_are_random() {
        assert_ne!(internal().expose_password(), internal().expose_password());
    }
}
