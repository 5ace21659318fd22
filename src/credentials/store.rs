//! `device_credentials/`: one `device_<device_id>.json` per device and the
//! append-only `historical_credentials.csv` (SPEC §6).
//!
//! Every change happens under an exclusive `flock` on `.lock` in the
//! directory, so concurrent `ztpd credentials create` processes and the
//! daemon never hand out one `device_name` twice. The history row is
//! appended (and synced) before the JSON file is written, so a file's name is
//! always recorded. The ids being written are first made durable in the lock
//! file (the write's intent); after a crash between row and file, the next
//! [`Store::complete_interrupted`] writes the files those rows reserved.
//! A credential deleted by hand is never brought back: only an interrupted
//! write's ids are completed.
//! Files are written to a 0600 temp file in the same directory and renamed
//! over the old one, so a crash leaves the old file or the new one, whole.
//!
//! A long-lived `Store` (the hub's identity writer) keeps the history's
//! names in memory and reads only what was appended since (by it or by any
//! other process) on each write: a fleet registering one by one would
//! otherwise re-read the whole history per device.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::derive::device_key;
use super::function::FunctionError;
use super::hub::Hub;

pub const HISTORY_FILE: &str = "historical_credentials.csv";
pub const HISTORY_HEADER: [&str; 3] = ["device_id", "device_name", "credential_creation_date"];
pub const LOCK_FILE: &str = ".lock";
/// The first `device_name` ever handed out (the prototype's numbering).
pub const FIRST_DEVICE_NAME: u64 = 1_000_001;
/// Temp files start with this; any found while holding the lock are leftovers
/// of a crashed writer (every writer holds the lock) and are removed.
use crate::secret_file::TMP_PREFIX;
/// Files renamed per durability barrier during a bulk write: bounds the
/// number of temp files alive at once while keeping barriers rare.
const BATCH: usize = 8192;
/// Threads syncing a group's temp files at once: concurrent fsyncs share
/// the filesystem journal's commits (measured on ext4 here: 0.5 ms per file
/// alone, 0.15 ms with 4 at once, slower again past 16).
const SYNC_THREADS: usize = 4;
/// The prototype's `credential_creation_date` format (local time).
const DATE_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// One credential file, keys exactly as the prototype wrote them.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialFile {
    pub device_id: String,
    pub device_name: u64,
    pub credential_creation_date: String,
    pub device_function: Value,
    #[serde(rename = "CONNECTION_STR_PUB")]
    pub connection_str_pub: String,
}

impl CredentialFile {
    /// `device_function.name`, `default` when absent.
    pub fn function_name(&self) -> &str {
        self.device_function
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("default")
    }
}

/// Debug without the connection string: it holds the device key.
impl std::fmt::Debug for CredentialFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialFile")
            .field("device_id", &self.device_id)
            .field("device_name", &self.device_name)
            .field("credential_creation_date", &self.credential_creation_date)
            .field("device_function", &self.function_name())
            .field("connection_str_pub", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid device id: {0}")]
    BadId(String),
    #[error(transparent)]
    Function(#[from] FunctionError),
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a credential file ({message}); fix or delete it, then run `ztpd credentials create {device_id}`")]
    Corrupt {
        path: PathBuf,
        device_id: String,
        message: String,
    },
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// `CONNECTION_STR_PUB` of a device under this hub (holds the device key).
pub fn connection_string(hub: &Hub, device_id: &str) -> String {
    super::connection_string::ConnectionString {
        host_name: hub.hostname.clone(),
        device_id: device_id.to_string(),
        shared_access_key: device_key(&hub.key, device_id).expose_base64().to_string(),
    }
    .to_string()
}

/// What a bulk regeneration did.
#[derive(Debug, Default)]
pub struct Regenerated {
    /// `(device_id, device_name)` of every credential rewritten.
    pub written: Vec<(String, u64)>,
    /// Devices left unchanged, with the reason.
    pub failed: Vec<(String, String)>,
}

/// The credentials directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
    /// The history's names as last read, shared by clones.
    index: Arc<Mutex<Option<HistoryIndex>>>,
}

/// The history read up to `offset` (just past a newline) of file `inode`.
#[derive(Debug)]
struct HistoryIndex {
    inode: u64,
    offset: u64,
    history: History,
}

/// A device to create with [`Store::create_many`]: its planned function,
/// else the one of its current credential, else `default`.
pub struct NewIdentity {
    pub device_id: String,
    pub planned: Option<Value>,
    pub default: Value,
}

/// A credential to write: the device and its device-function JSON.
struct Request {
    device_id: String,
    function: Value,
    /// The name the device already has (from its current file).
    name: Option<u64>,
}

impl Store {
    pub fn new(dir: impl Into<PathBuf>) -> Store {
        Store {
            dir: dir.into(),
            index: Arc::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path_of(&self, device_id: &str) -> PathBuf {
        self.dir.join(format!("device_{device_id}.json"))
    }

    /// Read a device's credential; `None` when it has none.
    pub fn read(&self, device_id: &str) -> Result<Option<CredentialFile>, StoreError> {
        super::validate_device_id(device_id).map_err(StoreError::BadId)?;
        read_file(&self.path_of(device_id), device_id)
    }

    /// Create (or rewrite, keeping its name) the credential of `device_id`.
    /// A new device takes max+1 over the history; one history row is appended.
    pub fn create(
        &self,
        hub: &Hub,
        device_id: &str,
        function: Value,
    ) -> Result<CredentialFile, StoreError> {
        super::validate_device_id(device_id).map_err(StoreError::BadId)?;
        let mut lock = self.lock()?;
        let name = read_file(&self.path_of(device_id), device_id)
            .ok()
            .flatten()
            .map(|c| c.device_name);
        let req = Request {
            device_id: device_id.to_string(),
            function,
            name,
        };
        let mut out = self.write_locked(&mut lock, hub, vec![req], Sync::EachFile)?;
        Ok(out.remove(0))
    }

    /// [`Store::create`] for several devices under one lock, one history
    /// append and one sync of each kind: a burst of registrations. Ids must
    /// be distinct (two files of one id in one write would share a temp).
    /// `durable` false (`state.durability = "os"`): the same files, rows
    /// and intent, handed to the OS without waiting for the disk (a process
    /// crash loses nothing; a power loss may lose the last group).
    pub fn create_many(
        &self,
        hub: &Hub,
        devices: Vec<NewIdentity>,
        durable: bool,
    ) -> Result<Vec<CredentialFile>, StoreError> {
        for d in &devices {
            super::validate_device_id(&d.device_id).map_err(StoreError::BadId)?;
        }
        let mut lock = self.lock()?;
        let reqs = devices
            .into_iter()
            .map(|d| {
                let current = read_file(&self.path_of(&d.device_id), &d.device_id)
                    .ok()
                    .flatten();
                let name = current.as_ref().map(|c| c.device_name);
                let function = match (d.planned, current) {
                    (Some(f), _) => f,
                    (None, Some(c)) => c.device_function,
                    (None, None) => d.default,
                };
                Request {
                    device_id: d.device_id,
                    function,
                    name,
                }
            })
            .collect();
        let sync = if durable {
            Sync::Parallel
        } else {
            Sync::OsOnly
        };
        self.write_locked(&mut lock, hub, reqs, sync)
    }

    /// Create the credential of `device_id` under the `device_name` of
    /// another id: a replacement box (new serial) keeps the device_name of
    /// the box it replaced (SPEC §12). Nothing when `device_id` has one.
    pub fn create_as(
        &self,
        hub: &Hub,
        device_id: &str,
        function: Value,
        name_of: &str,
    ) -> Result<Option<CredentialFile>, StoreError> {
        super::validate_device_id(device_id).map_err(StoreError::BadId)?;
        let Some(old) = self.read(name_of)? else {
            return Ok(None);
        };
        let mut lock = self.lock()?;
        if self.path_of(device_id).exists() {
            return Ok(None);
        }
        let req = Request {
            device_id: device_id.to_string(),
            function,
            name: Some(old.device_name),
        };
        let mut out = self.write_locked(&mut lock, hub, vec![req], Sync::EachFile)?;
        Ok(Some(out.remove(0)))
    }

    /// Create the credentials of devices that have none (the daemon, on start
    /// and reload), in one locked batch. Returns the ones created.
    pub fn create_missing(
        &self,
        hub: &Hub,
        devices: Vec<(String, Value)>,
    ) -> Result<Vec<CredentialFile>, StoreError> {
        for (id, _) in &devices {
            super::validate_device_id(id).map_err(StoreError::BadId)?;
        }
        let mut lock = self.lock()?;
        let reqs: Vec<Request> = devices
            .into_iter()
            .filter(|(id, _)| !self.path_of(id).exists())
            .map(|(device_id, function)| Request {
                device_id,
                function,
                name: None,
            })
            .collect();
        if reqs.is_empty() {
            return Ok(Vec::new());
        }
        self.write_locked(&mut lock, hub, reqs, Sync::Batched)
    }

    /// Finish what a crash (or a full disk) cut short. The history rows are
    /// appended before the files, so an interrupted write leaves devices with
    /// a reserved name and no credential (a DPS registration killed
    /// mid-write, say); the lock file still names them. Each gets its file
    /// now, under the name its row reserved and with `function(device_id)`;
    /// no row is added. An id whose row never made it (or was torn) reserved
    /// nothing and is dropped. Returns the files written.
    pub fn complete_interrupted(
        &self,
        hub: &Hub,
        mut function: impl FnMut(&str) -> Value,
    ) -> Result<Vec<CredentialFile>, StoreError> {
        if !self.dir.join(LOCK_FILE).exists() {
            return Ok(Vec::new());
        }
        let mut lock = self.lock()?;
        let pending = lock.intent();
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let history_path = self.dir.join(HISTORY_FILE);
        let mut text = match std::fs::read(&history_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err("cannot read", &history_path)(e)),
        };
        // A row without its newline was torn by a crash mid-append: its name
        // may be cut short, so it reserves nothing to complete.
        text.truncate(text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1));
        let known = parse_history(&text[..], &history_path);
        let mut creds: Vec<CredentialFile> = pending
            .into_iter()
            .filter(|id| super::validate_device_id(id).is_ok() && !self.path_of(id).exists())
            .filter_map(|device_id| {
                let device_name = *known.names.get(&device_id)?;
                Some(CredentialFile {
                    connection_str_pub: connection_string(hub, &device_id),
                    device_function: function(&device_id),
                    device_name,
                    credential_creation_date: chrono::Local::now().format(DATE_FORMAT).to_string(),
                    device_id,
                })
            })
            .collect();
        creds.sort_by_key(|c| c.device_name);
        creds.dedup_by_key(|c| c.device_name);
        for chunk in creds.chunks(BATCH) {
            self.write_files(chunk, Sync::Batched)?;
        }
        lock.set_intent(&[], false).map_err(io_err(
            "cannot clear the intent in",
            &self.dir.join(LOCK_FILE),
        ))?;
        Ok(creds)
    }

    /// Rewrite every existing credential (new date, current hub key and
    /// device function), keeping each device's name.
    pub fn regenerate_all(
        &self,
        hub: &Hub,
        load_function: impl FnMut(&str) -> Result<Value, FunctionError>,
    ) -> Result<Regenerated, StoreError> {
        self.regenerate_where(hub, |_| true, load_function)
    }

    /// Rewrite the existing credentials `select` picks (e.g. those using a
    /// changed device function), keeping names. `load_function` is called
    /// once per function name.
    pub fn regenerate_where(
        &self,
        hub: &Hub,
        mut select: impl FnMut(&CredentialFile) -> bool,
        mut load_function: impl FnMut(&str) -> Result<Value, FunctionError>,
    ) -> Result<Regenerated, StoreError> {
        let mut lock = self.lock()?;
        let mut result = Regenerated::default();
        let mut functions: HashMap<String, Result<Value, String>> = HashMap::new();
        let mut reqs = Vec::new();
        for device_id in self.list_ids()? {
            let current = match read_file(&self.path_of(&device_id), &device_id) {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    result.failed.push((device_id, e.to_string()));
                    continue;
                }
            };
            if !select(&current) {
                continue;
            }
            let fname = current.function_name().to_string();
            let function = functions
                .entry(fname.clone())
                .or_insert_with(|| load_function(&fname).map_err(|e| e.to_string()));
            match function {
                Ok(f) => reqs.push(Request {
                    device_id,
                    function: f.clone(),
                    name: Some(current.device_name),
                }),
                Err(e) => result.failed.push((device_id, e.clone())),
            }
        }
        if !reqs.is_empty() {
            result.written = self
                .write_locked(&mut lock, hub, reqs, Sync::Batched)?
                .into_iter()
                .map(|c| (c.device_id, c.device_name))
                .collect();
        }
        Ok(result)
    }

    /// Device ids that have a credential file, sorted.
    pub fn list_ids(&self) -> Result<Vec<String>, StoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("cannot list", &self.dir)(e)),
        };
        let mut ids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("cannot list", &self.dir))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(id) = name
                .strip_prefix("device_")
                .and_then(|n| n.strip_suffix(".json"))
            {
                if super::validate_device_id(id).is_ok() {
                    ids.push(id.to_string());
                }
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// Take the directory lock (blocking), creating the directory 0700.
    fn lock(&self) -> Result<DirLock, StoreError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io_err("cannot create", &self.dir))?;
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("cannot open", &path))?;
        loop {
            // SAFETY: flock on a descriptor we own; no memory is involved.
            let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
            if rc == 0 {
                break;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(io_err("cannot lock", &path)(e));
            }
        }
        let lock = DirLock { file };
        self.remove_leftover_temps();
        Ok(lock)
    }

    fn remove_leftover_temps(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(TMP_PREFIX) {
                tracing::warn!(file = %entry.path().display(), "removing a temp file left by an interrupted write");
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// Assign names, append history, then write the files. Caller holds the lock.
    fn write_locked(
        &self,
        lock: &mut DirLock,
        hub: &Hub,
        reqs: Vec<Request>,
        sync: Sync,
    ) -> Result<Vec<CredentialFile>, StoreError> {
        let history_path = self.dir.join(HISTORY_FILE);
        let mut history = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o644)
            .open(&history_path)
            .map_err(io_err("cannot open", &history_path))?;
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        let mut unread = History::default();
        let known = if reqs.iter().any(|r| r.name.is_none()) {
            refresh_index(&mut index, &mut history, &history_path)?
        } else {
            &mut unread
        };
        let mut next = known.max.map_or(FIRST_DEVICE_NAME, |m| m + 1);
        let creds: Vec<CredentialFile> = reqs
            .into_iter()
            .map(|r| {
                let name = r
                    .name
                    .or_else(|| known.names.get(&r.device_id).copied())
                    .unwrap_or_else(|| {
                        next += 1;
                        next - 1
                    });
                CredentialFile {
                    connection_str_pub: connection_string(hub, &r.device_id),
                    device_id: r.device_id,
                    device_name: name,
                    credential_creation_date: chrono::Local::now().format(DATE_FORMAT).to_string(),
                    device_function: r.function,
                }
            })
            .collect();
        // The intent first (durable), then the rows, then the files; an
        // interrupted write's ids stay in the intent for complete_interrupted.
        let lock_path = self.dir.join(LOCK_FILE);
        let leftover = lock.intent();
        let mut intent = leftover.clone();
        intent.extend(creds.iter().map(|c| c.device_id.clone()));
        let durable = sync != Sync::OsOnly;
        lock.set_intent(&intent, durable)
            .map_err(io_err("cannot record the write's intent in", &lock_path))?;
        if let Err(e) = append_history(&mut history, &history_path, &creds, durable) {
            // The rows were cut off again: the names are not taken.
            *index = None;
            return Err(e);
        }
        // The names are taken (the rows are in); the index learns them when
        // it next reads the history's tail.
        drop(index);
        for chunk in creds.chunks(BATCH) {
            self.write_files(chunk, sync)?;
        }
        // Not synced: a lost clear only makes the next completion find every
        // file in place.
        lock.set_intent(&leftover, false)
            .map_err(io_err("cannot clear the intent in", &lock_path))?;
        Ok(creds)
    }

    /// Write each file to a temp, make them durable, rename them into place,
    /// then make the renames durable.
    fn write_files(&self, creds: &[CredentialFile], sync: Sync) -> Result<(), StoreError> {
        let mut temps = Vec::with_capacity(creds.len());
        let mut buf = Vec::with_capacity(1024);
        for c in creds {
            let final_path = self.path_of(&c.device_id);
            buf.clear();
            serde_json::to_writer_pretty(&mut buf, c).expect("a credential always serialises");
            buf.push(b'\n');
            let tmp = crate::secret_file::Temp::write(&final_path, &buf, sync == Sync::EachFile)
                .map_err(io_err("cannot write a temp file for", &final_path))?;
            temps.push((tmp, final_path));
        }
        match sync {
            Sync::EachFile => {}
            Sync::Batched => sync_filesystem(&self.dir)?,
            Sync::Parallel => sync_temps(&temps)?,
            Sync::OsOnly => {}
        }
        for (tmp, final_path) in temps {
            tmp.rename_into_place()
                .map_err(io_err("cannot rename into", &final_path))?;
        }
        if sync == Sync::OsOnly {
            return Ok(());
        }
        sync_dir(&self.dir)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// fsync each file (one or a few files).
    EachFile,
    /// One filesystem-wide barrier per batch of temp files.
    Batched,
    /// fsync each file, a few at once: a group whose filesystem may be
    /// busy with other writers (a `syncfs` would wait for all of them).
    Parallel,
    /// No fsync at all (`state.durability = "os"`): still a temp file
    /// renamed into place, so a process crash leaves old or new, whole.
    OsOnly,
}

/// fsync every temp file, [`SYNC_THREADS`] at a time.
fn sync_temps(temps: &[(crate::secret_file::Temp, PathBuf)]) -> Result<(), StoreError> {
    let per_thread = temps.len().div_ceil(SYNC_THREADS).max(1);
    std::thread::scope(|s| {
        let workers: Vec<_> = temps
            .chunks(per_thread)
            .map(|chunk| {
                s.spawn(move || {
                    for (tmp, final_path) in chunk {
                        tmp.sync()
                            .map_err(io_err("cannot sync a temp file for", final_path))?;
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })
}

/// Held while the directory is locked; closing the file releases the flock.
/// The lock file's content is the intent of a write in progress: the device
/// ids whose rows may be appended without their files yet, one per line.
struct DirLock {
    file: File,
}

impl DirLock {
    fn intent(&mut self) -> Vec<String> {
        let mut text = String::new();
        let read = self
            .file
            .seek(SeekFrom::Start(0))
            .and_then(|_| (&self.file).take(16 << 20).read_to_string(&mut text));
        if read.is_err() {
            return Vec::new();
        }
        text.lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn set_intent(&mut self, ids: &[String], durable: bool) -> std::io::Result<()> {
        self.file.set_len(0)?;
        if !ids.is_empty() {
            let mut text = ids.join("\n");
            text.push('\n');
            self.file.seek(SeekFrom::Start(0))?;
            self.file.write_all(text.as_bytes())?;
        }
        if durable {
            self.file.sync_data()?;
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct History {
    names: HashMap<String, u64>,
    max: Option<u64>,
}

fn read_file(path: &Path, device_id: &str) -> Result<Option<CredentialFile>, StoreError> {
    let bytes = match crate::limits::read_capped(
        path,
        crate::limits::CREDENTIAL_BYTES,
        "device credential",
    ) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("cannot read", path)(e)),
    };
    let cred: CredentialFile = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        device_id: device_id.to_string(),
        message: e.to_string(),
    })?;
    if cred.device_id != device_id {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            device_id: device_id.to_string(),
            message: format!("it holds device_id `{}`", cred.device_id),
        });
    }
    Ok(Some(cred))
}

/// Every name ever handed out: the index brought up to date with what was
/// appended since it was read (all of it when the file is new to it, was
/// replaced or shrank). The rows after the last newline are read each time
/// (as a full read would) but not counted as read: a torn row may be
/// followed by a newline later.
fn refresh_index<'a>(
    index: &'a mut Option<HistoryIndex>,
    file: &mut File,
    path: &Path,
) -> Result<&'a mut History, StoreError> {
    let meta = file.metadata().map_err(io_err("cannot read", path))?;
    let stale = match index {
        Some(i) => i.inode != meta.ino() || i.offset > meta.len(),
        None => true,
    };
    if stale {
        *index = Some(HistoryIndex {
            inode: meta.ino(),
            offset: 0,
            history: History::default(),
        });
    }
    let index = index.as_mut().expect("set above");
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(index.offset))
        .and_then(|_| file.read_to_end(&mut tail))
        .map_err(io_err("cannot read", path))?;
    let has_header = index.offset == 0;
    parse_history_into(&mut index.history, &tail[..], has_header, path);
    index.offset += tail
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i as u64 + 1);
    Ok(&mut index.history)
}

fn parse_history(input: impl Read, path: &Path) -> History {
    let mut h = History::default();
    parse_history_into(&mut h, input, true, path);
    h
}

/// Add the rows of `input` to `h`. Unreadable rows are skipped with a
/// warning; a torn last row (crash mid-append) is the usual cause.
fn parse_history_into(h: &mut History, input: impl Read, has_header: bool, path: &Path) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(has_header)
        .flexible(true)
        .from_reader(input);
    let mut skipped = 0usize;
    for record in reader.records() {
        let parsed = record.ok().and_then(|r| {
            let name = r.get(1)?.trim().parse::<u64>().ok()?;
            Some((r.get(0)?.to_string(), name))
        });
        match parsed {
            Some((id, name)) => {
                h.max = h.max.max(Some(name));
                // Names never change, so a device's first row is authoritative
                // (a later torn row cannot rename it).
                h.names.entry(id).or_insert(name);
            }
            None => skipped += 1,
        }
    }
    if skipped > 0 {
        tracing::warn!(path = %path.display(), skipped, "skipped unreadable history rows");
    }
}

/// Append one row per credential (header first on a new file) and sync.
/// A failed append (a full disk cuts a row short) is cut off again, so the
/// history never keeps half a row of its own.
fn append_history(
    file: &mut File,
    path: &Path,
    creds: &[CredentialFile],
    durable: bool,
) -> Result<(), StoreError> {
    let len = file.metadata().map_err(io_err("cannot read", path))?.len();
    let appended = append_rows(file, path, creds, len, durable);
    if appended.is_err() {
        // Shrinking needs no space. If it fails too, the torn row is
        // skipped on reading and the next append starts a fresh line.
        if file.set_len(len).and_then(|()| file.sync_data()).is_err() {
            tracing::warn!(path = %path.display(), "could not cut off a failed history append");
        }
    }
    appended
}

fn append_rows(
    file: &mut File,
    path: &Path,
    creds: &[CredentialFile],
    len: u64,
    durable: bool,
) -> Result<(), StoreError> {
    // A crash mid-append can leave a torn row without its newline; start
    // ours on a fresh line so it is not glued to the torn one.
    let mut torn = false;
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1))
            .and_then(|_| file.read_exact(&mut last))
            .map_err(io_err("cannot read", path))?;
        torn = last[0] != b'\n';
    }
    let mut out = BufWriter::with_capacity(1 << 16, &*file);
    if torn {
        out.write_all(b"\n")
            .map_err(io_err("cannot append to", path))?;
    }
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(&mut out);
    let write = |w: &mut csv::Writer<_>| -> csv::Result<()> {
        if len == 0 {
            w.write_record(HISTORY_HEADER)?;
        }
        for c in creds {
            w.write_record([
                c.device_id.as_str(),
                &c.device_name.to_string(),
                &c.credential_creation_date,
            ])?;
        }
        w.flush()?;
        Ok(())
    };
    write(&mut w)
        .map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(e) => e,
            other => std::io::Error::other(format!("{other:?}")),
        })
        .map_err(io_err("cannot append to", path))?;
    drop(w);
    out.flush().map_err(io_err("cannot append to", path))?;
    drop(out);
    if !durable {
        return Ok(());
    }
    file.sync_data().map_err(io_err("cannot sync", path))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("cannot sync", dir))
}

/// One barrier for many new files: `syncfs` flushes the filesystem holding
/// `dir` in one go, far cheaper than an fsync per file for bulk writes.
fn sync_filesystem(dir: &Path) -> Result<(), StoreError> {
    let d = File::open(dir).map_err(io_err("cannot open", dir))?;
    // SAFETY: syncfs on a descriptor we own.
    if unsafe { libc::syncfs(d.as_raw_fd()) } != 0 {
        return Err(io_err("cannot sync", dir)(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
#[path = "store_tests.rs"]
pub(super) mod tests;
