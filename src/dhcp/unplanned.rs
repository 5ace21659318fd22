//! The "unplanned device seen" register (SPEC §4): every client that is not
//! a planned device, with what it said about itself, when it was first and
//! last seen and how often. Kept in memory for the packet path and the
//! operator API (`GET /api/v1/unplanned`), persisted in the state store
//! (`dhcp_unplanned`) so it survives restarts.
//!
//! Persisting is batched: the packet path only marks an entry dirty, and
//! [`Unplanned::flush`] (called by the DHCP loop every [`FLUSH_INTERVAL`] and
//! at shutdown) writes all dirty entries in one group-commit write. So a
//! client costs at most one row write per interval however often it asks,
//! and a random-MAC flood costs at most [`CAP`] row writes per interval.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::params;
use serde::Serialize;

use super::handler::Seen;
use crate::state::{StateError, StateStore, Tx, Writer};
use crate::vendor::Vendor;

/// Clients remembered at most (memory and table). A flood of random MACs
/// must stay bounded; the most recently seen are kept.
pub const CAP: usize = 4096;
/// How often dirty entries are written: at most one row write per client
/// per interval. A crash loses at most this much of the counts.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// "Unplanned device seen" lines logged at info level per minute at most.
const LOGS_PER_MINUTE: u32 = 20;

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE dhcp_unplanned (
        client BLOB PRIMARY KEY,
        mac BLOB,
        client_id BLOB,
        vendor TEXT,
        vendor_class TEXT,
        model TEXT,
        serial TEXT,
        site TEXT NOT NULL,
        subnet TEXT NOT NULL,
        ip INTEGER,
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL,
        count INTEGER NOT NULL
    )",
    // DHCPv6 clients (SPEC §11): their address and DUID.
    "ALTER TABLE dhcp_unplanned ADD COLUMN ip6 BLOB",
    "ALTER TABLE dhcp_unplanned ADD COLUMN duid BLOB",
];

#[derive(Debug, Clone)]
struct Entry {
    seen: Seen,
    first_seen: u64,
    last_seen: u64,
    count: u64,
    dirty: bool,
    /// Its place in [`Inner::order`].
    seq: u64,
}

/// One register entry as the operator API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Record {
    /// 4 (DHCPv4) or 6 (DHCPv6).
    pub family: u8,
    pub mac: Option<String>,
    /// Option 61, hex.
    pub client_id: Option<String>,
    /// The vendor profile recognised from its options, if any.
    pub vendor: Option<&'static str>,
    /// Option 60 as sent.
    pub vendor_class: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub site: String,
    pub subnet: String,
    /// The IPv4 address last offered or acknowledged.
    pub ip: Option<Ipv4Addr>,
    /// The address last offered or acknowledged, of either family.
    pub address: Option<IpAddr>,
    /// DHCPv6 clients: the DUID, hex with colons.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duid: Option<String>,
    /// RFC 3339 UTC.
    pub first_seen: String,
    pub last_seen: String,
    pub count: u64,
}

struct Inner {
    entries: HashMap<Vec<u8>, Entry>,
    /// Keys from least to most recently seen, so that a new client at the
    /// cap evicts the oldest in O(log n) and the register never holds more
    /// than [`CAP`] (it used to prune only at twice the cap).
    order: BTreeMap<u64, Vec<u8>>,
    next_seq: u64,
    last_flush: Instant,
    /// (start of the current minute, lines logged in it).
    log_window: (Instant, u32),
}

pub struct Unplanned {
    /// Shared with the completion of a queued write, which marks its rows
    /// dirty again when the write failed.
    inner: Arc<Mutex<Inner>>,
    writer: Option<Writer>,
}

impl Unplanned {
    /// A register kept in memory only (tests, tools).
    pub fn in_memory() -> Unplanned {
        Unplanned {
            inner: Arc::new(Mutex::new(Inner {
                entries: HashMap::new(),
                order: BTreeMap::new(),
                next_seq: 0,
                last_flush: Instant::now(),
                log_window: (Instant::now(), 0),
            })),
            writer: None,
        }
    }

    /// Create or upgrade the table and load the stored register.
    pub fn open(state: &StateStore) -> Result<Unplanned, StateError> {
        state.migrate("dhcp_unplanned", MIGRATIONS)?;
        let conn = state.reader()?;
        let mut stmt = conn.prepare(
            "SELECT client, mac, client_id, vendor, vendor_class, model, serial, site,
                    subnet, ip, first_seen, last_seen, count, ip6, duid
             FROM dhcp_unplanned ORDER BY last_seen DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([CAP as i64], |r| {
            let key: Vec<u8> = r.get(0)?;
            let mac: Option<Vec<u8>> = r.get(1)?;
            let vendor: Option<String> = r.get(3)?;
            let subnet: String = r.get(8)?;
            let ip: Option<i64> = r.get(9)?;
            let ip6: Option<Vec<u8>> = r.get(13)?;
            let ip = ip
                .and_then(|i| u32::try_from(i).ok())
                .map(|i| IpAddr::V4(Ipv4Addr::from(i)))
                .or_else(|| {
                    ip6.and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
                        .map(|b| IpAddr::V6(Ipv6Addr::from(b)))
                });
            Ok((
                key,
                subnet,
                Entry {
                    seen: Seen {
                        site: r.get(7)?,
                        subnet: Default::default(),
                        mac: mac.and_then(|m| <[u8; 6]>::try_from(m.as_slice()).ok()),
                        client_id: r.get(2)?,
                        duid: r.get(14)?,
                        vendor: vendor.as_deref().and_then(Vendor::from_name),
                        model: r.get(5)?,
                        serial: r.get(6)?,
                        vendor_class: r.get(4)?,
                        ip,
                    },
                    first_seen: r.get::<_, i64>(10)?.max(0) as u64,
                    last_seen: r.get::<_, i64>(11)?.max(0) as u64,
                    count: r.get::<_, i64>(12)?.max(0) as u64,
                    dirty: false,
                    seq: 0,
                },
            ))
        })?;
        let reg = Unplanned {
            writer: Some(state.writer()),
            ..Unplanned::in_memory()
        };
        let mut loaded = Vec::new();
        for row in rows {
            let (key, subnet, mut e) = row?;
            let Ok(net) = subnet.parse() else {
                tracing::warn!(subnet, "skipping a stored unplanned device: bad subnet");
                continue;
            };
            e.seen.subnet = net;
            loaded.push((key, e));
        }
        if let Ok(mut inner) = reg.inner.lock() {
            // Oldest first, so the order index matches last_seen.
            for (key, e) in loaded.into_iter().rev() {
                inner.insert(key, e);
            }
        }
        Ok(reg)
    }

    /// Count one request of an unplanned client at unix time `now`. True the
    /// first time it is seen (then logged, rate-limited).
    pub fn record(&self, key: &[u8], seen: Seen, now: u64) -> bool {
        let Ok(mut inner) = self.inner.lock() else {
            return false;
        };
        if let Some(e) = inner.entries.get_mut(key) {
            let ip = seen.ip.or(e.seen.ip);
            e.seen = seen;
            e.seen.ip = ip;
            e.last_seen = now;
            e.count += 1;
            e.dirty = true;
            inner.touch(key);
            return false;
        }
        if may_log(&mut inner.log_window) {
            tracing::info!(
                site = %seen.site,
                mac = seen.mac.map(|m| crate::plan::model::format_mac(&m)).unwrap_or_default(),
                vendor = seen.vendor.map(Vendor::name).unwrap_or("unknown"),
                model = seen.model.as_deref().unwrap_or(""),
                serial = seen.serial.as_deref().unwrap_or(""),
                "unplanned device seen"
            );
        }
        inner.insert(
            key.to_vec(),
            Entry {
                seen,
                first_seen: now,
                last_seen: now,
                count: 1,
                dirty: true,
                seq: 0,
            },
        );
        true
    }

    /// Write dirty entries when [`FLUSH_INTERVAL`] has passed (or `force`).
    /// Returns a receiver that fires once the write is committed, when one
    /// was queued.
    pub fn flush(&self, force: bool) -> Option<std::sync::mpsc::Receiver<()>> {
        let writer = self.writer.as_ref()?;
        let rows = {
            let mut inner = self.inner.lock().ok()?;
            if !force && inner.last_flush.elapsed() < FLUSH_INTERVAL {
                return None;
            }
            inner.last_flush = Instant::now();
            let rows: Vec<(Vec<u8>, Entry)> = inner
                .entries
                .iter_mut()
                .filter(|(_, e)| e.dirty)
                .map(|(k, e)| {
                    e.dirty = false;
                    (k.clone(), e.clone())
                })
                .collect();
            rows
        };
        if rows.is_empty() {
            return None;
        }
        let keys: Vec<Vec<u8>> = rows.iter().map(|(k, _)| k.clone()).collect();
        let (tx, rx) = std::sync::mpsc::channel();
        let inner = Arc::clone(&self.inner);
        let keys_back = keys.clone();
        let submitted = writer.submit(
            Box::new(move |t| store(t, &rows)),
            Box::new(move |r| {
                if let Err(e) = r {
                    tracing::warn!(
                        "unplanned device register not saved, retried at the next flush: {e}"
                    );
                    mark_dirty(&inner, &keys_back);
                }
                let _ = tx.send(());
            }),
        );
        if let Err(e) = submitted {
            tracing::debug!(
                "unplanned device register write refused, retried at the next flush: {e}"
            );
            mark_dirty(&self.inner, &keys);
            return None;
        }
        Some(rx)
    }

    /// The register, most recently seen first.
    pub fn list(&self) -> Vec<Record> {
        let Ok(inner) = self.inner.lock() else {
            return Vec::new();
        };
        let mut out: Vec<(u64, Record)> = inner
            .entries
            .values()
            .map(|e| (e.last_seen, record(e)))
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.0));
        out.into_iter().map(|(_, r)| r).collect()
    }
}

/// Rows whose write failed are written again at the next flush (unless
/// pruned meanwhile).
fn mark_dirty(inner: &Mutex<Inner>, keys: &[Vec<u8>]) {
    if let Ok(mut inner) = inner.lock() {
        for k in keys {
            if let Some(e) = inner.entries.get_mut(k) {
                e.dirty = true;
            }
        }
    }
}

impl Inner {
    /// Add an entry as the most recently seen, evicting the least recently
    /// seen one when the register is full.
    fn insert(&mut self, key: Vec<u8>, mut e: Entry) {
        while self.entries.len() >= CAP {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            self.entries.remove(&oldest);
        }
        e.seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(e.seq, key.clone());
        self.entries.insert(key, e);
    }

    /// Mark `key` the most recently seen.
    fn touch(&mut self, key: &[u8]) {
        let seq = self.next_seq;
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        if let Some(k) = self.order.remove(&e.seq) {
            e.seq = seq;
            self.next_seq += 1;
            self.order.insert(seq, k);
        }
    }
}

fn may_log(window: &mut (Instant, u32)) -> bool {
    let now = Instant::now();
    if now.duration_since(window.0) >= Duration::from_secs(60) {
        if window.1 > LOGS_PER_MINUTE {
            tracing::info!(
                suppressed = window.1 - LOGS_PER_MINUTE,
                "more unplanned devices were seen than logged in the last minute"
            );
        }
        *window = (now, 0);
    }
    window.1 += 1;
    window.1 <= LOGS_PER_MINUTE
}

fn record(e: &Entry) -> Record {
    let s = &e.seen;
    Record {
        family: if s.subnet.addr().is_ipv6() { 6 } else { 4 },
        mac: s.mac.as_ref().map(crate::plan::model::format_mac),
        client_id: s
            .client_id
            .as_ref()
            .map(|c| c.iter().map(|b| format!("{b:02x}")).collect()),
        vendor: s.vendor.map(Vendor::name),
        vendor_class: s.vendor_class.clone(),
        model: s.model.clone(),
        serial: s.serial.clone(),
        site: s.site.clone(),
        subnet: s.subnet.to_string(),
        ip: match s.ip {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        },
        address: s.ip,
        duid: s.duid.as_ref().map(|d| {
            d.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(":")
        }),
        first_seen: rfc3339(e.first_seen),
        last_seen: rfc3339(e.last_seen),
        count: e.count,
    }
}

fn rfc3339(unix: u64) -> String {
    chrono::DateTime::from_timestamp(i64::try_from(unix).unwrap_or(0), 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Upsert the rows, then keep only the [`CAP`] most recent in the table.
fn store(tx: &Tx<'_>, rows: &[(Vec<u8>, Entry)]) -> Result<(), rusqlite::Error> {
    let mut stmt = tx.prepare_cached(
        "INSERT OR REPLACE INTO dhcp_unplanned (client, mac, client_id, vendor, vendor_class,
             model, serial, site, subnet, ip, first_seen, last_seen, count, ip6, duid)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    for (key, e) in rows {
        let s = &e.seen;
        stmt.execute(params![
            key,
            s.mac.map(|m| m.to_vec()),
            s.client_id,
            s.vendor.map(Vendor::name),
            s.vendor_class,
            s.model,
            s.serial,
            s.site,
            s.subnet.to_string(),
            match s.ip {
                Some(IpAddr::V4(i)) => Some(i64::from(u32::from(i))),
                _ => None,
            },
            e.first_seen as i64,
            e.last_seen as i64,
            e.count as i64,
            match s.ip {
                Some(IpAddr::V6(i)) => Some(i.octets().to_vec()),
                _ => None,
            },
            s.duid,
        ])?;
    }
    tx.execute(
        "DELETE FROM dhcp_unplanned WHERE client NOT IN
           (SELECT client FROM dhcp_unplanned ORDER BY last_seen DESC LIMIT ?1)",
        [CAP as i64],
    )?;
    Ok(())
}

#[cfg(test)]
#[path = "unplanned_tests.rs"]
mod tests;
