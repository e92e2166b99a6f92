//! Policy distillation: cross-entropy between the softmax of full logits and soft target distributions, the
//! policy loss of AlphaZero (targets: the search's visit frequencies) and Gumbel MuZero (targets: the improved
//! policy `softmax(logits + σ(completed Q))`), and of distillation from a teacher's probabilities.
//!
//! For row `r` with logits `l`, target `q` and `p = softmax(l)`:
//!
//! ```text
//! CE_r   = −Σ_i q_i · log p_i                      (PyTorch's cross_entropy with probability targets)
//! loss   = (1 / rows) · Σ_r w_r · CE_r              (w_r = 1 without weights)
//! ∂loss/∂l_i = (w_r / rows) · (p_i · Σ_j q_j − q_i)
//! ```
//!
//! The loss is the mean over rows of the weighted per-row cross-entropies: weights scale rows, the divisor is
//! always the number of rows (as `(cross_entropy(l, q, reduction="none") * w).mean()` in PyTorch), so
//! weight 0 drops a row without changing the others' scale. Targets are not renormalised: a row summing to
//! `1 ± tolerance` is used as given, and the gradient above is exact for the loss returned.
//!
//! **Legal-action masks.** With [`SoftTargets::legal`], illegal actions are excluded: the softmax runs over
//! the legal logits only (as if the illegal ones were −∞), illegal logits are never read (they may hold
//! anything, −∞ included) and get gradient 0, and a target with probability on an illegal action is an error.
//! Without a mask every logit must be finite: a network that masks by writing −∞ into its logits should pass
//! the mask instead.
//!
//! ```
//! use selfplay_learn::distill::{SoftTargets, soft_cross_entropy};
//!
//! // One position, 4 actions (the last one illegal); the search visited the others 8, 24 and 0 times.
//! let visits = [8.0f32, 24.0, 0.0, 0.0];
//! let total: f32 = visits.iter().sum();
//! let targets: Vec<f32> = visits.iter().map(|v| v / total).collect();
//! let logits = [0.1f32, 0.4, -0.2, f32::NEG_INFINITY];
//! let legal = [true, true, true, false];
//! let batch = SoftTargets { rows: 1, vocab: 4, logits: &logits, targets: &targets, weights: None, legal: Some(&legal) };
//! let out = soft_cross_entropy(&batch)?;
//! assert!(out.loss > 0.0 && out.grad[1] < 0.0 && out.grad[3] == 0.0);
//! # Ok::<(), selfplay_learn::LearnError>(())
//! ```

use alloc::vec;

use crate::LossGrad;
use crate::error::{LearnError, Result};
use crate::shape::check_param;
use selfplay_tensor::Float;

/// The inputs of a soft-target cross-entropy: `rows` rows of `vocab` entries, row-major in flat slices.
#[derive(Debug, Clone, Copy)]
pub struct SoftTargets<'a, T> {
    /// Number of rows (positions, tokens).
    pub rows: usize,
    /// Entries per row (actions, vocabulary).
    pub vocab: usize,
    /// `[rows, vocab]` logits; finite wherever they are read.
    pub logits: &'a [T],
    /// `[rows, vocab]` target probabilities: finite, non-negative, each row summing to 1 within the tolerance.
    pub targets: &'a [T],
    /// Optional `[rows]` non-negative weights (`None`: every row weighs 1).
    pub weights: Option<&'a [T]>,
    /// Optional `[rows, vocab]` legal-action mask (`true` = legal); `None`: every entry is legal.
    pub legal: Option<&'a [bool]>,
}

/// Soft-target cross-entropy with a chosen tolerance on the target rows' sums.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SoftCrossEntropy {
    /// How far from 1 a target row's sum (computed in f64) may be. Visit frequencies and softmax outputs in
    /// f32 are within about `1e-6 · vocab`.
    pub sum_tolerance: f64,
}

impl Default for SoftCrossEntropy {
    /// `sum_tolerance` 1e-4.
    fn default() -> Self {
        Self { sum_tolerance: 1e-4 }
    }
}

/// [`SoftCrossEntropy::compute`] with the default tolerance (1e-4).
pub fn soft_cross_entropy<T: Float>(batch: &SoftTargets<'_, T>) -> Result<LossGrad<T>> {
    SoftCrossEntropy::default().compute(batch)
}

impl SoftCrossEntropy {
    /// The loss and its gradient with respect to the logits (`[rows, vocab]`, 0 at illegal entries); see the
    /// module documentation for the formulas. Every input is validated first: wrong lengths, non-finite
    /// numbers, negative probabilities or weights, rows not summing to 1 and targets on illegal actions are
    /// typed errors.
    pub fn compute<T: Float>(&self, batch: &SoftTargets<'_, T>) -> Result<LossGrad<T>> {
        let (rows, vocab) = (batch.rows, batch.vocab);
        check_param("sum_tolerance", self.sum_tolerance, 0.0)?;
        self.validate(batch)?;
        let legal = |i: usize| batch.legal.is_none_or(|m| m[i]);
        let scale = T::ONE / T::from_usize(rows);
        let mut grad = vec![T::ZERO; rows * vocab];
        let mut total = T::ZERO;
        for r in 0..rows {
            let span = r * vocab..(r + 1) * vocab;
            let (l, q, g) = (&batch.logits[span.clone()], &batch.targets[span.clone()], &mut grad[span.clone()]);
            let w = batch.weights.map_or(T::ONE, |ws| ws[r]);
            let mut max = T::NEG_INFINITY;
            for (i, &x) in l.iter().enumerate() {
                if legal(span.start + i) {
                    max = max.max(x);
                }
            }
            // g holds exp(l - max) for now; illegal entries stay 0.
            let mut sum_exp = T::ZERO;
            for (i, (&x, e)) in l.iter().zip(g.iter_mut()).enumerate() {
                if legal(span.start + i) {
                    *e = (x - max).exp_portable();
                    sum_exp += *e;
                }
            }
            let lse = max + sum_exp.ln_portable();
            let mut mass = T::ZERO;
            let mut ce = T::ZERO;
            for (i, (&x, &p)) in l.iter().zip(q).enumerate() {
                if legal(span.start + i) {
                    mass += p;
                    ce += p * (lse - x);
                }
            }
            total += w * ce;
            let c = w * scale;
            for (e, &p) in g.iter_mut().zip(q) {
                *e = c * (*e / sum_exp * mass - p);
            }
        }
        Ok(LossGrad { loss: total * scale, grad })
    }

    fn validate<T: Float>(&self, batch: &SoftTargets<'_, T>) -> Result<()> {
        let (rows, vocab) = (batch.rows, batch.vocab);
        if rows == 0 {
            return Err(LearnError::Empty { name: "rows" });
        }
        if vocab == 0 {
            return Err(LearnError::Empty { name: "vocab" });
        }
        let n = rows
            .checked_mul(vocab)
            .ok_or(LearnError::InvalidConfig { name: "shape", reason: "rows * vocab overflows" })?;
        let len = |name, got: usize, expected| {
            if got == expected { Ok(()) } else { Err(LearnError::LengthMismatch { name, expected, got }) }
        };
        len("logits", batch.logits.len(), n)?;
        len("targets", batch.targets.len(), n)?;
        if let Some(m) = batch.legal {
            len("legal", m.len(), n)?;
        }
        let legal = |i: usize| batch.legal.is_none_or(|m| m[i]);
        if let Some(index) = (0..n).find(|&i| legal(i) && !batch.logits[i].is_finite()) {
            return Err(LearnError::NonFinite { name: "logits", index });
        }
        if let Some(ws) = batch.weights {
            len("weights", ws.len(), rows)?;
            check_non_negative("weights", ws)?;
        }
        check_non_negative("targets", batch.targets)?;
        for (row, q) in batch.targets.chunks_exact(vocab).enumerate() {
            if let Some(i) = (0..vocab).find(|&i| !legal(row * vocab + i) && q[i] != T::ZERO) {
                return Err(LearnError::IllegalTarget { row, index: row * vocab + i });
            }
            // Finite non-negative entries: the sum is finite or +inf, never NaN.
            let sum: f64 = q.iter().map(|p| p.to_f64()).sum();
            if (sum - 1.0).abs() > self.sum_tolerance {
                return Err(LearnError::NotADistribution { name: "targets", row, sum, tolerance: self.sum_tolerance });
            }
        }
        Ok(())
    }
}

/// Checks every element is finite and non-negative.
fn check_non_negative<T: Float>(name: &'static str, xs: &[T]) -> Result<()> {
    crate::shape::check_finite(name, xs)?;
    match xs.iter().position(|&x| x < T::ZERO) {
        Some(index) => Err(LearnError::Negative { name, index }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch<'a>(logits: &'a [f64], targets: &'a [f64], vocab: usize) -> SoftTargets<'a, f64> {
        SoftTargets { rows: logits.len() / vocab, vocab, logits, targets, weights: None, legal: None }
    }

    #[test]
    fn one_hot_targets_give_the_hard_cross_entropy() {
        let logits = [1.0, 2.0, 0.5];
        let out = soft_cross_entropy(&batch(&logits, &[0.0, 1.0, 0.0], 3)).unwrap();
        let lse = (1.0f64.exp() + 2.0f64.exp() + 0.5f64.exp()).ln();
        assert!((out.loss - (lse - 2.0)).abs() < 1e-12);
        let p: Vec<f64> = logits.iter().map(|l| (l - lse).exp()).collect();
        for (i, (&g, &p)) in out.grad.iter().zip(&p).enumerate() {
            let want = if i == 1 { p - 1.0 } else { p };
            assert!((g - want).abs() < 1e-12);
        }
    }

    #[test]
    fn the_minimum_is_the_target_entropy_at_matching_logits() {
        let q = [0.2, 0.5, 0.3];
        let logits: Vec<f64> = q.iter().map(|p: &f64| p.ln() + 4.0).collect();
        let out = soft_cross_entropy(&batch(&logits, &q, 3)).unwrap();
        let entropy: f64 = -q.iter().map(|p| p * p.ln()).sum::<f64>();
        assert!((out.loss - entropy).abs() < 1e-12);
        assert!(out.grad.iter().all(|g| g.abs() < 1e-12), "{:?}", out.grad);
    }

    #[test]
    fn a_mask_is_the_same_as_dropping_the_illegal_columns() {
        let logits = [0.3, -1.0, 2.0, 0.7, 5.0, 1.1];
        let q = [0.25, 0.0, 0.75, 0.5, 0.0, 0.5];
        let legal = [true, false, true, true, false, true];
        let masked = soft_cross_entropy(&SoftTargets { legal: Some(&legal), ..batch(&logits, &q, 3) }).unwrap();
        let kept = |xs: &[f64]| -> Vec<f64> { xs.iter().zip(&legal).filter(|(_, l)| **l).map(|(x, _)| *x).collect() };
        let dense = soft_cross_entropy(&batch(&kept(&logits), &kept(&q), 2)).unwrap();
        assert!((masked.loss - dense.loss).abs() < 1e-12);
        assert_eq!((masked.grad[1], masked.grad[4]), (0.0, 0.0));
        for (a, b) in kept(&masked.grad).iter().zip(&dense.grad) {
            assert!((a - b).abs() < 1e-12);
        }
        // Illegal logits are never read: -inf or NaN there changes nothing.
        let mut wild = logits;
        wild[1] = f64::NEG_INFINITY;
        wild[4] = f64::NAN;
        let again = soft_cross_entropy(&SoftTargets { legal: Some(&legal), ..batch(&wild, &q, 3) }).unwrap();
        assert_eq!(again, masked);
    }
}
