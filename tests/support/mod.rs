//! The one harness of ztpd's integration tests. Every test binary that runs
//! something real says `mod support;` and takes what it needs:
//!
//! - [`ports`]: free loopback ports;
//! - [`agents`]: simulated switch agents carrying out pushed actions;
//! - [`poll`]: readiness and conditions by polling, never by sleeping;
//! - [`fixtures`]: temp roots copied from `tests/fixtures/`;
//! - [`daemon`]: one builder for `ztpd run` (loopback or inside a network
//!   namespace) behind a `Drop` guard that kills it and shows its log when a
//!   test fails; the CLI (`ztpd ...`) as a function, also under a memory
//!   limit (`ztpd_bounded`) for inputs that must not be read without end;
//! - [`api`]: a small HTTP/1.1 client, the operator API, `/metrics` samples;
//! - [`curl`]: curl as the third-party HTTP/TFTP client;
//! - [`files`]: the file-service root (fixture + generated images);
//! - [`tools`]: `have`, `is_root`, `sh`, `must`, child guards;
//! - [`faketime`]: the daemon's wall clock moved by libfaketime (clock faults);
//! - [`netns`]: network namespaces (shared by `dhcp_netns.rs` and
//!   `ztp_lab_fabric.rs`) and the DHCP lab with udhcpc/dhclient/relay;
//! - [`mqtt`]: Mosquitto, `mosquitto_pub`/`_sub`, `ztpd bridge`, readings;
//! - [`mongo`]: the nx-27017 MongoDB-wire server (always `--data-dir`, so
//!   database names are real) and a real MongoDB client to read it;
//! - [`webhook`]: a real HTTP server taking a route's webhook POSTs;
//! - [`azure`]: the Azure IoT device SDK's python running a driver in a
//!   network namespace;
//! - [`spark`]: real Spark (pyspark in `.venv-spark`) for the Spark example.
//!
//! Each binary uses only part of it.
#![allow(dead_code, unused_imports)]

pub mod agents;
pub mod api;
pub mod azure;
pub mod curl;
pub mod daemon;
pub mod faketime;
pub mod files;
pub mod fixtures;
pub mod mongo;
pub mod mqtt;
pub mod netns;
pub mod poll;
pub mod ports;
pub mod spark;
pub mod tools;
pub mod webhook;

pub use daemon::{ztpd, Daemon};
