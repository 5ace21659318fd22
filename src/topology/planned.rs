//! The planned devices and links as the topology engine needs them, built
//! once per plan (in the snapshot) instead of once per hello.

use std::collections::HashMap;
use std::sync::Arc;

use super::Neighbor;
use crate::plan::model::{Endpoint, Model};
use crate::plan::ports::canonical;
use crate::vendor::Vendor;

/// A planned device as the engine needs it: how to recognise it and how to
/// name its ports.
#[derive(Debug, Clone)]
pub struct PlannedDevice {
    pub name: String,
    pub serial: String,
    pub mac: Option<[u8; 6]>,
    pub vendor: Vendor,
    /// The model string the device must report (`match`).
    pub model_match: String,
}

/// The planned devices and links (canonical port names).
#[derive(Debug, Clone, Default)]
pub struct PlannedTopology {
    devices: Vec<PlannedDevice>,
    /// What a binding never changes (names and cables) is shared with the
    /// topology [`PlannedTopology::rebound`] makes.
    pub(super) links: Arc<Vec<(Endpoint, Endpoint)>>,
    by_name: Arc<HashMap<String, usize>>,
    by_serial: HashMap<String, usize>,
    by_mac: HashMap<[u8; 6], usize>,
    /// Each planned endpoint's other end(s); a port should be in one link,
    /// but the engine does not rely on it.
    partners: Arc<HashMap<Endpoint, Vec<Endpoint>>>,
    /// Each device's endpoints in planned links.
    ends: Arc<HashMap<String, Vec<Endpoint>>>,
}

impl PlannedTopology {
    pub fn new(devices: Vec<PlannedDevice>, links: Vec<(Endpoint, Endpoint)>) -> Self {
        let mut by_name = HashMap::new();
        for (i, d) in devices.iter().enumerate() {
            by_name.insert(d.name.to_ascii_lowercase(), i);
        }
        let (mut partners, mut ends) = (HashMap::new(), HashMap::new());
        for (a, b) in &links {
            for (x, y) in [(a, b), (b, a)] {
                partners
                    .entry(x.clone())
                    .or_insert_with(Vec::new)
                    .push(y.clone());
                ends.entry(x.device.clone())
                    .or_insert_with(Vec::new)
                    .push(x.clone());
            }
        }
        let mut t = PlannedTopology {
            devices,
            links: Arc::new(links),
            by_name: Arc::new(by_name),
            partners: Arc::new(partners),
            ends: Arc::new(ends),
            ..Default::default()
        };
        t.index_identities();
        t
    }

    fn index_identities(&mut self) {
        let (mut by_serial, mut by_mac) = (HashMap::new(), HashMap::new());
        for (i, d) in self.devices.iter().enumerate() {
            // A device known by position has no serial until one is bound.
            if !d.serial.is_empty() {
                by_serial.insert(d.serial.to_ascii_lowercase(), i);
            }
            if let Some(m) = d.mac {
                by_mac.insert(m, i);
            }
        }
        self.by_serial = by_serial;
        self.by_mac = by_mac;
    }

    /// This topology for `model` when `model` differs from the one it was
    /// built from only in devices' serials and MACs (bindings laid over
    /// the same plans): names, cables and their maps are shared, not built
    /// again. `None` when anything else differs.
    pub fn rebound(&self, model: &Model) -> Option<Self> {
        let mut devices = self.devices.clone();
        let mut all = model.devices();
        for d in devices.iter_mut() {
            let (_, m) = all.next()?;
            if m.name != d.name {
                return None;
            }
            if m.serial != d.serial {
                d.serial = m.serial.clone();
            }
            d.mac = m.mac;
        }
        if all.next().is_some() {
            return None;
        }
        let mut t = PlannedTopology {
            devices,
            links: self.links.clone(),
            by_name: self.by_name.clone(),
            partners: self.partners.clone(),
            ends: self.ends.clone(),
            ..Default::default()
        };
        t.index_identities();
        Some(t)
    }

    /// Every planned device, in plan order.
    pub fn devices(&self) -> &[PlannedDevice] {
        &self.devices
    }

    /// The devices `device` has a planned link to, each once, in link order.
    pub fn neighbours(&self, device: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for e in self.ends(device) {
            for p in self.partners(e) {
                if p.device != device && !out.contains(&p.device.as_str()) {
                    out.push(&p.device);
                }
            }
        }
        out
    }

    /// The planned other end(s) of `e`.
    pub fn partners(&self, e: &Endpoint) -> &[Endpoint] {
        self.partners.get(e).map_or(&[], Vec::as_slice)
    }

    /// The endpoints of `device` in planned links.
    pub fn ends(&self, device: &str) -> &[Endpoint] {
        self.ends.get(device).map_or(&[], Vec::as_slice)
    }

    /// The position of a planned device in the plan (the order reports are
    /// judged in).
    pub fn position(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// The cable one neighbour entry of `me`'s report describes: canonical
    /// port names on planned devices, the names as given otherwise.
    pub fn cable(&self, me: &PlannedDevice, n: &Neighbor) -> (Endpoint, Endpoint) {
        let local = Endpoint {
            device: me.name.clone(),
            port: canonical(me.vendor, &n.local_port),
        };
        let remote = match self.resolve(&n.remote_device) {
            Some(peer) => Endpoint {
                device: peer.name.clone(),
                port: canonical(peer.vendor, &n.remote_port),
            },
            None => Endpoint {
                device: n.remote_device.trim().to_string(),
                port: n.remote_port.trim().to_string(),
            },
        };
        (local, remote)
    }

    /// A digest of everything [`PlannedTopology::from_model`] reads: two
    /// models with the same digest give the same topology.
    pub fn digest_of(model: &Model) -> u64 {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut h = DefaultHasher::new();
        for site in &model.sites {
            for d in &site.devices {
                let m = site.model_of(d);
                (&d.name, &d.serial, d.mac, m.vendor.name(), &m.match_model).hash(&mut h);
            }
            for l in &site.links {
                (&l.a.device, &l.a.port, &l.b.device, &l.b.port).hash(&mut h);
            }
            0xffu8.hash(&mut h);
        }
        h.finish()
    }

    /// Every device and link of every site in the model.
    pub fn from_model(model: &Model) -> Self {
        let mut devices = Vec::new();
        let mut links = Vec::new();
        for site in &model.sites {
            for d in &site.devices {
                let m = site.model_of(d);
                devices.push(PlannedDevice {
                    name: d.name.clone(),
                    serial: d.serial.clone(),
                    mac: d.mac,
                    vendor: m.vendor,
                    model_match: m.match_model.clone(),
                });
            }
            links.extend(site.links.iter().map(|l| (l.a.clone(), l.b.clone())));
        }
        PlannedTopology::new(devices, links)
    }

    /// Find a planned device from what LLDP or a hello says: its name (or a
    /// fully qualified host name starting with it), serial or MAC address.
    pub fn resolve(&self, given: &str) -> Option<&PlannedDevice> {
        let g = given.trim().to_ascii_lowercase();
        let idx = self
            .by_name
            .get(&g)
            .or_else(|| self.by_serial.get(&g))
            .or_else(|| crate::mac::Mac::parse(&g).and_then(|m| self.by_mac.get(&m.octets())))
            .or_else(|| {
                let host = g.split_once('.').map(|(h, _)| h)?;
                self.by_name.get(host)
            })?;
        Some(&self.devices[*idx])
    }
}
