//! Self-play problem proposing (R-Zero, Huang et al. 2025; Absolute Zero, Zhao et al. 2025): the policy, under
//! a proposer prompt, writes a new problem of the task; the task parses it, keeps it to the training split and
//! certifies with its exact solver that it has an answer, so the solver never trains on an impossible or
//! held-out problem. A proposal need not be the problem's prompt: Countdown's is an expression, whose numbers
//! the task poses with its value as the target (Absolute Zero's deduction: the environment, not the proposer,
//! computes the answer).
//!
//! The trait is apart from [`crate::Task`] and object safe, so a training loop written for any task can take an
//! optional `&dyn Propose` and only tasks that can certify their problems offer one.

/// Why a proposal is not a problem to train on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    /// Not in the proposal format (Countdown: not one expression, the wrong count of numbers, a division by zero).
    #[error("not a problem in the proposal format")]
    Malformed,
    /// Well formed, but a number or the target lies outside the task's ranges.
    #[error("a number or the target is outside the task's ranges")]
    OutOfRange,
    /// A problem of a held-out split: training on it would leak the evaluation set.
    #[error("the problem belongs to a held-out split")]
    HeldOut,
    /// The exact solver finds no answer.
    #[error("the problem has no solution")]
    Unsolvable,
}

impl Rejection {
    /// Every rejection, in the order reports list them.
    pub const ALL: [Rejection; 4] =
        [Rejection::Malformed, Rejection::OutOfRange, Rejection::HeldOut, Rejection::Unsolvable];

    /// The rejection's name in metrics (`malformed`, `out_of_range`, `held_out`, `unsolvable`).
    pub const fn name(self) -> &'static str {
        match self {
            Rejection::Malformed => "malformed",
            Rejection::OutOfRange => "out_of_range",
            Rejection::HeldOut => "held_out",
            Rejection::Unsolvable => "unsolvable",
        }
    }
}

/// A task whose problems the policy can propose.
pub trait Propose {
    /// The problems proposals state.
    type Problem;

    /// The prompt under which the policy writes a new problem; the completion continues it directly.
    fn proposer_prompt(&self) -> String;

    /// How a proposer writes `problem` (`None` when it cannot be written, e.g. a problem without solution): the
    /// completion policy initialisation teaches, and a text [`Propose::certify`] accepts back as the same problem
    /// (in the task's own terms: Countdown may pose the numbers in another order).
    fn proposal(&self, problem: &Self::Problem) -> Option<String>;

    /// The problem a proposer's completion states, when it is well formed, within the task's ranges, in the
    /// training split and solvable. Must accept any bytes.
    fn certify(&self, completion: &[u8]) -> Result<Self::Problem, Rejection>;
}
