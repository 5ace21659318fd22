//! Every device must be recognisable (SPEC §3, §12): by its serial, its MAC,
//! or its position, the set of its planned links `(local port, peer, peer
//! port)`. A peer counts when it is recognisable itself (a serial, a MAC,
//! `role = "root"`, or a position, recursively). Two serial-less devices of
//! one model whose places cannot be told apart could each take the other's
//! config: refused too.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::plan::diagnostic::{Diagnostic, Diagnostics};
use crate::plan::model::{Device, Role, Site};

/// A device the plan knows only by where it is cabled.
pub fn by_position(d: &Device) -> bool {
    !d.has_serial() && d.mac.is_none()
}

/// One planned link seen from one end: (local port, peer, peer port).
type Place = BTreeSet<(String, String, String)>;

fn places(site: &Site) -> HashMap<&str, Place> {
    let mut out: HashMap<&str, Place> = HashMap::new();
    for l in site.links.iter() {
        for (me, peer) in [(&l.a, &l.b), (&l.b, &l.a)] {
            out.entry(me.device.as_str()).or_default().insert((
                me.port.clone(),
                peer.device.clone(),
                peer.port.clone(),
            ));
        }
    }
    out
}

pub(super) fn check_identities(diags: &mut Diagnostics, site: &Site) {
    let places = places(site);
    let ambiguous = check_ambiguous(diags, site, &places);
    check_no_identity(diags, site, &places, &ambiguous);
}

/// `plan::no_identity`: a serial-less, MAC-less device with no link to a
/// recognisable peer.
fn check_no_identity(
    diags: &mut Diagnostics,
    site: &Site,
    places: &HashMap<&str, Place>,
    already: &HashSet<&str>,
) {
    let mut known: HashSet<&str> = site
        .devices
        .iter()
        .filter(|d| !by_position(d) || d.role == Role::Root)
        .map(|d| d.name.as_str())
        .collect();
    // Grow the recognisable set one hop at a time until it stops growing.
    loop {
        let before = known.len();
        let found: Vec<&str> = site
            .devices
            .iter()
            .filter(|d| !known.contains(d.name.as_str()))
            .filter(|d| {
                places
                    .get(d.name.as_str())
                    .is_some_and(|p| p.iter().any(|(_, peer, _)| known.contains(peer.as_str())))
            })
            .map(|d| d.name.as_str())
            .collect();
        known.extend(found);
        if known.len() == before {
            break;
        }
    }
    for d in &site.devices {
        if known.contains(d.name.as_str()) || already.contains(d.name.as_str()) {
            continue;
        }
        let mut diag = Diagnostic::error(
            "plan::no_identity",
            format!(
                "device `{}` has no serial, no MAC and no link to a device ztpd can recognise",
                d.name
            ),
        )
        .help(
            "give it a serial (or mac), or a [[links]] entry to a device with a serial, a MAC \
             or role = \"root\": ztpd then knows it by where it is cabled",
        );
        if let Some(at) = &d.defined_at {
            diag = diag
                .at(&at.file, at.span.clone())
                .label("nothing identifies this device");
        }
        diags.push(diag);
    }
}

/// `plan::ambiguous_position`: two position devices of one model whose
/// places are equal once each is written as "me" (so two devices cabled
/// only to each other, port for port, are equal too). Returns the devices
/// named.
fn check_ambiguous<'a>(
    diags: &mut Diagnostics,
    site: &'a Site,
    places: &HashMap<&str, Place>,
) -> HashSet<&'a str> {
    let pos: Vec<&Device> = site
        .devices
        .iter()
        .map(|d| &**d)
        .filter(|d| by_position(d))
        .collect();
    let pos_names: HashSet<&str> = pos.iter().map(|d| d.name.as_str()).collect();
    let empty = Place::new();
    // Bucket by a key that forgets which position device a peer is; pairs
    // are then compared exactly within a bucket (buckets are small).
    let mut buckets: HashMap<(&str, Place), Vec<&Device>> = HashMap::new();
    for d in &pos {
        let place = places.get(d.name.as_str()).unwrap_or(&empty);
        let key: Place = place
            .iter()
            .map(|(l, peer, pp)| {
                let peer = if pos_names.contains(peer.as_str()) {
                    "*".to_string()
                } else {
                    peer.clone()
                };
                (l.clone(), peer, pp.clone())
            })
            .collect();
        buckets.entry((d.model.as_str(), key)).or_default().push(d);
    }
    let mut named = HashSet::new();
    let mut bucket_list: Vec<_> = buckets.into_values().filter(|b| b.len() > 1).collect();
    // Plan order, so diagnostics come out in a stable order.
    bucket_list.sort_by_key(|b| {
        site.devices
            .iter()
            .position(|d| d.name == b[0].name)
            .unwrap_or(0)
    });
    for bucket in bucket_list {
        for (i, a) in bucket.iter().enumerate() {
            for b in &bucket[i + 1..] {
                if named.contains(b.name.as_str()) {
                    continue;
                }
                let pa = places.get(a.name.as_str()).unwrap_or(&empty);
                let pb = places.get(b.name.as_str()).unwrap_or(&empty);
                if as_me(pa, &a.name, &b.name) == as_me(pb, &a.name, &b.name) {
                    push_ambiguous(diags, a, b);
                    named.insert(a.name.as_str());
                    named.insert(b.name.as_str());
                }
            }
        }
    }
    named
}

/// A place with both devices of a pair written as `*`.
fn as_me(p: &Place, a: &str, b: &str) -> Place {
    p.iter()
        .map(|(l, peer, pp)| {
            let peer = if peer == a || peer == b {
                "*".to_string()
            } else {
                peer.clone()
            };
            (l.clone(), peer, pp.clone())
        })
        .collect()
}

fn push_ambiguous(diags: &mut Diagnostics, a: &Device, b: &Device) {
    let mut diag = Diagnostic::error(
        "plan::ambiguous_position",
        format!(
            "devices `{}` and `{}` are both {} without a serial, cabled the same way: \
             a hello cannot tell them apart",
            a.name, b.name, a.model
        ),
    )
    .help(format!(
        "give `{}` or `{}` a serial (or mac), or plan a link that only one of them has",
        a.name, b.name
    ));
    if let Some(at) = &b.defined_at {
        diag = diag
            .at(&at.file, at.span.clone())
            .label(format!("same place as `{}`", a.name));
        if let Some(first) = &a.defined_at {
            if std::sync::Arc::ptr_eq(&first.file, &at.file) {
                diag = diag.related(first.span.clone(), "the other device");
            }
        }
    }
    diags.push(diag);
}
