//! Batch operations (SPEC §8): groups of one model, rollout policies, and
//! rollouts that push actions to a group's devices batch by batch.
//!
//! - [`policy`], [`window`]: the policy keys, parsed one way for the plan,
//!   the API and the CLI;
//! - [`groups`]: plan groups and persisted runtime groups;
//! - [`model`]: a rollout's persisted state and its JSON;
//! - [`batches`]: every batch planned at creation, by tier, uplink-safe;
//! - [`decide`]: the pure decision function the runner applies;
//! - [`method`]: a `method` rollout's call ends, turned into decisions;
//! - [`create`]: checking a new rollout against the plan;
//! - [`store`], [`service`], [`runner`]: persistence, the daemon's rollouts
//!   and the task that moves them on; [`calls`]: method rollouts' calls.

pub mod batches;
pub mod calls;
pub mod create;
pub mod decide;
pub mod groups;
pub mod method;
pub mod model;
pub mod policy;
pub mod runner;
pub mod service;
pub mod store;
pub mod window;
