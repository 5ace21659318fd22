//! One module per command; `cli` only parses and dispatches.

pub mod credentials;
pub mod operator;
pub mod plan_diff;
pub mod render;
pub mod simulate;
pub mod topology;
pub mod validate;
