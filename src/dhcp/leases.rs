//! DHCPv4 leases: the shared lease table (`lease_table`) over IPv4
//! addresses, persisted in the state store (`dhcp_leases`) through the
//! group-commit writer.
//!
//! The handler mutates the table and reports which addresses changed; the
//! server writes those rows and sends the reply only once they are stored.

use std::net::Ipv4Addr;
use std::sync::Mutex;

pub use super::lease_table::LeaseState;
use crate::state::Writer;

/// How long an offered address is held for the client that was offered it.
pub const OFFER_HOLD_SECS: u64 = 30;
/// How long a declined address stays out of the pool (Kea's default probation).
pub const QUARANTINE_SECS: u64 = 24 * 3600;

/// A DHCPv4 lease; `client` is `Request::client_key()` (option 61, else
/// htype + chaddr).
pub type Lease = super::lease_table::Lease<Ipv4Addr>;

pub type LeaseTable = super::lease_table::LeaseTable<Ipv4Addr>;

impl LeaseTable {
    /// A free address of `pool` (inclusive, as integers), scanning the
    /// whole pool at most. `skip` excludes planned addresses.
    pub fn allocate(
        &mut self,
        pool: (u32, u32),
        client: &[u8],
        now: u64,
        skip: impl Fn(Ipv4Addr) -> bool,
    ) -> Option<Ipv4Addr> {
        let pool = (pool.0.into(), pool.1.into());
        self.allocate_in(pool, u128::MAX, client, now, skip)
    }
}

/// Persistence of leases in the state store (table `dhcp_leases`).
pub mod store {
    use super::Lease;
    use crate::state::{StateError, StateStore};

    /// Create or upgrade the table and load every stored lease.
    pub fn open(state: &StateStore) -> Result<Vec<Lease>, StateError> {
        super::super::lease_table::store::open(state)
    }

    /// Write one lease row (insert or replace).
    pub fn put(tx: &rusqlite::Connection, l: &Lease) -> Result<(), rusqlite::Error> {
        super::super::lease_table::store::put(tx, l)
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
    use crate::state::StateStore;

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
        let pool = (pool.0.into(), pool.1.into());
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
