//! The second half of every algorithm's step: given training rows (a prompt, a completion and per-token
//! targets), run the model forward, evaluate the loss with the learn crate, backpropagate, and step the
//! optimiser, over `epochs` passes of `minibatches` updates each.
//!
//! The algorithms differ only in the rows they build and in the [`Objective`]: GRPO, RLOO and PPO feed
//! advantages to the clipped policy loss, expert iteration behaviour-clones its kept rows. Every one of
//! them adds the KL penalty to the reference policy and the value head's regression the same way.

use rand_chacha::ChaCha8Rng;
use rand_core::Rng;
use selfplay_collective::Collective;
use selfplay_learn::LossAgg;
use selfplay_learn::kl::{KlEstimator, KlLoss, kl_per_token};
use selfplay_learn::policy::{PolicyBatch, PpoConfig, policy_loss};
use selfplay_learn::supervised::bc_loss;
use selfplay_learn::value::value_loss;
use selfplay_model::HostAccess;
use selfplay_model::{Model, TokenStats};
use serde::{Deserialize, Serialize};

use super::config::RlSettings;
use super::error::RlError;
use crate::optimizer::ModelOptimizer;
use crate::train::{Layout, RowGrads, Trainer, ValueSlot};

/// One training sequence and its per-completion-token targets (each vector holds one entry per
/// completion token).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    /// Prompt then completion.
    pub tokens: Vec<u32>,
    pub prompt_len: usize,
    /// Whether the policy term (clipped surrogate or behaviour cloning, and the KL penalty) covers this
    /// row; rows without it only train the value head.
    pub learn_policy: bool,
    /// Log-probabilities under the policy that sampled the completion (at temperature 1).
    pub old_logprobs: Vec<f32>,
    pub advantages: Vec<f32>,
    /// The value head's regression targets.
    pub returns: Vec<f32>,
    /// The values recorded while sampling (PPO's value clipping is relative to them).
    pub old_values: Vec<f32>,
    /// Log-probabilities under the reference policy, when one is in use.
    pub ref_logprobs: Option<Vec<f32>>,
}

impl Row {
    pub fn completion_len(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }
}

/// What the policy term of the loss is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Objective {
    /// PPO's clipped surrogate on the rows' advantages.
    Clipped(PpoConfig),
    /// Cross-entropy on the rows' completions (behaviour cloning).
    Imitate,
}

/// How a batch of rows becomes a loss.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub objective: Objective,
    /// How the policy term's token losses are averaged.
    pub agg: LossAgg,
    pub value_slot: ValueSlot,
    /// Clip of the value predictions around [`Row::old_values`].
    pub value_clip: Option<f64>,
    pub value_coef: f32,
    /// The KL estimator (for the metric, and for the loss when `kl_coef` is set).
    pub kl_estimator: KlEstimator,
    /// Weight of the KL term in the loss (`None`: not in the loss).
    pub kl_coef: Option<f32>,
    pub epochs: usize,
    pub minibatches: usize,
}

impl Plan {
    /// The plan `settings` describe for `objective`.
    pub fn new(settings: &RlSettings, objective: Objective, value_slot: ValueSlot, max_new_tokens: usize) -> Self {
        Plan {
            objective,
            agg: settings.loss_agg(max_new_tokens),
            value_slot,
            value_clip: None,
            value_coef: settings.value_coef,
            kl_estimator: settings.kl_estimator,
            kl_coef: settings.kl_in_loss().then_some(settings.kl_coef),
            epochs: settings.epochs,
            minibatches: settings.minibatches,
        }
    }
}

/// Declares [`Terms`] with its arithmetic, so a new loss diagnostic is one line here (plus computing it in
/// [`loss_and_grads`]): summing over updates, averaging, and the `metrics.jsonl` field all follow.
macro_rules! loss_terms {
    ($($(#[doc = $doc:literal])* $field:ident),* $(,)?) => {
        /// The loss terms of one batch (diagnostics; the gradient is what trains), averaged over a step's updates
        /// in its metrics.
        #[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
        pub struct Terms {
            $($(#[doc = $doc])* pub $field: f32,)*
            /// Tokens (prompt and completion) run forward and backward: summed over updates, never averaged.
            #[serde(rename = "update_tokens")]
            pub tokens: usize,
        }

        impl Terms {
            /// Adds `other`'s terms and tokens.
            fn accumulate(&mut self, other: &Terms) {
                $(self.$field += other.$field;)*
                self.tokens += other.tokens;
            }

            /// The terms divided by `n` (the tokens stay a total).
            fn mean_over(self, n: f32) -> Terms {
                Terms { $($field: self.$field / n,)* tokens: self.tokens }
            }
        }
    };
}

loss_terms! {
    /// The policy term (clipped surrogate, or cross-entropy for expert iteration), plus the KL term when it is
    /// in the loss.
    loss,
    /// The value head's regression loss.
    value_loss,
    /// Mean entropy of the policy over the trained completion tokens.
    entropy,
    /// Fraction of trained tokens whose ratio was clipped.
    clip_frac,
    /// k1 estimate of KL(π_old‖π) over the trained tokens: how far the updates moved the policy.
    approx_kl,
    /// Mean KL estimate (the configured estimator) to the reference policy over the policy tokens; 0 without a
    /// reference.
    kl_ref,
}

/// One forward pass's numbers in the padded layout, with the rows they came from.
struct Batch<'a> {
    layout: Layout,
    rows: &'a [&'a Row],
    logprobs: Vec<f32>,
    entropy: Vec<f32>,
    /// Completion tokens.
    mask: Vec<bool>,
    /// Completion tokens of the rows the policy term covers.
    policy_mask: Vec<bool>,
}

impl Batch<'_> {
    /// A per-token field of every row, padded.
    fn pack(&self, field: fn(&Row) -> &[f32]) -> Result<Vec<f32>, RlError> {
        self.layout.pack(&self.rows.iter().map(|r| field(r)).collect::<Vec<_>>()).map_err(RlError::from)
    }
}

/// The loss of `rows` under `plan`, given the batch's token statistics (in `rows`' order), and its gradient with
/// respect to each row's statistics: what [`Trainer::update`] takes.
pub(crate) fn loss(rows: &[&Row], plan: &Plan, stats: &[TokenStats]) -> Result<(Terms, Vec<RowGrads>), RlError> {
    let layout = Layout::new(rows.iter().map(|r| (r.prompt_len, r.completion_len())).collect())?;
    let mask = layout.mask();
    let policy_mask: Vec<bool> = mask
        .chunks_exact(layout.shape.len.max(1))
        .zip(rows)
        .flat_map(|(m, r)| m.iter().map(move |&m| m && r.learn_policy))
        .collect();
    let batch = Batch {
        logprobs: layout.gather_predictions(stats, |s| &s.logprobs)?,
        entropy: layout.gather_predictions(stats, |s| &s.entropies)?,
        layout,
        rows,
        mask,
        policy_mask,
    };
    let mut terms = Terms { tokens: rows.iter().map(|r| r.tokens.len()).sum(), ..Terms::default() };
    let (d_logprobs, d_entropies) = if batch.policy_mask.iter().any(|&m| m) {
        let (mut d_logprobs, d_entropies) = policy_term(&batch, plan, &mut terms)?;
        kl_term(&batch, plan, &mut terms, &mut d_logprobs)?;
        (d_logprobs, d_entropies)
    } else {
        (vec![0.0; batch.layout.cells()], None)
    };
    let d_values = value_term(&batch, stats, plan, &mut terms)?;
    let row_grads =
        batch.layout.scatter(&d_logprobs, d_entropies.as_deref(), d_values.as_deref().map(|d| (d, plan.value_slot)))?;
    Ok((terms, row_grads))
}

/// The clipped surrogate or the cloning loss; returns its gradients with respect to the log-probability
/// and entropy cells.
fn policy_term(batch: &Batch<'_>, plan: &Plan, terms: &mut Terms) -> Result<(Vec<f32>, Option<Vec<f32>>), RlError> {
    let shape = batch.layout.shape;
    match &plan.objective {
        Objective::Clipped(ppo) => {
            let (old, advantages) = (batch.pack(|r| &r.old_logprobs)?, batch.pack(|r| &r.advantages)?);
            let policy = policy_loss(
                ppo,
                &PolicyBatch {
                    shape,
                    logprobs: &batch.logprobs,
                    old_logprobs: &old,
                    advantages: &advantages,
                    mask: &batch.policy_mask,
                    entropy: Some(&batch.entropy),
                },
            )?;
            (terms.loss, terms.entropy) = (policy.loss, policy.entropy);
            (terms.clip_frac, terms.approx_kl) = (policy.clip_frac, policy.approx_kl);
            Ok((policy.grad_logprobs, Some(policy.grad_entropy)))
        }
        Objective::Imitate => {
            let bc = bc_loss(shape, &batch.logprobs, &batch.policy_mask, None, plan.agg)?;
            terms.loss = bc.loss;
            terms.entropy = masked_mean(&batch.entropy, &batch.policy_mask);
            Ok((bc.grad, None))
        }
    }
}

/// Measures the KL to the reference (when the rows carry reference log-probabilities) and, when the plan
/// puts it in the loss, adds its gradient to `d_logprobs`.
fn kl_term(batch: &Batch<'_>, plan: &Plan, terms: &mut Terms, d_logprobs: &mut [f32]) -> Result<(), RlError> {
    if !batch.rows.iter().all(|r| r.ref_logprobs.is_some()) {
        return match plan.kl_coef {
            Some(_) => Err(RlError::Internal("the KL penalty needs reference log-probabilities on every row")),
            None => Ok(()),
        };
    }
    let (shape, mask) = (batch.layout.shape, &batch.policy_mask);
    let refs = batch.pack(|r| r.ref_logprobs.as_deref().unwrap_or_default())?;
    terms.kl_ref = masked_mean(&kl_per_token(shape, plan.kl_estimator, &batch.logprobs, &refs, mask)?, mask);
    if let Some(coef) = plan.kl_coef {
        let kl = KlLoss { estimator: plan.kl_estimator, k2_gradient: false, agg: plan.agg }.compute(
            shape,
            &batch.logprobs,
            &refs,
            mask,
        )?;
        terms.loss += coef * kl.loss;
        d_logprobs.iter_mut().zip(&kl.grad).for_each(|(d, k)| *d += coef * k);
    }
    Ok(())
}

/// The value head's regression on every row (clipped around the old values when the plan says so);
/// returns the weighted gradient with respect to the value cells, `None` when the value head is off.
fn value_term(
    batch: &Batch<'_>,
    stats: &[TokenStats],
    plan: &Plan,
    terms: &mut Terms,
) -> Result<Option<Vec<f32>>, RlError> {
    if plan.value_coef <= 0.0 {
        return Ok(None);
    }
    let values = batch.layout.gather_values(stats, plan.value_slot)?;
    let returns = batch.pack(|r| &r.returns)?;
    let old_values = if plan.value_clip.is_some() { batch.pack(|r| &r.old_values)? } else { values.clone() };
    let shape = batch.layout.shape;
    let value = value_loss(shape, &values, &old_values, &returns, &batch.mask, plan.value_clip, LossAgg::TokenMean)?;
    terms.value_loss = value.loss;
    Ok(Some(value.grad_values.iter().map(|g| plan.value_coef * g).collect()))
}

/// Mean of `xs` where `mask` is set (0 when nowhere).
fn masked_mean(xs: &[f32], mask: &[bool]) -> f32 {
    let (sum, n) = xs.iter().zip(mask).filter(|(_, m)| **m).fold((0.0f32, 0usize), |(s, n), (x, _)| (s + x, n + 1));
    if n == 0 { 0.0 } else { sum / n as f32 }
}

/// What the updates of one step did, averaged over its updates.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct UpdateSummary {
    pub terms: Terms,
    pub grad_norm: f32,
    /// The learning rate of the last update.
    pub lr: f32,
    /// Optimiser updates taken.
    pub updates: usize,
}

/// Trains on `rows`: `plan.epochs` passes, each shuffling the rows (when there is more than one
/// minibatch) and taking one optimiser update per minibatch. Minibatches with nothing to learn are
/// skipped.
pub(crate) fn run<B: HostAccess>(
    model: &mut Model<B>,
    optimizer: &mut ModelOptimizer,
    trainer: &mut Trainer,
    collective: &dyn Collective,
    rows: &[Row],
    plan: &Plan,
    rng: &mut ChaCha8Rng,
) -> Result<UpdateSummary, RlError> {
    let mut summary = UpdateSummary::default();
    let mut sums = Terms::default();
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let size = rows.len().div_ceil(plan.minibatches.max(1)).max(1);
    for _ in 0..plan.epochs {
        if plan.minibatches > 1 {
            shuffle(&mut order, rng);
        }
        for chunk in order.chunks(size) {
            let batch: Vec<&Row> = chunk.iter().map(|&i| &rows[i]).collect();
            if !(batch.iter().any(|r| r.learn_policy) || plan.value_coef > 0.0) {
                continue;
            }
            let tokens: Vec<&[u32]> = batch.iter().map(|r| r.tokens.as_slice()).collect();
            let (terms, update) =
                trainer.update(model, optimizer, collective, &tokens, |pass| loss(&batch, plan, pass.stats))?;
            sums.accumulate(&terms);
            summary.grad_norm += update.grad_norm;
            summary.lr = update.lr;
            summary.updates += 1;
        }
    }
    let n = summary.updates.max(1) as f32;
    summary.terms = sums.mean_over(n);
    summary.grad_norm /= n;
    Ok(summary)
}

/// Fisher–Yates with the step's generator.
fn shuffle(order: &mut [usize], rng: &mut ChaCha8Rng) {
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

/// Fills in every row's log-probabilities under `reference` (one forward pass over the rows).
pub(crate) fn attach_reference<B: HostAccess>(reference: Option<&Model<B>>, rows: &mut [Row]) -> Result<(), RlError> {
    let Some(reference) = reference else { return Ok(()) };
    if rows.is_empty() {
        return Ok(());
    }
    let layout = Layout::new(rows.iter().map(|r| (r.prompt_len, r.completion_len())).collect())?;
    let batch: Vec<&[u32]> = rows.iter().map(|r| r.tokens.as_slice()).collect();
    let stats = reference.token_logprobs(&batch)?;
    let cells = layout.gather_predictions(&stats, |s| &s.logprobs)?;
    for (row, logprobs) in rows.iter_mut().zip(layout.unpack(&cells)) {
        row.ref_logprobs = Some(logprobs);
    }
    Ok(())
}
