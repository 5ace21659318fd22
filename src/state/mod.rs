//! The embedded state store: one SQLite database, `state/ztpd.sqlite`, in WAL
//! mode, shared by every module that keeps daemon state (leases, device
//! progress, events...).
//!
//! Each module owns its tables: it calls [`StateStore::migrate`] with its own
//! component name and ordered schema steps, reads through [`StateStore::reader`],
//! and writes through the shared [`Writer`]. The writer is one thread that
//! takes every queued write, runs them in one transaction and commits once:
//! many writes, one fsync (group commit). A write's completion callback runs
//! only after its commit, so a reply that depends on it can wait for that.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::mpsc;

use crate::settings::Durability;

/// The database file under `paths.state`.
pub const DB_FILE: &str = "ztpd.sqlite";
/// Queued writes beyond this are refused (the caller drops or retries):
/// a bound on memory when the disk stalls.
pub const QUEUE_CAPACITY: usize = 65_536;
/// Writes per transaction at most, so one commit never grows without bound.
const MAX_BATCH: usize = 8_192;
/// How long a connection waits for another one's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub type Tx<'a> = rusqlite::Transaction<'a>;
/// A write to run inside the next group transaction. Keep it to one statement
/// (or idempotent statements): a failed write is reported to its own caller
/// and the rest of the batch still commits.
pub type WriteFn = Box<dyn FnOnce(&Tx<'_>) -> Result<(), rusqlite::Error> + Send>;
/// Called on the writer thread once the write is committed (or failed).
/// Keep it short: the next batch waits for it.
pub type DoneFn = Box<dyn FnOnce(Result<(), WriteError>) + Send>;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create the state directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the state database {path} with mode 0600: {source}")]
    Private {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state database: migration {component} step {step}: {source}")]
    Migrate {
        component: String,
        step: usize,
        source: rusqlite::Error,
    },
}

/// Why a queued write did not reach the database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("the state writer queue is full")]
    Busy,
    #[error("the state writer has stopped")]
    Stopped,
    #[error("state write failed: {0}")]
    Failed(String),
}

struct Job {
    write: WriteFn,
    done: Option<DoneFn>,
}

/// Handle to the group-commit writer; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
    /// The write connection: the writer thread holds it for each batch, and
    /// [`Writer::write_now`] for its one transaction.
    conn: Arc<Mutex<Connection>>,
    /// `state.durability` in force: true for `os`. Shared by every clone, so
    /// a reload that changes it reaches every service at once.
    os_only: Arc<std::sync::atomic::AtomicBool>,
}

impl Writer {
    /// True when a commit only hands the data to the OS (`durability = "os"`):
    /// committing on the caller's thread ([`Writer::write_now`]) then costs
    /// about what handing the write to the writer thread costs, without the
    /// thread wake-ups.
    pub fn commits_are_cheap(&self) -> bool {
        self.os_only.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The durability in force.
    pub fn durability(&self) -> Durability {
        if self.commits_are_cheap() {
            Durability::Os
        } else {
            Durability::Fsync
        }
    }

    /// Change the durability of the commits after this one (a reload that
    /// changed `state.durability`). Waits for the writer's batch in progress,
    /// if any, to finish.
    pub fn set_durability(&self, durability: Durability) -> Result<(), WriteError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| WriteError::Failed("state connection lock poisoned".into()))?;
        conn.pragma_update(None, "synchronous", synchronous(durability))
            .map_err(|e| WriteError::Failed(e.to_string()))?;
        self.os_only.store(
            durability == Durability::Os,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    /// Run `write` in its own transaction on the calling thread and commit,
    /// waiting for a batch of the writer thread to finish first. Writes of
    /// one caller stay in order. Meant for `commits_are_cheap` stores: with
    /// fsync the caller would wait for the disk. BEGIN and COMMIT are cached
    /// statements (no parsing per call); a failed write is rolled back.
    pub fn write_now(
        &self,
        write: impl FnOnce(&Connection) -> Result<(), rusqlite::Error>,
    ) -> Result<(), WriteError> {
        let conn = self
            .conn
            .lock()
            .map_err(|_| WriteError::Failed("state connection lock poisoned".into()))?;
        let run = |sql: &str| conn.prepare_cached(sql).and_then(|mut s| s.execute([]));
        let failed = |e: rusqlite::Error| WriteError::Failed(e.to_string());
        run("BEGIN").map_err(failed)?;
        if let Err(e) = write(&conn) {
            let _ = run("ROLLBACK");
            return Err(failed(e));
        }
        if let Err(e) = run("COMMIT") {
            tracing::error!("state commit failed: {e}");
            let _ = run("ROLLBACK");
            return Err(failed(e));
        }
        Ok(())
    }

    /// Queue a write without waiting; `done` runs after the commit. Fails at
    /// once when the queue is full (packet paths drop rather than block).
    pub fn submit(&self, write: WriteFn, done: DoneFn) -> Result<(), WriteError> {
        self.tx
            .try_send(Job {
                write,
                done: Some(done),
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => WriteError::Busy,
                mpsc::error::TrySendError::Closed(_) => WriteError::Stopped,
            })
    }

    /// [`Writer::submit`] for a write nobody waits for: a failure, queued or
    /// at commit, is logged as a warning saying `what` was not saved.
    pub fn submit_or_warn(
        &self,
        write: impl FnOnce(&Tx<'_>) -> Result<(), rusqlite::Error> + Send + 'static,
        what: &'static str,
    ) {
        let done: DoneFn = Box::new(move |r| {
            if let Err(e) = r {
                tracing::warn!("{what} not saved: {e}");
            }
        });
        if let Err(e) = self.submit(Box::new(write), done) {
            tracing::warn!("{what} not saved: {e}");
        }
    }

    /// Queue a write and wait until it is committed.
    pub async fn write(&self, write: WriteFn) -> Result<(), WriteError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done: DoneFn = Box::new(move |r| {
            let _ = tx.send(r);
        });
        self.tx
            .send(Job {
                write,
                done: Some(done),
            })
            .await
            .map_err(|_| WriteError::Stopped)?;
        rx.await.map_err(|_| WriteError::Stopped)?
    }
}

pub struct StateStore {
    path: PathBuf,
    writer: Writer,
}

impl StateStore {
    /// Open (creating when absent) `<dir>/ztpd.sqlite` and start the writer thread.
    /// `durability` decides whether a commit waits for the disk (fsync) or
    /// only for the OS (`os`, as Kea's memfile).
    pub fn open(dir: &Path, durability: Durability) -> Result<StateStore, StateError> {
        // 0700, its databases 0600: leases, device states and tokens are
        // no other user's business.
        crate::secret_file::private_dir(dir).map_err(|source| StateError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        crate::secret_file::private_db(&path).map_err(|source| StateError::Private {
            path: path.clone(),
            source,
        })?;
        let conn = open_conn(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", synchronous(durability))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                component TEXT PRIMARY KEY,
                version INTEGER NOT NULL
            )",
        )?;
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let conn = Arc::new(Mutex::new(conn));
        let thread_conn = conn.clone();
        std::thread::Builder::new()
            .name("ztpd-state-writer".into())
            .spawn(move || writer_loop(thread_conn, rx))
            .map_err(|e| StateError::CreateDir {
                path: dir.to_path_buf(),
                source: e,
            })?;
        Ok(StateStore {
            path,
            writer: Writer {
                tx,
                conn,
                os_only: Arc::new(std::sync::atomic::AtomicBool::new(
                    durability == Durability::Os,
                )),
            },
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Apply the schema steps of `component` that this database has not seen
    /// yet, each step once, in order. Steps are append-only: never edit one
    /// that has shipped, add a new one.
    pub fn migrate(&self, component: &str, steps: &[&str]) -> Result<(), StateError> {
        let mut conn = open_conn(&self.path)?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let have: i64 = tx
            .query_row(
                "SELECT version FROM schema_migrations WHERE component = ?1",
                [component],
                |r| r.get(0),
            )
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(0),
                e => Err(e),
            })?;
        let have = usize::try_from(have).unwrap_or(0);
        for (i, step) in steps.iter().enumerate().skip(have) {
            tx.execute_batch(step)
                .map_err(|source| StateError::Migrate {
                    component: component.to_string(),
                    step: i + 1,
                    source,
                })?;
        }
        if steps.len() > have {
            tx.execute(
                "INSERT OR REPLACE INTO schema_migrations (component, version) VALUES (?1, ?2)",
                rusqlite::params![component, steps.len() as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A new connection for reading (loading state at start, API queries).
    pub fn reader(&self) -> Result<Connection, StateError> {
        open_conn(&self.path)
    }

    pub fn writer(&self) -> Writer {
        self.writer.clone()
    }
}

/// In WAL mode FULL syncs the log at every commit; OFF leaves it to the OS.
fn synchronous(durability: Durability) -> &'static str {
    match durability {
        Durability::Fsync => "FULL",
        Durability::Os => "OFF",
    }
}

fn open_conn(path: &Path) -> Result<Connection, StateError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StateError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Take everything queued, run it in one transaction, commit once, then tell
/// each caller. Runs until every `Writer` handle is dropped.
fn writer_loop(conn: Arc<Mutex<Connection>>, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut results: Vec<Result<(), WriteError>> = Vec::with_capacity(batch.len());
        let Ok(mut conn) = conn.lock() else {
            tracing::error!("state connection lock poisoned; writer stops");
            return;
        };
        let commit = (|| -> Result<(), rusqlite::Error> {
            let tx = conn.transaction()?;
            for job in batch.iter_mut() {
                let write = std::mem::replace(&mut job.write, Box::new(|_| Ok(())));
                results.push(write(&tx).map_err(|e| WriteError::Failed(e.to_string())));
            }
            tx.commit()
        })();
        drop(conn);
        if let Err(e) = &commit {
            tracing::error!("state commit failed: {e}");
        }
        for (i, job) in batch.drain(..).enumerate() {
            let r = match &commit {
                Ok(()) => results.get(i).cloned().unwrap_or(Ok(())),
                Err(e) => Err(WriteError::Failed(e.to_string())),
            };
            if let Some(done) = job.done {
                done(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn migrations_apply_once_and_writes_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let steps = ["CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"];
        {
            let s = StateStore::open(dir.path(), Durability::Fsync).unwrap();
            s.migrate("test", &steps).unwrap();
            s.migrate("test", &steps).unwrap();
            for k in 0..10i64 {
                s.writer()
                    .write(Box::new(move |tx| {
                        tx.execute("INSERT INTO t VALUES (?1, 'x')", [k])
                            .map(|_| ())
                    }))
                    .await
                    .unwrap();
            }
        }
        let s = StateStore::open(dir.path(), Durability::Os).unwrap();
        let more = [
            "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)",
            "ALTER TABLE t ADD COLUMN w TEXT",
        ];
        s.migrate("test", &more).unwrap();
        let n: i64 = s
            .reader()
            .unwrap()
            .query_row("SELECT count(*) FROM t WHERE w IS NULL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 10);
    }

    #[tokio::test]
    async fn write_now_commits_on_the_caller_and_rolls_back_a_failed_write() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(dir.path(), Durability::Os).unwrap();
        s.migrate("test", &["CREATE TABLE t (k INTEGER PRIMARY KEY)"])
            .unwrap();
        let w = s.writer();
        assert!(w.commits_are_cheap());
        w.write_now(|c| c.execute("INSERT INTO t VALUES (1)", []).map(|_| ()))
            .unwrap();
        let failed = w.write_now(|c| {
            c.execute("INSERT INTO t VALUES (2)", [])?;
            c.execute("INSERT INTO nope VALUES (3)", []).map(|_| ())
        });
        assert!(matches!(failed, Err(WriteError::Failed(_))));
        // The queued path still works on the same connection afterwards.
        w.write(Box::new(|tx| {
            tx.execute("INSERT INTO t VALUES (4)", []).map(|_| ())
        }))
        .await
        .unwrap();
        let keys: Vec<i64> = s
            .reader()
            .unwrap()
            .prepare("SELECT k FROM t ORDER BY k")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(keys, vec![1, 4], "the failed write left nothing behind");
        let fsync = tempfile::tempdir().unwrap();
        let f = StateStore::open(fsync.path(), Durability::Fsync).unwrap();
        assert!(!f.writer().commits_are_cheap());
    }

    #[tokio::test]
    async fn a_failing_write_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(dir.path(), Durability::Os).unwrap();
        s.migrate("test", &["CREATE TABLE t (k INTEGER PRIMARY KEY)"])
            .unwrap();
        let w = s.writer();
        let (a, b) = tokio::join!(
            w.write(Box::new(|tx| tx
                .execute("INSERT INTO nope VALUES (1)", [])
                .map(|_| ()))),
            w.write(Box::new(|tx| tx
                .execute("INSERT INTO t VALUES (1)", [])
                .map(|_| ())))
        );
        assert!(matches!(a, Err(WriteError::Failed(_))));
        assert_eq!(b, Ok(()));
    }

    /// A reload's new `state.durability` reaches the write connection
    /// (SQLite's `synchronous`: 2 FULL, 0 OFF) and every writer clone.
    #[tokio::test]
    async fn durability_changes_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let s = StateStore::open(dir.path(), Durability::Fsync).unwrap();
        let (w, other) = (s.writer(), s.writer());
        let sync = |w: &Writer| -> i64 {
            let conn = w.conn.lock().unwrap();
            conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(sync(&w), 2);
        w.set_durability(Durability::Os).unwrap();
        assert_eq!(sync(&w), 0);
        assert!(other.commits_are_cheap());
        assert_eq!(other.durability(), Durability::Os);
        other.set_durability(Durability::Fsync).unwrap();
        assert_eq!(sync(&w), 2);
        assert!(!w.commits_are_cheap());
    }
}
