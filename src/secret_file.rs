//! The one way ztpd writes a secret (operator token, hub key, broker
//! password, device credentials): mode 0600 from the first byte, written to
//! a temporary file in the same directory, fsynced, then moved into place,
//! and the directory fsynced. A reader never sees half a secret, and a crash
//! leaves the old file or the new one.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Prefix of temporary files; a store listing its directory skips them.
pub const TMP_PREFIX: &str = ".tmp-";

/// Write `bytes` to `path`, replacing any old file.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = Temp::write(path, bytes, true)?;
    tmp.rename_into_place()?;
    sync_dir(parent(path))
}

/// [`write`] for a file that is public once in place (0644, e.g. the local
/// hub's CA certificate): the same temporary file, fsync and rename, so a
/// reader never sees half of it.
pub fn write_public(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = Temp::write(path, bytes, true)?;
    std::fs::set_permissions(&tmp.path, std::fs::Permissions::from_mode(0o644))?;
    tmp.rename_into_place()?;
    sync_dir(parent(path))
}

/// Create `path` with `bytes` unless it exists. Returns false, writing
/// nothing, when it does (another process may have won the race; read the
/// file it wrote).
pub fn create_new(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let tmp = Temp::write(path, bytes, true)?;
    // A hard link fails if the target exists: no window where the new file
    // is incomplete, and an existing one is never replaced.
    let linked = std::fs::hard_link(&tmp.path, path);
    let _ = std::fs::remove_file(&tmp.path);
    match linked {
        Ok(()) => sync_dir(parent(path)).map(|()| true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Create directory `dir` (and its parents) and make it 0700: it holds
/// secrets and state no other user may read (`state/`).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Make the SQLite database `db` 0600 before SQLite opens it: created empty
/// with that mode when absent (SQLite gives its `-wal` and `-shm` files the
/// database's mode), and tightened, with those files, when an older ztpd
/// left them world-readable.
pub fn private_db(db: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(db)?;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// A complete secret in a temporary file beside its final path, for callers
/// that write many and sync once (`rename_into_place` each, then
/// [`sync_dir`]). Removed on drop unless moved into place.
pub struct Temp {
    path: PathBuf,
    target: PathBuf,
    placed: bool,
}

impl Temp {
    /// Write `bytes` to a fresh temporary file (0600) beside `target`;
    /// `fsync` the file when `sync` (else the caller syncs the filesystem).
    pub fn write(target: &Path, bytes: &[u8], sync: bool) -> io::Result<Temp> {
        let name = target
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        let path = parent(target).join(format!(
            "{TMP_PREFIX}{}.{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let tmp = Temp {
            path,
            target: target.to_path_buf(),
            placed: false,
        };
        f.write_all(bytes)?;
        if sync {
            f.sync_all()?;
        }
        Ok(tmp)
    }

    /// fsync the file (one written with `sync` false), from any thread.
    pub fn sync(&self) -> io::Result<()> {
        std::fs::File::open(&self.path)?.sync_all()
    }

    /// Move the file to its final path (atomic within the directory).
    pub fn rename_into_place(mut self) -> io::Result<()> {
        std::fs::rename(&self.path, &self.target)?;
        self.placed = true;
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.placed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// fsync a directory, so renames and links in it survive a crash.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn write_replaces_atomically_with_mode_0600_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("token");
        std::fs::write(&p, "old").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        write(&p, b"new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new\n");
        assert_eq!(mode(&p), 0o600, "a replaced secret is 0600 too");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary file left behind");
    }

    #[test]
    fn create_new_never_replaces() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("hub.key");
        assert!(create_new(&p, b"first").unwrap());
        assert_eq!(mode(&p), 0o600);
        assert!(!create_new(&p, b"second").unwrap());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "first");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn an_unplaced_temp_is_removed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("device_x.json");
        let t = Temp::write(&p, b"{}", false).unwrap();
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        drop(t);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        assert!(!p.exists());
    }
}
