//! Reasoning tasks for selfplay: Countdown (the default) and multi-digit arithmetic.
//!
//! Each task implements [`Task`]: seeded generators with disjoint splits, the prompt, the verified reward
//! (from `selfplay-reward`), an answer key for voting, solution traces for policy initialisation, and
//! (Countdown) a step checker. Problems read and write as JSONL ([`jsonl`]).

pub mod arithmetic;
pub mod countdown;
pub mod error;
pub mod jsonl;
mod rng;
pub mod task;

pub use arithmetic::{ArithmeticOps, ArithmeticProblem, ArithmeticTask};
pub use countdown::{CountdownConfig, CountdownTask, TraceStyle};
pub use error::TasksError;
pub use jsonl::{read_jsonl, write_jsonl};
pub use selfplay_reward::CountdownProblem;
pub use task::{Split, StepProgress, Task};
