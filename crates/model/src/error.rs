//! The crate's error type for running a model: building it from weights, forward and backward
//! passes, caching and sampling. Every way a caller's input can be wrong has its own variant, so a
//! caller (or a test) can match on the cause instead of parsing a message.

use selfplay_kvcache::KvCacheError;
use selfplay_tensor::TensorError;

use crate::backend::error::BackendError;

/// Why a model could not be built or run on the given input.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The config's sizes are zero, contradict one another, or are too large to allocate.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// A parameter tensor has the wrong shape for the config (or is missing / unexpected).
    #[error("parameter {name:?} has shape {got:?}, expected {expected:?}")]
    WrongShape { name: String, expected: Vec<usize>, got: Vec<usize> },
    /// A parameter holds NaN or infinity.
    #[error("parameter {0:?} holds a non-finite value")]
    NonFiniteParameter(String),
    /// A batch with no sequences, or a sequence with no tokens.
    #[error("empty input: {0}")]
    EmptyInput(String),
    /// A token id at or beyond the vocabulary size.
    #[error("token id {id} is out of range for a vocabulary of {vocab_size}")]
    TokenOutOfRange { id: u32, vocab_size: usize },
    /// A sequence (with its cached context) is longer than the model or cache allows.
    #[error("sequence of {len} tokens exceeds the limit of {limit}")]
    SequenceTooLong { len: usize, limit: usize },
    /// A batch whose activations would not fit in memory.
    #[error("a batch of {tokens} tokens needs {elements} activation values, more than the limit of {limit}")]
    BatchTooLarge { tokens: usize, elements: usize, limit: usize },
    /// Two inputs that must agree in length or count do not.
    #[error("length mismatch for {what}: expected {expected}, got {got}")]
    LengthMismatch { what: String, expected: usize, got: usize },
    /// A per-token gradient, loss weight or sampling parameter is NaN, infinite or out of its range.
    #[error("invalid value for {what}: {reason}")]
    InvalidValue { what: String, reason: String },
    /// A request names a sequence the training pass does not have.
    #[error("no sequence {0}")]
    UnknownSequence(usize),
    /// The KV cache refused a step: an unknown sequence, or not enough free blocks.
    #[error(transparent)]
    KvCache(#[from] KvCacheError),
    /// A backend op failed (on a device backend: a launch failure, out of memory, a lost device).
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// Building a tensor failed.
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

impl ModelError {
    /// A [`ModelError::LengthMismatch`] with less typing.
    pub(crate) fn length(what: impl Into<String>, expected: usize, got: usize) -> Self {
        ModelError::LengthMismatch { what: what.into(), expected, got }
    }

    /// A [`ModelError::InvalidValue`] with less typing.
    pub(crate) fn value(what: impl Into<String>, reason: impl Into<String>) -> Self {
        ModelError::InvalidValue { what: what.into(), reason: reason.into() }
    }
}
