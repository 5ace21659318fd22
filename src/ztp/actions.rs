//! Durable device actions (SPEC §7): `upgrade`, `reconfigure` and
//! `refresh_credential`, kept in the state store until acknowledged.
//!
//! An action is queued once (committed before anyone can see it), served on
//! every read of `/ztp/v1/devices/<serial>/actions` until a progress report
//! names its `id` (or, for `refresh_credential`, the credential is fetched),
//! or a newer action of the same type supersedes it. Devices with a
//! credential also get it on their devicebound MQTT topic, once: the row
//! records that it was published, so a restart neither loses an action nor
//! publishes one twice.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use serde_json::{Map, Value};
use tokio::sync::Notify;

use crate::device_events::DeviceEvents;
use crate::state::{StateError, StateStore, WriteError, Writer};

const MIGRATIONS: &[&str] = &["CREATE TABLE ztp_actions (
        id TEXT PRIMARY KEY,
        device TEXT NOT NULL,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        mqtt_id TEXT,
        state TEXT NOT NULL,
        published INTEGER NOT NULL DEFAULT 0,
        seq INTEGER NOT NULL
    );
    CREATE INDEX ztp_actions_pending ON ztp_actions (state, device);"];

/// The action types a device carries out.
pub const TYPES: [&str; 3] = ["upgrade", "reconfigure", "refresh_credential"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("action {id} is not an action of {device}")]
    NotYours { id: String, device: String },
    #[error("unknown action {0}: expected the `id` of one of this device's actions")]
    Unknown(String),
    #[error(transparent)]
    Write(#[from] WriteError),
}

#[derive(Clone)]
struct Pending {
    id: String,
    kind: String,
    body: Value,
    mqtt_id: Option<String>,
}

#[derive(Default)]
struct Book {
    /// Pending actions per device, oldest first.
    pending: HashMap<String, Vec<Pending>>,
    /// Owner of every action id seen (pending or done), to refuse a report
    /// naming another device's action.
    owner: HashMap<String, String>,
    seq: i64,
}

pub struct ActionStore {
    book: Mutex<Book>,
    writer: Writer,
    ready: Notify,
    publisher: RwLock<Option<Arc<dyn DeviceEvents>>>,
}

fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("act-{hex}")
}

impl ActionStore {
    /// Open the actions table and load every pending action.
    pub fn open(store: &StateStore) -> Result<Arc<ActionStore>, StateError> {
        store.migrate("ztp_actions", MIGRATIONS)?;
        let conn = store.reader()?;
        let mut book = Book::default();
        let mut st = conn.prepare(
            "SELECT id, device, kind, body, mqtt_id, state, seq FROM ztp_actions ORDER BY seq",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?;
        for row in rows {
            let (id, device, kind, body, mqtt_id, state, seq) = row?;
            book.seq = book.seq.max(seq);
            book.owner.insert(id.clone(), device.clone());
            if state != "pending" {
                continue;
            }
            let Ok(body) = serde_json::from_str(&body) else {
                tracing::warn!(%id, "unreadable action row ignored");
                continue;
            };
            book.pending.entry(device).or_default().push(Pending {
                id,
                kind,
                body,
                mqtt_id,
            });
        }
        drop(st);
        Ok(Arc::new(ActionStore {
            book: Mutex::new(book),
            writer: store.writer(),
            ready: Notify::new(),
            publisher: RwLock::new(None),
        }))
    }

    /// Where actions of devices with a credential are published. Pending
    /// actions that were never published (ztpd stopped first) go out now.
    pub fn set_publisher(&self, p: Arc<dyn DeviceEvents>, conn: &rusqlite::Connection) {
        if let Ok(mut w) = self.publisher.write() {
            *w = Some(p);
        }
        let unsent: Vec<String> = conn
            .prepare("SELECT id FROM ztp_actions WHERE state = 'pending' AND published = 0 AND mqtt_id IS NOT NULL")
            .and_then(|mut st| {
                st.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_default();
        let found: Vec<Pending> = self
            .book
            .lock()
            .map(|b| {
                b.pending
                    .values()
                    .flatten()
                    .filter(|p| unsent.contains(&p.id))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for p in found {
            self.publish(&p);
        }
    }

    fn publish(&self, p: &Pending) {
        let Some(id) = &p.mqtt_id else { return };
        let Some(publisher) = self.publisher.read().ok().and_then(|g| g.clone()) else {
            return;
        };
        publisher.send(id, &p.body);
        let aid = p.id.clone();
        let _ = self.writer.submit(
            Box::new(move |tx| {
                tx.execute("UPDATE ztp_actions SET published = 1 WHERE id = ?1", [aid])
                    .map(|_| ())
            }),
            Box::new(|_| {}),
        );
    }

    /// Queue an action of `kind` for device `name` with the given fields
    /// (URLs, `rollout`); `mqtt_id` is the device id of a device with a
    /// credential. Returns the action JSON once it is committed. A pending
    /// action of the same type is superseded.
    pub async fn queue(
        self: &Arc<Self>,
        name: &str,
        mqtt_id: Option<&str>,
        kind: &str,
        fields: Map<String, Value>,
    ) -> Result<Value, WriteError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let body = self.submit(name, mqtt_id, kind, fields, move |r| {
            let _ = tx.send(r);
        })?;
        rx.await.map_err(|_| WriteError::Stopped)??;
        Ok(body)
    }

    /// [`ActionStore::queue`] without waiting: `done` runs after the commit
    /// (the action is served and published from then on).
    pub fn submit(
        self: &Arc<Self>,
        name: &str,
        mqtt_id: Option<&str>,
        kind: &str,
        fields: Map<String, Value>,
        done: impl FnOnce(Result<(), WriteError>) + Send + 'static,
    ) -> Result<Value, WriteError> {
        let id = new_id();
        let mut body = Map::new();
        body.insert("id".into(), id.clone().into());
        body.insert("type".into(), kind.into());
        body.insert("created_at".into(), crate::clock::rfc3339_millis().into());
        body.extend(fields);
        let body = Value::Object(body);
        let seq = {
            let mut b = self.book.lock().map_err(|_| WriteError::Stopped)?;
            b.seq += 1;
            b.owner.insert(id.clone(), name.to_string());
            b.seq
        };
        let p = Pending {
            id: id.clone(),
            kind: kind.to_string(),
            body: body.clone(),
            mqtt_id: mqtt_id.map(str::to_string),
        };
        let text = body.to_string();
        let (device, k, m) = (name.to_string(), kind.to_string(), p.mqtt_id.clone());
        let me = self.clone();
        let owner = name.to_string();
        self.writer.submit(
            Box::new(move |tx| {
                tx.execute(
                    "UPDATE ztp_actions SET state = 'superseded'
                     WHERE device = ?1 AND kind = ?2 AND state = 'pending'",
                    rusqlite::params![device, k],
                )?;
                tx.execute(
                    "INSERT INTO ztp_actions (id, device, kind, body, mqtt_id, state, seq)
                     VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)",
                    rusqlite::params![id, device, k, text, m, seq],
                )
                .map(|_| ())
            }),
            Box::new(move |r| {
                if r.is_ok() {
                    me.make_pending(owner, p);
                }
                done(r);
            }),
        )?;
        Ok(body)
    }

    fn make_pending(&self, name: String, p: Pending) {
        if let Ok(mut b) = self.book.lock() {
            let list = b.pending.entry(name).or_default();
            list.retain(|q| q.kind != p.kind);
            list.push(p.clone());
        }
        self.ready.notify_waiters();
        self.publish(&p);
    }

    /// The pending actions of `name`, oldest first.
    pub fn pending(&self, name: &str) -> Vec<Value> {
        self.book
            .lock()
            .ok()
            .and_then(|b| {
                b.pending
                    .get(name)
                    .map(|l| l.iter().map(|p| p.body.clone()).collect())
            })
            .unwrap_or_default()
    }

    /// The pending actions of `name`, waiting up to `wait` for one.
    pub async fn wait(&self, name: &str, wait: std::time::Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.pending(name);
            if !now.is_empty() {
                return now;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Vec::new();
            }
        }
    }

    /// Check that action `id` belongs to `name`, without changing anything.
    pub fn check_owner(&self, name: &str, id: &str) -> Result<(), AckError> {
        let b = self.book.lock().map_err(|_| WriteError::Stopped)?;
        match b.owner.get(id) {
            Some(o) if o == name => Ok(()),
            Some(_) => Err(AckError::NotYours {
                id: id.to_string(),
                device: name.to_string(),
            }),
            None => Err(AckError::Unknown(id.to_string())),
        }
    }

    /// A progress report of `name` named action `id`: it is done.
    pub async fn acknowledge(&self, name: &str, id: &str) -> Result<(), AckError> {
        self.check_owner(name, id)?;
        self.close(name, id, "acknowledged").await?;
        Ok(())
    }

    /// Withdraw `name`'s pending action `id` (an aborted rollout): it is no
    /// longer served. Returns whether it was pending.
    pub async fn withdraw(&self, name: &str, id: &str) -> Result<bool, WriteError> {
        self.close(name, id, "withdrawn").await
    }

    /// Move `name`'s pending action `id` to `state` (stored first, then no
    /// longer served); false when it was not pending.
    async fn close(&self, name: &str, id: &str, state: &'static str) -> Result<bool, WriteError> {
        let pending = self
            .book
            .lock()
            .ok()
            .and_then(|b| b.pending.get(name).map(|l| l.iter().any(|p| p.id == id)))
            .unwrap_or(false);
        if !pending {
            return Ok(false);
        }
        let aid = id.to_string();
        self.writer
            .write(Box::new(move |tx| {
                tx.execute(
                    "UPDATE ztp_actions SET state = ?1 WHERE id = ?2 AND state = 'pending'",
                    [state, aid.as_str()],
                )
                .map(|_| ())
            }))
            .await?;
        if let Ok(mut b) = self.book.lock() {
            if let Some(l) = b.pending.get_mut(name) {
                l.retain(|p| p.id != id);
            }
        }
        Ok(true)
    }

    /// `name` fetched its credential: its `refresh_credential` is done.
    pub async fn credential_fetched(&self, name: &str) {
        let ids: Vec<String> = self
            .book
            .lock()
            .ok()
            .and_then(|b| {
                b.pending.get(name).map(|l| {
                    l.iter()
                        .filter(|p| p.kind == "refresh_credential")
                        .map(|p| p.id.clone())
                        .collect()
                })
            })
            .unwrap_or_default();
        for id in ids {
            if let Err(e) = self.acknowledge(name, &id).await {
                tracing::warn!(device = name, "refresh_credential not acknowledged: {e}");
            }
        }
    }
}

#[cfg(test)]
#[path = "actions_tests.rs"]
mod tests;
