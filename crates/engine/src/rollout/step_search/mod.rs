//! Step-level search at test time: beam search, MCTS (PUCT) and Gumbel MuZero over reasoning steps, with the
//! transformer as policy (it proposes the candidate next steps) and value (its value head scores prefixes), and
//! the task's verifier scoring finished solutions.
//!
//! * [`policy`]: [`TransformerPolicy`], the [`selfplay_search::language::StepModel`] over a
//!   [`selfplay_model::Model`]: a step is the text up to and including a newline (or the end of the completion);
//!   a separate value model (an outcome or process reward model) may judge the steps instead of the policy's head.
//! * [`cost`]: forward FLOPs of a generation, prefix recomputation included.
//! * [`methods`]: runs a method over a problem set at one or many budgets and reports accuracy, tokens and FLOPs.
//!
//! The searches draw no randomness of their own (no Dirichlet noise, Gumbel scale 0): every random choice is a
//! proposal, seeded by (run seed, prefix tokens, sample index). A problem's result is therefore a function of the
//! problem, the model, the settings and the seed alone, whichever problems share its batch (to within the
//! rounding [`selfplay_model::Model::generate`] describes: a batch's width can move a logit's last bits), and every method and
//! budget sees the same proposals for the same prefix, so the curves differ by how methods search, never by
//! sampling noise.
//!
//! Cost: every generation call runs in one paged KV cache with prefix caching that lives as long as the policy
//! (`kv_cache_tokens`), so expanding a node prefills only the tail of its prefix that no earlier call computed in
//! a whole block, then decodes the new steps; the K proposals of a prefix fork its prefill. Each point reports the
//! positions really run through the model and those a search recomputing every proposal's prefix would run. A
//! tree holds at most K children per node, so on short traces it is soon fully expanded: later simulations
//! revisit finished solutions for free, and tokens and accuracy level off (3-number Countdown, K = 4: after about
//! 16 simulations). `examples/step_search.rs` times all three methods on a saved model.
//!
//! Problems whose prompts share whole blocks (a common instruction) share those blocks too, so with KV reuse a
//! problem's reported cost can depend on the problems searched before it; its solution does not, beyond the
//! rounding above (a cached key or value was computed in another pass than a recomputed one would be).

pub mod cost;
pub mod methods;
pub mod policy;

use selfplay_reward::StepAggregation;
use serde::{Deserialize, Serialize};

use crate::rollout::method::Method;

pub use methods::{Solved, search_sweep, search_test_time, search_test_time_methods, solve, solve_with, sweep_with};
pub use policy::{Judged, PriorWeights, Step, TransformerPolicy, proposal_seed};

/// Most tokens a search's KV cache may hold ([`SearchSettings::kv_cache_tokens`]): its memory is allocated when
/// the search starts (8 GiB at 2 KiB a token).
pub const MAX_KV_CACHE_TOKENS: usize = 1 << 22;

/// How a step search proposes, scores and chooses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchSettings {
    /// K: candidate next steps sampled when a node is expanded (a beam extended). Identical samples merge, so a
    /// node has at most K children. Small K keeps trees narrow enough that 64 simulations reach finished
    /// solutions: Countdown with 3 numbers needs 3 steps, and a 4-ary tree of depth 3 has 21 inner nodes.
    pub candidates: usize,
    /// Most tokens one step may take; a step cut here ends its solution (a line that never ends is not a step).
    /// The completion as a whole is capped by `max_new_tokens` besides.
    pub max_step_tokens: usize,
    /// Sampling temperature of the proposals (1 samples the policy as trained).
    pub temperature: f32,
    /// Prior mass of a proposed step: its sample count (visit-frequency priors, the default: sampling already
    /// draws likely steps more often) or its sequence probability under the model.
    pub priors: PriorWeights,
    /// Score finished solutions with the task's verifier and return a verified one when the search found it
    /// (as `best_of_n` does). When false the judge (the value head, or a value model) scores them and the search
    /// returns its vote over them ([`SearchSettings::vote`]) or its own recommendation: search without an oracle.
    pub use_verifier: bool,
    /// Score a partial solution 0 when the task's step checker rejects one of its steps (Countdown: wrong
    /// arithmetic, or a number that is not available), steering the search away from dead ends. The checker
    /// knows the numbers, not the target: a process verifier, which `Task::check_steps` exists for. No effect for
    /// a task without a checker. Off by default: on the demo model it helped beam search at widths 1-2 and was
    /// neutral to slightly harmful for the trees (a slipped step can still precede a correct answer, which the
    /// answer's own evaluation accepts), all within the noise of 200 problems.
    pub check_steps: bool,
    /// Tokens of keys and values the search keeps in a paged KV cache with prefix caching, shared by every
    /// expansion of every problem: a node's proposals then prefill only the part of its prefix no earlier
    /// expansion computed (in blocks of [`policy::KV_BLOCK_TOKENS`]), and the least recently used blocks are
    /// evicted when it runs short. 0 turns reuse off: every expansion prefills its whole prefix. Memory:
    /// `layers × 2 × kv_heads × head_dim × 4` bytes a token (2 KiB on the demo's model).
    pub kv_cache_tokens: usize,
    /// Simulations per root candidate for MCTS and Gumbel: the root samples `max(K, ⌈budget / root_widening⌉)`
    /// candidate first steps (Gumbel considers them all, Sequential Halving over them), inner nodes keep K, so a
    /// bigger budget keeps finding new first steps instead of revisiting a full tree. 0 keeps the root at K. The
    /// default, 4, leaves budgets up to 16 as they were (K = 4) and on the demo's policy lifts MCTS at 256
    /// simulations from 0.724 to 0.758 and Gumbel from 0.722 to 0.766.
    pub root_widening: usize,
    /// How the judge's scores of a path's steps (the policy's value head, or a value model's:
    /// [`TransformerPolicy::judged_by`]) become the value the search reads for a partial or finished solution:
    /// `last` (the newest step's score, the default), `min`, `prod` or `mean` (process-reward aggregation, for a
    /// judge trained on process labels).
    pub step_aggregation: StepAggregation,
    /// Without the verifier: return the answer with the largest vote over every finished solution the search
    /// generated, each weighted by its value (clamped to [0, 1]) times the times it was sampled (weighted selection
    /// over a search's final candidates, as Snell et al. 2024 do after beam search), rather than the search's own
    /// recommendation (the best beam, the most visited path), which is the fallback when nothing finished. On the
    /// demo's policy it lifts MCTS at 64 simulations from 0.616 to 0.650 and Gumbel from 0.596 to 0.666.
    pub vote: bool,
}

impl Default for SearchSettings {
    fn default() -> Self {
        SearchSettings {
            candidates: 4,
            max_step_tokens: 64,
            temperature: 1.0,
            priors: PriorWeights::Count,
            use_verifier: true,
            check_steps: false,
            kv_cache_tokens: 1 << 16,
            root_widening: 4,
            step_aggregation: StepAggregation::Last,
            vote: true,
        }
    }
}

impl SearchSettings {
    /// Rejects settings no search can run with.
    pub fn validate(&self) -> Result<(), StepSearchError> {
        let bad = |what: &'static str| Err(StepSearchError::InvalidInput(what));
        if self.candidates == 0 {
            return bad("candidates (K) must be at least 1");
        }
        if self.max_step_tokens == 0 {
            return bad("max_step_tokens must be at least 1");
        }
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return bad("temperature must be finite and non-negative");
        }
        if self.kv_cache_tokens > MAX_KV_CACHE_TOKENS {
            return bad("kv_cache_tokens must be at most 4194304 (the cache is allocated whole)");
        }
        Ok(())
    }
}

/// Everything a step search can refuse or fail on.
#[derive(Debug, thiserror::Error)]
pub enum StepSearchError {
    /// A setting or argument outside its domain (budget 0, K = 0, no problems, ...).
    #[error("invalid step-search input: {0}")]
    InvalidInput(&'static str),
    /// The tokenizer cannot mark step boundaries: a newline must be exactly one token.
    #[error("the tokenizer encodes a newline as {0} tokens; step search needs exactly one")]
    NewlineToken(usize),
    /// A prefix handed to the policy does not start with the prompt of a problem it was built for.
    #[error("a search prefix does not start with a known problem's prompt")]
    UnknownPrompt,
    /// The value model given to judge the search has no value head (its weights lack `value_head.weight` and
    /// `value_head.bias`): it would score every step 0.
    #[error("the search's judge has no value head (its weights lack value_head.weight and value_head.bias)")]
    JudgeWithoutValueHead,
    /// The judge reads another vocabulary than the policy writes.
    #[error("the search's judge has a vocabulary of {judge} tokens and the policy {policy}: it must read the policy's")]
    JudgeVocabulary {
        /// The policy's vocabulary size.
        policy: usize,
        /// The judge's.
        judge: usize,
    },
    /// The judge's context is shorter than the policy's: it could not read every prefix the policy writes.
    #[error("the search's judge reads at most {judge} positions and the policy writes up to {policy}")]
    JudgeContext {
        /// The policy's context length.
        policy: usize,
        /// The judge's.
        judge: usize,
    },
    /// The method asked for is not a step search.
    #[error("`{0}` is not a step search (beam, mcts or gumbel)")]
    NotASearch(Method),
    /// The transformer failed.
    #[error("model: {0}")]
    Model(#[from] selfplay_model::ModelError),
    /// The tokenizer failed.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] selfplay_model::IoError),
    /// The search engine refused its input.
    #[error("search: {0}")]
    Search(Box<selfplay_search::SearchError<StepSearchError>>),
}

impl From<selfplay_search::SearchError<StepSearchError>> for StepSearchError {
    /// The policy's own failure comes back unwrapped; the engine's, boxed.
    fn from(err: selfplay_search::SearchError<StepSearchError>) -> Self {
        match err {
            selfplay_search::SearchError::Evaluator(inner) => inner,
            other => StepSearchError::Search(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_settings_are_valid_and_bad_ones_are_not() {
        assert!(SearchSettings::default().validate().is_ok());
        let zero_k = SearchSettings { candidates: 0, ..SearchSettings::default() };
        assert!(matches!(zero_k.validate(), Err(StepSearchError::InvalidInput(_))));
        let huge = SearchSettings { kv_cache_tokens: MAX_KV_CACHE_TOKENS + 1, ..SearchSettings::default() };
        assert!(matches!(huge.validate(), Err(StepSearchError::InvalidInput(_))));
    }
}
