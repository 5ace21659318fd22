//! Device twins on the local hub (SPEC §9), kept in the state store.
//!
//! - desired: what the operator set (`PATCH /api/v1/hub/devices/<id>/twin`,
//!   merged as IoT Hub merges) plus `device_function`, the device's
//!   function as the plan (or its credential) gives it; versioned, the
//!   version moves on every change;
//! - reported: whatever the device patches in, merged as IoT Hub merges
//!   (a `null` removes a key, objects merge key by key), versioned.
//!
//! Every change is committed before the device is answered.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::broadcast;

use serde_json::{Map, Value};

use crate::state::{StateError, StateStore, Writer};

const MIGRATIONS: &[&str] = &["CREATE TABLE hub_twins (
        device_id TEXT PRIMARY KEY,
        desired TEXT NOT NULL,
        desired_version INTEGER NOT NULL,
        reported TEXT NOT NULL,
        reported_version INTEGER NOT NULL
    )"];

/// Largest reported-properties document kept per device (IoT Hub's own
/// limit is 32 KB).
pub const MAX_REPORTED_BYTES: usize = 32 * 1024;

#[derive(Debug, Clone, Default, PartialEq)]
struct Twin {
    desired: Value,
    desired_version: u64,
    reported: Map<String, Value>,
    reported_version: u64,
}

/// Why a reported patch was refused (the device gets a 400).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("a reported-properties patch is a JSON object")]
    NotAnObject,
    #[error("reported properties would exceed {MAX_REPORTED_BYTES} bytes")]
    TooLarge,
    #[error("{0}")]
    Store(String),
}

pub struct Twins {
    writer: Writer,
    rows: Mutex<HashMap<String, Twin>>,
    /// The device id of each committed change (desired or reported), for
    /// the operator's event stream: an open twin in the GUI reads it again.
    changes: broadcast::Sender<String>,
}

/// Changes an event stream may fall behind by before it is told it lagged.
const CHANGES_KEPT: usize = 1024;

impl Twins {
    pub fn open(store: &StateStore) -> Result<Twins, StateError> {
        store.migrate("hub_twins", MIGRATIONS)?;
        let conn = store.reader()?;
        let mut rows = HashMap::new();
        let mut st = conn.prepare(
            "SELECT device_id, desired, desired_version, reported, reported_version FROM hub_twins",
        )?;
        let it = st.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        for row in it {
            let (id, desired, dv, reported, rv) = row?;
            let reported = match serde_json::from_str::<Value>(&reported) {
                Ok(Value::Object(m)) => m,
                _ => Map::new(),
            };
            rows.insert(
                id,
                Twin {
                    desired: serde_json::from_str(&desired).unwrap_or(Value::Null),
                    desired_version: dv.max(0) as u64,
                    reported,
                    reported_version: rv.max(0) as u64,
                },
            );
        }
        Ok(Twins {
            writer: store.writer(),
            rows: Mutex::new(rows),
            changes: broadcast::channel(CHANGES_KEPT).0,
        })
    }

    /// Set `desired.device_function`; the new version and that patch when
    /// it changed (committed), `None` when it was already so.
    pub async fn set_function(
        &self,
        device_id: &str,
        function: Value,
    ) -> Result<Option<(u64, Map<String, Value>)>, String> {
        let mut patch = Map::new();
        patch.insert(FUNCTION_KEY.into(), function);
        let twin = {
            let mut rows = self.rows.lock().map_err(|_| "twins lock poisoned")?;
            let t = rows.entry(device_id.to_string()).or_default();
            let mut desired = desired_map(&t.desired);
            if desired.get(FUNCTION_KEY) == patch.get(FUNCTION_KEY) && t.desired_version > 0 {
                return Ok(None);
            }
            desired.extend(patch.clone());
            t.desired = Value::Object(desired);
            t.desired_version += 1;
            t.clone()
        };
        self.persist(device_id, &twin).await?;
        self.changed(device_id);
        Ok(Some((twin.desired_version, patch)))
    }

    /// Merge an operator's desired patch (IoT Hub's rules: `null` removes a
    /// key); the new version (committed). `device_function` is the plan's:
    /// the caller refuses a patch naming it.
    ///
    /// `function`, when given, is brought up to date first (a version of
    /// its own, as [`Twins::set_function`] gives it), in the same commit:
    /// one disk wait per PATCH, not two. Returns the new version and the
    /// patch as applied, the function included when it moved: what the
    /// device is sent.
    pub async fn patch_desired(
        &self,
        device_id: &str,
        mut patch: Map<String, Value>,
        function: Option<Value>,
    ) -> Result<(u64, Map<String, Value>), PatchError> {
        let twin = {
            let mut rows = self
                .rows
                .lock()
                .map_err(|_| PatchError::Store("twins lock poisoned".into()))?;
            let t = rows.entry(device_id.to_string()).or_default();
            let mut merged = desired_map(&t.desired);
            let mut versions = 1;
            if let Some(f) = function {
                if merged.get(FUNCTION_KEY) != Some(&f) || t.desired_version == 0 {
                    merged.insert(FUNCTION_KEY.into(), f.clone());
                    patch.insert(FUNCTION_KEY.into(), f);
                    versions += 1;
                }
            }
            merge(&mut merged, patch.clone());
            if serde_json::to_vec(&merged).map_or(0, |v| v.len()) > MAX_REPORTED_BYTES {
                return Err(PatchError::TooLarge);
            }
            t.desired = Value::Object(merged);
            t.desired_version += versions;
            t.clone()
        };
        self.persist(device_id, &twin)
            .await
            .map_err(PatchError::Store)?;
        self.changed(device_id);
        Ok((twin.desired_version, patch))
    }

    /// The device id of each change committed from now on.
    pub fn changes(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    fn changed(&self, device_id: &str) {
        // No one listening is no error.
        let _ = self.changes.send(device_id.to_string());
    }

    /// Whether a device's desired properties were ever set.
    pub fn has_desired(&self, device_id: &str) -> bool {
        self.rows
            .lock()
            .map(|r| r.get(device_id).is_some_and(|t| t.desired_version > 0))
            .unwrap_or(false)
    }

    /// The twin document a `GET` answers, with `device_function` brought
    /// up to date first when given.
    pub async fn document(
        &self,
        device_id: &str,
        function: Option<Value>,
    ) -> Result<Value, String> {
        if let Some(f) = function {
            self.set_function(device_id, f).await?;
        }
        let rows = self.rows.lock().map_err(|_| "twins lock poisoned")?;
        let t = rows.get(device_id).cloned().unwrap_or_default();
        Ok(serde_json::json!({
            "desired": with_version(&t.desired, t.desired_version),
            "reported": with_version(&Value::Object(t.reported), t.reported_version),
        }))
    }

    /// Merge a reported patch; the new reported version (committed).
    pub async fn patch_reported(&self, device_id: &str, patch: &[u8]) -> Result<u64, PatchError> {
        let Ok(Value::Object(patch)) = serde_json::from_slice::<Value>(patch) else {
            return Err(PatchError::NotAnObject);
        };
        let twin = {
            let mut rows = self
                .rows
                .lock()
                .map_err(|_| PatchError::Store("twins lock poisoned".into()))?;
            let t = rows.entry(device_id.to_string()).or_default();
            let mut merged = t.reported.clone();
            merge(&mut merged, patch);
            if serde_json::to_vec(&merged).map_or(0, |v| v.len()) > MAX_REPORTED_BYTES {
                return Err(PatchError::TooLarge);
            }
            t.reported = merged;
            t.reported_version += 1;
            t.clone()
        };
        self.persist(device_id, &twin)
            .await
            .map_err(PatchError::Store)?;
        self.changed(device_id);
        Ok(twin.reported_version)
    }

    /// The twin as routing reads it (`$twin.properties.desired|reported.*`,
    /// SPEC §14): `{tags: {}, properties: {desired, reported}}` with their
    /// `$version`s; `None` for a device the hub has no twin of. The tags
    /// come from the plan: the hub's `TwinSource` fills them in.
    pub fn routing_document(&self, device_id: &str) -> Option<Value> {
        let rows = self.rows.lock().ok()?;
        let t = rows.get(device_id)?;
        Some(serde_json::json!({
            "tags": {},
            "properties": {
                "desired": with_version(&t.desired, t.desired_version),
                "reported": with_version(&Value::Object(t.reported.clone()), t.reported_version),
            }
        }))
    }

    /// A device's reported properties with their `$version`, if it has any.
    pub fn reported(&self, device_id: &str) -> Option<Value> {
        let rows = self.rows.lock().ok()?;
        let t = rows.get(device_id)?;
        (t.reported_version > 0)
            .then(|| with_version(&Value::Object(t.reported.clone()), t.reported_version))
    }

    async fn persist(&self, device_id: &str, t: &Twin) -> Result<(), String> {
        let (id, desired, reported) = (
            device_id.to_string(),
            t.desired.to_string(),
            Value::Object(t.reported.clone()).to_string(),
        );
        let (dv, rv) = (t.desired_version as i64, t.reported_version as i64);
        self.writer
            .write(Box::new(move |tx| {
                tx.execute(
                    "INSERT INTO hub_twins (device_id, desired, desired_version, reported, reported_version)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(device_id) DO UPDATE SET desired = ?2, desired_version = ?3,
                        reported = ?4, reported_version = ?5",
                    rusqlite::params![id, desired, dv, reported, rv],
                )
                .map(|_| ())
            }))
            .await
            .map_err(|e| e.to_string())
    }
}

/// The key of desired properties the plan owns.
pub const FUNCTION_KEY: &str = "device_function";

fn desired_map(v: &Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    }
}

fn with_version(doc: &Value, version: u64) -> Value {
    let mut m = match doc {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    m.insert("$version".into(), version.into());
    Value::Object(m)
}

/// IoT Hub's patch rule: `null` removes, objects merge, anything else replaces.
fn merge(into: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        if k.starts_with('$') {
            continue;
        }
        match v {
            Value::Null => {
                into.remove(&k);
            }
            Value::Object(p) => match into.get_mut(&k) {
                Some(Value::Object(cur)) => merge(cur, p),
                _ => {
                    let mut fresh = Map::new();
                    merge(&mut fresh, p);
                    into.insert(k, Value::Object(fresh));
                }
            },
            v => {
                into.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Durability;
    use serde_json::json;

    #[test]
    fn patches_merge_as_iot_hub_merges() {
        let mut m = json!({"a": 1, "b": {"x": 1, "y": 2}, "c": 3})
            .as_object()
            .cloned()
            .unwrap();
        let p = json!({"a": 2, "b": {"y": null, "z": 3}, "c": null, "$version": 9});
        merge(&mut m, p.as_object().cloned().unwrap());
        assert_eq!(Value::Object(m), json!({"a": 2, "b": {"x": 1, "z": 3}}));
    }

    #[tokio::test]
    async fn a_patch_brings_the_function_up_to_date_in_the_same_commit() {
        let d = tempfile::tempdir().unwrap();
        let store = StateStore::open(d.path(), Durability::Fsync).unwrap();
        let t = Twins::open(&store).unwrap();
        let f = json!({"name": "default"});
        let p = |v: Value| v.as_object().cloned().unwrap();
        // A fresh twin: the function's version, then the patch's; the
        // device is sent both.
        assert_eq!(
            t.patch_desired("d1", p(json!({"interval": 5})), Some(f.clone()))
                .await,
            Ok((2, p(json!({"interval": 5, "device_function": f}))))
        );
        // The function unchanged: only the patch moves the version.
        assert_eq!(
            t.patch_desired("d1", p(json!({"interval": 6})), Some(f.clone()))
                .await,
            Ok((3, p(json!({"interval": 6}))))
        );
        let doc = t.document("d1", None).await.unwrap();
        assert_eq!(doc["desired"]["device_function"], f);
        assert_eq!(doc["desired"]["interval"], 6);
        // Reopened: one row holds both.
        let again = Twins::open(&store).unwrap();
        assert_eq!(again.document("d1", None).await.unwrap(), doc);
    }

    /// Each committed change names its device once; a refused patch and an
    /// unchanged function name nothing.
    #[tokio::test]
    async fn committed_changes_are_announced_and_refusals_are_not() {
        let d = tempfile::tempdir().unwrap();
        let store = StateStore::open(d.path(), Durability::Os).unwrap();
        let t = Twins::open(&store).unwrap();
        let mut rx = t.changes();
        let f = json!({"name": "default"});
        t.set_function("d1", f.clone()).await.unwrap();
        t.set_function("d1", f).await.unwrap();
        t.patch_reported("d2", br#"{"fw": "1"}"#).await.unwrap();
        t.patch_reported("d2", b"[1]").await.unwrap_err();
        let p = json!({"interval": 5}).as_object().cloned().unwrap();
        t.patch_desired("d3", p, None).await.unwrap();
        let mut seen = Vec::new();
        while let Ok(id) = rx.try_recv() {
            seen.push(id);
        }
        assert_eq!(seen, ["d1", "d2", "d3"]);
    }

    #[tokio::test]
    async fn twins_survive_a_reopen_and_versions_move_only_on_change() {
        let d = tempfile::tempdir().unwrap();
        {
            let store = StateStore::open(d.path(), Durability::Fsync).unwrap();
            let t = Twins::open(&store).unwrap();
            let f = json!({"name": "default"});
            assert_eq!(
                t.set_function("d1", f.clone()).await.unwrap().map(|p| p.0),
                Some(1)
            );
            assert_eq!(t.set_function("d1", f.clone()).await.unwrap(), None);
            let p = json!({"interval": 5, "limits": {"hi": 3}});
            assert_eq!(
                t.patch_desired("d1", p.as_object().cloned().unwrap(), None)
                    .await
                    .map(|(v, _)| v),
                Ok(2)
            );
            let p = json!({"limits": {"hi": null, "lo": 1}});
            assert_eq!(
                t.patch_desired("d1", p.as_object().cloned().unwrap(), None)
                    .await
                    .map(|(v, _)| v),
                Ok(3)
            );
            assert_eq!(
                t.patch_reported("d1", br#"{"fw": "1.2"}"#).await.unwrap(),
                1
            );
            assert_eq!(
                t.patch_reported("d1", b"[1]").await,
                Err(PatchError::NotAnObject)
            );
            let big = format!(r#"{{"x": "{}"}}"#, "a".repeat(MAX_REPORTED_BYTES));
            assert_eq!(
                t.patch_reported("d1", big.as_bytes()).await,
                Err(PatchError::TooLarge)
            );
        }
        let store = StateStore::open(d.path(), Durability::Fsync).unwrap();
        let t = Twins::open(&store).unwrap();
        assert_eq!(t.reported("d1"), Some(json!({"fw": "1.2", "$version": 1})));
        let doc = t
            .document("d1", Some(json!({"name": "fast"})))
            .await
            .unwrap();
        assert_eq!(doc["desired"]["$version"], 4);
        assert_eq!(
            doc["desired"]["interval"], 5,
            "operator keys survive a function change"
        );
        assert_eq!(doc["desired"]["limits"], json!({"lo": 1}));
        assert_eq!(doc["desired"]["device_function"]["name"], "fast");
        assert_eq!(doc["reported"]["fw"], "1.2");
        assert_eq!(t.reported("d2"), None);
    }
}
