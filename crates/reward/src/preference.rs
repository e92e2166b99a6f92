//! Bradley-Terry preference loss for training a scalar reward (or value) model from ranked pairs.
//!
//! The model `P(chosen ≻ rejected) = σ(s_c − s_r)` is fitted by minimising the mean of
//! `−log σ(s_c − s_r) = softplus(s_r − s_c)` over pairs. The gradient goes back to the scores, and from
//! there into whatever head produced them (the model crate's value head).

use alloc::vec::Vec;

use crate::error::{RewardError, check_len};

/// Loss and gradients for a batch of preference pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct PairLoss {
    /// Mean over pairs of `−log σ(s_c − s_r)`.
    pub loss: f32,
    /// ∂loss/∂s_c for each pair (≤ 0: raising a chosen score lowers the loss).
    pub grad_chosen: Vec<f32>,
    /// ∂loss/∂s_r for each pair (= −grad_chosen).
    pub grad_rejected: Vec<f32>,
    /// Fraction of pairs already ranked correctly (`s_c > s_r`), for monitoring.
    pub accuracy: f32,
}

/// Bradley-Terry loss of `chosen[i]` being preferred to `rejected[i]`, averaged over pairs.
///
/// Computed in f64 with a stable softplus, so huge score gaps neither overflow nor lose the gradient's
/// sign. An empty batch has loss 0. Non-finite scores are an error rather than a NaN loss.
pub fn bradley_terry_loss(chosen: &[f32], rejected: &[f32]) -> Result<PairLoss, RewardError> {
    check_len("rejected scores", chosen.len(), rejected.len())?;
    if chosen.iter().chain(rejected).any(|s| !s.is_finite()) {
        return Err(RewardError::NonFinite("preference scores"));
    }
    let n = chosen.len().max(1) as f64;
    let mut loss = 0.0f64;
    let mut correct = 0usize;
    let mut grad_chosen = Vec::with_capacity(chosen.len());
    for (&c, &r) in chosen.iter().zip(rejected) {
        let margin = f64::from(c) - f64::from(r);
        let (term, slope) = pair_term(margin);
        loss += term;
        correct += usize::from(margin > 0.0);
        grad_chosen.push((slope / n) as f32);
    }
    let grad_rejected = grad_chosen.iter().map(|g| -g).collect();
    Ok(PairLoss { loss: (loss / n) as f32, grad_chosen, grad_rejected, accuracy: (correct as f64 / n) as f32 })
}

/// `(−log σ(m), d/dm of it)` = `(softplus(−m), −σ(−m))`, stable for any finite `m`.
fn pair_term(margin: f64) -> (f64, f64) {
    let x = -margin;
    let softplus = x.max(0.0) + libm::log1p(libm::exp(-x.abs()));
    // σ(x) without overflow: for x ≥ 0 use 1/(1+e^−x), else e^x/(1+e^x).
    let sigmoid = if x >= 0.0 { 1.0 / (1.0 + libm::exp(-x)) } else { libm::exp(x) / (1.0 + libm::exp(x)) };
    (softplus, -sigmoid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_term_matches_finite_differences_in_f64() {
        for m in [-30.0, -3.0, -0.5, 0.0, 0.25, 2.0, 30.0] {
            let h = 1e-5;
            let fd = (pair_term(m + h).0 - pair_term(m - h).0) / (2.0 * h);
            let (_, slope) = pair_term(m);
            assert!((fd - slope).abs() < 1e-8, "m={m}: fd {fd} vs {slope}");
        }
        // Closed forms: −log σ(0) = ln 2; slope −1/2.
        assert_eq!(pair_term(0.0), (core::f64::consts::LN_2, -0.5));
        // Stability far out: loss ≈ −m for very negative m, ≈ e^{−m} for very positive m.
        assert_eq!(pair_term(-1000.0).0, 1000.0);
        assert!(pair_term(1000.0).0 >= 0.0 && pair_term(1000.0).0 < 1e-300);
    }

    #[test]
    fn batch_gradient_matches_finite_differences() {
        // Dyadic scores and step: the perturbed inputs are exact in f32.
        let chosen = [0.5f32, -1.25, 2.0];
        let rejected = [0.25f32, 0.75, -3.0];
        let out = bradley_terry_loss(&chosen, &rejected).unwrap();
        let h = 1.0 / 256.0;
        for i in 0..3 {
            let mut plus = chosen;
            let mut minus = chosen;
            plus[i] += h;
            minus[i] -= h;
            let fd = (bradley_terry_loss(&plus, &rejected).unwrap().loss
                - bradley_terry_loss(&minus, &rejected).unwrap().loss)
                / (2.0 * h);
            assert!((fd - out.grad_chosen[i]).abs() < 2e-4, "pair {i}: fd {fd} vs {}", out.grad_chosen[i]);
            assert_eq!(out.grad_rejected[i], -out.grad_chosen[i]);
        }
        assert_eq!(out.accuracy, 2.0 / 3.0);
        let expected = (pair_term(0.25).0 + pair_term(-2.0).0 + pair_term(5.0).0) / 3.0;
        assert!((f64::from(out.loss) - expected).abs() < 1e-6);
    }

    #[test]
    fn bad_batches_are_errors() {
        assert!(matches!(bradley_terry_loss(&[1.0], &[]), Err(RewardError::LengthMismatch { .. })));
        assert_eq!(bradley_terry_loss(&[f32::NAN], &[0.0]), Err(RewardError::NonFinite("preference scores")));
        let empty = bradley_terry_loss(&[], &[]).unwrap();
        assert_eq!((empty.loss, empty.grad_chosen.len()), (0.0, 0));
    }
}
