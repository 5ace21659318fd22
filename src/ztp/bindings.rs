//! Serials bound to planned devices at run time (SPEC §12): by position (a
//! hello matched a serial-less device's place) or as a replacement (a new
//! box accepted at a device's place). Bindings are persisted in the state
//! store and laid over the plan's model in every snapshot, so everything
//! downstream (DHCP reservations, configs, credentials, progress, actions)
//! sees the bound serial and MAC without knowing about bindings.
//!
//! A binding is dropped once the plan says the same (`ztpd plan bindings`
//! prints the lines to commit), and never breaks a plan rule: a serial or
//! MAC the plan gives another device wins over the binding.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::plan::model::{BindKind, Model};
use crate::snapshot::{Snapshot, SnapshotHandle};
use crate::state::{StateError, StateStore, WriteError, Writer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    pub device: String,
    pub serial: String,
    pub kind: BindKind,
    pub since: String,
    /// The MAC the bound box came with: its DHCP reservation follows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// For a replacement: the serial of the box it replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
}

const MIGRATIONS: &[&str] = &["CREATE TABLE ztp_bindings (
        device TEXT PRIMARY KEY,
        binding TEXT NOT NULL
    );
    CREATE TABLE ztp_replaced (
        serial TEXT PRIMARY KEY,
        device TEXT NOT NULL,
        at TEXT NOT NULL
    );"];

pub struct Bindings {
    by_device: Mutex<BTreeMap<String, Binding>>,
    /// Serials of replaced boxes -> the device they were: refused from then on.
    replaced: Mutex<HashMap<String, String>>,
    writer: Writer,
    /// Held from laying the bindings over a model until that snapshot is
    /// stored, so a reload and a new binding never overwrite each other.
    publishing: Mutex<()>,
    /// The daemon's "snapshot changed" signal (DHCP, credentials follow it).
    changed: Mutex<Option<Arc<watch::Sender<u64>>>>,
}

impl Bindings {
    pub fn open(store: &StateStore) -> Result<Arc<Bindings>, StateError> {
        store.migrate("bindings", MIGRATIONS)?;
        let conn = store.reader()?;
        let mut by_device = BTreeMap::new();
        {
            let mut st = conn.prepare("SELECT device, binding FROM ztp_bindings")?;
            let rows =
                st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (device, text) = row?;
                match serde_json::from_str::<Binding>(&text) {
                    Ok(b) => {
                        by_device.insert(device, b);
                    }
                    Err(e) => tracing::warn!(%device, "unreadable binding ignored: {e}"),
                }
            }
        }
        let mut replaced = HashMap::new();
        {
            let mut st = conn.prepare("SELECT serial, device FROM ztp_replaced")?;
            let rows =
                st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (serial, device) = row?;
                replaced.insert(serial, device);
            }
        }
        Ok(Arc::new(Bindings {
            by_device: Mutex::new(by_device),
            replaced: Mutex::new(replaced),
            writer: store.writer(),
            publishing: Mutex::new(()),
            changed: Mutex::new(None),
        }))
    }

    /// Tell the daemon's services when a binding changes the snapshot.
    pub fn set_changed(&self, tx: Arc<watch::Sender<u64>>) {
        if let Ok(mut c) = self.changed.lock() {
            *c = Some(tx);
        }
    }

    pub fn list(&self) -> Vec<Binding> {
        self.by_device
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// (new serial, replaced serial) of each replacement binding, without
    /// copying the others: the credentials sync asks after every binding.
    pub fn replacements(&self) -> Vec<(String, String)> {
        let Ok(m) = self.by_device.lock() else {
            return Vec::new();
        };
        m.values()
            .filter_map(|b| {
                let old = b.replaces.as_ref()?;
                Some((b.serial.clone(), old.clone()))
            })
            .collect()
    }

    pub fn get(&self, device: &str) -> Option<Binding> {
        self.by_device.lock().ok()?.get(device).cloned()
    }

    /// The device a replaced serial belonged to, if it was replaced.
    pub fn replaced(&self, serial: &str) -> Option<String> {
        self.replaced.lock().ok()?.get(serial).cloned()
    }

    /// Persist `b` (and the serial it replaces), with `also` in the same
    /// commit when given, then serve a snapshot with it. Returns after both.
    pub async fn bind(
        &self,
        b: Binding,
        handle: &SnapshotHandle,
        also: Option<crate::state::WriteFn>,
    ) -> Result<(), WriteError> {
        let text = serde_json::to_string(&b).unwrap_or_default();
        let (device, replaces, since) = (b.device.clone(), b.replaces.clone(), b.since.clone());
        self.writer
            .write(Box::new(move |tx| {
                tx.execute(
                    "INSERT INTO ztp_bindings (device, binding) VALUES (?1, ?2)
                     ON CONFLICT(device) DO UPDATE SET binding = excluded.binding",
                    rusqlite::params![device, text],
                )?;
                if let Some(old) = replaces {
                    tx.execute(
                        "INSERT OR REPLACE INTO ztp_replaced (serial, device, at) VALUES (?1, ?2, ?3)",
                        rusqlite::params![old, device, since],
                    )?;
                }
                match also {
                    Some(also) => also(tx),
                    None => Ok(()),
                }
            }))
            .await?;
        if let Some(old) = &b.replaces {
            if let Ok(mut r) = self.replaced.lock() {
                r.insert(old.clone(), b.device.clone());
            }
        }
        let laid = {
            let _guard = self.lock_publishing();
            let cur = handle.load();
            let next = cur.with_binding(&b);
            if let Ok(mut m) = self.by_device.lock() {
                m.insert(b.device.clone(), b);
            }
            let laid = next.map(|next| self.serve(handle, next));
            crate::snapshot::retire(cur);
            laid
        };
        if laid.is_none() {
            // The plan settles it, or the device is not planned (now):
            // the whole overlay decides, as a reload's does.
            self.publish(handle);
        }
        Ok(())
    }

    /// Store `next` and tell the services following the snapshot.
    fn serve(&self, handle: &SnapshotHandle, next: Snapshot) {
        let version = next.version;
        handle.store(next);
        if let Some(tx) = self.changed.lock().ok().and_then(|c| c.clone()) {
            let _ = tx.send(version);
        }
    }

    /// Serve the current snapshot again with the bindings laid over it.
    pub fn publish(&self, handle: &SnapshotHandle) {
        let _guard = self.lock_publishing();
        let cur = handle.load();
        let mut model = cur.model.clone();
        self.apply(&mut model);
        self.serve(handle, cur.with_model(model, cur.version + 1));
    }

    /// Hold while a reload lays the bindings over its model and stores it.
    pub fn lock_publishing(&self) -> MutexGuard<'_, ()> {
        self.publishing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lay the bindings over `model`; drop those the plan now says itself
    /// (or overrules). Returns the devices whose binding was dropped.
    pub fn apply(&self, model: &mut Model) -> Vec<String> {
        let settled = self.overlay(model);
        self.forget(&settled);
        settled.into_iter().map(|(device, _)| device).collect()
    }

    /// Lay the bindings over `model`, changing nothing else: the bindings
    /// the plan now says itself (or overrules) are left out and returned
    /// as (device, serial), for [`Bindings::forget`] once that model serves.
    /// A reload's load runs this on its worker thread, and a load that is
    /// abandoned must leave the bindings as they were.
    pub fn overlay(&self, model: &mut Model) -> Vec<(String, String)> {
        let Ok(map) = self.by_device.lock() else {
            return Vec::new();
        };
        let mut settled = Vec::new();
        let serials: HashMap<String, String> = model
            .devices()
            .filter(|(_, d)| d.has_serial())
            .map(|(_, d)| (d.serial.clone(), d.name.clone()))
            .collect();
        let mut macs: HashMap<[u8; 6], String> = model
            .devices()
            .filter_map(|(_, d)| Some((d.mac?, d.name.clone())))
            .collect();
        for b in map.values() {
            let owner = serials.get(&b.serial).map(String::as_str);
            match verdict(model, b, owner) {
                Verdict::Apply => {}
                Verdict::Settled(why) => {
                    tracing::info!(device = %b.device, serial = %b.serial, "binding dropped: {why}");
                    settled.push((b.device.clone(), b.serial.clone()));
                    continue;
                }
                Verdict::Keep => continue,
            }
            // By the model's index, not a scan: a scan per binding made a
            // snapshot with k bindings cost k times the fleet.
            let Some((si, di)) = model.position_of(&b.device) else {
                continue;
            };
            let d = Arc::make_mut(&mut model.sites[si].devices[di]);
            d.serial = b.serial.clone();
            d.bound = Some(b.kind);
            if let Some(mac) = b.mac_octets() {
                // A MAC the plan (or an earlier binding) gives another
                // device stays that device's.
                if macs.get(&mac).is_none_or(|owner| owner == &b.device) {
                    d.mac = Some(mac);
                    macs.insert(mac, b.device.clone());
                }
            }
        }
        // The name/serial index was built for the model before the overlay.
        model.index = std::sync::OnceLock::new();
        settled
    }

    /// Drop the bindings [`Bindings::overlay`] found settled, unless bound
    /// again (to another serial) since.
    pub fn forget(&self, settled: &[(String, String)]) {
        let Ok(mut map) = self.by_device.lock() else {
            return;
        };
        for (device, serial) in settled {
            if map.get(device).is_none_or(|b| &b.serial != serial) {
                continue;
            }
            map.remove(device);
            let (device, serial) = (device.clone(), serial.clone());
            let _ = self.writer.submit(
                Box::new(move |tx| {
                    tx.execute(
                        "DELETE FROM ztp_bindings WHERE device = ?1 AND json_extract(binding, '$.serial') = ?2",
                        [device, serial],
                    )?;
                    Ok(())
                }),
                Box::new(|_| {}),
            );
        }
    }
}

enum Verdict {
    Apply,
    /// The plan says the same, or decided otherwise: the binding goes.
    Settled(String),
    /// The device is not in the plans (now): kept, not applied.
    Keep,
}

/// What to do with `b` on `model`; `owner`: the device `model` gives
/// `b`'s serial to, if any.
fn verdict(model: &Model, b: &Binding, owner: Option<&str>) -> Verdict {
    let Some(d) = model
        .position_of(&b.device)
        .map(|(si, di)| &model.sites[si].devices[di])
    else {
        return Verdict::Keep;
    };
    if d.bound.is_some() && d.serial == b.serial {
        // Already laid over this model (a re-publish).
        return Verdict::Apply;
    }
    if d.serial == b.serial {
        return Verdict::Settled("the plan gives the device this serial now".into());
    }
    if let Some(other) = owner.filter(|o| *o != b.device) {
        return Verdict::Settled(format!("the plan gives serial {} to {other}", b.serial));
    }
    let plan_serial_expected = match b.kind {
        BindKind::Position => !d.has_serial(),
        BindKind::Replacement => !d.has_serial() || b.replaces.as_deref() == Some(&d.serial),
    };
    if plan_serial_expected || d.bound.is_some() {
        Verdict::Apply
    } else {
        Verdict::Settled(format!(
            "the plan gives the device another serial ({})",
            d.serial
        ))
    }
}

impl Binding {
    fn mac_octets(&self) -> Option<[u8; 6]> {
        self.mac
            .as_deref()
            .and_then(crate::mac::Mac::parse)
            .map(|m| m.octets())
    }
}

impl Snapshot {
    /// The next snapshot: this one with `b` laid over it, when this one
    /// already has every earlier binding (every served snapshot does) and
    /// `b` simply applies. Only what `b` changes is made again (one device,
    /// its topology entry, the digest); the device list is copied as
    /// pointers and the rest shared. `None`: the plan settles `b`, or the
    /// device is not planned; [`Bindings::publish`] decides then.
    pub fn with_binding(&self, b: &Binding) -> Option<Snapshot> {
        let model = &self.model;
        let owner = model
            .device(&b.serial)
            .filter(|(_, d)| d.serial == b.serial)
            .map(|(_, d)| d.name.as_str());
        if !matches!(verdict(model, b, owner), Verdict::Apply) {
            return None;
        }
        let at = model.position_of(&b.device)?;
        let site = &model.sites[at.0];
        let old = &site.devices[at.1];
        let mut d = crate::plan::model::Device::clone(old);
        d.serial = b.serial.clone();
        d.bound = Some(b.kind);
        if let Some(mac) = b.mac_octets() {
            // A MAC the plan (or an earlier binding) gives another device
            // stays that device's.
            if model
                .devices()
                .all(|(_, o)| o.mac != Some(mac) || o.name == b.device)
            {
                d.mac = Some(mac);
            }
        }
        use crate::topology::PlannedTopology;
        let i = model.sites[..at.0]
            .iter()
            .map(|s| s.devices.len())
            .sum::<usize>()
            + at.1;
        if self
            .topology
            .devices()
            .get(i)
            .is_none_or(|t| t.name != d.name)
        {
            return None;
        }
        let topology = self.topology.rebind(i, &d.serial, d.mac)?;
        let topology_digest = self
            .topology_digest
            .wrapping_sub(PlannedTopology::device_digest(site, at, old))
            .wrapping_add(PlannedTopology::device_digest(site, at, &d));
        Some(Snapshot {
            resolved: self.resolved.clone(),
            model: model.with_device(at, d),
            configs: self.configs.clone(),
            bootstrap: self.bootstrap.clone(),
            bootstrap6: self.bootstrap6.clone(),
            topology: Arc::new(topology),
            topology_digest,
            hub: self.hub.clone(),
            routes: self.routes.clone(),
            version: self.version + 1,
        })
    }

    /// This snapshot with `model` (the same plans with bindings laid over
    /// them): rendered files are shared, the topology rebuilt when the
    /// devices' identities changed.
    pub fn with_model(&self, model: Model, version: u64) -> Snapshot {
        let digest = crate::topology::PlannedTopology::digest_of(&model);
        let topology = if digest == self.topology_digest {
            self.topology.clone()
        } else {
            // Bindings change serials and MACs only: the names and cables
            // of the topology are shared, not built again per binding.
            let t = self.topology.rebound(&model);
            Arc::new(t.unwrap_or_else(|| crate::topology::PlannedTopology::from_model(&model)))
        };
        Snapshot {
            resolved: self.resolved.clone(),
            model,
            configs: self.configs.clone(),
            bootstrap: self.bootstrap.clone(),
            bootstrap6: self.bootstrap6.clone(),
            topology,
            topology_digest: digest,
            hub: self.hub.clone(),
            routes: self.routes.clone(),
            version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Durability;

    fn binding(device: &str, serial: &str, kind: BindKind, replaces: Option<&str>) -> Binding {
        Binding {
            device: device.into(),
            serial: serial.into(),
            kind,
            since: "2026-12-06T00:00:00.000Z".into(),
            mac: Some("02:00:00:00:00:aa".into()),
            replaces: replaces.map(Into::into),
        }
    }

    fn dev<'a>(m: &'a Model, name: &str) -> &'a crate::plan::model::Device {
        m.devices().find(|(_, d)| d.name == name).unwrap().1
    }

    #[tokio::test]
    async fn bindings_are_laid_over_the_plan_until_it_says_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path(), Durability::Os).unwrap();
        let b = Bindings::open(&store).unwrap();
        let mut plan = crate::dhcp::fixture::lab_model();
        // arista1 is known by position in this plan.
        let i = plan.sites[0]
            .devices
            .iter()
            .position(|d| d.name == "arista1")
            .unwrap();
        let d = Arc::make_mut(&mut plan.sites[0].devices[i]);
        d.serial.clear();
        d.mac = None;
        let pos = "arista1".to_string();
        let old = dev(&plan, "juniper1").serial.clone();
        let snap = crate::snapshot::SnapshotHandle::new(crate::snapshot::Snapshot::empty(
            crate::settings::Resolved {
                root: dir.path().into(),
                file: None,
                settings: Default::default(),
            },
        ));
        b.bind(
            binding(&pos, "NEW-POS", BindKind::Position, None),
            &snap,
            None,
        )
        .await
        .unwrap();
        b.bind(
            binding("juniper1", "NEW-REP", BindKind::Replacement, Some(&old)),
            &snap,
            None,
        )
        .await
        .unwrap();
        assert_eq!(b.replaced(&old).as_deref(), Some("juniper1"));

        let mut m = plan.clone();
        assert!(b.apply(&mut m).is_empty());
        let d = dev(&m, &pos);
        assert_eq!(
            (d.serial.as_str(), d.bound, d.mac),
            (
                "NEW-POS",
                Some(BindKind::Position),
                Some([2, 0, 0, 0, 0, 0xaa])
            )
        );
        let d = dev(&m, "juniper1");
        assert_eq!(
            (d.serial.as_str(), d.bound),
            ("NEW-REP", Some(BindKind::Replacement))
        );
        // The same MAC for two bindings: the first device keeps it, the plan's stays.
        assert_ne!(d.mac, Some([2, 0, 0, 0, 0, 0xaa]));
        // The topology of the bound model, made from the plan's by
        // changing identities only, is the one built from scratch.
        let planned = crate::topology::PlannedTopology::from_model(&plan);
        let rebound = planned.rebound(&m).expect("the same names and cables");
        let fresh = crate::topology::PlannedTopology::from_model(&m);
        let ids = |t: &crate::topology::PlannedTopology| {
            t.devices()
                .iter()
                .map(|d| (d.name.clone(), d.serial.clone(), d.mac))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&rebound), ids(&fresh));
        assert_eq!(
            rebound.resolve("new-pos").map(|d| d.name.as_str()),
            Some(pos.as_str())
        );
        assert!(rebound.resolve(&old).is_none());
        assert_eq!(rebound.neighbours("juniper1"), fresh.neighbours("juniper1"));
        // Laid over again (a re-publish): unchanged.
        let mut again = m.clone();
        assert!(b.apply(&mut again).is_empty());
        assert_eq!(dev(&again, &pos).serial, "NEW-POS");

        // Kept across a restart.
        drop(b);
        let b = Bindings::open(&store).unwrap();
        assert_eq!(b.list().len(), 2);

        // The plan now says the same for one, and gives the other's serial
        // to a third device: both bindings go, the plan wins.
        let mut plan2 = plan.clone();
        Arc::make_mut(&mut plan2.sites[0].devices[i]).serial = "NEW-POS".into();
        let third = plan2.sites[0]
            .devices
            .iter_mut()
            .find(|d| d.name == "sonic1")
            .unwrap();
        Arc::make_mut(third).serial = "NEW-REP".into();
        let mut dropped = b.apply(&mut plan2);
        dropped.sort();
        assert_eq!(dropped, vec![pos.clone(), "juniper1".to_string()]);
        assert_eq!(dev(&plan2, "juniper1").serial, old);
        assert!(b.list().is_empty());
    }

    /// A binding's snapshot is made from the serving one by changing one
    /// device: it must be the snapshot the whole overlay makes, and share
    /// every device it did not change.
    #[tokio::test]
    async fn a_binding_changes_one_device_and_matches_the_whole_overlay() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::open(dir.path(), Durability::Os).unwrap();
        let b = Bindings::open(&store).unwrap();
        let mut plan = crate::dhcp::fixture::lab_model();
        let i = plan.sites[0]
            .devices
            .iter()
            .position(|d| d.name == "arista1")
            .unwrap();
        let d = Arc::make_mut(&mut plan.sites[0].devices[i]);
        d.serial.clear();
        d.mac = None;
        let old = dev(&plan, "juniper1").serial.clone();
        let resolved = crate::settings::Resolved {
            root: dir.path().into(),
            file: None,
            settings: Default::default(),
        };
        let snap = SnapshotHandle::new(Snapshot::empty(resolved).with_model(plan.clone(), 1));
        let before = snap.load();
        b.bind(
            binding("arista1", "NEW-POS", BindKind::Position, None),
            &snap,
            None,
        )
        .await
        .unwrap();
        let after = snap.load();
        assert_eq!(after.version, 2);
        let (a, z) = (
            &before.model.sites[0].devices,
            &after.model.sites[0].devices,
        );
        let shared = (0..a.len()).filter(|&k| Arc::ptr_eq(&a[k], &z[k])).count();
        assert_eq!(shared, a.len() - 1, "only the bound device is new");
        assert!(Arc::ptr_eq(
            &before.model.sites[0].links,
            &after.model.sites[0].links
        ));
        // The MAC arista1 was bound with is not juniper1's to take.
        b.bind(
            binding("juniper1", "NEW-REP", BindKind::Replacement, Some(&old)),
            &snap,
            None,
        )
        .await
        .unwrap();
        let served = snap.load();
        assert_eq!(served.version, 3);

        let mut whole = plan.clone();
        assert!(b.apply(&mut whole).is_empty());
        let ids = |m: &Model| {
            m.devices()
                .map(|(_, d)| (d.name.clone(), d.serial.clone(), d.mac, d.bound))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&served.model), ids(&whole));
        let topo_ids = |t: &crate::topology::PlannedTopology| {
            t.devices()
                .iter()
                .map(|d| (d.name.clone(), d.serial.clone(), d.mac))
                .collect::<Vec<_>>()
        };
        let fresh = crate::topology::PlannedTopology::from_model(&whole);
        assert_eq!(topo_ids(&served.topology), topo_ids(&fresh));
        assert_eq!(
            served.topology_digest,
            crate::topology::PlannedTopology::digest_of(&whole)
        );
        // Lookups by the bound serials and MAC find the devices; the
        // replaced serial finds nothing, in the model and the topology.
        let named = |k: &str| served.model.device(k).map(|(_, d)| d.name.clone());
        assert_eq!(named("NEW-POS").as_deref(), Some("arista1"));
        assert_eq!(named("NEW-REP").as_deref(), Some("juniper1"));
        assert_eq!(named(&old), None);
        let resolved = |k: &str| served.topology.resolve(k).map(|d| d.name.clone());
        assert_eq!(resolved("new-pos").as_deref(), Some("arista1"));
        assert_eq!(resolved("02:00:00:00:00:aa").as_deref(), Some("arista1"));
        assert_eq!(resolved(&old), None);
        // The snapshot served before the bindings still answers as it did.
        assert_eq!(
            before.model.device("NEW-POS").map(|(_, d)| d.name.clone()),
            None
        );
        assert_eq!(
            before
                .model
                .device(&old)
                .map(|(_, d)| d.name.clone())
                .as_deref(),
            Some("juniper1")
        );
        assert!(before.topology.resolve("new-pos").is_none());
    }
}
