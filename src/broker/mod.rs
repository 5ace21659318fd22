//! The local hub (SPEC §1b `[broker]`, §9, §13): what Azure IoT Hub and its
//! provisioning service (DPS) are to a device, on the machine running
//! ztpd, so `ztpd run` carries telemetry with nothing else installed. It is
//! a device endpoint, not a general broker: a device reaches only its own
//! topics, and there are no other subscribers (operators read the store, or
//! run an external broker).
//!
//! - [`auth`]: who may connect (a device, or a registering device, with its
//!   own SAS token), pure;
//! - [`acl`]: what each may publish and subscribe to, pure;
//! - [`packets`]: the MQTT 3.1.1 rules the codec does not check, pure;
//! - [`view`]: what the hub knows of the daemon, resolved once per snapshot;
//! - [`server`]: the listeners; [`admission`]: limits before CONNECT;
//! - [`session`]: one connection, dispatching to [`handlers`] (telemetry,
//!   twin, DPS, methods); [`calls`]: method calls waiting for answers;
//! - [`registry`]: the connected devices, reached by message;
//! - [`hub`]: the hub's state and what the rest of ztpd asks of it;
//! - [`outbox`]: devicebound messages kept until acknowledged;
//! - [`twins`]: desired and reported properties;
//! - [`registrations`]: devices registered with the provisioning service;
//! - [`stats`]: counters; [`tls`]: the TLS listener's certificate.

pub mod acl;
pub mod admission;
pub mod auth;
pub mod calls;
pub mod handlers;
pub mod hub;
pub mod outbox;
pub mod packets;
pub mod registrations;
pub mod registry;
pub mod server;
pub mod session;
pub mod stats;
pub mod tls;
pub mod twins;
pub mod view;

pub use hub::LocalHub;
pub use server::Listeners;
pub use view::HubView;
