//! Plans: TOML files -> raw mirror with spans -> checks -> compiled
//! [`model::Model`]. [`load::load`] is the only entry point.

pub mod compile;
pub mod diagnostic;
pub mod diff;
pub mod load;
pub mod model;
pub mod ports;
pub mod raw;
pub mod reader;
pub mod tags;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use load::{load, load_texts, load_texts_with, load_with, LoadCache, Loaded};
