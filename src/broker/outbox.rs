//! Devicebound messages waiting for their device (SPEC §9): ZTP events and
//! actions go out at QoS 1 and stay here, in the state store, until the
//! device acknowledges them, across its reconnects and ztpd's restarts.
//!
//! At most [`MAX_PER_DEVICE`] wait per device; a newer message pushes out
//! the oldest (with a warning): a device that has been offline for long
//! needs the latest events, and each of them is also a durable action on
//! `/ztp/v1/devices/<serial>/actions`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;

use crate::state::{StateError, StateStore, Writer};

/// Messages kept per offline device.
pub const MAX_PER_DEVICE: usize = 256;

const MIGRATIONS: &[&str] = &["CREATE TABLE hub_outbox (
        seq INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL
    )"];

/// One waiting message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub seq: u64,
    pub topic: String,
    pub payload: Bytes,
}

pub struct Outbox {
    writer: Writer,
    next: AtomicU64,
    queues: Mutex<HashMap<String, VecDeque<Queued>>>,
}

impl Outbox {
    pub fn open(store: &StateStore) -> Result<Outbox, StateError> {
        store.migrate("hub_outbox", MIGRATIONS)?;
        let conn = store.reader()?;
        let mut queues: HashMap<String, VecDeque<Queued>> = HashMap::new();
        let mut max = 0;
        let mut st =
            conn.prepare("SELECT seq, device_id, topic, payload FROM hub_outbox ORDER BY seq")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?;
        for row in rows {
            let (seq, device, topic, payload) = row?;
            let seq = seq.max(0) as u64;
            max = max.max(seq);
            queues.entry(device).or_default().push_back(Queued {
                seq,
                topic,
                payload: payload.into(),
            });
        }
        Ok(Outbox {
            writer: store.writer(),
            next: AtomicU64::new(max + 1),
            queues: Mutex::new(queues),
        })
    }

    /// Queue a message for `device_id`; the queued entry (its write is
    /// committed in the background: this never waits for the disk). A
    /// message already waiting (the same topic and payload: ZTP actions
    /// carry their id, and are published again after a restart when their
    /// "published" mark had not reached the disk) is not queued twice.
    pub fn push(&self, device_id: &str, topic: String, payload: Bytes) -> Queued {
        let (q, dropped) = {
            let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
            let queue = queues.entry(device_id.to_string()).or_default();
            if let Some(same) = queue
                .iter()
                .find(|m| m.topic == topic && m.payload == payload)
            {
                return same.clone();
            }
            let q = Queued {
                seq: self.next.fetch_add(1, Ordering::Relaxed),
                topic,
                payload,
            };
            queue.push_back(q.clone());
            let dropped = (queue.len() > MAX_PER_DEVICE)
                .then(|| queue.pop_front())
                .flatten();
            (q, dropped)
        };
        let (device, seq, topic, payload) = (
            device_id.to_string(),
            q.seq as i64,
            q.topic.clone(),
            q.payload.to_vec(),
        );
        self.submit(move |tx| {
            tx.execute(
                "INSERT INTO hub_outbox (seq, device_id, topic, payload) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![seq, device, topic, payload],
            )
        });
        if let Some(old) = dropped {
            tracing::warn!(
                device_id,
                "devicebound queue full ({MAX_PER_DEVICE}): the oldest message is dropped (it is still an action)"
            );
            self.delete(old.seq);
        }
        q
    }

    /// What waits for `device_id`, oldest first.
    pub fn pending(&self, device_id: &str) -> Vec<Queued> {
        let queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        queues
            .get(device_id)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The device acknowledged message `seq`.
    pub fn acknowledged(&self, device_id: &str, seq: u64) {
        let mut queues = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = queues.get_mut(device_id) {
            q.retain(|m| m.seq != seq);
            if q.is_empty() {
                queues.remove(device_id);
            }
        }
        drop(queues);
        self.delete(seq);
    }

    fn delete(&self, seq: u64) {
        let seq = seq as i64;
        self.submit(move |tx| tx.execute("DELETE FROM hub_outbox WHERE seq = ?1", [seq]));
    }

    fn submit(
        &self,
        f: impl FnOnce(&crate::state::Tx<'_>) -> Result<usize, rusqlite::Error> + Send + 'static,
    ) {
        self.writer
            .submit_or_warn(move |tx| f(tx).map(|_| ()), "devicebound queue");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Durability;

    #[tokio::test]
    async fn waiting_messages_survive_a_restart_until_acknowledged() {
        let d = tempfile::tempdir().unwrap();
        {
            let store = StateStore::open(d.path(), Durability::Fsync).unwrap();
            let o = Outbox::open(&store).unwrap();
            let a = o.push("d1", "t/a".into(), Bytes::from_static(b"a"));
            o.push("d1", "t/b".into(), Bytes::from_static(b"b"));
            o.push("d2", "t/c".into(), Bytes::from_static(b"c"));
            o.acknowledged("d1", a.seq);
            // the writer commits in order: a write after these waits for them
            store.writer().write(Box::new(|_| Ok(()))).await.unwrap();
        }
        let store = StateStore::open(d.path(), Durability::Fsync).unwrap();
        let o = Outbox::open(&store).unwrap();
        let left: Vec<_> = o.pending("d1").into_iter().map(|q| q.topic).collect();
        assert_eq!(left, ["t/b"]);
        assert_eq!(o.pending("d2").len(), 1);
        let next = o.push("d1", "t/d".into(), Bytes::new());
        assert!(next.seq > o.pending("d2")[0].seq);
        // the same message again is the one already waiting
        let again = o.push("d1", "t/b".into(), Bytes::from_static(b"b"));
        assert_eq!(o.pending("d1").len(), 2);
        assert_eq!(again, o.pending("d1")[0]);
    }

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest() {
        let d = tempfile::tempdir().unwrap();
        let store = StateStore::open(d.path(), Durability::Os).unwrap();
        let o = Outbox::open(&store).unwrap();
        for i in 0..MAX_PER_DEVICE + 3 {
            o.push("d", format!("t/{i}"), Bytes::new());
            o.push("d", format!("t/{i}"), Bytes::new());
        }
        let p = o.pending("d");
        assert_eq!(p.len(), MAX_PER_DEVICE);
        assert_eq!(p[0].topic, "t/3");
    }
}
