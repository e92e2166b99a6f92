//! The task abstraction the training loop, search and evaluation use for any task.

use selfplay_reward::Reward;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::TasksError;

/// Which part of a task's problem space a generator draws from. Splits are disjoint by construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// Training problems.
    Train = 0,
    /// Held-out problems from the training distribution.
    Val = 1,
    /// Problems whose targets never occur in `Train` or `Val` (Countdown): tests generalisation to new
    /// targets rather than new number sets.
    ValTarget = 2,
}

impl Split {
    /// Every split.
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::ValTarget];

    /// The split's name on the command line and in files.
    pub const fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::ValTarget => "val_target",
        }
    }

    /// Inverse of [`Split::name`].
    pub fn from_name(name: &str) -> Result<Split, TasksError> {
        Split::ALL.into_iter().find(|s| s.name() == name).ok_or_else(|| TasksError::UnknownName {
            what: "split",
            name: name.to_owned(),
            expected: "train, val, val_target",
        })
    }
}

/// How far a partial completion's reasoning steps check out (for process rewards and search pruning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepProgress {
    /// Complete steps that are valid, in order, before the first invalid one.
    pub valid_steps: usize,
    /// Whether a complete step failed the check (later steps are then not judged).
    pub has_invalid_step: bool,
}

/// A reasoning task: problems, their prompts, how completions are rewarded, and reference solutions.
///
/// Completions are bytes because they come from a byte-level or token-level sampler that can stop
/// mid-character; every method must accept any bytes.
pub trait Task {
    /// One problem instance; serialisable so problem sets can be written as JSONL.
    type Problem: Serialize + DeserializeOwned + Clone + std::fmt::Debug;

    /// Short name (`"countdown"`).
    fn name(&self) -> &'static str;

    /// The prompt text shown to the policy; the completion continues it directly.
    fn prompt(&self, problem: &Self::Problem) -> String;

    /// The verified reward for a completion.
    fn reward(&self, problem: &Self::Problem, completion: &[u8]) -> Reward;

    /// The canonical form of the completion's final answer, for voting: completions with equal keys give
    /// the same answer. `None` for no usable answer (it then never wins a vote). Must not peek at the
    /// solution, or voting would become an oracle.
    fn answer_key(&self, problem: &Self::Problem, completion: &[u8]) -> Option<String>;

    /// A correct completion for policy initialisation (SFT), or `None` if the task has none.
    fn solution_trace(&self, problem: &Self::Problem) -> Option<String>;

    /// Checks the complete steps of a partial completion; `None` when the task has no step checker.
    fn check_steps(&self, _problem: &Self::Problem, _partial: &[u8]) -> Option<StepProgress> {
        None
    }

    /// `n` problems of `split`, the same for the same `seed`.
    fn generate(&self, split: Split, n: usize, seed: u64) -> Result<Vec<Self::Problem>, TasksError>;
}
