//! Plans: TOML files -> raw serde mirror -> checks -> compiled [`model::Model`].

pub mod model;
pub mod ports;
