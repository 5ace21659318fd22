//! DHCPv6 leases (IA_NA addresses): in memory for the packet path and in the
//! state store (`dhcp6_leases`) through the same group-commit writer, with
//! the same durability, as DHCPv4 leases. A client is its DUID and IAID.

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::Mutex;

use rusqlite::params;

pub use crate::dhcp::leases::LeaseState;
use crate::state::{StateError, StateStore, Writer};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease6 {
    pub ip: Ipv6Addr,
    /// [`client_key`] of the DUID and IAID.
    pub client: Vec<u8>,
    pub mac: Option<[u8; 6]>,
    pub hostname: Option<String>,
    /// Unix seconds.
    pub expires: u64,
    pub state: LeaseState,
}

/// DUID and IAID, the identity of one IA_NA (RFC 8415 §12).
pub fn client_key(duid: &[u8], iaid: u32) -> Vec<u8> {
    let mut k = iaid.to_be_bytes().to_vec();
    k.extend_from_slice(duid);
    k
}

impl Lease6 {
    pub fn available_to(&self, client: &[u8], now: u64) -> bool {
        match self.state {
            LeaseState::Declined => self.expires <= now,
            _ => self.client == client || self.expires <= now,
        }
    }
    pub fn live(&self, now: u64) -> bool {
        self.state == LeaseState::Bound && self.expires > now
    }
}

#[derive(Debug, Default)]
pub struct LeaseTable6 {
    by_ip: HashMap<Ipv6Addr, Lease6>,
    by_client: HashMap<Vec<u8>, Ipv6Addr>,
    /// Next address to try, per pool start.
    cursors: HashMap<u128, u128>,
}

/// Addresses tried per allocation at most: an IPv6 pool can be 2^64 wide,
/// and a scan must stay bounded on the packet path.
const ALLOCATION_TRIES: u32 = 4096;

impl LeaseTable6 {
    pub fn from_leases(leases: impl IntoIterator<Item = Lease6>) -> Self {
        let mut t = Self::default();
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

    pub fn get(&self, ip: Ipv6Addr) -> Option<&Lease6> {
        self.by_ip.get(&ip)
    }

    pub fn of_client(&self, client: &[u8]) -> Option<&Lease6> {
        let ip = self.by_client.get(client)?;
        self.by_ip.get(ip).filter(|l| l.client == client)
    }

    pub fn insert(&mut self, lease: Lease6) {
        if let Some(old) = self.by_ip.get(&lease.ip) {
            if old.client != lease.client && self.by_client.get(&old.client) == Some(&lease.ip) {
                self.by_client.remove(&old.client);
            }
        }
        if let Some(prev_ip) = self.by_client.get(&lease.client).copied() {
            if prev_ip != lease.ip
                && self
                    .by_ip
                    .get(&prev_ip)
                    .is_some_and(|p| p.client == lease.client && p.state == LeaseState::Offered)
            {
                self.by_ip.remove(&prev_ip);
            }
        }
        self.by_client.insert(lease.client.clone(), lease.ip);
        self.by_ip.insert(lease.ip, lease);
    }

    pub fn available(&self, ip: Ipv6Addr, client: &[u8], now: u64) -> bool {
        self.by_ip
            .get(&ip)
            .is_none_or(|l| l.available_to(client, now))
    }

    /// A free pool address, scanning on from where the last search ended.
    pub fn allocate(
        &mut self,
        pool: (u128, u128),
        client: &[u8],
        now: u64,
        skip: impl Fn(Ipv6Addr) -> bool,
    ) -> Option<Ipv6Addr> {
        let (start, end) = pool;
        if end < start {
            return None;
        }
        let size = end - start + 1;
        let cursor = self.cursors.get(&start).copied().unwrap_or(start);
        let cursor = if (start..=end).contains(&cursor) {
            cursor
        } else {
            start
        };
        let tries = u128::from(ALLOCATION_TRIES).min(size);
        for i in 0..tries {
            let n = start + (cursor - start + i) % size;
            let ip = Ipv6Addr::from(n);
            if skip(ip) || !self.available(ip, client, now) {
                continue;
            }
            self.cursors
                .insert(start, if n == end { start } else { n + 1 });
            return Some(ip);
        }
        None
    }

    /// Bound, unexpired leases (for `/metrics` and ZTP).
    pub fn bound(&self, now: u64) -> impl Iterator<Item = &Lease6> {
        self.by_ip.values().filter(move |l| l.live(now))
    }
}

/// Persistence in the state store.
pub mod store {
    use super::*;

    const MIGRATIONS: &[&str] = &["CREATE TABLE dhcp6_leases (
            ip BLOB PRIMARY KEY,
            client BLOB NOT NULL,
            mac BLOB,
            hostname TEXT,
            expires INTEGER NOT NULL,
            state INTEGER NOT NULL
        )"];

    pub fn open(state: &StateStore) -> Result<Vec<Lease6>, StateError> {
        state.migrate("dhcp6", MIGRATIONS)?;
        let conn = state.reader()?;
        let mut stmt =
            conn.prepare("SELECT ip, client, mac, hostname, expires, state FROM dhcp6_leases")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
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
            let (Ok(ip), Some(state)) = (
                <[u8; 16]>::try_from(ip.as_slice()),
                LeaseState::from_code(state),
            ) else {
                tracing::warn!("skipping a stored DHCPv6 lease with a bad address or state");
                continue;
            };
            out.push(Lease6 {
                ip: Ipv6Addr::from(ip),
                client,
                mac: mac.and_then(|m| <[u8; 6]>::try_from(m.as_slice()).ok()),
                hostname,
                expires: u64::try_from(expires).unwrap_or(0),
                state,
            });
        }
        Ok(out)
    }

    pub fn put(tx: &rusqlite::Connection, l: &Lease6) -> Result<(), rusqlite::Error> {
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO dhcp6_leases (ip, client, mac, hostname, expires, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        stmt.execute(params![
            l.ip.octets().to_vec(),
            l.client,
            l.mac.map(|m| m.to_vec()),
            l.hostname,
            i64::try_from(l.expires).unwrap_or(i64::MAX),
            l.state.code(),
        ])?;
        Ok(())
    }
}

/// The live table and where its changes are persisted (`None`: memory only).
pub struct Leases6 {
    pub table: Mutex<LeaseTable6>,
    pub writer: Option<Writer>,
}

impl Leases6 {
    pub fn new(table: LeaseTable6, writer: Option<Writer>) -> Leases6 {
        Leases6 {
            table: Mutex::new(table),
            writer,
        }
    }

    /// Load the stored leases and wire the writer.
    pub fn open(state: &StateStore) -> Result<Leases6, StateError> {
        let stored = store::open(state)?;
        tracing::info!(leases = stored.len(), "dhcpv6 leases loaded");
        Ok(Leases6::new(
            LeaseTable6::from_leases(stored),
            Some(state.writer()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(n: u128, client: &[u8], expires: u64, state: LeaseState) -> Lease6 {
        Lease6 {
            ip: Ipv6Addr::from(n),
            client: client.to_vec(),
            mac: None,
            hostname: None,
            expires,
            state,
        }
    }

    #[test]
    fn allocation_skips_used_planned_and_declined_addresses() {
        let mut t = LeaseTable6::default();
        let base = u128::from("2001:db8::1000".parse::<Ipv6Addr>().unwrap());
        let pool = (base, base + 3);
        t.insert(lease(base, b"a", 100, LeaseState::Bound));
        t.insert(lease(base + 2, b"x", 100, LeaseState::Declined));
        let planned = Ipv6Addr::from(base + 1);
        assert_eq!(
            t.allocate(pool, b"b", 50, |ip| ip == planned),
            Some(Ipv6Addr::from(base + 3))
        );
        t.insert(lease(base + 3, b"b", 100, LeaseState::Bound));
        assert_eq!(t.allocate(pool, b"c", 50, |ip| ip == planned), None);
        assert!(t.allocate(pool, b"c", 100, |ip| ip == planned).is_some());
    }

    #[tokio::test]
    async fn leases_round_trip_through_the_state_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = lease(0x2001_0db8 << 96 | 7, b"duid-iaid", 1234, LeaseState::Bound);
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
