//! Reasoning tasks for selfplay: Countdown (the default) and multi-digit arithmetic.
//!
//! Each task implements [`Task`]: seeded generators with disjoint splits, the prompt, the verified reward
//! (from `selfplay-reward`), an answer key for voting, solution traces for policy initialisation, and
//! (Countdown) a step checker. Problems read and write as JSONL ([`jsonl`]).
//!
//! The crate owns the problem spaces (what a problem is, how a seed and a [`Split`] pick problems that no
//! other split will ever draw), the exact solvers behind the reference traces ([`countdown::solver`]), and
//! the text formats the policy reads and writes. It depends on no model: a caller turns the prompt into
//! tokens and hands the completion back as bytes.
//!
//! ```
//! use selfplay_tasks::{ArithmeticTask, CountdownProblem, CountdownTask, Split, Task, read_jsonl, write_jsonl};
//!
//! # fn main() -> Result<(), selfplay_tasks::TasksError> {
//! let task = CountdownTask::default();
//! // Seeded and split-aware: the same seed gives the same problems.
//! let problems = task.generate(Split::Train, 3, 42)?;
//! assert_eq!(problems, task.generate(Split::Train, 3, 42)?);
//!
//! for problem in &problems {
//!     // The reference trace (for SFT) is a correct completion of the prompt.
//!     let prompt = task.prompt(problem);
//!     let trace = task.solution_trace(problem).expect("generated problems are solvable");
//!     assert!(task.reward(problem, trace.as_bytes()).verdict.is_correct(), "{prompt}{trace}");
//!     // Voting keys by exact value, so every correct answer gets the target as its key.
//!     assert_eq!(task.answer_key(problem, trace.as_bytes()), Some(problem.target.to_string()));
//!     // The step checker accepts every step of the trace.
//!     let progress = task.check_steps(problem, trace.as_bytes()).expect("Countdown checks steps");
//!     assert!(!progress.has_invalid_step && progress.valid_steps == problem.nums.len() - 1);
//! }
//!
//! // Problem sets on disk are JSONL, one problem per line.
//! let mut file = Vec::new();
//! write_jsonl(&mut file, &problems)?;
//! let back: Vec<CountdownProblem> = read_jsonl(file.as_slice()).collect::<Result<_, _>>()?;
//! assert_eq!(back, problems);
//!
//! // The arithmetic task's solution is a scratchpad ending in the exact answer.
//! let arithmetic = ArithmeticTask::default();
//! let problem = &arithmetic.generate(Split::Val, 1, 7)?[0];
//! let trace = arithmetic.solution_trace(problem).expect("arithmetic always has a trace");
//! assert!(trace.ends_with(&format!("<answer>{}</answer>", problem.answer)));
//! assert_eq!(arithmetic.reward(problem, trace.as_bytes()).value, 1.0);
//! # Ok(())
//! # }
//! ```

pub mod arithmetic;
pub mod countdown;
pub mod error;
pub mod jsonl;
pub mod propose;
mod rng;
mod sampler;
pub mod task;

pub use arithmetic::{ArithmeticOps, ArithmeticProblem, ArithmeticTask};
pub use countdown::{CountdownConfig, CountdownTask, StreamStyle, TraceKind, TraceStyle};
pub use error::TasksError;
pub use jsonl::{read_jsonl, write_jsonl};
pub use propose::{Propose, Rejection};
pub use selfplay_reward::CountdownProblem;
pub use task::{Split, StepProgress, Task};
