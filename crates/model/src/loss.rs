//! Losses written in a batch's [`TokenStats`], for [`crate::Model::backward`]: the one place their formulas
//! live, whichever training loop calls them.

use crate::error::ModelError;
use crate::token_stats::TokenStats;

/// Weighted next-token cross-entropy `L = −Σ_t w_t·log p_t / Σ_t w_t` over every sequence of a batch and its
/// gradient with respect to each sequence's log-probabilities (`−w_t / Σw`).
///
/// `loss_weights[i]` has one entry per prediction of sequence `i` (`len_i − 1`, as `stats[i].logprobs`), e.g. a
/// 0/1 mask over a completion. The sums run in f64, so the result does not depend on how the batch is split
/// into sequences.
pub fn weighted_nll(stats: &[TokenStats], loss_weights: &[&[f32]]) -> Result<(f32, Vec<Vec<f32>>), ModelError> {
    let total = check_loss_weights(stats.len(), loss_weights)?;
    let mut loss = 0.0f64;
    let mut d_logprobs = Vec::with_capacity(stats.len());
    for (i, (s, w)) in stats.iter().zip(loss_weights).enumerate() {
        if w.len() != s.logprobs.len() {
            let (expected, got) = (s.logprobs.len(), w.len());
            return Err(ModelError::LengthMismatch { what: "loss weights (len − 1)", seq: Some(i), expected, got });
        }
        loss -= s.logprobs.iter().zip(*w).map(|(&lp, &w)| f64::from(lp) * f64::from(w)).sum::<f64>();
        d_logprobs.push(w.iter().map(|&w| (-f64::from(w) / total) as f32).collect());
    }
    Ok(((loss / total) as f32, d_logprobs))
}

/// Checks that there is one weight row per sequence and that the weights are finite, non-negative and not
/// all zero; returns their sum. Cheap, so callers check before a forward pass rather than after it.
pub fn check_loss_weights(sequences: usize, loss_weights: &[&[f32]]) -> Result<f64, ModelError> {
    if loss_weights.len() != sequences {
        return Err(ModelError::length("loss weight rows", sequences, loss_weights.len()));
    }
    let total: f64 = loss_weights.iter().flat_map(|w| w.iter()).map(|&w| f64::from(w)).sum();
    if loss_weights.iter().flat_map(|w| w.iter()).any(|w| !w.is_finite() || *w < 0.0) || total <= 0.0 {
        return Err(ModelError::value("loss weights", "must be finite, non-negative and not all zero"));
    }
    Ok(total)
}
