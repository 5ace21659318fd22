//! Telemetry (SPEC §9): device functions, the message validator, the stores
//! (MongoDB or the embedded SQLite store), the MQTT bridge, analysis and the
//! simulated device.

pub mod bridge;
pub mod device;
pub mod device_function;
pub mod message;
pub mod mqtt;
pub mod pipeline;
pub mod routing;
pub mod sas_bridge;
pub mod service;
pub mod simulate;
pub mod store;
