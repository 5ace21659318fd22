//! The lease table of both DHCP servers, generic over the address family:
//! in memory for the packet path, one lease per address and one address per
//! client, with its rows persisted in the state store (`store`) through the
//! group-commit writer. DHCPv4 (`dhcp::leases`, `Ipv4Addr`, table
//! `dhcp_leases`) and DHCPv6 (`dhcp6::leases`, `Ipv6Addr`, `dhcp6_leases`)
//! differ only in the address and how it is stored.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::net::{Ipv4Addr, Ipv6Addr};

use rusqlite::types::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// Held for an OFFER (an ADVERTISE); not persisted.
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

/// An address a lease table holds: a number in a pool, and a column of its
/// family's table in the state store.
pub trait LeaseAddr: Copy + Eq + Hash + Debug + Send + 'static {
    /// The family's table, and the migrations that make it (their name).
    const TABLE: &'static str;
    const MIGRATION: &'static str;
    const MIGRATIONS: &'static [&'static str];
    /// The table's SELECT of every row and its INSERT OR REPLACE of one,
    /// written out so the packet path formats no SQL.
    const SELECT: &'static str;
    const INSERT: &'static str;
    fn to_bits(self) -> u128;
    fn from_bits(n: u128) -> Self;
    fn to_sql(self) -> Value;
    fn from_sql(v: Value) -> Option<Self>;
}

/// A family's table, its migration name and the type of its `ip` column.
macro_rules! lease_sql {
    ($table:literal, $migration:literal, $ip:literal) => {
        const TABLE: &'static str = $table;
        const MIGRATION: &'static str = $migration;
        const MIGRATIONS: &'static [&'static str] = &[concat!(
            "CREATE TABLE ",
            $table,
            " (
            ip ",
            $ip,
            " PRIMARY KEY,
            client BLOB NOT NULL,
            mac BLOB,
            hostname TEXT,
            expires INTEGER NOT NULL,
            state INTEGER NOT NULL
        )"
        )];
        const SELECT: &'static str = concat!(
            "SELECT ip, client, mac, hostname, expires, state FROM ",
            $table
        );
        const INSERT: &'static str = concat!(
            "INSERT OR REPLACE INTO ",
            $table,
            " (ip, client, mac, hostname, expires, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        );
    };
}

impl LeaseAddr for Ipv4Addr {
    lease_sql!("dhcp_leases", "dhcp", "INTEGER");
    fn to_bits(self) -> u128 {
        u32::from(self).into()
    }
    fn from_bits(n: u128) -> Self {
        Ipv4Addr::from(n as u32)
    }
    fn to_sql(self) -> Value {
        Value::Integer(u32::from(self).into())
    }
    fn from_sql(v: Value) -> Option<Self> {
        match v {
            Value::Integer(n) => u32::try_from(n).ok().map(Ipv4Addr::from),
            _ => None,
        }
    }
}

impl LeaseAddr for Ipv6Addr {
    lease_sql!("dhcp6_leases", "dhcp6", "BLOB");
    fn to_bits(self) -> u128 {
        u128::from(self)
    }
    fn from_bits(n: u128) -> Self {
        Ipv6Addr::from(n)
    }
    fn to_sql(self) -> Value {
        Value::Blob(self.octets().to_vec())
    }
    fn from_sql(v: Value) -> Option<Self> {
        match v {
            Value::Blob(b) => <[u8; 16]>::try_from(b.as_slice()).ok().map(Ipv6Addr::from),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease<A> {
    pub ip: A,
    /// DHCPv4: `Request::client_key()` (option 61, else htype + chaddr);
    /// DHCPv6: `dhcp6::leases::client_key` (IAID and DUID).
    pub client: Vec<u8>,
    pub mac: Option<[u8; 6]>,
    pub hostname: Option<String>,
    /// Unix seconds.
    pub expires: u64,
    pub state: LeaseState,
}

impl<A> Lease<A> {
    /// Whether `client` may take this address at `now`.
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

#[derive(Debug)]
pub struct LeaseTable<A> {
    by_ip: HashMap<A, Lease<A>>,
    by_client: HashMap<Vec<u8>, A>,
    /// Next address to try, per pool start.
    cursors: HashMap<u128, u128>,
}

impl<A> Default for LeaseTable<A> {
    fn default() -> Self {
        LeaseTable {
            by_ip: HashMap::new(),
            by_client: HashMap::new(),
            cursors: HashMap::new(),
        }
    }
}

impl<A: LeaseAddr> LeaseTable<A> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn from_leases(leases: impl IntoIterator<Item = Lease<A>>) -> Self {
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

    pub fn get(&self, ip: A) -> Option<&Lease<A>> {
        self.by_ip.get(&ip)
    }

    /// The lease this client holds (any state), if the table still agrees.
    pub fn of_client(&self, client: &[u8]) -> Option<&Lease<A>> {
        let ip = self.by_client.get(client)?;
        self.by_ip.get(ip).filter(|l| l.client == client)
    }

    /// Insert or replace the lease on `lease.ip`.
    pub fn insert(&mut self, lease: Lease<A>) {
        if let Some(old) = self.by_ip.get(&lease.ip) {
            if old.client != lease.client && self.by_client.get(&old.client) == Some(&lease.ip) {
                self.by_client.remove(&old.client);
            }
        }
        if let Some(prev_ip) = self.by_client.get(&lease.client).copied() {
            // A client holds one address at a time: an old offer goes back.
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

    /// Drop an offered (never acknowledged) lease.
    pub fn forget_offer(&mut self, ip: A, client: &[u8]) {
        if let Some(l) = self.by_ip.get(&ip) {
            if l.client == client && l.state == LeaseState::Offered {
                self.by_ip.remove(&ip);
                self.by_client.remove(client);
            }
        }
    }

    /// Whether `client` may use `ip` now (absent, its own, or expired).
    pub fn available(&self, ip: A, client: &[u8], now: u64) -> bool {
        self.by_ip
            .get(&ip)
            .is_none_or(|l| l.available_to(client, now))
    }

    /// A free address of the inclusive pool `(start, end)`, trying at most
    /// `tries` addresses, scanning on from where the last search ended so
    /// that a busy pool is not rescanned from its start each time. `skip`
    /// excludes planned addresses.
    pub fn allocate_in(
        &mut self,
        (start, end): (u128, u128),
        tries: u128,
        client: &[u8],
        now: u64,
        skip: impl Fn(A) -> bool,
    ) -> Option<A> {
        if end < start {
            return None;
        }
        // A pool of every address (2^128) has no representable size; it is
        // scanned as if one short, which `tries` bounds anyway.
        let size = (end - start).saturating_add(1);
        let cursor = self.cursors.get(&start).copied().unwrap_or(start);
        let cursor = if (start..=end).contains(&cursor) {
            cursor
        } else {
            start
        };
        for i in 0..tries.min(size) {
            let n = start + (cursor - start + i) % size;
            let ip = A::from_bits(n);
            if skip(ip) || !self.available(ip, client, now) {
                continue;
            }
            self.cursors
                .insert(start, if n == end { start } else { n + 1 });
            return Some(ip);
        }
        None
    }

    /// Addresses of the pool `(start, end)` in use at `now` (offered,
    /// bound or quarantined).
    pub fn used_in(&self, (start, end): (u128, u128), now: u64) -> u64 {
        self.by_ip
            .values()
            .filter(|l| {
                let n = l.ip.to_bits();
                n >= start && n <= end && l.expires > now && l.state != LeaseState::Released
            })
            .count() as u64
    }

    /// Bound, unexpired leases.
    pub fn bound(&self, now: u64) -> impl Iterator<Item = &Lease<A>> {
        self.by_ip.values().filter(move |l| l.live(now))
    }
}

/// Persistence of one family's leases in the state store.
pub mod store {
    use rusqlite::params;

    use super::{Lease, LeaseAddr, LeaseState};
    use crate::state::{StateError, StateStore};

    /// Create or upgrade the family's table and load every stored lease.
    pub fn open<A: LeaseAddr>(state: &StateStore) -> Result<Vec<Lease<A>>, StateError> {
        state.migrate(A::MIGRATION, A::MIGRATIONS)?;
        let conn = state.reader()?;
        let mut stmt = conn.prepare(A::SELECT)?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, rusqlite::types::Value>(0)?,
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
            let (Some(ip), Some(state)) = (A::from_sql(ip), LeaseState::from_code(state)) else {
                tracing::warn!(
                    table = A::TABLE,
                    state,
                    "skipping a stored lease with a bad address or state"
                );
                continue;
            };
            out.push(Lease {
                ip,
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
    pub fn put<A: LeaseAddr>(
        tx: &rusqlite::Connection,
        l: &Lease<A>,
    ) -> Result<(), rusqlite::Error> {
        let mut stmt = tx.prepare_cached(A::INSERT)?;
        stmt.execute(params![
            l.ip.to_sql(),
            l.client,
            l.mac.map(|m| m.to_vec()),
            l.hostname,
            i64::try_from(l.expires).unwrap_or(i64::MAX),
            l.state.code(),
        ])?;
        Ok(())
    }
}
