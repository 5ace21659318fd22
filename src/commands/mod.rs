//! One module per command; `cli` only parses and dispatches.

pub mod credentials;
pub mod plan_diff;
pub mod render;
pub mod topology;
pub mod validate;
