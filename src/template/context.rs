//! The context a device's template sees: `device`, `site`, `dhcp`, `links`,
//! `server` and `plan` (every device of the site).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use minijinja::Value;
use serde_json::json;

use super::ServerUrls;
use crate::plan::model::{Device, Site};

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

/// Context values shared by every device of a site, built once: `plan`
/// holds every device, and per-device values are shared between `plan` and
/// `device` (minijinja values are reference-counted, so cloning is cheap).
pub(super) struct SiteContext {
    pub(super) site: Value,
    pub(super) dhcp: Value,
    pub(super) plan: Value,
    pub(super) server: Value,
    pub(super) devices: Vec<Value>,
    pub(super) links: HashMap<String, Vec<Value>>,
    /// Digests of what the cache compares (see `cache`): each device's
    /// entry, each device's links, the site-wide values, and the whole
    /// device list (`plan`).
    pub(super) device_digests: Vec<u64>,
    pub(super) link_digests: HashMap<String, u64>,
    pub(super) site_digest: u64,
    pub(super) plan_digest: u64,
}

fn link_value(local_port: &str, peer: &str, peer_port: &str) -> Value {
    Value::from_iter([
        ("local_port", Value::from(local_port)),
        ("peer", Value::from(peer)),
        ("peer_port", Value::from(peer_port)),
    ])
}

pub(super) fn site_context(site: &Site, http_port: u16) -> SiteContext {
    let mut links: HashMap<String, Vec<Value>> = HashMap::new();
    for l in &site.links {
        links
            .entry(l.a.device.clone())
            .or_default()
            .push(link_value(&l.a.port, &l.b.device, &l.b.port));
        links
            .entry(l.b.device.clone())
            .or_default()
            .push(link_value(&l.b.port, &l.a.device, &l.a.port));
    }
    let mut link_digests: HashMap<String, u64> = HashMap::new();
    for (name, ls) in &links {
        let mut h = DefaultHasher::new();
        for l in ls {
            l.to_string().hash(&mut h);
        }
        link_digests.insert(name.clone(), h.finish());
    }
    let mut device_digests = Vec::with_capacity(site.devices.len());
    let devices: Vec<Value> = site
        .devices
        .iter()
        .map(|d| {
            let j = device_json(site, d);
            device_digests.push(json_digest(&j));
            Value::from_serialize(j)
        })
        .collect();
    let mut plan_h = DefaultHasher::new();
    device_digests.hash(&mut plan_h);
    let dhcp = match &site.dhcp {
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
    let site_json = json!({"name": site.name, "server_ip": site.server_ip.to_string()});
    let server = ServerUrls::new(site, http_port);
    let site_digest = {
        let mut h = DefaultHasher::new();
        json_digest(&site_json).hash(&mut h);
        json_digest(&dhcp).hash(&mut h);
        serde_json::to_vec(&server).unwrap_or_default().hash(&mut h);
        h.finish()
    };
    SiteContext {
        site: Value::from_serialize(site_json),
        dhcp: Value::from_serialize(dhcp),
        plan: Value::from_iter([
            ("devices", Value::from(devices.clone())),
            ("site", Value::from(site.name.clone())),
        ]),
        server: Value::from_serialize(server),
        devices,
        links,
        device_digests,
        link_digests,
        site_digest,
        plan_digest: plan_h.finish(),
    }
}

pub(super) fn device_context(sc: &SiteContext, index: usize, d: &Device) -> Value {
    let links = sc.links.get(&d.name).cloned().unwrap_or_default();
    minijinja::context! {
        device => sc.devices[index].clone(),
        site => sc.site.clone(),
        dhcp => sc.dhcp.clone(),
        links => Value::from(links),
        server => sc.server.clone(),
        plan => sc.plan.clone(),
    }
}

fn json_digest(v: &serde_json::Value) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_vec(v).unwrap_or_default().hash(&mut h);
    h.finish()
}
