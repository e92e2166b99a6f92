//! What one RL step reports: a line of `metrics.jsonl`.

use serde::{Deserialize, Serialize};

use super::proposal_stats::ProposalStats;
use super::rollouts::Rollouts;
use super::update::{Terms, UpdateSummary};

/// What one step saw and did. Loss terms are averaged over the step's optimiser updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: u64,
    /// Mean verifier reward of the rollouts (every one attempted, with dynamic sampling's dropped groups).
    pub reward_mean: f32,
    /// Fraction of rollouts the verifier accepted (likewise).
    pub train_accuracy: f32,
    /// Groups attempted, and kept to learn from (fewer when dynamic sampling drops groups whose samples all
    /// scored the same); solver groups only (the proposer's group, with `[rl.propose]`, apart).
    #[serde(default)]
    pub groups_drawn: usize,
    #[serde(default)]
    pub groups_kept: usize,
    /// The loss terms, averaged over the step's updates (`update_tokens`: their total).
    #[serde(flatten)]
    pub terms: Terms,
    /// Gradient norm before clipping.
    pub grad_norm: f32,
    /// Learning rate of the last update.
    pub lr: f32,
    /// Sequences the policy term trained on: GRPO/RLOO's completions whose group scores differed, PPO's
    /// completions, expert iteration's kept (verified, distinct) completions.
    pub trained_sequences: usize,
    /// Optimiser updates taken (`epochs × minibatches`, less any with nothing to learn).
    pub updates: usize,
    /// Completion tokens generated: sampled, or proposed by the searches.
    pub rollout_tokens: usize,
    /// Forward FLOPs of the searches when the attempts come from one (prefix recomputation included); 0 when
    /// they are sampled (their cost is `rollout_tokens` forward passes).
    #[serde(default)]
    pub search_flops: f64,
    /// Forward FLOPs of prompt selection (`prompt_pool`; 0 without it).
    #[serde(default)]
    pub selection_flops: f64,
    /// Seconds spent sampling and scoring.
    pub rollout_seconds: f64,
    /// Seconds spent on the reference pass, the advantages and the updates.
    pub update_seconds: f64,
    /// `(rollout_tokens + update_tokens) / (rollout_seconds + update_seconds)`.
    pub tokens_per_second: f64,
    /// What the policy proposed, with `[rl.propose]` on (its tokens are in `rollout_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposals: Option<ProposalStats>,
}

impl StepMetrics {
    pub(crate) fn new(
        step: u64,
        rollouts: &Rollouts,
        summary: &UpdateSummary,
        trained_sequences: usize,
        update_seconds: f64,
    ) -> Self {
        let rollout_tokens = rollouts.tokens();
        let terms = summary.terms;
        let seconds = rollouts.seconds + update_seconds;
        StepMetrics {
            step,
            reward_mean: rollouts.reward_mean(),
            train_accuracy: rollouts.accuracy(),
            groups_drawn: rollouts.drawn.groups,
            groups_kept: rollouts.prompts.len() - usize::from(rollouts.proposals.is_some()),
            terms,
            grad_norm: summary.grad_norm,
            lr: summary.lr,
            trained_sequences,
            updates: summary.updates,
            rollout_tokens,
            search_flops: rollouts.search_flops,
            selection_flops: rollouts.selection_flops,
            rollout_seconds: rollouts.seconds,
            update_seconds,
            tokens_per_second: if seconds > 0.0 { (rollout_tokens + terms.tokens) as f64 / seconds } else { 0.0 },
            proposals: rollouts.proposals.clone(),
        }
    }
}
