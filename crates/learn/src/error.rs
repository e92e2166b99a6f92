//! The crate's one error type: every bad input is reported, never a panic.

/// What went wrong with the inputs of a loss, an advantage estimator or the optimizer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LearnError {
    /// Two inputs that must describe the same items have different lengths.
    #[error("length mismatch for `{name}`: expected {expected}, got {got}")]
    LengthMismatch {
        /// The input whose length is wrong.
        name: &'static str,
        /// The length implied by the other inputs.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// One tensor of a list (parameters, gradients, optimizer moments) has the wrong number of elements.
    #[error("length mismatch for `{name}` tensor {tensor}: expected {expected}, got {got}")]
    TensorLengthMismatch {
        /// The list holding the tensor.
        name: &'static str,
        /// The tensor's position in the list.
        tensor: usize,
        /// The length the optimizer was built for.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// A batch (or a sequence where one is required) has no items.
    #[error("empty input: `{name}`")]
    Empty {
        /// The input that is empty.
        name: &'static str,
    },
    /// A NaN or infinite number among the inputs.
    #[error("non-finite value in `{name}` at index {index}")]
    NonFinite {
        /// The input holding the value.
        name: &'static str,
        /// Its position (flat index).
        index: usize,
    },
    /// A negative number where only non-negative ones make sense (a probability, a weight).
    #[error("negative value in `{name}` at index {index}")]
    Negative {
        /// The input holding the value.
        name: &'static str,
        /// Its position (flat index).
        index: usize,
    },
    /// A row that should be a probability distribution does not sum to 1.
    #[error("row {row} of `{name}` sums to {sum}, not 1 (tolerance {tolerance})")]
    NotADistribution {
        /// The input holding the row.
        name: &'static str,
        /// The row.
        row: usize,
        /// Its sum.
        sum: f64,
        /// The tolerance it was checked with.
        tolerance: f64,
    },
    /// A target puts probability on an action the legal-action mask excludes.
    #[error("target probability on illegal action {index} (row {row})")]
    IllegalTarget {
        /// The row.
        row: usize,
        /// The flat index of the slot.
        index: usize,
    },
    /// A hyper-parameter outside its valid range.
    #[error("invalid hyper-parameter `{name}`: {reason}")]
    InvalidConfig {
        /// The hyper-parameter.
        name: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },
}

/// Shorthand used across the crate.
pub type Result<T> = core::result::Result<T, LearnError>;
