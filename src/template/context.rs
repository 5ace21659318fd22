//! The context a device's template sees: `device`, `site`, `dhcp`, `links`,
//! `server` and `plan` (every device of the site).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use minijinja::Value;
use serde_json::json;

use super::ServerUrls;
use crate::plan::model::{Device, Site};

/// What a template sees of a device. Keep [`device_digest`] in step: it must
/// change whenever this does, or a reload would serve a stale config.
pub(super) fn device_json(site: &Site, d: &Device) -> serde_json::Value {
    let m = site.model_of(d);
    json!({
        "name": d.name,
        "serial": d.serial,
        "mac": d.mac_string(),
        "ip": d.ip.map(|i| i.to_string()),
        "model": d.model,
        "model_match": m.match_model,
        "vendor": m.vendor.name(),
        "vars": d.vars,
        "role": match d.role { crate::plan::model::Role::Root => "root", crate::plan::model::Role::Device => "device" },
        "device_function": d.device_function,
        "software": m.software.as_ref().map(|s| json!({"image": s.image, "version": s.version})),
        "patch": m.patch,
    })
}

/// One site's context, in two parts: the digests the render cache compares
/// (always computed, from plain JSON), and the minijinja values templates
/// see, built on first use only: a site whose every config comes from the
/// cache never pays for them.
pub(super) struct SiteContext<'s> {
    site: &'s Site,
    /// Digests of what the cache compares (see `cache`): each device's
    /// entry, each device's links, the site-wide values, and the whole
    /// device list (`plan`).
    pub(super) device_digests: Vec<u64>,
    pub(super) link_digests: HashMap<String, u64>,
    pub(super) site_digest: u64,
    pub(super) plan_digest: u64,
    name: String,
    /// `(local_port, peer, peer_port)` by device name.
    links: HashMap<String, Vec<(String, String, String)>>,
    site_json: serde_json::Value,
    dhcp_json: serde_json::Value,
    server: ServerUrls,
    values: OnceLock<SiteValues>,
}

/// The values shared by every device of a site, built once: `plan` holds
/// every device, and per-device values are shared between `plan` and
/// `device` (minijinja values are reference-counted, so cloning is cheap).
struct SiteValues {
    site: Value,
    dhcp: Value,
    plan: Value,
    server: Value,
    devices: Vec<Value>,
    links: HashMap<String, Vec<Value>>,
}

fn link_value(local_port: &str, peer: &str, peer_port: &str) -> Value {
    Value::from_iter([
        ("local_port", Value::from(local_port)),
        ("peer", Value::from(peer)),
        ("peer_port", Value::from(peer_port)),
    ])
}

pub(super) fn site_context<'s>(site: &'s Site, http_port: u16) -> SiteContext<'s> {
    let mut links: HashMap<String, Vec<(String, String, String)>> = HashMap::new();
    for l in site.links.iter() {
        links.entry(l.a.device.clone()).or_default().push((
            l.a.port.clone(),
            l.b.device.clone(),
            l.b.port.clone(),
        ));
        links.entry(l.b.device.clone()).or_default().push((
            l.b.port.clone(),
            l.a.device.clone(),
            l.a.port.clone(),
        ));
    }
    let link_digests = links
        .iter()
        .map(|(name, ls)| {
            let mut h = DefaultHasher::new();
            ls.hash(&mut h);
            (name.clone(), h.finish())
        })
        .collect();
    let device_digests: Vec<u64> = site
        .devices
        .iter()
        .map(|d| device_digest(site, d))
        .collect();
    let mut plan_h = DefaultHasher::new();
    device_digests.hash(&mut plan_h);
    let dhcp_json = match &site.dhcp {
        Some(d) => json!({
            "interface": d.interface,
            "subnet": d.subnet.to_string(),
            "netmask": d.subnet.netmask().to_string(),
            "prefix_len": d.subnet.prefix_len(),
            "pool": format!("{}-{}", d.pool.0, d.pool.1),
            "router": d.router.map(|r| r.to_string()),
            "dns": d.dns.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            "domain": d.domain,
            "lease_time": d.lease_time.as_secs(),
        }),
        None => serde_json::Value::Null,
    };
    let site_json = json!({"name": site.name, "server_ip": site.server_ip.map(|i| i.to_string()),
                           "server_ip6": site.server_ip6.map(|i| i.to_string())});
    let server = ServerUrls::new(site, http_port);
    let site_digest = {
        let mut h = DefaultHasher::new();
        json_digest(&site_json).hash(&mut h);
        json_digest(&dhcp_json).hash(&mut h);
        serde_json::to_vec(&server).unwrap_or_default().hash(&mut h);
        h.finish()
    };
    SiteContext {
        site,
        device_digests,
        link_digests,
        site_digest,
        plan_digest: plan_h.finish(),
        name: site.name.clone(),
        links,
        site_json,
        dhcp_json,
        server,
        values: OnceLock::new(),
    }
}

impl SiteContext<'_> {
    fn values(&self) -> &SiteValues {
        self.values.get_or_init(|| {
            let devices: Vec<Value> = self
                .site
                .devices
                .iter()
                .map(|d| Value::from_serialize(device_json(self.site, d)))
                .collect();
            SiteValues {
                site: Value::from_serialize(&self.site_json),
                dhcp: Value::from_serialize(&self.dhcp_json),
                plan: Value::from_iter([
                    ("devices", Value::from(devices.clone())),
                    ("site", Value::from(self.name.clone())),
                ]),
                server: Value::from_serialize(&self.server),
                devices,
                links: self
                    .links
                    .iter()
                    .map(|(name, ls)| {
                        let v = ls.iter().map(|(l, p, pp)| link_value(l, p, pp)).collect();
                        (name.clone(), v)
                    })
                    .collect(),
            }
        })
    }
}

pub(super) fn device_context(sc: &SiteContext<'_>, index: usize, d: &Device) -> Value {
    let v = sc.values();
    let links = v.links.get(&d.name).cloned().unwrap_or_default();
    minijinja::context! {
        device => v.devices[index].clone(),
        site => v.site.clone(),
        dhcp => v.dhcp.clone(),
        links => Value::from(links),
        server => v.server.clone(),
        plan => v.plan.clone(),
    }
}

/// A digest of everything [`device_json`] shows of a device, hashed from
/// the model directly: no JSON is built for a device that is not rendered.
fn device_digest(site: &Site, d: &Device) -> u64 {
    let m = site.model_of(d);
    let mut h = DefaultHasher::new();
    (
        &d.name,
        &d.serial,
        d.mac,
        d.ip,
        &d.model,
        &d.device_function,
    )
        .hash(&mut h);
    (&m.match_model, m.vendor.name(), &m.patch).hash(&mut h);
    m.software
        .as_ref()
        .map(|s| (&s.image, &s.version))
        .hash(&mut h);
    matches!(d.role, crate::plan::model::Role::Root).hash(&mut h);
    for (k, v) in &d.vars {
        k.hash(&mut h);
        hash_json(v, &mut h);
    }
    h.finish()
}

/// serde_json values have no `Hash`: a structural one (maps are ordered).
fn hash_json(v: &serde_json::Value, h: &mut DefaultHasher) {
    use serde_json::Value as J;
    match v {
        J::Null => 0u8.hash(h),
        J::Bool(b) => (1u8, b).hash(h),
        J::Number(n) => (2u8, n.to_string()).hash(h),
        J::String(s) => (3u8, s).hash(h),
        J::Array(a) => {
            (4u8, a.len()).hash(h);
            a.iter().for_each(|x| hash_json(x, h));
        }
        J::Object(o) => {
            (5u8, o.len()).hash(h);
            for (k, x) in o {
                k.hash(h);
                hash_json(x, h);
            }
        }
    }
}

fn json_digest(v: &serde_json::Value) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_vec(v).unwrap_or_default().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field a template can see of a device moves its digest; each
    /// change below also changes `device_json`, which is what matters.
    #[test]
    fn every_visible_field_moves_the_digest() {
        let mut model = crate::dhcp::fixture::lab_model();
        let site = &mut model.sites[0];
        let base = site.devices[0].clone();
        let digest = |site: &Site, d: &Device| (device_digest(site, d), device_json(site, d));
        let (d0, j0) = digest(site, &base);
        let edits: [fn(&mut Device); 8] = [
            |d| d.name.push('x'),
            |d| d.serial.push('x'),
            |d| d.mac = Some([2, 0, 0, 0, 0, 9]),
            |d| d.ip = Some("10.9.9.9".parse().unwrap()),
            |d| d.device_function = Some("other".into()),
            |d| d.role = crate::plan::model::Role::Root,
            |d| {
                d.vars.insert("asn".into(), serde_json::json!(65999));
            },
            |d| {
                d.vars
                    .insert("nested".into(), serde_json::json!({"a": [1, "b"]}));
            },
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut d = base.clone();
            edit(std::sync::Arc::make_mut(&mut d));
            let (d1, j1) = digest(site, &d);
            assert_ne!(j0, j1, "edit {i} is not visible to templates");
            assert_ne!(d0, d1, "edit {i} does not move the digest");
        }
        // The model's fields, through the device's model entry.
        let m = site.models.get_mut(&base.model).unwrap();
        m.match_model.push('x');
        let (d1, j1) = digest(site, &base);
        assert_ne!(j0, j1);
        assert_ne!(d0, d1, "the model string does not move the digest");
    }
}
