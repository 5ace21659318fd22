//! The planned devices and links as the topology engine needs them, built
//! once per plan (in the snapshot) instead of once per hello.

use std::collections::HashMap;
use std::sync::Arc;

use super::Neighbor;
use crate::hinted_index::HintedIndex;
use crate::plan::model::{Device, Endpoint, Model, Site};
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
    /// Shared one by one with the topology a binding makes
    /// ([`PlannedTopology::rebind`]).
    devices: Vec<Arc<PlannedDevice>>,
    /// What a binding never changes (names and cables) is shared with the
    /// topology [`PlannedTopology::rebound`] makes.
    pub(super) links: Arc<Vec<(Endpoint, Endpoint)>>,
    by_name: Arc<HashMap<String, usize>>,
    /// Lower-case serials and MACs to devices, shared with the topologies
    /// bindings make from this one (each adds its own as a hint).
    by_serial: Arc<HintedIndex<String, usize>>,
    by_mac: Arc<HintedIndex<[u8; 6], usize>>,
    /// Each planned endpoint's other end(s); a port should be in one link,
    /// but the engine does not rely on it.
    partners: Arc<HashMap<Endpoint, Vec<Endpoint>>>,
    /// Each device's endpoints in planned links.
    ends: Arc<HashMap<String, Vec<Endpoint>>>,
    /// Each device's planned links, as positions in `links` (ascending):
    /// what a report is judged against, without a scan of every link.
    link_ids: Arc<HashMap<String, Vec<usize>>>,
}

impl PlannedTopology {
    pub fn new(devices: Vec<PlannedDevice>, links: Vec<(Endpoint, Endpoint)>) -> Self {
        let mut by_name = HashMap::new();
        for (i, d) in devices.iter().enumerate() {
            by_name.insert(d.name.to_ascii_lowercase(), i);
        }
        let (mut partners, mut ends) = (HashMap::new(), HashMap::new());
        let mut link_ids: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, (a, b)) in links.iter().enumerate() {
            link_ids.entry(a.device.clone()).or_default().push(i);
            if b.device != a.device {
                link_ids.entry(b.device.clone()).or_default().push(i);
            }
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
            devices: devices.into_iter().map(Arc::new).collect(),
            links: Arc::new(links),
            by_name: Arc::new(by_name),
            partners: Arc::new(partners),
            ends: Arc::new(ends),
            link_ids: Arc::new(link_ids),
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
        self.by_serial = Arc::new(HintedIndex::new(by_serial));
        self.by_mac = Arc::new(HintedIndex::new(by_mac));
    }

    /// This topology with the device at `i` (in plan order) known by
    /// `serial` and `mac` (a binding): everything else, the indexes
    /// included, is shared; O(1) but for the list of device pointers.
    pub fn rebind(&self, i: usize, serial: &str, mac: Option<[u8; 6]>) -> Option<Self> {
        let mut d = PlannedDevice::clone(self.devices.get(i)?);
        d.serial = serial.to_string();
        d.mac = mac;
        if !d.serial.is_empty() {
            self.by_serial.hint(d.serial.to_ascii_lowercase(), i);
        }
        if let Some(m) = mac {
            self.by_mac.hint(m, i);
        }
        let mut t = self.clone();
        t.devices[i] = Arc::new(d);
        Some(t)
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
            if m.serial != d.serial || m.mac != d.mac {
                let d = Arc::make_mut(d);
                d.serial = m.serial.clone();
                d.mac = m.mac;
            }
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
            link_ids: self.link_ids.clone(),
            ..Default::default()
        };
        t.index_identities();
        Some(t)
    }

    /// Every planned device, in plan order.
    pub fn devices(&self) -> &[Arc<PlannedDevice>] {
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

    /// The positions in the planned links of `device`'s links, ascending.
    pub fn link_ids(&self, device: &str) -> &[usize] {
        self.link_ids.get(device).map_or(&[], Vec::as_slice)
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
    /// models with the same digest give the same topology. A sum of one
    /// digest per device, link and site (each with its place in the plan),
    /// so a binding updates it with [`PlannedTopology::device_digest`]
    /// instead of reading the fleet again.
    pub fn digest_of(model: &Model) -> u64 {
        let mut sum = 0u64;
        for (si, site) in model.sites.iter().enumerate() {
            for (di, d) in site.devices.iter().enumerate() {
                sum = sum.wrapping_add(Self::device_digest(site, (si, di), d));
            }
            for (li, l) in site.links.iter().enumerate() {
                let link = (si, li, &l.a.device, &l.a.port, &l.b.device, &l.b.port);
                sum = sum.wrapping_add(hash_of(link));
            }
            sum = sum.wrapping_add(hash_of((si, site.devices.len(), site.links.len())));
        }
        sum
    }

    /// One device's part of [`PlannedTopology::digest_of`]; `at` is its
    /// (site, device) place in the model.
    pub fn device_digest(site: &Site, at: (usize, usize), d: &Device) -> u64 {
        let m = site.model_of(d);
        hash_of((
            at,
            &d.name,
            &d.serial,
            d.mac,
            m.vendor.name(),
            &m.match_model,
        ))
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
        let serial_is = |i: usize| self.devices[i].serial.eq_ignore_ascii_case(&g);
        let mac_is = |m: [u8; 6]| move |i: usize| self.devices[i].mac == Some(m);
        let idx = self
            .by_name
            .get(&g)
            .copied()
            .or_else(|| self.by_serial.find(g.as_str(), serial_is))
            .or_else(|| {
                let m = crate::mac::Mac::parse(&g)?.octets();
                self.by_mac.find(&m, mac_is(m))
            })
            .or_else(|| {
                let host = g.split_once('.').map(|(h, _)| h)?;
                self.by_name.get(host).copied()
            })?;
        Some(&self.devices[idx])
    }
}

fn hash_of(v: impl std::hash::Hash) -> u64 {
    use std::hash::{DefaultHasher, Hasher};
    let mut h = DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}
