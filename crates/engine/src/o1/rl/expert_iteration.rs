//! Expert iteration (ReST-EM, Singh et al. 2023; STaR, Zelikman et al. 2022): sample `group_size`
//! attempts per prompt, keep the ones the verifier accepts (each distinct completion once per prompt), and
//! fine-tune on them with the supervised loss, the same next-token cross-entropy as policy initialisation.
//!
//! With `rollouts` naming a step search (beam, MCTS, Gumbel), each prompt's attempt is instead the
//! search's returned solution, verified when the search found a verified one: expert iteration from search
//! (Anthony et al. 2017; AlphaZero's "search, then imitate the search" with the verified solution as the
//! target). The search is a stronger expert than one sample (on the optimal-trace demo's SFT model MCTS with 16
//! simulations solves about 0.6 of the training problems where a sample solves 0.3-0.4), so more prompts
//! yield a target per step.
//!
//! Each step is one round, continuing from the current policy (STaR's variant; ReST-EM restarts from the
//! base model each round, which a caller can do by reloading it). The value head regresses every sample's
//! score, correct or not (it needs both to learn which prefixes succeed).

use std::collections::BTreeSet;

use selfplay_model::HostAccess;
use selfplay_model::Model;

use super::config::RlSettings;
use super::error::RlError;
use super::rollouts::Rollouts;
use super::update::{Objective, Plan, Row, attach_reference};
use crate::train::ValueSlot;

/// For each sample, whether it is kept for cloning: verified correct, not empty, and the first of its
/// group with these tokens.
pub(crate) fn select(rollouts: &Rollouts) -> Vec<bool> {
    let mut seen: BTreeSet<(usize, &[u32])> = BTreeSet::new();
    rollouts
        .samples
        .iter()
        .map(|s| s.correct && !s.generation.tokens.is_empty() && seen.insert((s.group, &s.generation.tokens)))
        .collect()
}

/// The rows and plan of an expert-iteration round: the kept samples cloned, and (when the value head
/// trains) every sample regressed on its score.
pub(crate) fn prepare<B: HostAccess>(
    rollouts: &Rollouts,
    reference: Option<&Model<B>>,
    settings: &RlSettings,
    max_new_tokens: usize,
) -> Result<(Vec<Row>, Plan), RlError> {
    let kept = select(rollouts);
    let train_values = settings.value_coef > 0.0;
    let mut rows: Vec<Row> = rollouts
        .samples
        .iter()
        .zip(kept)
        .filter(|&(s, keep)| !s.generation.tokens.is_empty() && (keep || train_values))
        .map(|(s, keep)| {
            let n = s.generation.tokens.len();
            let tokens = rollouts.sequence(s);
            Row {
                prompt_len: tokens.len() - n,
                tokens,
                learn_policy: keep,
                old_logprobs: s.generation.model_logprobs.clone(),
                advantages: vec![0.0; n],
                returns: vec![s.score; n],
                old_values: s.generation.values.clone(),
                ref_logprobs: None,
            }
        })
        .collect();
    attach_reference(reference, &mut rows)?;
    Ok((rows, Plan::new(settings, Objective::Imitate, ValueSlot::AfterToken, max_new_tokens)))
}
