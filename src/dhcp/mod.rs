//! DHCPv4 server (SPEC §4): tolerant parsing, a pure protocol handler over a
//! per-snapshot [`view::DhcpView`], vendor boot profiles, leases kept in the
//! state store, and a thin socket loop. The parts DHCPv6 (`dhcp6`) shares
//! are here too: the lease table and its store (`lease_table`), the view
//! cache (`view_source`), the reload-following service (`follow`), client
//! identity, the unplanned register and the interface cache (`sock`).

pub mod conflict;
pub mod follow;
pub mod handler;
pub mod identity;
pub mod lease_table;
pub mod leases;
pub mod packet;
pub mod preview;
pub mod profiles;
pub mod server;
pub mod service;
pub mod sock;
pub mod stats;
pub mod suboptions;
pub mod unplanned;
pub mod view;
pub mod view_source;
pub mod wire;

#[doc(hidden)]
pub mod fixture;

pub use view::DhcpView;
