//! `state/` is 0700 and its SQLite files 0600 (issue 15 defect 7), for a
//! fresh root and for one an older ztpd left world-readable.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::Daemon;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every SQLite file in `state/` (databases, -wal, -shm) with its mode.
fn sqlite_files(state: &Path) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = std::fs::read_dir(state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".sqlite") || n.ends_with(".db"))
        .map(|n| {
            let m = mode(&state.join(&n));
            (n, m)
        })
        .collect();
    out.sort();
    out
}

fn assert_private(d: &Daemon) {
    let state = d.path("state");
    assert_eq!(mode(&state), 0o700, "state/ is {:o}", mode(&state));
    let files = sqlite_files(&state);
    assert!(
        files.iter().any(|(n, _)| n.ends_with("-wal")),
        "the databases are open in WAL mode: {files:?}"
    );
    for (name, m) in &files {
        assert_eq!(*m, 0o600, "state/{name} is {m:o}: {files:?}");
    }
    assert_eq!(mode(&state.join("operator.token")), 0o600);
}

#[test]
fn a_fresh_state_directory_is_private() {
    // With the embedded broker, so the telemetry store opens too.
    let d = Daemon::builder().fixture("good").broker("").start();
    let files = sqlite_files(&d.path("state"));
    assert!(
        files.len() >= 4,
        "state database and telemetry store: {files:?}"
    );
    assert_private(&d);
}

#[test]
fn a_world_readable_state_directory_is_made_private() {
    let dir = support::fixtures::temp_root("good");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["ztpd.sqlite", "ztpd.sqlite-wal"] {
        let p = state.join(f);
        std::fs::write(&p, b"").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let d = Daemon::builder().owned_root(dir).start();
    assert_private(&d);
}
