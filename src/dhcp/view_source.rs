//! The view a DHCP server (DHCPv4 or DHCPv6) answers from: built from the
//! current snapshot, cached until the snapshot version changes (a reload),
//! or a fixed view for tests and load tools. Shared by `dhcp::view` and
//! `dhcp6::view`.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::plan::model::Model;
use crate::snapshot::SnapshotHandle;

/// A per-snapshot view one server family builds from the plan model.
pub trait BuildView: Default {
    /// The prefix of the view's warnings in the log ("dhcp", "dhcpv6").
    const LOG: &'static str;
    /// The view of `model`, and problems worth a warning.
    fn build_view(model: &Model, http_port: u16) -> (Self, Vec<String>);
}

pub struct ViewSource<V> {
    snapshots: Option<SnapshotHandle>,
    http_port: u16,
    cache: ArcSwap<(u64, Arc<V>)>,
}

impl<V: BuildView> ViewSource<V> {
    pub fn from_snapshots(snapshots: SnapshotHandle, http_port: u16) -> Self {
        let s = ViewSource {
            snapshots: Some(snapshots),
            http_port,
            cache: ArcSwap::from_pointee((u64::MAX, Arc::new(V::default()))),
        };
        s.current();
        s
    }

    pub fn fixed(view: V) -> Self {
        ViewSource {
            snapshots: None,
            http_port: 0,
            cache: ArcSwap::from_pointee((0, Arc::new(view))),
        }
    }

    pub fn current(&self) -> Arc<V> {
        let cached = self.cache.load();
        let Some(handle) = &self.snapshots else {
            return cached.1.clone();
        };
        let snap = handle.load();
        if cached.0 == snap.version {
            return cached.1.clone();
        }
        let (view, warnings) = V::build_view(&snap.model, self.http_port);
        for w in warnings {
            tracing::warn!("{}: {w}", V::LOG);
        }
        let view = Arc::new(view);
        self.cache.store(Arc::new((snap.version, view.clone())));
        view
    }
}
