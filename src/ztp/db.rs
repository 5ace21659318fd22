//! A stand-in for the shared state store (`crate::state`, dhcp branch) with
//! the same surface: `open(dir, durability)`, `migrate(component, steps)`,
//! `reader()`, `writer().write(..)`. When `crate::state` is merged, ZTP
//! switches to it by changing the one `use` in `ztp::state`; the tables and
//! the database file (`state/ztpd.sqlite`, WAL) are the same.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::settings::Durability;

pub const DB_FILE: &str = "ztpd.sqlite";
const QUEUE: usize = 16_384;
const MAX_BATCH: usize = 4_096;

pub type Tx<'a> = rusqlite::Transaction<'a>;
pub type WriteFn = Box<dyn FnOnce(&Tx<'_>) -> Result<(), rusqlite::Error> + Send>;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("cannot create the state directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("the state writer has stopped")]
    Stopped,
    #[error("state write failed: {0}")]
    Failed(String),
}

type Job = (WriteFn, oneshot::Sender<Result<(), WriteError>>);

#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Queue a write and wait until its group transaction is committed.
    pub async fn write(&self, write: WriteFn) -> Result<(), WriteError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send((write, tx))
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
    pub fn open(dir: &Path, durability: Durability) -> Result<StateStore, StateError> {
        std::fs::create_dir_all(dir).map_err(|source| StateError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let conn = open_conn(&path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        let sync = match durability {
            Durability::Fsync => "FULL",
            Durability::Os => "OFF",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                component TEXT PRIMARY KEY, version INTEGER NOT NULL)",
        )?;
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("ztpd-ztp-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|source| StateError::Dir {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(StateStore {
            path,
            writer: Writer { tx },
        })
    }

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
        for step in steps.iter().skip(have) {
            tx.execute_batch(step)?;
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

    pub fn reader(&self) -> Result<Connection, StateError> {
        open_conn(&self.path)
    }

    pub fn writer(&self) -> Writer {
        self.writer.clone()
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
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

/// Group commit: everything queued runs in one transaction, one fsync.
fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let mut results = Vec::with_capacity(batch.len());
        let mut waiters = Vec::with_capacity(batch.len());
        let commit = (|| -> Result<(), rusqlite::Error> {
            let tx = conn.transaction()?;
            for (write, done) in batch.drain(..) {
                results.push(write(&tx).map_err(|e| WriteError::Failed(e.to_string())));
                waiters.push(done);
            }
            tx.commit()
        })();
        if let Err(e) = &commit {
            tracing::error!("ztp state commit failed: {e}");
        }
        for (i, done) in waiters.into_iter().enumerate() {
            let r = match &commit {
                Ok(()) => results.get(i).cloned().unwrap_or(Ok(())),
                Err(e) => Err(WriteError::Failed(e.to_string())),
            };
            let _ = done.send(r);
        }
        batch.clear();
    }
}
