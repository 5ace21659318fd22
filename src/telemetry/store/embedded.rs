//! The embedded telemetry store: its own SQLite file under `state/` (apart
//! from the state database, so telemetry volume never slows leases). Same
//! semantics as MongoDB: `_id` primary key, redelivery ignored, a batch
//! committed in one transaction before it is acknowledged.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

use super::{DeviceStats, RejectedMessage, Stat, Store, StoreError, WriteOutcome};
use crate::telemetry::message::{format_date, DeviceName, Reading};
use crate::telemetry::routing::envelope::Envelope;

pub const FILE_NAME: &str = "telemetry.sqlite";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS readings (
    id TEXT PRIMARY KEY,
    device_id TEXT NOT NULL,
    device_name,
    device_latitude REAL,
    device_longitude REAL,
    device_battery_level REAL,
    signal_date TEXT NOT NULL,
    signal_micros INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_device_date ON readings (device_id, signal_micros);
CREATE TABLE IF NOT EXISTS rejected (
    id TEXT PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    payload_size INTEGER NOT NULL,
    reason TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS envelopes (
    collection TEXT NOT NULL,
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (collection, id)
);
";

#[derive(Clone)]
pub struct EmbeddedStore {
    conn: Arc<Mutex<Connection>>,
}

fn sql_err(e: rusqlite::Error) -> StoreError {
    StoreError::Other(e.to_string())
}

impl EmbeddedStore {
    pub fn open(path: &Path) -> Result<EmbeddedStore, StoreError> {
        // It lives in `state/`: 0700, the database 0600 (as the state store).
        if let Some(dir) = path.parent() {
            crate::secret_file::private_dir(dir)
                .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", dir.display())))?;
        }
        crate::secret_file::private_db(path)
            .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", path.display())))?;
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Other(format!("cannot open {}: {e}", path.display())))?;
        // WAL + FULL: a committed batch survives a crash, which is what the
        // bridge's acknowledgement promises.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sql_err)?;
        conn.execute_batch(SCHEMA).map_err(sql_err)?;
        Ok(EmbeddedStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn with_conn<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> impl std::future::Future<Output = Result<T, StoreError>> + Send {
        let conn = self.conn.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut c = conn
                    .lock()
                    .map_err(|_| StoreError::Other("store lock poisoned".into()))?;
                f(&mut c)
            })
            .await
            .map_err(|e| StoreError::Other(format!("store task failed: {e}")))?
        }
    }
}

fn write_batch(
    c: &mut Connection,
    readings: &[Reading],
    rejected: &[RejectedMessage],
) -> Result<WriteOutcome, StoreError> {
    let tx = c.transaction().map_err(sql_err)?;
    let mut out = WriteOutcome::default();
    {
        let mut ins = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO readings (id, device_id, device_name, device_latitude, device_longitude, device_battery_level, signal_date, signal_micros) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(sql_err)?;
        for r in readings {
            let name: Option<rusqlite::types::Value> = r.device_name.as_ref().map(|n| match n {
                DeviceName::Int(i) => rusqlite::types::Value::Integer(*i),
                DeviceName::Text(s) => rusqlite::types::Value::Text(s.clone()),
            });
            let n = ins
                .execute(params![
                    r.id(),
                    r.device_id,
                    name,
                    r.latitude,
                    r.longitude,
                    r.battery,
                    format_date(&r.signal_date),
                    r.signal_date.timestamp_micros(),
                ])
                .map_err(sql_err)?;
            if n == 1 {
                out.inserted += 1;
            } else {
                out.duplicates += 1;
            }
        }
        let mut rej = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO rejected (id, topic, payload, payload_size, reason, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sql_err)?;
        let now = format_date(&chrono::Utc::now());
        for m in rejected {
            rej.execute(params![
                m.id(),
                m.topic,
                m.kept_payload(),
                m.payload.len() as i64,
                m.reason,
                now
            ])
            .map_err(sql_err)?;
            out.rejected += 1;
        }
    }
    tx.commit().map_err(sql_err)?;
    Ok(out)
}

fn write_envelopes(
    c: &mut Connection,
    collection: &str,
    envelopes: &[(String, String)],
) -> Result<WriteOutcome, StoreError> {
    let tx = c.transaction().map_err(sql_err)?;
    let mut out = WriteOutcome::default();
    {
        let mut ins = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO envelopes (collection, id, doc) VALUES (?1, ?2, ?3)",
            )
            .map_err(sql_err)?;
        for (id, doc) in envelopes {
            if ins.execute(params![collection, id, doc]).map_err(sql_err)? == 1 {
                out.inserted += 1;
            } else {
                out.duplicates += 1;
            }
        }
    }
    tx.commit().map_err(sql_err)?;
    Ok(out)
}

fn analyze_sql(c: &mut Connection, device: Option<String>) -> Result<Vec<DeviceStats>, StoreError> {
    let as_int = device.as_deref().and_then(|d| d.parse::<i64>().ok());
    let mut q = c
        .prepare(
            "SELECT device_id, COUNT(*),
                    MIN(device_latitude), AVG(device_latitude), MAX(device_latitude),
                    MIN(device_longitude), AVG(device_longitude), MAX(device_longitude)
             FROM readings
             WHERE ?1 IS NULL OR device_id = ?1 OR device_name = ?1 OR device_name = ?2
             GROUP BY device_id ORDER BY device_id",
        )
        .map_err(sql_err)?;
    let rows = q
        .query_map(params![device, as_int], |row| {
            let stat = |i: usize| -> rusqlite::Result<Option<Stat>> {
                let min: Option<f64> = row.get(i)?;
                let mean: Option<f64> = row.get(i + 1)?;
                let max: Option<f64> = row.get(i + 2)?;
                Ok(match (min, mean, max) {
                    (Some(min), Some(mean), Some(max)) => Some(Stat { min, mean, max }),
                    _ => None,
                })
            };
            Ok(DeviceStats {
                device_id: row.get(0)?,
                device_name: None,
                count: row.get::<_, i64>(1)? as u64,
                latitude: stat(2)?,
                longitude: stat(5)?,
                last_battery: None,
            })
        })
        .map_err(sql_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_err)?;
    let mut out = Vec::with_capacity(rows.len());
    for mut s in rows {
        s.last_battery = c
            .query_row(
                "SELECT device_battery_level FROM readings WHERE device_id = ?1 AND device_battery_level IS NOT NULL ORDER BY signal_micros DESC LIMIT 1",
                [&s.device_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(sql_err)?;
        s.device_name = c
            .query_row(
                "SELECT device_name FROM readings WHERE device_id = ?1 AND device_name IS NOT NULL ORDER BY signal_micros DESC LIMIT 1",
                [&s.device_id],
                |r| r.get::<_, rusqlite::types::Value>(0),
            )
            .optional()
            .map_err(sql_err)?
            .and_then(|v| match v {
                rusqlite::types::Value::Integer(i) => Some(serde_json::Value::from(i)),
                rusqlite::types::Value::Text(t) => Some(serde_json::Value::from(t)),
                _ => None,
            });
        out.push(s);
    }
    Ok(out)
}

impl Store for EmbeddedStore {
    async fn write(
        &self,
        readings: &[Reading],
        rejected: &[RejectedMessage],
    ) -> Result<WriteOutcome, StoreError> {
        let readings = readings.to_vec();
        let rejected = rejected.to_vec();
        self.with_conn(move |c| write_batch(c, &readings, &rejected))
            .await
    }

    async fn write_envelopes(
        &self,
        collection: &str,
        envelopes: &[Envelope],
    ) -> Result<WriteOutcome, StoreError> {
        let rows = envelopes
            .iter()
            .map(|e| {
                serde_json::to_string(e)
                    .map(|doc| (e.id.clone(), doc))
                    .map_err(|e| StoreError::Other(format!("routed message as JSON: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let collection = collection.to_string();
        self.with_conn(move |c| write_envelopes(c, &collection, &rows))
            .await
    }

    async fn analyze(&self, device: Option<&str>) -> Result<Vec<DeviceStats>, StoreError> {
        let device = device.map(str::to_string);
        self.with_conn(move |c| analyze_sql(c, device)).await
    }
}

impl EmbeddedStore {
    /// Counts of stored readings and rejected messages (tests, status).
    pub async fn counts(&self) -> Result<(u64, u64), StoreError> {
        self.with_conn(|c| {
            let n: i64 = c
                .query_row("SELECT COUNT(*) FROM readings", [], |r| r.get(0))
                .map_err(sql_err)?;
            let m: i64 = c
                .query_row("SELECT COUNT(*) FROM rejected", [], |r| r.get(0))
                .map_err(sql_err)?;
            Ok((n as u64, m as u64))
        })
        .await
    }
}

impl EmbeddedStore {
    /// The routed messages stored in `collection`, by `_id` (tests, tools).
    pub async fn envelopes(&self, collection: &str) -> Result<Vec<Envelope>, StoreError> {
        let collection = collection.to_string();
        self.with_conn(move |c| {
            let mut q = c
                .prepare("SELECT doc FROM envelopes WHERE collection = ?1 ORDER BY id")
                .map_err(sql_err)?;
            let docs = q
                .query_map([collection], |r| r.get::<_, String>(0))
                .map_err(sql_err)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(sql_err)?;
            docs.iter()
                .map(|d| serde_json::from_str(d).map_err(|e| StoreError::Other(e.to_string())))
                .collect()
        })
        .await
    }
}

#[cfg(test)]
#[path = "embedded_tests.rs"]
mod tests;
