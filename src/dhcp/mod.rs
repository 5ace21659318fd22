//! DHCPv4 server (SPEC §4): tolerant parsing, a pure protocol handler over a
//! per-snapshot [`view::DhcpView`], vendor boot profiles, leases kept in the
//! state store, and a thin socket loop.

pub mod conflict;
pub mod handler;
pub mod identity;
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
pub mod wire;

#[doc(hidden)]
pub mod fixture;

pub use view::DhcpView;
