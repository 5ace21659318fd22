//! ztpd: zero-touch provisioning daemon.
//!
//! Data flows plan files -> [`plan`] model -> [`snapshot`] -> services.

pub mod cli;
pub mod settings;
