//! What an RL step refuses before doing any work.

/// Bad settings or inputs of [`super::step`] (other failures come from the model and the losses).
#[derive(Debug, thiserror::Error)]
pub enum RlError {
    /// A setting outside its valid range.
    #[error("invalid RL setting `{name}`: {reason}")]
    InvalidSetting {
        /// The field of [`super::RlSettings`] (or the argument) at fault.
        name: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// The problem set is empty.
    #[error("RL needs at least one training problem")]
    NoProblems,
    /// `kl_coef > 0` but no reference policy was given.
    #[error("kl_coef > 0 needs a reference policy")]
    MissingReference,
    /// The reference policy scores another vocabulary than the policy.
    #[error("the reference policy's vocabulary ({reference} ids) differs from the policy's ({policy} ids)")]
    ReferenceMismatch {
        /// The policy's vocabulary size.
        policy: usize,
        /// The reference's vocabulary size.
        reference: usize,
    },
    /// A prompt encodes to no token, so no position predicts the completion's first token.
    #[error("a prompt encodes to no tokens")]
    EmptyPrompt,
    /// The policy or the reference failed.
    #[error("model: {0}")]
    Model(#[from] selfplay_model::ModelError),
    /// Communication between the ranks of a data-parallel run.
    #[error("between ranks: {0}")]
    Collective(#[from] selfplay_collective::CollectiveError),
    /// A prompt or completion could not be encoded or decoded.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] selfplay_model::IoError),
    /// A loss, an advantage estimator or the optimizer refused its input.
    #[error("learning: {0}")]
    Learn(#[from] selfplay_learn::LearnError),
    /// The step search behind search rollouts failed.
    #[error("search rollouts: {0}")]
    Search(#[from] crate::rollout::step_search::StepSearchError),
    /// Rows and the model's statistics did not line up: a bug, never the input.
    #[error(transparent)]
    Layout(#[from] crate::train::LayoutError),
    /// Rows, positions and statistics disagree: a bug in this module, never the user's input.
    #[error("internal: {0}")]
    Internal(&'static str),
}
