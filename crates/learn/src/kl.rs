//! KL divergence to a reference policy from sampled tokens only (Schulman's k1/k2/k3 estimators), usable as a
//! reward penalty or as a loss with gradients. Same formulas and clamps as verl's `kl_penalty`.

use alloc::vec::Vec;

use crate::LossGrad;
use crate::agg::{LossAgg, weighted_sum};
use crate::error::Result;
use crate::shape::{SeqShape, check_param};
use selfplay_tensor::Float;

/// Estimator of KL(π‖π_ref) from one sample, with `d = log π − log π_ref`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(rename_all = "snake_case"))]
pub enum KlEstimator {
    /// `d`: unbiased, high variance, can be negative (verl "kl"/"k1").
    K1,
    /// `|d|` (verl "abs").
    Abs,
    /// `d²/2`: biased, low variance; its gradient is the true KL gradient's estimator (verl "mse"/"k2").
    K2,
    /// `e^{−d} + d − 1`: unbiased and non-negative (verl "low_var_kl"/"k3"); `−d` is clamped to ±20 and the
    /// result to [−10, 10] for stability, as verl does (the gradient is 0 where a clamp is active).
    K3,
}

impl KlEstimator {
    /// The estimate for one token and its derivative with respect to `log π`.
    pub fn value_and_grad<T: Float>(self, logprob: T, ref_logprob: T) -> (T, T) {
        let d = logprob - ref_logprob;
        match self {
            KlEstimator::K1 => (d, T::ONE),
            KlEstimator::Abs => {
                let sign = if d > T::ZERO {
                    T::ONE
                } else if d < T::ZERO {
                    -T::ONE
                } else {
                    T::ZERO
                };
                (d.abs(), sign)
            }
            KlEstimator::K2 => (T::from_f64(0.5) * d * d, d),
            KlEstimator::K3 => {
                let lim = T::from_f64(20.0);
                let neg_d = -d;
                let kl = neg_d.clamp(-lim, lim);
                let ratio = kl.exp_portable();
                let raw = ratio - kl - T::ONE;
                let ten = T::from_f64(10.0);
                let value = raw.clamp(-ten, ten);
                let inside = neg_d >= -lim && neg_d <= lim && raw >= -ten && raw <= ten;
                (value, if inside { T::ONE - ratio } else { T::ZERO })
            }
        }
    }
}

impl core::str::FromStr for KlEstimator {
    type Err = crate::LearnError;

    /// Parses verl's names: `k1`/`kl`, `abs`, `k2`/`mse`, `k3`/`low_var_kl`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "k1" | "kl" => Ok(KlEstimator::K1),
            "abs" => Ok(KlEstimator::Abs),
            "k2" | "mse" => Ok(KlEstimator::K2),
            "k3" | "low_var_kl" => Ok(KlEstimator::K3),
            _ => Err(crate::LearnError::InvalidConfig { name: "kl_estimator", reason: "unknown KL estimator" }),
        }
    }
}

/// Per-token KL estimates (0 at masked slots), e.g. to subtract `β·kl` from token rewards.
pub fn kl_per_token<T: Float>(
    shape: SeqShape,
    estimator: KlEstimator,
    logprobs: &[T],
    ref_logprobs: &[T],
    mask: &[bool],
) -> Result<Vec<T>> {
    shape.check("logprobs", logprobs)?;
    shape.check("ref_logprobs", ref_logprobs)?;
    shape.check_len("mask", mask)?;
    Ok(logprobs
        .iter()
        .zip(ref_logprobs)
        .zip(mask)
        .map(|((&lp, &r), &m)| if m { estimator.value_and_grad(lp, r).0 } else { T::ZERO })
        .collect())
}

/// Token rewards with a KL penalty: `scores − β·kl` at unmasked slots, as verl's `apply_kl_penalty`.
pub fn penalize_rewards<T: Float>(scores: &[T], kl: &[T], beta: f64) -> Result<Vec<T>> {
    if kl.len() != scores.len() {
        return Err(crate::LearnError::LengthMismatch { name: "kl", expected: scores.len(), got: kl.len() });
    }
    check_param("beta", beta, 0.0)?;
    let beta = T::from_f64(beta);
    Ok(scores.iter().zip(kl).map(|(&s, &k)| s - beta * k).collect())
}

/// KL as a loss term (GRPO's `β·KL` in the objective), aggregated like the policy loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KlLoss {
    /// The estimator whose value is reported.
    pub estimator: KlEstimator,
    /// Use the k2 gradient `d` whatever the estimator (verl's "k3+" straight-through trick): k1's and k3's
    /// expected gradients are not the KL's, k2's is.
    pub k2_gradient: bool,
    /// How token terms are averaged.
    pub agg: LossAgg,
}

impl KlLoss {
    /// The aggregated KL and its gradient with respect to `logprobs` (0 at masked slots).
    pub fn compute<T: Float>(
        &self,
        shape: SeqShape,
        logprobs: &[T],
        ref_logprobs: &[T],
        mask: &[bool],
    ) -> Result<LossGrad<T>> {
        shape.check("logprobs", logprobs)?;
        shape.check("ref_logprobs", ref_logprobs)?;
        let w = self.agg.weights::<T>(shape, mask)?;
        let mut values = Vec::with_capacity(logprobs.len());
        let mut grad = Vec::with_capacity(logprobs.len());
        for ((&lp, &r), &w) in logprobs.iter().zip(ref_logprobs).zip(&w) {
            let (v, g) = self.estimator.value_and_grad(lp, r);
            let g = if self.k2_gradient { lp - r } else { g };
            values.push(v);
            grad.push(w * g);
        }
        Ok(LossGrad { loss: weighted_sum(&w, &values), grad })
    }
}

/// The adaptive KL coefficient of Ziegler et al. 2019 (verl's `AdaptiveKLController`): after each batch,
/// `β ← β · (1 + clip(KL/target − 1, ±0.2) · n_steps / horizon)`, steering the measured KL to `target`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdaptiveKl {
    /// The current coefficient β.
    pub value: f64,
    /// The KL per token aimed for.
    pub target: f64,
    /// Steps over which a 20% proportional error is corrected.
    pub horizon: f64,
}

impl AdaptiveKl {
    /// Starts at `init` aiming for `target` KL.
    pub fn new(init: f64, target: f64, horizon: f64) -> Result<Self> {
        check_param("init", init, 0.0)?;
        check_param("target", target, f64::MIN_POSITIVE)?;
        check_param("horizon", horizon, f64::MIN_POSITIVE)?;
        Ok(Self { value: init, target, horizon })
    }

    /// Adjusts β after `n_steps` samples measured `current_kl`; a NaN KL is an error and changes nothing.
    pub fn update(&mut self, current_kl: f64, n_steps: u64) -> Result<f64> {
        if !current_kl.is_finite() {
            return Err(crate::LearnError::NonFinite { name: "current_kl", index: 0 });
        }
        let error = (current_kl / self.target - 1.0).clamp(-0.2, 0.2);
        self.value *= 1.0 + error * n_steps as f64 / self.horizon;
        Ok(self.value)
    }
}
