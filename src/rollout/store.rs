//! Rollouts in the state store: one row per rollout, its whole state as
//! JSON, rewritten at each change. Loaded at start, so a rollout resumes
//! after a restart where it was.

use std::collections::BTreeMap;

use super::model::Rollout;
use crate::state::{StateError, StateStore, WriteError, Writer};

const MIGRATIONS: &[&str] = &["CREATE TABLE rollouts (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        body TEXT NOT NULL
    );"];

pub struct RolloutStore {
    writer: Writer,
}

impl RolloutStore {
    /// Open the table; returns every stored rollout with its `seq`, oldest
    /// first.
    #[allow(clippy::type_complexity)]
    pub fn open(store: &StateStore) -> Result<(RolloutStore, Vec<(i64, Rollout)>), StateError> {
        store.migrate("rollouts", MIGRATIONS)?;
        let conn = store.reader()?;
        let mut all = BTreeMap::new();
        let mut st = conn.prepare("SELECT id, seq, body FROM rollouts")?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (id, seq, body) = row?;
            match serde_json::from_str::<Rollout>(&body) {
                Ok(r) => {
                    all.insert(seq, r);
                }
                Err(e) => tracing::warn!(rollout = %id, "unreadable rollout row ignored: {e}"),
            }
        }
        drop(st);
        Ok((
            RolloutStore {
                writer: store.writer(),
            },
            all.into_iter().collect(),
        ))
    }

    /// Delete the rollouts `ids` (finished ones past the retention).
    pub async fn delete(&self, ids: Vec<String>) -> Result<(), WriteError> {
        self.writer
            .write(Box::new(move |tx| {
                for id in &ids {
                    tx.execute("DELETE FROM rollouts WHERE id = ?1", [id])?;
                }
                Ok(())
            }))
            .await
    }

    /// Write `r` (the `seq` orders rollouts by creation) and wait for the commit.
    pub async fn save(&self, seq: i64, r: &Rollout) -> Result<(), WriteError> {
        let body = serde_json::to_string(r).map_err(|e| WriteError::Failed(e.to_string()))?;
        let id = r.id.clone();
        self.writer
            .write(Box::new(move |tx| {
                tx.execute(
                    "INSERT INTO rollouts (id, seq, body) VALUES (?1, ?2, ?3)
                     ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                    rusqlite::params![id, seq, body],
                )
                .map(|_| ())
            }))
            .await
    }
}
