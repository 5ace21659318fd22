//! MongoDB through the official driver: `insert_many` unordered into
//! `<database>.<collection>`, rejected messages into `<collection>_rejected`.
//! A duplicate-key error (code 11000) is a redelivery of something already
//! stored, so it counts as success; any other error fails the batch and the
//! bridge retries it without acknowledging.

use std::time::Duration;

use mongodb::bson::{doc, Binary, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection, Database};

use super::{DeviceStats, RejectedMessage, Stat, Store, StoreError, WriteOutcome};
use crate::telemetry::message::{DeviceName, Reading};
use crate::telemetry::routing::envelope::Envelope;

/// MongoDB's duplicate-key error code.
const DUPLICATE_KEY: i32 = 11000;
/// How long an operation waits for a reachable server before failing the
/// batch; short, so the bridge's retry loop (not the driver) owns waiting.
const SELECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct MongoStore {
    /// The telemetry database: routed messages go to other collections in it.
    db: Database,
    readings: Collection<Document>,
    rejected: Collection<Document>,
}

fn unavailable(e: mongodb::error::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl MongoStore {
    pub async fn connect(
        uri: &str,
        database: &str,
        collection: &str,
    ) -> Result<MongoStore, StoreError> {
        let mut opts = ClientOptions::parse(uri)
            .await
            .map_err(|e| StoreError::Other(format!("telemetry.mongodb_uri `{uri}`: {e}")))?;
        opts.server_selection_timeout = Some(SELECT_TIMEOUT);
        opts.connect_timeout = Some(SELECT_TIMEOUT);
        opts.app_name = Some("ztpd".into());
        let client = Client::with_options(opts).map_err(unavailable)?;
        let db = client.database(database);
        Ok(MongoStore {
            readings: db.collection(collection),
            rejected: db.collection(&format!("{collection}_rejected")),
            db,
        })
    }

    /// Insert unordered; returns how many were duplicates.
    async fn insert(coll: &Collection<Document>, docs: Vec<Document>) -> Result<u64, StoreError> {
        if docs.is_empty() {
            return Ok(0);
        }
        match coll.insert_many(docs).ordered(false).await {
            Ok(_) => Ok(0),
            Err(e) => match *e.kind {
                ErrorKind::InsertMany(ref ime) if ime.write_concern_error.is_none() => {
                    let errs = ime.write_errors.as_deref().unwrap_or_default();
                    if !errs.is_empty() && errs.iter().all(|w| w.code == DUPLICATE_KEY) {
                        Ok(errs.len() as u64)
                    } else {
                        Err(StoreError::Other(e.to_string()))
                    }
                }
                ErrorKind::Write(WriteFailure::WriteError(ref w)) if w.code == DUPLICATE_KEY => {
                    Ok(1)
                }
                _ => Err(unavailable(e)),
            },
        }
    }

    pub async fn counts(&self) -> Result<(u64, u64), StoreError> {
        let n = self
            .readings
            .count_documents(doc! {})
            .await
            .map_err(unavailable)?;
        let m = self
            .rejected
            .count_documents(doc! {})
            .await
            .map_err(unavailable)?;
        Ok((n, m))
    }
}

/// An integer as MongoDB drivers store it: Int32 when it fits, Int64 only
/// when it must (what pymongo, and so the prototype, wrote). Besides matching
/// the prototype's documents, it is cheaper for the server: nx-27017 spends
/// ~4 µs more per document on an Int64 `device_name` (31 vs 35 µs).
fn int_bson(i: i64) -> Bson {
    i32::try_from(i).map_or(Bson::Int64(i), Bson::Int32)
}

pub fn reading_doc(r: &Reading) -> Document {
    let mut d = doc! { "_id": r.id(), "device_id": &r.device_id };
    match &r.device_name {
        Some(DeviceName::Int(i)) => {
            d.insert("device_name", int_bson(*i));
        }
        Some(DeviceName::Text(s)) => {
            d.insert("device_name", s);
        }
        None => {}
    }
    for (k, v) in [
        ("device_latitude", r.latitude),
        ("device_longitude", r.longitude),
        ("device_battery_level", r.battery),
    ] {
        if let Some(v) = v {
            d.insert(k, v);
        }
    }
    d.insert(
        "signal_date",
        mongodb::bson::DateTime::from_millis(r.signal_date.timestamp_millis()),
    );
    d
}

fn rejected_doc(m: &RejectedMessage) -> Document {
    let kept = m.kept_payload();
    let payload = match std::str::from_utf8(kept) {
        Ok(s) => Bson::String(s.to_string()),
        Err(_) => Bson::Binary(Binary {
            subtype: mongodb::bson::spec::BinarySubtype::Generic,
            bytes: kept.to_vec(),
        }),
    };
    doc! {
        "_id": m.id(),
        "topic": &m.topic,
        "payload": payload,
        "payload_size": m.payload.len() as i64,
        "reason": &m.reason,
        "received_at": mongodb::bson::DateTime::now(),
    }
}

/// `$match` for `--device ID-OR-NAME` plus extra conditions.
fn device_match(device: Option<&str>, extra: Document) -> Document {
    let mut m = extra;
    if let Some(d) = device {
        let mut or = vec![doc! {"device_id": d}, doc! {"device_name": d}];
        if let Ok(i) = d.parse::<i64>() {
            or.push(doc! {"device_name": int_bson(i)});
        }
        m.insert("$or", or);
    }
    m
}

fn num(d: &Document, k: &str) -> Option<f64> {
    match d.get(k)? {
        Bson::Double(f) => Some(*f),
        Bson::Int32(i) => Some(f64::from(*i)),
        Bson::Int64(i) => Some(*i as f64),
        _ => None,
    }
}

impl MongoStore {
    async fn run(&self, pipeline: Vec<Document>) -> Result<Vec<Document>, StoreError> {
        use futures_util::TryStreamExt;
        let cursor = self
            .readings
            .aggregate(pipeline)
            .await
            .map_err(unavailable)?;
        cursor.try_collect().await.map_err(unavailable)
    }

    /// min/mean/max of one coordinate per device, over readings that have it
    /// (so `$avg` never sees a missing value, whatever the server does then).
    async fn coordinate(
        &self,
        device: Option<&str>,
        field: &str,
    ) -> Result<Vec<(String, Stat)>, StoreError> {
        let f = format!("${field}");
        let rows = self
            .run(vec![
                doc! {"$match": device_match(device, doc! {field: {"$exists": true}})},
                doc! {"$group": {"_id": "$device_id", "min": {"$min": &f}, "mean": {"$avg": &f}, "max": {"$max": &f}}},
            ])
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let id = r.get_str("_id").ok()?.to_string();
                Some((
                    id,
                    Stat {
                        min: num(r, "min")?,
                        mean: num(r, "mean")?,
                        max: num(r, "max")?,
                    },
                ))
            })
            .collect())
    }
}

impl Store for MongoStore {
    async fn write(
        &self,
        readings: &[Reading],
        rejected: &[RejectedMessage],
    ) -> Result<WriteOutcome, StoreError> {
        let docs: Vec<Document> = readings.iter().map(reading_doc).collect();
        let duplicates = Self::insert(&self.readings, docs).await?;
        Self::insert(&self.rejected, rejected.iter().map(rejected_doc).collect()).await?;
        Ok(WriteOutcome {
            inserted: readings.len() as u64 - duplicates,
            duplicates,
            rejected: rejected.len() as u64,
        })
    }

    async fn write_envelopes(
        &self,
        collection: &str,
        envelopes: &[Envelope],
    ) -> Result<WriteOutcome, StoreError> {
        let docs = envelopes
            .iter()
            .map(mongodb::bson::to_document)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Other(format!("routed message as BSON: {e}")))?;
        let duplicates = Self::insert(&self.db.collection(collection), docs).await?;
        Ok(WriteOutcome {
            inserted: envelopes.len() as u64 - duplicates,
            duplicates,
            rejected: 0,
        })
    }

    async fn analyze(&self, device: Option<&str>) -> Result<Vec<DeviceStats>, StoreError> {
        // Count and the latest name per device, newest first so $first is the last reading.
        let base = self
            .run(vec![
                doc! {"$match": device_match(device, doc! {})},
                doc! {"$sort": {"signal_date": -1}},
                doc! {"$group": {"_id": "$device_id", "count": {"$sum": 1}, "device_name": {"$first": "$device_name"}}},
                doc! {"$sort": {"_id": 1}},
            ])
            .await?;
        let battery = self
            .run(vec![
                doc! {"$match": device_match(device, doc! {"device_battery_level": {"$exists": true}})},
                doc! {"$sort": {"signal_date": -1}},
                doc! {"$group": {"_id": "$device_id", "last": {"$first": "$device_battery_level"}}},
            ])
            .await?;
        let lat = self.coordinate(device, "device_latitude").await?;
        let lon = self.coordinate(device, "device_longitude").await?;
        let find = |v: &[(String, Stat)], id: &str| v.iter().find(|x| x.0 == id).map(|x| x.1);
        let mut out = Vec::new();
        for r in &base {
            let Ok(id) = r.get_str("_id") else { continue };
            let device_name = match r.get("device_name") {
                Some(Bson::Int32(i)) => Some(serde_json::Value::from(*i)),
                Some(Bson::Int64(i)) => Some(serde_json::Value::from(*i)),
                Some(Bson::String(s)) => Some(serde_json::Value::from(s.clone())),
                _ => None,
            };
            out.push(DeviceStats {
                device_id: id.to_string(),
                device_name,
                count: num(r, "count").unwrap_or(0.0) as u64,
                latitude: find(&lat, id),
                longitude: find(&lon, id),
                last_battery: battery
                    .iter()
                    .find(|b| b.get_str("_id") == Ok(id))
                    .and_then(|b| num(b, "last")),
            });
        }
        out.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_name(name: Option<DeviceName>) -> Document {
        reading_doc(&Reading {
            device_id: "d1".into(),
            device_name: name,
            latitude: Some(-33.5),
            longitude: None,
            battery: Some(0.5),
            signal_date: chrono::DateTime::from_timestamp(1_714_521_600, 123_456_000).unwrap(),
        })
    }

    #[test]
    fn device_name_is_int32_when_it_fits_as_pymongo_stores_it() {
        let d = with_name(Some(DeviceName::Int(1_000_001)));
        assert_eq!(d.get("device_name"), Some(&Bson::Int32(1_000_001)));
        let d = with_name(Some(DeviceName::Int(-(1 << 40))));
        assert_eq!(d.get("device_name"), Some(&Bson::Int64(-(1 << 40))));
        let d = with_name(Some(DeviceName::Text("pump-3".into())));
        assert_eq!(d.get("device_name"), Some(&Bson::String("pump-3".into())));
        assert_eq!(with_name(None).get("device_name"), None);
    }

    #[test]
    fn reading_doc_keys_by_device_and_microsecond_date() {
        let d = with_name(None);
        assert_eq!(d.get_str("_id"), Ok("d1:2024-05-01T00:00:00.123456Z"));
        assert_eq!(d.get("device_longitude"), None);
        assert_eq!(d.get("device_battery_level"), Some(&Bson::Double(0.5)));
    }
}
