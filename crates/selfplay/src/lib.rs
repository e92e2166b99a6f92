//! selfplay: the o1 recipe — policy initialisation, reward design, search and learning — as one loop.
//!
//! The library holds the pieces the CLI is made of, so other programs (and the end-to-end tests)
//! can drive them directly.

pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod eval;
pub mod flops;
pub mod optimizer;
pub mod pipeline;
pub mod progress;
pub mod report;
pub mod rl;
pub mod rollout;
pub mod sft;
pub mod step_search;
pub mod value_model;
