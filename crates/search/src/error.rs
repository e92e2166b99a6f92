//! The one error type of the crate.

use core::fmt::{Debug, Display};

/// Everything a search can refuse or fail on.
///
/// `E` is the error of the caller's evaluator / generator; the search passes it through unchanged so the
/// caller keeps its own typed error (a GPU evaluator's out-of-memory, a tokenizer failure, ...).
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SearchError<E: Debug + Display = core::convert::Infallible> {
    /// A configuration value is outside its domain (zero simulations, negative constants, NaN...).
    #[error("invalid search configuration: {0}")]
    InvalidConfig(&'static str),
    /// Shapes disagree: a prior of the wrong length, a tree built for another number of actions, ...
    #[error("shape mismatch: {what}: expected {expected}, got {got}")]
    Shape { what: &'static str, expected: usize, got: usize },
    /// The evaluator returned NaN or infinity where a finite number is required.
    #[error("non-finite {0} returned by the evaluator")]
    NonFinite(&'static str),
    /// The evaluator left a leaf of the batch without an evaluation.
    #[error("the evaluator did not evaluate leaf {0} of the batch")]
    MissingEvaluation(usize),
    /// An action index outside `0..num_actions`, or an action the tree has no child for.
    #[error("action {action} is not available (num_actions {num_actions})")]
    InvalidAction { action: usize, num_actions: usize },
    /// The tree holds no root yet (call `Tree::reset` first).
    #[error("the tree has no root")]
    EmptyTree,
    /// Every root action is masked invalid: there is nothing to search.
    #[error("every action at the root is invalid")]
    NoValidAction,
    /// Memory for the requested size could not be reserved (absurd simulation counts, ...).
    #[error("cannot allocate memory for {0}")]
    Allocation(&'static str),
    /// The caller's evaluator, generator or scorer failed.
    #[error("evaluator error: {0}")]
    Evaluator(E),
}

impl<E: Debug + Display> SearchError<E> {
    /// Converts an error that cannot carry an evaluator failure into any `SearchError<E>`.
    pub fn widen(err: SearchError) -> Self {
        match err {
            SearchError::InvalidConfig(m) => Self::InvalidConfig(m),
            SearchError::Shape { what, expected, got } => Self::Shape { what, expected, got },
            SearchError::NonFinite(m) => Self::NonFinite(m),
            SearchError::MissingEvaluation(i) => Self::MissingEvaluation(i),
            SearchError::InvalidAction { action, num_actions } => Self::InvalidAction { action, num_actions },
            SearchError::EmptyTree => Self::EmptyTree,
            SearchError::NoValidAction => Self::NoValidAction,
            SearchError::Allocation(m) => Self::Allocation(m),
            SearchError::Evaluator(never) => match never {},
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = core::convert::Infallible> = core::result::Result<T, SearchError<E>>;

impl<E: Debug + Display> SearchError<SearchError<E>> {
    /// Collapses the error of a search whose evaluator itself reports `SearchError<E>` (as
    /// [`crate::language::StepSearch`] does) into one level.
    pub fn flatten(self) -> SearchError<E> {
        match self {
            SearchError::Evaluator(inner) => inner,
            SearchError::InvalidConfig(m) => SearchError::InvalidConfig(m),
            SearchError::Shape { what, expected, got } => SearchError::Shape { what, expected, got },
            SearchError::NonFinite(m) => SearchError::NonFinite(m),
            SearchError::MissingEvaluation(i) => SearchError::MissingEvaluation(i),
            SearchError::InvalidAction { action, num_actions } => SearchError::InvalidAction { action, num_actions },
            SearchError::EmptyTree => SearchError::EmptyTree,
            SearchError::NoValidAction => SearchError::NoValidAction,
            SearchError::Allocation(m) => SearchError::Allocation(m),
        }
    }
}
