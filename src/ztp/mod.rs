//! Zero-touch provisioning: the device protocol and the topology engine.

pub mod topology;
