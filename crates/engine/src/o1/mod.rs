//! The o1 recipe on Countdown: policy initialisation, reinforcement learning from the exact verifier, and
//! test-time search, as three stages ([`SftStage`], [`RlStage`], [`EvalStage`]) on the [`crate::engine`].
//!
//! [`run`] is the whole loop (`selfplay train` / `selfplay demo`); [`eval::evaluate`] one test-time method at one
//! budget (`selfplay eval`); [`RunConfig`] every setting, as one TOML file.

pub mod compute_optimal;
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod recipe;
pub mod record;
pub mod report;
pub mod rl;
pub mod sft;
pub mod sweep;
pub mod thinking;
pub mod tokenizer;
pub mod value_model;

#[cfg(test)]
mod bpe_run_tests;
#[cfg(test)]
mod curriculum_tests;
#[cfg(test)]
mod distributed_tests;
#[cfg(test)]
mod propose_tests;
#[cfg(test)]
mod stream_tests;

pub use config::{MAX_BUDGET, RunConfig};
pub use error::O1Error;
pub use recipe::{Outcome, default_out, run, run_on, saved_config};
pub use record::{O1Record, SftPoint, TrainPoint};
pub use report::Report;
pub use rl::RlStage;
pub use sft::SftStage;
pub use sweep::EvalStage;
