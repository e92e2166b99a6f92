//! AlphaZero's loss: cross-entropy of the network's policy (the action tokens' logits where the [`TokenLayout`]
//! reads them, illegal actions masked) to the search's improved policy, plus the value head's squared error to the game's
//! result, over a batch of replayed positions.

use selfplay_learn::distill::{SoftTargets, soft_cross_entropy};
use selfplay_model::{HostAccess, ModelError};
use selfplay_search::Game;
use serde::{Deserialize, Serialize};

use super::error::AlphaZeroError;
use super::net::TokenLayout;
use super::replay::Sample;
use crate::train::{PassView, RowGrads};

/// The loss of one batch, by term.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct AlphaZeroLoss {
    /// Mean cross-entropy to the policy targets, over the positions that have one.
    pub policy_loss: f32,
    /// `½ · mean (v − z)²` over every position.
    pub value_loss: f32,
    /// Positions with a policy target.
    pub policy_targets: usize,
}

/// The loss of `batch` (the sequences the pass ran, in order) and its gradient with respect to each sequence's
/// logits and values: policy cross-entropy over the positions with a target (weighted so that its mean runs
/// over them alone) plus `value_coef` times the value loss. The pass's trainer must keep the layout's
/// [`TokenLayout::read_positions`] trailing positions ([`crate::train::Trainer::keeping_tail`]).
pub fn loss<G: Game, B: HostAccess>(
    batch: &[&Sample],
    pass: &PassView<'_, B>,
    layout: TokenLayout,
    vocab: usize,
    value_coef: f32,
) -> Result<(AlphaZeroLoss, Vec<RowGrads>), AlphaZeroError> {
    let (rows, a, len) = (batch.len(), G::NUM_ACTIONS, layout.sequence_len::<G>());
    let read_from = len - layout.read_positions::<G>();
    // Where action `k`'s logit sits in a sequence's `[len, vocab]` logits.
    let at = |k: usize| read_from * vocab + layout.policy_logit::<G>(k, vocab);
    let mut logits = Vec::with_capacity(rows * a);
    let (mut targets, mut legal, mut weights) =
        (Vec::with_capacity(rows * a), Vec::with_capacity(rows * a), Vec::new());
    let with_policy = batch.iter().filter(|s| s.policy.is_some()).count();
    for (i, sample) in batch.iter().enumerate() {
        let tail = pass.tail_logits(i)?;
        if tail.len() != (len - read_from) * vocab {
            return Err(AlphaZeroError::Model(ModelError::LengthMismatch {
                what: "trailing logits the trainer keeps (positions × vocabulary)",
                seq: Some(i),
                expected: (len - read_from) * vocab,
                got: tail.len(),
            }));
        }
        logits.extend((0..a).map(|k| tail[layout.policy_logit::<G>(k, vocab)]));
        legal.extend_from_slice(&sample.legal);
        match &sample.policy {
            Some(p) => {
                targets.extend_from_slice(p);
                // The loss divides by every row; rescaling makes it the mean over rows with a target.
                weights.push(rows as f32 / with_policy.max(1) as f32);
            }
            None => {
                // Any valid distribution: its row weighs nothing.
                let n = sample.legal.iter().filter(|&&l| l).count().max(1) as f32;
                targets.extend(sample.legal.iter().map(|&l| if l { 1.0 / n } else { 0.0 }));
                weights.push(0.0);
            }
        }
    }
    let policy = soft_cross_entropy(&SoftTargets {
        rows,
        vocab: a,
        logits: &logits,
        targets: &targets,
        weights: Some(&weights),
        legal: Some(&legal),
    })?;
    let mut value_loss = 0.0f32;
    let mut grads = Vec::with_capacity(rows);
    for (i, sample) in batch.iter().enumerate() {
        let v = pass.stats[i].values[len - 1];
        let error = v - sample.value;
        value_loss += 0.5 * error * error / rows as f32;
        let mut d_logits = vec![0.0; len * vocab];
        for (k, &g) in policy.grad[i * a..(i + 1) * a].iter().enumerate() {
            d_logits[at(k)] = g;
        }
        let mut d_values = vec![0.0; len];
        d_values[len - 1] = value_coef * error / rows as f32;
        grads.push(RowGrads::logits_and_values(len, d_logits, d_values));
    }
    let terms = AlphaZeroLoss { policy_loss: policy.loss, value_loss, policy_targets: with_policy };
    Ok((terms, grads))
}
