//! Switch simulator.
