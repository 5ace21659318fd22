//! The lease table: in memory for the packet path, persisted in the state
//! store (`dhcp_leases`) through the group-commit writer.
//!
//! The handler mutates the table and reports which addresses changed; the
//! server writes those rows and sends the reply only once they are stored.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use rusqlite::params;

use crate::state::{StateError, StateStore, Writer};

/// How long an offered address is held for the client that was offered it.
pub const OFFER_HOLD_SECS: u64 = 30;
/// How long a declined address stays out of the pool (Kea's default probation).
pub const QUARANTINE_SECS: u64 = 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Held for an OFFER; not persisted.
    Offered,
    Bound,
    /// Given back; reusable at once, but the client gets it again first.
    Released,
    /// The client said the address is in use by someone else.
    Declined,
}

impl LeaseState {
    pub(crate) fn code(self) -> i64 {
        match self {
            LeaseState::Offered => 0,
            LeaseState::Bound => 1,
            LeaseState::Released => 2,
            LeaseState::Declined => 3,
        }
    }
    pub(crate) fn from_code(c: i64) -> Option<LeaseState> {
        Some(match c {
            0 => LeaseState::Offered,
            1 => LeaseState::Bound,
            2 => LeaseState::Released,
            3 => LeaseState::Declined,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub ip: Ipv4Addr,
    /// `Request::client_key()`: option 61, else htype + chaddr.
    pub client: Vec<u8>,
    pub mac: Option<[u8; 6]>,
    pub hostname: Option<String>,
    /// Unix seconds.
    pub expires: u64,
    pub state: LeaseState,
}

impl Lease {
    /// Whether `client` may take this address at `now`.
    pub fn available_to(&self, client: &[u8], now: u64) -> bool {
        match self.state {
            LeaseState::Declined => self.expires <= now,
            _ => self.client == client || self.expires <= now,
        }
    }
}

#[derive(Debug, Default)]
pub struct LeaseTable {
    by_ip: HashMap<Ipv4Addr, Lease>,
    by_client: HashMap<Vec<u8>, Ipv4Addr>,
    /// Next address to try, per pool start.
    cursors: HashMap<u32, u32>,
}

impl LeaseTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_leases(leases: impl IntoIterator<Item = Lease>) -> Self {
        let mut t = Self::new();
        for l in leases {
            t.insert(l);
        }
        t
    }

    pub fn len(&self) -> usize {
        self.by_ip.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ip.is_empty()
    }

    pub fn get(&self, ip: Ipv4Addr) -> Option<&Lease> {
        self.by_ip.get(&ip)
    }

    /// The lease this client holds (any state), if the table still agrees.
    pub fn of_client(&self, client: &[u8]) -> Option<&Lease> {
        let ip = self.by_client.get(client)?;
        self.by_ip.get(ip).filter(|l| l.client == client)
    }

    /// Insert or replace the lease on `lease.ip`.
    pub fn insert(&mut self, lease: Lease) {
        if let Some(old) = self.by_ip.get(&lease.ip) {
            if old.client != lease.client && self.by_client.get(&old.client) == Some(&lease.ip) {
                self.by_client.remove(&old.client);
            }
        }
        if let Some(prev_ip) = self.by_client.get(&lease.client).copied() {
            if prev_ip != lease.ip {
                // A client holds one address at a time: the old one goes back.
                if let Some(prev) = self.by_ip.get(&prev_ip) {
                    if prev.client == lease.client && prev.state == LeaseState::Offered {
                        self.by_ip.remove(&prev_ip);
                    }
                }
            }
        }
        self.by_client.insert(lease.client.clone(), lease.ip);
        self.by_ip.insert(lease.ip, lease);
    }

    /// Drop an offered (never acknowledged) lease.
    pub fn forget_offer(&mut self, ip: Ipv4Addr, client: &[u8]) {
        if let Some(l) = self.by_ip.get(&ip) {
            if l.client == client && l.state == LeaseState::Offered {
                self.by_ip.remove(&ip);
                self.by_client.remove(client);
            }
        }
    }

    /// Whether `client` may use `ip` now (absent, its own, or expired).
    pub fn available(&self, ip: Ipv4Addr, client: &[u8], now: u64) -> bool {
        self.by_ip
            .get(&ip)
            .is_none_or(|l| l.available_to(client, now))
    }

    /// Find a free pool address, scanning from where the last search ended
    /// so that a busy pool is not rescanned from its start each time.
    /// `skip` excludes planned addresses.
    pub fn allocate(
        &mut self,
        pool: (u32, u32),
        client: &[u8],
        now: u64,
        skip: impl Fn(Ipv4Addr) -> bool,
    ) -> Option<Ipv4Addr> {
        let (start, end) = pool;
        if end < start {
            return None;
        }
        let size = u64::from(end - start) + 1;
        let cursor = self.cursors.get(&start).copied().unwrap_or(start);
        let cursor = if (start..=end).contains(&cursor) {
            cursor
        } else {
            start
        };
        for i in 0..size {
            let n = start + ((u64::from(cursor - start) + i) % size) as u32;
            let ip = Ipv4Addr::from(n);
            if skip(ip) || !self.available(ip, client, now) {
                continue;
            }
            let next = if n == end { start } else { n + 1 };
            self.cursors.insert(start, next);
            return Some(ip);
        }
        None
    }

    /// Addresses of `pool` in use at `now` (offered, bound or quarantined).
    pub fn used_in(&self, pool: (u32, u32), now: u64) -> u64 {
        self.by_ip
            .values()
            .filter(|l| {
                let n = u32::from(l.ip);
                n >= pool.0 && n <= pool.1 && l.expires > now && l.state != LeaseState::Released
            })
            .count() as u64
    }
}

/// Persistence of leases in the state store.
pub mod store {
    use super::*;

    const MIGRATIONS: &[&str] = &["CREATE TABLE dhcp_leases (
            ip INTEGER PRIMARY KEY,
            client BLOB NOT NULL,
            mac BLOB,
            hostname TEXT,
            expires INTEGER NOT NULL,
            state INTEGER NOT NULL
        )"];

    /// Create or upgrade the table and load every stored lease.
    pub fn open(state: &StateStore) -> Result<Vec<Lease>, StateError> {
        state.migrate("dhcp", MIGRATIONS)?;
        let conn = state.reader()?;
        let mut stmt =
            conn.prepare("SELECT ip, client, mac, hostname, expires, state FROM dhcp_leases")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Option<Vec<u8>>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (ip, client, mac, hostname, expires, state) = row?;
            let (Ok(ip), Some(state)) = (u32::try_from(ip), LeaseState::from_code(state)) else {
                tracing::warn!(
                    ip,
                    state,
                    "skipping a stored lease with a bad address or state"
                );
                continue;
            };
            out.push(Lease {
                ip: Ipv4Addr::from(ip),
                client,
                mac: mac.and_then(|m| <[u8; 6]>::try_from(m.as_slice()).ok()),
                hostname,
                expires: u64::try_from(expires).unwrap_or(0),
                state,
            });
        }
        Ok(out)
    }

    /// Write one lease row (insert or replace).
    pub fn put(tx: &rusqlite::Connection, l: &Lease) -> Result<(), rusqlite::Error> {
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO dhcp_leases (ip, client, mac, hostname, expires, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        stmt.execute(params![
            i64::from(u32::from(l.ip)),
            l.client,
            l.mac.map(|m| m.to_vec()),
            l.hostname,
            i64::try_from(l.expires).unwrap_or(i64::MAX),
            l.state.code(),
        ])?;
        Ok(())
    }
}

/// The live lease table and where its changes are persisted (`None`: memory only).
pub struct Leases {
    pub table: Mutex<LeaseTable>,
    pub writer: Option<Writer>,
    /// Clients that claimed a planned device they are not: (device,
    /// message), for ZTP to turn into the device's events.
    pub conflicts: Mutex<std::collections::VecDeque<(String, String)>>,
}

/// Conflicts waiting for ZTP at most; older ones are dropped (they were
/// logged, and counted on /metrics).
const CONFLICTS_QUEUED: usize = 256;

impl Leases {
    pub fn new(table: LeaseTable, writer: Option<Writer>) -> Leases {
        Leases {
            table: Mutex::new(table),
            writer,
            conflicts: Mutex::default(),
        }
    }

    pub fn push_conflict(&self, device: &str, message: String) {
        if let Ok(mut q) = self.conflicts.lock() {
            if q.len() >= CONFLICTS_QUEUED {
                q.pop_front();
            }
            q.push_back((device.to_string(), message));
        }
    }

    /// The queued conflicts, oldest first.
    pub fn take_conflicts(&self) -> Vec<(String, String)> {
        self.conflicts
            .lock()
            .map(|mut q| q.drain(..).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(ip: [u8; 4], client: &[u8], expires: u64, state: LeaseState) -> Lease {
        Lease {
            ip: Ipv4Addr::from(ip),
            client: client.to_vec(),
            mac: None,
            hostname: None,
            expires,
            state,
        }
    }

    #[test]
    fn allocation_skips_used_planned_and_quarantined() {
        let mut t = LeaseTable::new();
        let pool = (
            u32::from(Ipv4Addr::new(10, 0, 0, 1)),
            u32::from(Ipv4Addr::new(10, 0, 0, 4)),
        );
        t.insert(lease([10, 0, 0, 1], b"a", 100, LeaseState::Bound));
        t.insert(lease([10, 0, 0, 3], b"x", 100, LeaseState::Declined));
        let planned = Ipv4Addr::new(10, 0, 0, 2);
        let got = t.allocate(pool, b"b", 50, |ip| ip == planned);
        assert_eq!(got, Some(Ipv4Addr::new(10, 0, 0, 4)));
        t.insert(lease([10, 0, 0, 4], b"b", 100, LeaseState::Bound));
        assert_eq!(t.allocate(pool, b"c", 50, |ip| ip == planned), None);
        // After expiry the addresses come back, the quarantined one too.
        assert!(t.allocate(pool, b"c", 100, |ip| ip == planned).is_some());
        assert_eq!(t.used_in(pool, 50), 3);
        assert_eq!(t.used_in(pool, 100), 0);
    }

    #[test]
    fn declined_address_is_not_available_even_to_its_client() {
        let l = lease([10, 0, 0, 1], b"a", 100, LeaseState::Declined);
        assert!(!l.available_to(b"a", 99));
        assert!(l.available_to(b"a", 100));
    }

    #[test]
    fn a_client_moving_drops_its_old_offer() {
        let mut t = LeaseTable::new();
        t.insert(lease([10, 0, 0, 1], b"a", 100, LeaseState::Offered));
        t.insert(lease([10, 0, 0, 2], b"a", 100, LeaseState::Bound));
        assert!(t.get(Ipv4Addr::new(10, 0, 0, 1)).is_none());
        assert_eq!(
            t.of_client(b"a").map(|l| l.ip),
            Some(Ipv4Addr::new(10, 0, 0, 2))
        );
    }

    #[test]
    fn taking_over_an_expired_address_unlinks_the_old_client() {
        let mut t = LeaseTable::new();
        t.insert(lease([10, 0, 0, 1], b"a", 10, LeaseState::Bound));
        t.insert(lease([10, 0, 0, 1], b"b", 100, LeaseState::Bound));
        assert!(t.of_client(b"a").is_none());
        assert_eq!(
            t.of_client(b"b").map(|l| l.ip),
            Some(Ipv4Addr::new(10, 0, 0, 1))
        );
    }

    #[tokio::test]
    async fn leases_round_trip_through_the_state_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = lease([10, 0, 0, 7], b"hclient", 1234, LeaseState::Declined);
        l.mac = Some([2, 0, 0, 0, 0, 7]);
        l.hostname = Some("leaf7".into());
        {
            let s = StateStore::open(dir.path(), crate::settings::Durability::Fsync).unwrap();
            assert!(store::open(&s).unwrap().is_empty());
            let w = l.clone();
            s.writer()
                .write(Box::new(move |tx| store::put(tx, &w)))
                .await
                .unwrap();
        }
        let s = StateStore::open(dir.path(), crate::settings::Durability::Fsync).unwrap();
        assert_eq!(store::open(&s).unwrap(), vec![l]);
    }
}
