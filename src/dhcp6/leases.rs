//! DHCPv6 leases (IA_NA addresses): the lease table DHCPv4 uses
//! (`dhcp::lease_table`) over IPv6 addresses, in the state store
//! (`dhcp6_leases`) through the same group-commit writer, with the same
//! durability. A client is its DUID and IAID.

use std::net::Ipv6Addr;
use std::sync::Mutex;

pub use crate::dhcp::lease_table::LeaseState;
use crate::state::{StateError, StateStore, Writer};

/// A DHCPv6 lease; `client` is [`client_key`] of the DUID and IAID.
pub type Lease6 = crate::dhcp::lease_table::Lease<Ipv6Addr>;

pub type LeaseTable6 = crate::dhcp::lease_table::LeaseTable<Ipv6Addr>;

/// DUID and IAID, the identity of one IA_NA (RFC 8415 §12).
pub fn client_key(duid: &[u8], iaid: u32) -> Vec<u8> {
    let mut k = iaid.to_be_bytes().to_vec();
    k.extend_from_slice(duid);
    k
}

/// Addresses tried per allocation at most: an IPv6 pool can be 2^64 wide,
/// and a scan must stay bounded on the packet path.
const ALLOCATION_TRIES: u128 = 4096;

impl LeaseTable6 {
    /// A free pool address, scanning on from where the last search ended.
    pub fn allocate(
        &mut self,
        pool: (u128, u128),
        client: &[u8],
        now: u64,
        skip: impl Fn(Ipv6Addr) -> bool,
    ) -> Option<Ipv6Addr> {
        self.allocate_in(pool, ALLOCATION_TRIES, client, now, skip)
    }
}

/// Persistence in the state store (table `dhcp6_leases`).
pub mod store {
    use super::*;

    pub fn open(state: &StateStore) -> Result<Vec<Lease6>, StateError> {
        crate::dhcp::lease_table::store::open(state)
    }

    pub fn put(tx: &rusqlite::Connection, l: &Lease6) -> Result<(), rusqlite::Error> {
        crate::dhcp::lease_table::store::put(tx, l)
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
        let mut t = LeaseTable6::new();
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
