//! Supervised losses on chosen-token log-probabilities: cross-entropy / behaviour cloning with per-token
//! weights (SFT on traces, expert iteration on verified search results, reward-weighted regression).

use alloc::vec::Vec;

use crate::LossGrad;
use crate::agg::{LossAgg, weighted_sum};
use crate::error::Result;
use crate::shape::SeqShape;
use selfplay_tensor::Float;

/// `agg(−weight_t · log π(y_t))` and its gradient with respect to `logprobs`.
///
/// The weights scale each token's loss; the aggregation still counts unmasked tokens (so token-mean with
/// weights `w` is `Σ −w log π / #tokens`). `None` means weight 1: plain cross-entropy, PyTorch's
/// `cross_entropy(reduction="mean")` over unmasked tokens with [`LossAgg::TokenMean`].
pub fn bc_loss<T: Float>(
    shape: SeqShape,
    logprobs: &[T],
    mask: &[bool],
    weights: Option<&[T]>,
    agg: LossAgg,
) -> Result<LossGrad<T>> {
    shape.check("logprobs", logprobs)?;
    if let Some(weights) = weights {
        shape.check("weights", weights)?;
    }
    let w = agg.weights::<T>(shape, mask)?;
    let token_weight = |t: usize| weights.and_then(|ws| ws.get(t).copied()).unwrap_or(T::ONE);
    let losses: Vec<T> = logprobs.iter().enumerate().map(|(t, &lp)| -token_weight(t) * lp).collect();
    let grad = w.iter().enumerate().map(|(t, &w)| -w * token_weight(t)).collect();
    Ok(LossGrad { loss: weighted_sum(&w, &losses), grad })
}
