//! Where telemetry lands (SPEC §9): MongoDB through the official driver, or
//! the embedded store (its own SQLite file under `state/`) when no
//! `mongodb_uri` is set. Both give the same guarantees: a batch is
//! acknowledged only once durable, a redelivered reading (same `_id`) is a
//! no-op that counts as success, and rejected messages keep their reason,
//! topic and raw payload.

use std::future::Future;

use sha2::{Digest, Sha256};

use super::message::Reading;
use super::routing::envelope::Envelope;

pub mod embedded;
pub mod mongo;

pub use embedded::EmbeddedStore;
pub use mongo::MongoStore;

/// Raw payload bytes kept for a rejected message; an oversized payload is
/// cut here (its full size is recorded) so a flood cannot bloat the store.
pub const MAX_REJECTED_PAYLOAD: usize = 4096;

/// A message that failed validation, as stored in `<collection>_rejected`.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedMessage {
    pub topic: String,
    pub payload: Vec<u8>,
    pub reason: String,
}

impl RejectedMessage {
    /// Deterministic, so a redelivered rejected message is stored once too.
    pub fn id(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.topic.as_bytes());
        h.update([0]);
        h.update(&self.payload);
        let digest = h.finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("rejected:{hex}")
    }

    /// The payload as kept: whole when small, else its first bytes.
    pub fn kept_payload(&self) -> &[u8] {
        &self.payload[..self.payload.len().min(MAX_REJECTED_PAYLOAD)]
    }
}

/// What one write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub inserted: u64,
    /// Readings already present (redeliveries), counted as success.
    pub duplicates: u64,
    pub rejected: u64,
}

/// Minimum, mean and maximum of one coordinate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Stat {
    pub min: f64,
    pub mean: f64,
    pub max: f64,
}

/// One row of `ztpd analyze` (SPEC §10).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeviceStats {
    pub device_id: String,
    pub device_name: Option<serde_json::Value>,
    pub count: u64,
    pub latitude: Option<Stat>,
    pub longitude: Option<Stat>,
    pub last_battery: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or refused the write; retrying later may work.
    #[error("telemetry store unavailable: {0}")]
    Unavailable(String),
    #[error("telemetry store error: {0}")]
    Other(String),
}

/// A telemetry store. Implementations must make `write` durable before it
/// returns `Ok`, since the bridge acknowledges MQTT messages after it.
pub trait Store: Send + Sync + 'static {
    fn write(
        &self,
        readings: &[Reading],
        rejected: &[RejectedMessage],
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// Store routed messages in `collection` (a `mongodb` endpoint other
    /// than `events`, SPEC §14), keyed by their `_id`: one already there (a
    /// redelivery) is a duplicate and counts as success. Durable before `Ok`.
    fn write_envelopes(
        &self,
        collection: &str,
        envelopes: &[Envelope],
    ) -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;

    /// Per-device statistics, optionally for one device (id or name).
    fn analyze(
        &self,
        device: Option<&str>,
    ) -> impl Future<Output = Result<Vec<DeviceStats>, StoreError>> + Send;
}

/// Either store, chosen from settings at run time; clones share it.
#[derive(Clone)]
pub enum AnyStore {
    Mongo(MongoStore),
    Embedded(EmbeddedStore),
}

impl AnyStore {
    /// MongoDB when `telemetry.mongodb_uri` is set, else the embedded store.
    pub async fn open(resolved: &crate::settings::Resolved) -> Result<AnyStore, StoreError> {
        let t = &resolved.settings.telemetry;
        match &t.mongodb_uri {
            Some(uri) => Ok(AnyStore::Mongo(
                MongoStore::connect(uri, &t.database, &t.collection).await?,
            )),
            None => {
                let path = resolved
                    .resolve(&resolved.settings.paths.state)
                    .join(embedded::FILE_NAME);
                Ok(AnyStore::Embedded(EmbeddedStore::open(&path)?))
            }
        }
    }
}

impl Store for AnyStore {
    async fn write(
        &self,
        readings: &[Reading],
        rejected: &[RejectedMessage],
    ) -> Result<WriteOutcome, StoreError> {
        match self {
            AnyStore::Mongo(s) => s.write(readings, rejected).await,
            AnyStore::Embedded(s) => s.write(readings, rejected).await,
        }
    }
    async fn write_envelopes(
        &self,
        collection: &str,
        envelopes: &[Envelope],
    ) -> Result<WriteOutcome, StoreError> {
        match self {
            AnyStore::Mongo(s) => s.write_envelopes(collection, envelopes).await,
            AnyStore::Embedded(s) => s.write_envelopes(collection, envelopes).await,
        }
    }
    async fn analyze(&self, device: Option<&str>) -> Result<Vec<DeviceStats>, StoreError> {
        match self {
            AnyStore::Mongo(s) => s.analyze(device).await,
            AnyStore::Embedded(s) => s.analyze(device).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_ids_are_stable_and_distinct() {
        let a = RejectedMessage {
            topic: "t".into(),
            payload: b"x".to_vec(),
            reason: "r".into(),
        };
        let b = RejectedMessage {
            reason: "other".into(),
            ..a.clone()
        };
        let c = RejectedMessage {
            payload: b"y".to_vec(),
            ..a.clone()
        };
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), c.id());
        assert_eq!(a.id().len(), "rejected:".len() + 32);
    }
}
