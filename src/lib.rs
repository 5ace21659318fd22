//! ztpd: zero-touch provisioning daemon.
//!
//! Data flows plan files -> [`plan`] model -> [`snapshot`] -> services.
//! See `docs/architecture.md`.

pub mod addr;
pub mod api;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod credentials;
pub mod daemon;
pub mod device_events;
pub mod dhcp;
pub mod dhcp6;
pub mod duration;
pub mod files;
pub mod hinted_index;
pub mod http_client;
pub mod identifier;
pub mod limits;
pub mod mac;
pub mod metrics;
pub mod plan;
pub mod reload;
pub mod rollout;
pub mod secret_file;
pub mod settings;
pub mod snapshot;
pub mod state;
pub mod telemetry;
pub mod template;
pub mod topics;
pub mod topology;
pub mod vendor;
pub mod watch;
pub mod web;
pub mod ztp;
