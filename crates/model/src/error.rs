//! The crate's error type for running a model: building it from weights, forward and backward
//! passes, caching and sampling. Every way a caller's input can be wrong has its own variant, so a
//! caller (or a test) can match on the cause instead of parsing a message.
//!
//! Variants on the paths a forward or decode step takes carry static or numeric data only
//! (`&'static str`, indices, sizes): nothing is formatted or allocated unless an error happens.

use std::fmt;

use selfplay_kvcache::KvCacheError;
use selfplay_tensor::TensorError;

use crate::backend::error::BackendError;
use crate::param_name::ParamName;

/// Why a model could not be built or run on the given input.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The config's sizes are zero, contradict one another, or are too large to allocate.
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    /// A parameter tensor has the wrong shape for the config; `expected` is empty for a tensor the
    /// config does not call for, `got` is empty for one that is missing.
    #[error("parameter {name} has shape {got:?}, expected {expected:?}")]
    WrongShape { name: ParamName, expected: Vec<usize>, got: Vec<usize> },
    /// A parameter holds NaN or infinity.
    #[error("parameter {0} holds a non-finite value")]
    NonFiniteParameter(ParamName),
    /// Nothing to work on: a batch with no sequences, or no logits to sample from.
    #[error("empty input: {0}")]
    EmptyInput(&'static str),
    /// Sequence `i` of a batch has no tokens.
    #[error("empty input: sequence {0} has no tokens")]
    EmptySequence(usize),
    /// A token id at or beyond the vocabulary size.
    #[error("token id {id} is out of range for a vocabulary of {vocab_size}")]
    TokenOutOfRange { id: u32, vocab_size: usize },
    /// A sequence (with its cached context) is longer than the model or cache allows.
    #[error("sequence of {len} tokens exceeds the limit of {limit}")]
    SequenceTooLong { len: usize, limit: usize },
    /// A batch whose activations would not fit in memory.
    #[error("a batch of {tokens} tokens needs {elements} activation values, more than the limit of {limit}")]
    BatchTooLarge { tokens: usize, elements: usize, limit: usize },
    /// A KV cache whose pools would not fit in memory.
    #[error("a KV cache of {num_blocks} blocks of {block_size} tokens is too large")]
    CacheTooLarge { num_blocks: usize, block_size: usize },
    /// A KV cache built for a model of another shape (layers, key/value width or context length).
    #[error("the KV cache was built for another model shape ({what}: {expected} expected, the cache has {got})")]
    CacheMismatch { what: &'static str, expected: usize, got: usize },
    /// A training pass run by a model of another config.
    #[error("the training pass was run by a model of another config")]
    ForeignPass,
    /// A backward pass over activations that a forward pass did not keep for it (an inference
    /// forward keeps one layer's), or gradients for another number of layers.
    #[error("backward needs a forward pass that kept every layer's activations")]
    NoActivations,
    /// Two inputs that must agree in length or count do not (`seq`: the sequence it concerns).
    #[error("length mismatch for {what}{}: expected {expected}, got {got}", OfSequence(*seq))]
    LengthMismatch { what: &'static str, seq: Option<usize>, expected: usize, got: usize },
    /// A per-token gradient, loss weight or sampling parameter is NaN, infinite or out of its range.
    #[error("invalid value for {what}{}: {reason}", OfSequence(*seq))]
    InvalidValue { what: &'static str, seq: Option<usize>, reason: &'static str },
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

/// Formats ` of sequence {i}` when a sequence index is known.
struct OfSequence(Option<usize>);

impl fmt::Display for OfSequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(i) => write!(f, " of sequence {i}"),
            None => Ok(()),
        }
    }
}

impl ModelError {
    /// A [`ModelError::LengthMismatch`] not tied to one sequence.
    pub(crate) fn length(what: &'static str, expected: usize, got: usize) -> Self {
        ModelError::LengthMismatch { what, seq: None, expected, got }
    }

    /// A [`ModelError::InvalidValue`] not tied to one sequence.
    pub(crate) fn value(what: &'static str, reason: &'static str) -> Self {
        ModelError::InvalidValue { what, seq: None, reason }
    }
}
