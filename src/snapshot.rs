//! One immutable view of everything derived from one version of the plans
//! and settings. Services read the current one through [`SnapshotHandle`];
//! a reload builds a whole new one and swaps it in atomically, so a reader
//! never sees half of an edit.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::plan::model::Model;
use crate::settings::Resolved;
use crate::topology::PlannedTopology;

#[derive(Debug)]
pub struct Snapshot {
    /// Settings and the root every path resolves against.
    pub resolved: Resolved,
    pub model: Model,
    /// Rendered config text by device name (devices whose model has a template).
    /// Shared with the snapshots a binding serves (same plans, same text).
    pub configs: Arc<BTreeMap<String, String>>,
    /// Rendered bootstrap scripts by profile name, served as `bootstrap/<profile>`.
    pub bootstrap: Arc<BTreeMap<String, String>>,
    /// The same on the site's IPv6 address, served to clients that came in
    /// over IPv6 (a dual-stack site only; empty otherwise).
    pub bootstrap6: Arc<BTreeMap<String, String>>,
    /// The planned devices and links as the topology engine needs them, built
    /// once per plan instead of once per hello, and shared with the next
    /// snapshot when its devices and links are the same.
    pub topology: Arc<PlannedTopology>,
    /// Digest of what `topology` was built from.
    pub topology_digest: u64,
    /// hub.toml as loaded with the plans; `None`: no such file (local hub).
    pub hub: Option<Arc<crate::credentials::hub::Hub>>,
    /// routes.toml as loaded with the plans (SPEC §14); the built-in table
    /// (everything to `events`) when there is no such file.
    pub routes: Arc<crate::telemetry::routing::RouteTable>,
    /// Monotonic version, bumped on every successful reload.
    pub version: u64,
}

impl Snapshot {
    /// The snapshot of a successfully loaded plan set.
    pub fn from_loaded(resolved: Resolved, loaded: crate::plan::Loaded, version: u64) -> Self {
        Snapshot::after(None, resolved, loaded, version)
    }

    /// The snapshot replacing `previous`: what did not change is shared
    /// with it instead of being built again, and the routes' counts carry
    /// over to the routes of the same name.
    pub fn after(
        previous: Option<&Snapshot>,
        resolved: Resolved,
        loaded: crate::plan::Loaded,
        version: u64,
    ) -> Self {
        let mut routes = loaded.routes;
        if let Some(p) = previous {
            routes.carry_stats_from(&p.routes);
        }
        let topology_digest = PlannedTopology::digest_of(&loaded.model);
        let topology = match previous {
            Some(p) if p.topology_digest == topology_digest => p.topology.clone(),
            _ => Arc::new(PlannedTopology::from_model(&loaded.model)),
        };
        Snapshot {
            resolved,
            hub: loaded.hub,
            routes: Arc::new(routes),
            topology,
            topology_digest,
            model: loaded.model,
            configs: Arc::new(loaded.configs),
            bootstrap: Arc::new(loaded.bootstrap),
            bootstrap6: Arc::new(loaded.bootstrap6),
            version,
        }
    }

    pub fn empty(resolved: Resolved) -> Self {
        Snapshot {
            resolved,
            model: Model::default(),
            configs: Arc::default(),
            bootstrap: Arc::default(),
            bootstrap6: Arc::default(),
            hub: None,
            routes: Arc::default(),
            topology: Arc::default(),
            topology_digest: 0,
            version: 0,
        }
    }
}

/// Cheap to clone; `load()` is lock-free, so packet paths may call it per request.
#[derive(Clone, Debug)]
pub struct SnapshotHandle(Arc<ArcSwap<Snapshot>>);

impl SnapshotHandle {
    pub fn new(s: Snapshot) -> Self {
        SnapshotHandle(Arc::new(ArcSwap::from_pointee(s)))
    }
    pub fn load(&self) -> Arc<Snapshot> {
        self.0.load_full()
    }
    pub fn store(&self, s: Snapshot) {
        retire(self.0.swap(Arc::new(s)));
    }
}

/// Let go of a snapshot: when this is its last reference, it is freed on a
/// thread of its own, not on the request's path (a 10,000-device snapshot
/// is tens of thousands of pointers to release, and a binding by position
/// replaces the snapshot at every hello).
pub fn retire(snap: Arc<Snapshot>) {
    use std::sync::mpsc;
    use std::sync::OnceLock;
    static RETIRED: OnceLock<Option<mpsc::Sender<Arc<Snapshot>>>> = OnceLock::new();
    if Arc::strong_count(&snap) > 1 {
        return;
    }
    let tx = RETIRED.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Arc<Snapshot>>();
        std::thread::Builder::new()
            .name("snapshot-retire".into())
            .spawn(move || rx.into_iter().for_each(drop))
            .ok()
            .map(|_| tx)
    });
    if let Some(tx) = tx {
        // A closed channel hands the snapshot back: freed here then.
        let _ = tx.send(snap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::routing::table::{Route, RouteTable};
    use crate::telemetry::routing::Source;

    fn loaded_with_routes(names: &[&str]) -> crate::plan::Loaded {
        let mut routes = RouteTable::builtin();
        routes.file = Some("routes.toml".into());
        for n in names {
            routes.routes.push(Route {
                name: n.to_string(),
                source: Source::DeviceMessages,
                condition_text: "true".into(),
                condition: crate::telemetry::routing::table::always(),
                endpoints: vec![RouteTable::EVENTS],
                stats: Arc::default(),
            });
        }
        crate::plan::Loaded {
            routes,
            ..Default::default()
        }
    }

    #[test]
    fn a_reload_keeps_the_counts_of_routes_that_keep_their_name() {
        let resolved = Resolved {
            root: ".".into(),
            file: None,
            settings: crate::settings::Settings::default(),
        };
        let first = Snapshot::from_loaded(resolved.clone(), loaded_with_routes(&["a", "b"]), 1);
        first.routes.routes[0]
            .stats
            .matched
            .store(7, std::sync::atomic::Ordering::Relaxed);
        let next = Snapshot::after(Some(&first), resolved, loaded_with_routes(&["c", "a"]), 2);
        let count = |s: &Snapshot, i: usize| {
            s.routes.routes[i]
                .stats
                .matched
                .load(std::sync::atomic::Ordering::Relaxed)
        };
        assert_eq!((count(&next, 0), count(&next, 1)), (0, 7));
        assert_eq!(
            next.routes.file.as_deref(),
            Some(std::path::Path::new("routes.toml"))
        );
    }
}
