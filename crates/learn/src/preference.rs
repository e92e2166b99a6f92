//! Preference losses on sequence log-probabilities of a policy and a frozen reference: DPO (sigmoid, with
//! optional label smoothing, i.e. cDPO) and IPO, as TRL's `DPOTrainer.dpo_loss` (checked by fixture).

use alloc::vec::Vec;

use crate::error::{LearnError, Result};
use crate::shape::{check_param, check_seq};
use selfplay_tensor::Float;

/// Which preference objective, over the margin `z = (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PreferenceLoss {
    /// DPO: `−(1−ε) log σ(βz) − ε log σ(−βz)` (Rafailov et al. 2023; ε > 0 is conservative DPO).
    Sigmoid {
        /// Inverse temperature β > 0.
        beta: f64,
        /// Probability ε in `[0, 0.5)` that a label is flipped.
        label_smoothing: f64,
    },
    /// Robust DPO (Chowdhury et al. 2024, TRL "robust"): `((1−ε)·(−log σ(βz)) − ε·(−log σ(−βz))) / (1 − 2ε)`,
    /// unbiased under label noise of rate ε.
    Robust {
        /// Inverse temperature β > 0.
        beta: f64,
        /// Label-flip rate ε in `[0, 0.5)`.
        label_smoothing: f64,
    },
    /// IPO: `(z − 1/(2β))²` (Azar et al. 2023). TRL feeds IPO per-token *mean* log-probabilities; pass those.
    Ipo {
        /// Regularisation β > 0.
        beta: f64,
    },
}

/// Sequence log-probabilities of each preference pair (sums over completion tokens, or means for IPO).
#[derive(Debug, Clone, Copy)]
pub struct PreferenceBatch<'a, T> {
    /// Policy log-probability of each chosen completion (carries gradient).
    pub chosen: &'a [T],
    /// Policy log-probability of each rejected completion (carries gradient).
    pub rejected: &'a [T],
    /// Reference log-probability of each chosen completion.
    pub ref_chosen: &'a [T],
    /// Reference log-probability of each rejected completion.
    pub ref_rejected: &'a [T],
}

/// Mean loss over pairs, its gradients, and TRL's reward diagnostics.
#[derive(Debug, Clone, PartialEq)]
pub struct PreferenceOutput<T> {
    /// Mean loss over pairs.
    pub loss: T,
    /// ∂loss/∂chosen.
    pub grad_chosen: Vec<T>,
    /// ∂loss/∂rejected.
    pub grad_rejected: Vec<T>,
    /// Implicit reward of each chosen completion, `β(log π − log π_ref)`.
    pub chosen_rewards: Vec<T>,
    /// Implicit reward of each rejected completion.
    pub rejected_rewards: Vec<T>,
    /// Fraction of pairs whose chosen reward exceeds the rejected one.
    pub accuracy: T,
}

impl PreferenceLoss {
    fn validate(&self) -> Result<()> {
        match *self {
            PreferenceLoss::Sigmoid { beta, label_smoothing } | PreferenceLoss::Robust { beta, label_smoothing } => {
                check_param("beta", beta, f64::MIN_POSITIVE)?;
                if !(0.0..0.5).contains(&label_smoothing) {
                    return Err(LearnError::InvalidConfig { name: "label_smoothing", reason: "must be in [0, 0.5)" });
                }
                Ok(())
            }
            PreferenceLoss::Ipo { beta } => check_param("beta", beta, f64::MIN_POSITIVE),
        }
    }

    fn beta(&self) -> f64 {
        match *self {
            PreferenceLoss::Sigmoid { beta, .. }
            | PreferenceLoss::Robust { beta, .. }
            | PreferenceLoss::Ipo { beta } => beta,
        }
    }

    /// Loss and derivative with respect to the margin `z` for one pair.
    fn pair<T: Float>(&self, z: T) -> (T, T) {
        match *self {
            PreferenceLoss::Sigmoid { beta, label_smoothing } => {
                let (b, eps) = (T::from_f64(beta), T::from_f64(label_smoothing));
                let x = b * z;
                let loss = -(T::ONE - eps) * x.log_sigmoid() - eps * (-x).log_sigmoid();
                // d/dx log σ(x) = σ(−x).
                let grad = b * (-(T::ONE - eps) * (-x).sigmoid() + eps * x.sigmoid());
                (loss, grad)
            }
            PreferenceLoss::Robust { beta, label_smoothing } => {
                let (b, eps) = (T::from_f64(beta), T::from_f64(label_smoothing));
                let x = b * z;
                let norm = T::ONE / (T::ONE - T::from_f64(2.0) * eps);
                let loss = norm * (-(T::ONE - eps) * x.log_sigmoid() + eps * (-x).log_sigmoid());
                let grad = norm * b * (-(T::ONE - eps) * (-x).sigmoid() - eps * x.sigmoid());
                (loss, grad)
            }
            PreferenceLoss::Ipo { beta } => {
                let target = T::from_f64(1.0 / (2.0 * beta));
                ((z - target) * (z - target), T::from_f64(2.0) * (z - target))
            }
        }
    }

    /// The mean loss over the pairs of `batch`.
    pub fn compute<T: Float>(&self, batch: &PreferenceBatch<'_, T>) -> Result<PreferenceOutput<T>> {
        self.validate()?;
        let n = batch.chosen.len();
        if n == 0 {
            return Err(LearnError::Empty { name: "chosen" });
        }
        check_seq("chosen", batch.chosen, n)?;
        check_seq("rejected", batch.rejected, n)?;
        check_seq("ref_chosen", batch.ref_chosen, n)?;
        check_seq("ref_rejected", batch.ref_rejected, n)?;
        let beta = T::from_f64(self.beta());
        let inv_n = T::ONE / T::from_usize(n);
        let mut out = PreferenceOutput {
            loss: T::ZERO,
            grad_chosen: Vec::with_capacity(n),
            grad_rejected: Vec::with_capacity(n),
            chosen_rewards: Vec::with_capacity(n),
            rejected_rewards: Vec::with_capacity(n),
            accuracy: T::ZERO,
        };
        for i in 0..n {
            let chosen_ratio = batch.chosen[i] - batch.ref_chosen[i];
            let rejected_ratio = batch.rejected[i] - batch.ref_rejected[i];
            let (loss, dz) = self.pair(chosen_ratio - rejected_ratio);
            out.loss += loss * inv_n;
            out.grad_chosen.push(dz * inv_n);
            out.grad_rejected.push(-dz * inv_n);
            out.chosen_rewards.push(beta * chosen_ratio);
            out.rejected_rewards.push(beta * rejected_ratio);
            if chosen_ratio > rejected_ratio {
                out.accuracy += inv_n;
            }
        }
        Ok(out)
    }
}
