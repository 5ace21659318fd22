//! The embedded MQTT broker (SPEC §1b `[broker]`, §9): a local IoT hub for
//! labs, so `ztpd run` carries telemetry with nothing else installed.
//!
//! - [`auth`]: who may connect (devices with their own SAS token, service
//!   accounts), a pure function;
//! - [`accounts`]: `[broker] users` password files and the daemon's own
//!   internal account;
//! - [`server`]: rumqttd on `[broker] listen`, on its own thread.
//!
//! Limits (docs/telemetry.md): no per-topic ACL (rumqttd has no hook for
//! it; the bridge rejects a payload whose device_id differs from the
//! topic's), messages are kept in memory only.

pub mod accounts;
pub mod auth;
pub mod server;

pub use server::{EmbeddedBroker, HubLookup};
