//! DHCPv6 server (SPEC §11), beside the DHCPv4 one in `dhcp` with the same
//! parts: a structure-checking parser over dhcproto's v6 types, a pure
//! handler over a per-snapshot [`view::Dhcp6View`], vendor boot options,
//! leases in the same state store, and a thin socket loop. Identity parsing,
//! the unplanned register and the interface cache are shared with `dhcp`.

pub mod handler;
pub mod leases;
pub mod packet;
pub mod profiles;
pub mod ra;
pub mod server;
pub mod service;
pub mod sock;
pub mod stats;
pub mod view;

pub use view::Dhcp6View;
