//! GRPO, RLOO and PPO: one clipped policy-gradient update, three ways of turning scores into advantages.
//!
//! - GRPO and RLOO give every token of a completion the same advantage, computed from the scores of its
//!   group (group-relative and leave-one-out). A group whose completions all score alike carries no signal
//!   and is left out of the update; the value head regresses, on the remaining rows, the completion's final
//!   score at every prefix (its Monte-Carlo value, Math-Shepherd style).
//! - PPO rewards the last completion token with the score (and, optionally, every token with minus the KL
//!   to the reference), takes the values the value head gave while sampling as the critic, and computes
//!   token advantages and returns with GAE; the value head regresses those returns with a clipped loss.

use selfplay_learn::SeqShape;
use selfplay_learn::advantage::{gae, grpo_advantages, rloo_advantages};
use selfplay_model::HostAccess;
use selfplay_model::Model;

use super::config::{Algorithm, RlSettings};
use super::error::RlError;
use super::rollouts::{Rollouts, Scored};
use super::update::{Objective, Plan, Row, attach_reference};
use crate::train::{Layout, ValueSlot};

/// verl's epsilon under the group standard deviation.
const GROUP_STD_EPS: f64 = 1e-6;

/// The rows and plan of a GRPO or RLOO update: every completion of a group with differing scores, its
/// tokens all carrying the completion's advantage.
pub(crate) fn prepare_grouped<B: HostAccess>(
    rollouts: &Rollouts,
    reference: Option<&Model<B>>,
    settings: &RlSettings,
    max_new_tokens: usize,
) -> Result<(Vec<Row>, Plan), RlError> {
    let advantages = sequence_advantages(settings, &rollouts.scores(), &rollouts.group_ids())?;
    let mut rows: Vec<Row> = rollouts
        .samples
        .iter()
        .zip(advantages)
        .filter(|&(_, advantage)| advantage != 0.0)
        .filter_map(|(s, advantage)| row(rollouts, s, advantage))
        .collect();
    attach_reference(reference, &mut rows)?;
    let objective = Objective::Clipped(settings.ppo_config(max_new_tokens));
    Ok((rows, Plan::new(settings, objective, ValueSlot::AfterToken, max_new_tokens)))
}

/// The rows and plan of a PPO update: every completion, with GAE's token advantages and returns.
pub(crate) fn prepare_ppo<B: HostAccess>(
    rollouts: &Rollouts,
    reference: Option<&Model<B>>,
    settings: &RlSettings,
    max_new_tokens: usize,
) -> Result<(Vec<Row>, Plan), RlError> {
    let (mut rows, scores): (Vec<Row>, Vec<f32>) =
        rollouts.samples.iter().filter_map(|s| Some((row(rollouts, s, 0.0)?, s.score))).unzip();
    attach_reference(reference, &mut rows)?;
    ppo_advantages(&mut rows, &scores, settings)?;
    let objective = Objective::Clipped(settings.ppo_config(max_new_tokens));
    let mut plan = Plan::new(settings, objective, ValueSlot::BeforeToken, max_new_tokens);
    plan.value_clip = (settings.value_clip > 0.0).then_some(f64::from(settings.value_clip));
    Ok((rows, plan))
}

/// One advantage per sample from the scores of its group: GRPO's `(score − mean) / scale`, RLOO's
/// `score − mean of the others`.
pub(crate) fn sequence_advantages(settings: &RlSettings, scores: &[f32], groups: &[u64]) -> Result<Vec<f32>, RlError> {
    Ok(if settings.algorithm == Algorithm::Rloo {
        rloo_advantages(scores, groups)?
    } else {
        grpo_advantages(scores, groups, settings.group_scale, GROUP_STD_EPS)?
    })
}

/// Sample `s` as a training row whose every token has `advantage` and the Monte-Carlo return (the
/// score); `None` for an empty completion, which has no token to train.
fn row(rollouts: &Rollouts, s: &Scored, advantage: f32) -> Option<Row> {
    let n = s.generation.tokens.len();
    if n == 0 {
        return None;
    }
    let tokens = rollouts.sequence(s);
    Some(Row {
        prompt_len: tokens.len() - n,
        tokens,
        learn_policy: true,
        old_logprobs: s.generation.model_logprobs.clone(),
        advantages: vec![advantage; n],
        returns: vec![s.score; n],
        old_values: s.generation.values.clone(),
        ref_logprobs: None,
    })
}

/// PPO's token advantages and returns, written into the rows: token rewards (`scores[i]` on row `i`'s
/// last token; minus `kl_coef ·` KL(old‖ref) on every token when the KL is in the
/// reward), the sampling-time values as `V(s_t)`, then GAE (whitened if asked).
pub(crate) fn ppo_advantages(rows: &mut [Row], scores: &[f32], settings: &RlSettings) -> Result<(), RlError> {
    if rows.is_empty() {
        return Ok(());
    }
    let layout = Layout::new(rows.iter().map(|r| (r.prompt_len, r.completion_len())).collect())?;
    let estimator = settings.kl_estimator;
    if scores.len() != rows.len() {
        return Err(RlError::Internal("one score per PPO row expected"));
    }
    let rewards: Vec<Vec<f32>> = rows
        .iter()
        .zip(scores)
        .map(|(r, &score)| {
            let n = r.completion_len();
            let mut rewards = vec![0.0f32; n];
            if settings.kl_in_reward
                && let Some(refs) = &r.ref_logprobs
            {
                for ((reward, &old), &reference) in rewards.iter_mut().zip(&r.old_logprobs).zip(refs) {
                    *reward -= settings.kl_coef * estimator.value_and_grad(old, reference).0;
                }
            }
            if let Some(last) = rewards.last_mut() {
                *last += score;
            }
            rewards
        })
        .collect();
    if settings.kl_in_reward && rows.iter().any(|r| r.ref_logprobs.is_none()) {
        return Err(RlError::Internal("a KL reward needs reference log-probabilities on every row"));
    }
    let rewards = layout.pack(&rewards.iter().map(Vec::as_slice).collect::<Vec<_>>())?;
    let values = layout.pack(&rows.iter().map(|r| r.old_values.as_slice()).collect::<Vec<_>>())?;
    let shape: SeqShape = layout.shape;
    let estimate = gae(
        shape,
        &rewards,
        &values,
        &layout.mask(),
        f64::from(settings.gamma),
        f64::from(settings.lambda),
        settings.whiten_advantages,
    )?;
    let per_row = layout.unpack(&estimate.advantages).into_iter().zip(layout.unpack(&estimate.returns));
    for (row, (advantages, returns)) in rows.iter_mut().zip(per_row) {
        row.advantages = advantages;
        row.returns = returns;
    }
    Ok(())
}
