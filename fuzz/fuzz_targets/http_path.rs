//! HTTP path normalisation (`GET /files/<path>`): the bytes after `/files/`
//! go through what the HTTP handler does with them, percent-decoding
//! (`files::http::percent_decode`), then the virtual file tree's
//! `vfs::resolve`, and, for a file under `paths.files`, `vfs::open`. Whatever
//! is not refused must stay inside its root: no `..`, `.`, empty, absolute
//! or NUL/control component, no backslash, never a generated directory
//! shadowed from `files/`, credentials only `device_<id>.json` directly in
//! the credentials directory, and an opened file's real path (symlinks
//! followed) inside the files directory.
#![no_main]

use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ztpd::files::http::percent_decode;
use ztpd::files::vfs::{self, Kind, Location, LookupError, PathError};
use ztpd::settings::{Resolved, Settings};
use ztpd::snapshot::Snapshot;

const PLAN: &str = r#"
[site]
name = "fuzz"
server_ip = "10.10.0.1"
[models.leaf]
vendor = "arista"
match = "DCS-7050SX-64"
ports = ["Ethernet1-52"]
[models.rtr]
vendor = "cisco-ios"
match = "ISR4331"
ports = ["GigabitEthernet1-4"]
[[devices]]
name = "leaf1"
model = "leaf"
serial = "SER1"
ip = "10.10.0.11"
[[devices]]
name = "rtr1"
model = "rtr"
serial = "CIS1"
ip = "10.10.0.21"
"#;

struct Fixture {
    snap: Snapshot,
    /// Canonical `paths.files` and `paths.credentials`.
    files: PathBuf,
    credentials: PathBuf,
}

/// A real root, made once per fuzzing process: a file, a directory and a
/// symlink that leads out of `files/` (to `/etc`), so `vfs::open` meets all
/// three.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("ztpd-fuzz-http-{}", std::process::id()));
        let files = root.join("files");
        std::fs::create_dir_all(files.join("images/dir")).unwrap();
        std::fs::create_dir_all(root.join("device_credentials")).unwrap();
        std::fs::write(files.join("images/a.bin"), b"image").unwrap();
        std::fs::write(files.join("top.txt"), b"top").unwrap();
        let _ = std::os::unix::fs::symlink("/etc", files.join("escape"));
        let resolved = Resolved {
            root: root.clone(),
            file: None,
            settings: Settings::default(),
        };
        let loaded = ztpd::plan::load_texts(&resolved, [(Path::new("plans/fuzz.toml"), PLAN)]);
        assert!(
            loaded.is_valid(),
            "{}",
            loaded.diagnostics.render(80, false)
        );
        let mut snap = Snapshot::from_loaded(resolved, loaded, 1);
        let configs = std::sync::Arc::make_mut(&mut snap.configs);
        configs.insert("leaf1".into(), "hostname leaf1\n".into());
        configs.insert("rtr1".into(), "hostname rtr1\n".into());
        std::sync::Arc::make_mut(&mut snap.bootstrap)
            .insert("generic".into(), "#!/bin/sh\n".into());
        Fixture {
            files: files.canonicalize().unwrap(),
            credentials: snap.resolved.credentials_dir(),
            snap,
        }
    })
}

/// A component a client may name: not empty, not `.`/`..`, no separator,
/// backslash, control character or remaining percent escape.
fn safe_component(c: &str) -> bool {
    !c.is_empty()
        && c != "."
        && c != ".."
        && !c.contains(['/', '\\'])
        && !c.chars().any(char::is_control)
        && !c
            .as_bytes()
            .windows(3)
            .any(|w| w[0] == b'%' && w[1].is_ascii_hexdigit() && w[2].is_ascii_hexdigit())
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    let Some(path) = percent_decode(raw) else {
        return; // refused by the handler: 403
    };
    let target = match vfs::resolve(&f.snap, &path, std::net::Ipv4Addr::LOCALHOST.into()) {
        Ok(t) => t,
        Err(LookupError::Refused(_) | LookupError::NotFound) => return,
    };
    assert!(!target.path.starts_with(['/', '~']), "absolute: {path:?}");
    let parts: Vec<&str> = target.path.split('/').collect();
    assert!(
        parts.iter().all(|c| safe_component(c)),
        "unsafe component in {:?}",
        target.path
    );
    match (&target.kind, &target.location) {
        (Kind::Config { device }, Location::Memory(_)) => {
            assert!(f.snap.configs.contains_key(device), "{device}");
        }
        (Kind::Bootstrap, Location::Memory(_)) => {}
        (Kind::Credential { device_id }, Location::Credential(p)) => {
            assert_eq!(p.parent(), Some(f.credentials.as_path()), "{p:?}");
            let name = p.file_name().and_then(|n| n.to_str()).unwrap();
            assert_eq!(name, format!("device_{device_id}.json"));
            assert!(safe_component(device_id));
        }
        (Kind::File, Location::Files(rel)) => {
            assert!(rel.is_relative(), "{rel:?}");
            assert!(
                rel.components().all(|c| matches!(c, Component::Normal(_))),
                "{rel:?}"
            );
            assert_eq!(rel.components().count(), parts.len(), "{rel:?}");
            let first = parts[0];
            assert!(
                !["configs", "bootstrap", "credentials"].contains(&first),
                "files/ shadows a generated directory: {rel:?}"
            );
            match vfs::open(&f.snap, &target) {
                Ok(_) => {
                    let real = f.files.join(rel).canonicalize().unwrap();
                    assert!(real.starts_with(&f.files), "{rel:?} opened {real:?}");
                    assert!(real.is_file(), "{real:?} is not a file");
                }
                Err(LookupError::Refused(e)) => {
                    assert_eq!(e, PathError::SymlinkEscape, "{rel:?}");
                }
                Err(LookupError::NotFound) => {}
            }
        }
        (kind, location) => panic!("{kind:?} served from {location:?}"),
    }
});
