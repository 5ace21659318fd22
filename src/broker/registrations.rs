//! Registrations with the provisioning service (SPEC §13), kept in the
//! state store, and the registration operations in progress (memory only:
//! a device whose operation was lost to a restart registers again).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::RngCore;
use serde::Serialize;
use serde_json::Value;

use crate::state::{StateError, StateStore, Writer};

const MIGRATIONS: &[&str] = &["CREATE TABLE hub_registrations (
        registration_id TEXT PRIMARY KEY,
        payload TEXT NOT NULL,
        assigned_hub TEXT NOT NULL,
        created TEXT NOT NULL,
        updated TEXT NOT NULL
    )"];

/// Registrations in progress or answered and not yet polled, at most: past
/// it a registration gets 429 (the SDK tries again after `retry-after`), so
/// a burst cannot grow memory without bound.
const MAX_OPERATIONS: usize = 100_000;
/// How long a finished operation waits for its poll before it is dropped.
const OPERATION_TTL: Duration = Duration::from_secs(300);

/// A device's registration as stored (shown as `registration_payload`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Registration {
    pub registration_id: String,
    pub payload: Value,
    pub assigned_hub: String,
    pub created: String,
    pub updated: String,
}

pub enum Outcome {
    Pending,
    Done(Value),
    Failed(String),
}

struct Operation {
    registration_id: String,
    outcome: Outcome,
    since: Instant,
}

/// Stored registrations and the operations in progress.
pub struct Registrations {
    writer: Writer,
    rows: Mutex<HashMap<String, Registration>>,
    operations: Mutex<HashMap<String, Operation>>,
}

impl Registrations {
    pub fn open(store: &StateStore) -> Result<Registrations, StateError> {
        store.migrate("hub_registrations", MIGRATIONS)?;
        let conn = store.reader()?;
        let mut st = conn.prepare(
            "SELECT registration_id, payload, assigned_hub, created, updated FROM hub_registrations",
        )?;
        let rows = st
            .query_map([], |r| {
                Ok(Registration {
                    registration_id: r.get(0)?,
                    payload: serde_json::from_str(&r.get::<_, String>(1)?).unwrap_or(Value::Null),
                    assigned_hub: r.get(2)?,
                    created: r.get(3)?,
                    updated: r.get(4)?,
                })
            })?
            .filter_map(Result::ok)
            .map(|r| (r.registration_id.clone(), r))
            .collect();
        Ok(Registrations {
            writer: store.writer(),
            rows: Mutex::new(rows),
            operations: Mutex::default(),
        })
    }

    /// A device's registration, if it registered.
    pub fn get(&self, registration_id: &str) -> Option<Registration> {
        self.rows.lock().ok()?.get(registration_id).cloned()
    }

    /// Every registration, by id.
    pub fn list(&self) -> Vec<Registration> {
        let mut v: Vec<Registration> = self
            .rows
            .lock()
            .map(|r| r.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.registration_id.cmp(&b.registration_id));
        v
    }

    pub async fn save(&self, r: Registration) -> Result<(), String> {
        let row = r.clone();
        let payload = r.payload.to_string();
        self.writer
            .write(Box::new(move |tx| {
                tx.execute(
                    "INSERT INTO hub_registrations (registration_id, payload, assigned_hub, created, updated)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(registration_id) DO UPDATE SET payload = ?2, assigned_hub = ?3, updated = ?5",
                    rusqlite::params![r.registration_id, payload, r.assigned_hub, r.created, r.updated],
                )
                .map(|_| ())
            }))
            .await
            .map_err(|e| e.to_string())?;
        if let Ok(mut rows) = self.rows.lock() {
            rows.insert(row.registration_id.clone(), row);
        }
        Ok(())
    }

    /// A new operation for `registration_id`, or `None` when too many are open.
    pub fn start(&self, registration_id: &str) -> Option<String> {
        let mut ops = self.operations.lock().ok()?;
        if ops.len() >= MAX_OPERATIONS {
            ops.retain(|_, o| {
                matches!(o.outcome, Outcome::Pending) || o.since.elapsed() < OPERATION_TTL
            });
            if ops.len() >= MAX_OPERATIONS {
                return None;
            }
        }
        let mut b = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut b);
        let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let id = format!("4.{id}");
        ops.insert(
            id.clone(),
            Operation {
                registration_id: registration_id.to_string(),
                outcome: Outcome::Pending,
                since: Instant::now(),
            },
        );
        Some(id)
    }

    pub fn finish(&self, operation_id: &str, outcome: Outcome) {
        if let Ok(mut ops) = self.operations.lock() {
            if let Some(o) = ops.get_mut(operation_id) {
                o.outcome = outcome;
                o.since = Instant::now();
            }
        }
    }
}

/// What a poll finds of an operation.
pub enum Polled {
    /// Still writing.
    Pending,
    /// Finished: the outcome (the operation is forgotten).
    Finished(Outcome),
    /// No such operation for this registration id.
    Unknown,
}

impl Registrations {
    /// The state of `operation_id` of `registration_id`; a finished one is
    /// taken out.
    pub fn poll(&self, registration_id: &str, operation_id: &str) -> Polled {
        let Ok(mut ops) = self.operations.lock() else {
            return Polled::Unknown;
        };
        match ops.get(operation_id) {
            Some(o) if o.registration_id == registration_id => {
                if matches!(o.outcome, Outcome::Pending) {
                    return Polled::Pending;
                }
                ops.remove(operation_id)
                    .map_or(Polled::Unknown, |o| Polled::Finished(o.outcome))
            }
            _ => Polled::Unknown,
        }
    }

    /// Forget an operation answered at once.
    pub fn forget(&self, operation_id: &str) {
        if let Ok(mut ops) = self.operations.lock() {
            ops.remove(operation_id);
        }
    }
}
