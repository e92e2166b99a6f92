//! What training or using a value model can fail on.

use selfplay_learn::LearnError;
use selfplay_model::{IoError, ModelError};

use crate::train::LayoutError;

/// The tokenizer does not encode a newline as exactly one token, so steps cannot be found by token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the tokenizer encodes a newline as {0} tokens; process labels and step scores need exactly one")]
pub struct NoNewlineToken(pub usize);

/// What training or using a value model can fail on.
#[derive(Debug, thiserror::Error)]
pub enum ValueModelError {
    /// No problems, samples or batch to train on.
    #[error("the value model needs problems, samples per problem and a batch size of at least 1")]
    Empty,
    /// Every sampled completion was empty.
    #[error("the policy produced no completion to train the value model on")]
    NoCompletions,
    /// A prompt or completion could not be encoded or decoded.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] IoError),
    /// Steps cannot be told apart: the tokenizer does not write a newline as one token.
    #[error(transparent)]
    NewlineToken(#[from] NoNewlineToken),
    /// The model failed.
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// Communication between the ranks of a data-parallel run.
    #[error("between ranks: {0}")]
    Collective(#[from] selfplay_collective::CollectiveError),
    /// The loss or the optimizer refused its input.
    #[error("learning: {0}")]
    Learn(#[from] LearnError),
    /// Completions and the model's statistics did not line up: a bug, never the input.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}
