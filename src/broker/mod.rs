//! The local hub (SPEC §1b `[broker]`, §9): what Azure IoT Hub is to a
//! device, on the machine running ztpd, so `ztpd run` carries telemetry
//! with nothing else installed. It is a device endpoint, not a general
//! broker: a device reaches only its own topics, and there are no other
//! subscribers (operators read the store, or run an external broker).
//!
//! - [`auth`]: who may connect (a device with its own SAS token), pure;
//! - [`acl`]: what a device may publish and subscribe to, pure;
//! - [`packets`]: the MQTT 3.1.1 rules the codec does not check, pure;
//! - [`session`]: one connection;
//! - [`server`]: the listeners, the connected devices, what ztpd pushes;
//! - [`outbox`]: devicebound messages kept until acknowledged;
//! - [`twins`]: desired and reported properties;
//! - [`tls`]: the TLS listener's certificate (a local CA, or given files).

pub mod acl;
pub mod auth;
pub mod outbox;
pub mod packets;
pub mod server;
pub mod session;
pub mod tls;
pub mod twins;

pub use server::{DesiredLookup, HubLookup, Listeners, LocalHub};
