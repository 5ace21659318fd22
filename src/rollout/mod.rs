//! Batch operations (SPEC §8): groups of one model, rollout policies, and
//! rollouts that push actions to a group's devices batch by batch.
//!
//! - [`policy`], [`window`]: the policy keys, parsed one way for the plan,
//!   the API and the CLI;
//! - [`groups`]: plan groups and persisted runtime groups.

pub mod groups;
pub mod policy;
pub mod window;
