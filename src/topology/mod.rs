//! The topology engine (SPEC §7, §10): compare what devices report over LLDP
//! with the planned links and say, for each difference, which cable or box to
//! fix. One pure function, [`diff`], used by the daemon (hello, root reports)
//! and by `ztpd topology diff`.
//!
//! Reports are turned into a set of observed cables first, so a cable seen
//! from both ends counts once. Then each planned link is matched against the
//! cables at its two ends: exact match, two links whose cables are exchanged
//! (`swapped`, one problem naming both cables), right device on the wrong
//! port (`wrong_port`), another device (`wrong_peer`), nothing (`missing_link`).
//! Cables no planned link explains are `unplanned_link`.

//!
//! - [`planned`]: the plan's devices and links, built once per plan;
//! - [`reported`]: what devices say they see;
//! - [`diff`]: the one pure function comparing the two;
//! - [`neighbourhood`]: the reports a hello must be checked against, so a
//!   hello costs its neighbourhood rather than the whole fleet;
//! - [`tiers`]: hops from the root devices and each device's uplinks, for
//!   rollout ordering and uplink safety.

pub mod diff;
pub mod layout;
pub mod neighbourhood;
pub mod planned;
pub mod reported;
pub mod snmp;
pub mod tiers;

pub use diff::{diff, Cable, Kind, Problem, TopologyError};
pub use neighbourhood::ReportIndex;
pub use planned::{PlannedDevice, PlannedTopology};
pub use reported::{Neighbor, Reported};
pub use tiers::Tiers;
