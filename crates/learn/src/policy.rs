//! The clipped policy-gradient loss of PPO and its descendants: separate low/high clip ranges (DAPO
//! clip-higher), dual clip for negative advantages, token-level (PPO) or sequence-level (GSPO) importance
//! ratios, any [`LossAgg`] mode, and an entropy bonus. Same formulas as verl's `compute_policy_loss_vanilla`
//! and `compute_policy_loss_gspo` (checked by fixture).

use alloc::vec::Vec;

use crate::agg::{LossAgg, masked_mean, weighted_sum};
use crate::error::{LearnError, Result};
use crate::shape::{SeqShape, check_param};
use selfplay_tensor::Float;

/// Whose probability ratio is clipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatioLevel {
    /// Per token: `r_t = π(y_t)/π_old(y_t)` (PPO, GRPO, DAPO). The log-ratio is clamped to ±20 as in verl.
    Token,
    /// Per sequence: `s_i = exp(mean_t log r_t)` (GSPO), shared by the sequence's tokens, which each receive
    /// gradient `s_i·∂log π(y_t)` (GSPO-token; equal to GSPO's when advantages are constant over a sequence).
    /// The log-ratio is clamped above at 10 as in verl.
    Sequence,
}

/// Hyper-parameters of the clipped policy loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PpoConfig {
    /// Ratios below `1 − clip_low` are clipped (in `[0, 1)`).
    pub clip_low: f64,
    /// Ratios above `1 + clip_high` are clipped (DAPO raises this to 0.28).
    pub clip_high: f64,
    /// Dual clip (Ye et al. 2020): with a negative advantage the loss is at most `−A·c`, `c > 1`
    /// (verl's `clip_ratio_c`, default there 3).
    pub dual_clip: Option<f64>,
    /// Token or sequence ratios.
    pub ratio: RatioLevel,
    /// How token losses are averaged.
    pub agg: LossAgg,
    /// Weight of the entropy bonus (the loss subtracts `entropy_coef · agg(entropy)`).
    pub entropy_coef: f64,
}

impl Default for PpoConfig {
    /// PPO's symmetric 0.2 clip, token ratios, token-mean, no dual clip, no entropy bonus.
    fn default() -> Self {
        Self {
            clip_low: 0.2,
            clip_high: 0.2,
            dual_clip: None,
            ratio: RatioLevel::Token,
            agg: LossAgg::TokenMean,
            entropy_coef: 0.0,
        }
    }
}

impl PpoConfig {
    /// Rejects ranges that make the objective meaningless.
    pub fn validate(&self) -> Result<()> {
        check_param("clip_low", self.clip_low, 0.0)?;
        if self.clip_low >= 1.0 {
            return Err(LearnError::InvalidConfig { name: "clip_low", reason: "must be below 1" });
        }
        check_param("clip_high", self.clip_high, 0.0)?;
        if let Some(c) = self.dual_clip
            && !(c > 1.0 && c.is_finite())
        {
            return Err(LearnError::InvalidConfig { name: "dual_clip", reason: "must be finite and > 1" });
        }
        check_param("entropy_coef", self.entropy_coef, f64::NEG_INFINITY)
    }
}

/// The inputs of the policy loss, all `[batch, len]`.
#[derive(Debug, Clone, Copy)]
pub struct PolicyBatch<'a, T> {
    /// The layout.
    pub shape: SeqShape,
    /// Chosen-token log-probabilities under the current policy (carry gradient).
    pub logprobs: &'a [T],
    /// Chosen-token log-probabilities under the policy that sampled them.
    pub old_logprobs: &'a [T],
    /// Advantage per token.
    pub advantages: &'a [T],
    /// Tokens that count.
    pub mask: &'a [bool],
    /// Per-token entropy of the current policy (carries gradient); required when `entropy_coef != 0`.
    pub entropy: Option<&'a [T]>,
}

/// Loss, gradients and diagnostics of the policy loss.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyLoss<T> {
    /// `pg_loss − entropy_coef · entropy`: what to minimise.
    pub loss: T,
    /// The clipped surrogate alone.
    pub pg_loss: T,
    /// The aggregated entropy (0 without entropy input).
    pub entropy: T,
    /// ∂loss/∂logprobs.
    pub grad_logprobs: Vec<T>,
    /// ∂loss/∂entropy (empty without entropy input).
    pub grad_entropy: Vec<T>,
    /// Fraction of unmasked tokens where the clipped term is active (verl `pg_clipfrac`).
    pub clip_frac: T,
    /// Fraction of unmasked tokens where the dual clip is active (verl `pg_clipfrac_lower`).
    pub clip_frac_lower: T,
    /// Mean of `log π_old − log π` over unmasked tokens: the k1 estimate of KL(π_old‖π) (verl `ppo_kl`).
    pub approx_kl: T,
}

/// The clipped surrogate loss, its gradient and diagnostics.
pub fn policy_loss<T: Float>(config: &PpoConfig, batch: &PolicyBatch<'_, T>) -> Result<PolicyLoss<T>> {
    config.validate()?;
    let shape = batch.shape;
    shape.check("logprobs", batch.logprobs)?;
    shape.check("old_logprobs", batch.old_logprobs)?;
    shape.check("advantages", batch.advantages)?;
    let w = config.agg.weights::<T>(shape, batch.mask)?;
    let log_ratios = log_ratios(config.ratio, shape, batch);

    let clip = Clip {
        lo: T::from_f64(1.0 - config.clip_low),
        hi: T::from_f64(1.0 + config.clip_high),
        dual: config.dual_clip.map(T::from_f64),
    };
    let tokens: Vec<TokenTerm<T>> = batch
        .advantages
        .iter()
        .zip(&log_ratios)
        .map(|(&a, &(log_ratio, passes))| clip.term(a, log_ratio, passes))
        .collect();
    let losses: Vec<T> = tokens.iter().map(|t| t.loss).collect();
    let grad = tokens.iter().zip(&w).map(|(t, &w)| w * t.dloss).collect();
    let flag = |f: bool| if f { T::ONE } else { T::ZERO };
    let pg_loss = weighted_sum(&w, &losses);
    let mask = batch.mask;
    let approx_kl = masked_mean(
        batch.logprobs.iter().zip(batch.old_logprobs).zip(&log_ratios).map(|((&lp, &old), lr)| match config.ratio {
            RatioLevel::Token => -lr.0,
            RatioLevel::Sequence => old - lp,
        }),
        mask,
    );
    let (entropy, grad_entropy) = entropy_bonus(config.entropy_coef, shape, batch.entropy, &w)?;
    Ok(PolicyLoss {
        loss: pg_loss - T::from_f64(config.entropy_coef) * entropy,
        pg_loss,
        entropy,
        grad_logprobs: grad,
        grad_entropy,
        clip_frac: masked_mean(tokens.iter().map(|t| flag(t.clipped)), mask),
        clip_frac_lower: masked_mean(tokens.iter().map(|t| flag(t.dual_clipped)), mask),
        approx_kl,
    })
}

/// The clip range in ratio space.
struct Clip<T> {
    lo: T,
    hi: T,
    dual: Option<T>,
}

/// One token's clipped surrogate.
struct TokenTerm<T> {
    loss: T,
    /// ∂loss/∂log π before aggregation.
    dloss: T,
    clipped: bool,
    dual_clipped: bool,
}

impl<T: Float> Clip<T> {
    /// `max(−A·r, −A·clip(r))`, then at most `−A·c` when `A < 0` and dual clip is on. `passes` is false where
    /// the log-ratio clamp is active (no gradient through it).
    fn term(&self, a: T, log_ratio: T, passes: bool) -> TokenTerm<T> {
        let ratio = log_ratio.exp_portable();
        let unclipped = -a * ratio;
        let clipped_term = -a * ratio.clamp(self.lo, self.hi);
        let mut loss = unclipped.max(clipped_term);
        // d loss / d ratio: the clipped branch is flat, the unclipped one has slope −A.
        let mut slope = if unclipped >= clipped_term { -a } else { T::ZERO };
        let mut dual_clipped = false;
        if let Some(c) = self.dual {
            let cap = -a * c;
            if a < T::ZERO && loss > cap {
                loss = cap;
                slope = T::ZERO;
                dual_clipped = true;
            }
        }
        // d ratio / d log π = ratio (token) or s_i (sequence, through the stop-gradient trick).
        let dloss = if passes { slope * ratio } else { T::ZERO };
        TokenTerm { loss, dloss, clipped: clipped_term > unclipped, dual_clipped }
    }
}

/// Per token: the clamped log importance ratio and whether gradient flows through it (not when a clamp is
/// active). Token level: `clamp(log π − log π_old, ±20)`. Sequence level: the sequence's mean log-ratio over
/// unmasked tokens, clamped above at 10.
fn log_ratios<T: Float>(level: RatioLevel, shape: SeqShape, batch: &PolicyBatch<'_, T>) -> Vec<(T, bool)> {
    let diffs = batch.logprobs.iter().zip(batch.old_logprobs).map(|(&lp, &old)| lp - old);
    match level {
        RatioLevel::Token => {
            let lim = T::from_f64(20.0);
            diffs.map(|d| (d.clamp(-lim, lim), d >= -lim && d <= lim)).collect()
        }
        RatioLevel::Sequence => {
            let diffs: Vec<T> = diffs.collect();
            let cap = T::from_f64(10.0);
            let mut out = Vec::with_capacity(diffs.len());
            for (d_row, m_row) in diffs.chunks_exact(shape.len).zip(batch.mask.chunks_exact(shape.len)) {
                let (sum, count) = d_row
                    .iter()
                    .zip(m_row)
                    .filter(|(_, m)| **m)
                    .fold((T::ZERO, 0usize), |(s, c), (&d, _)| (s + d, c + 1));
                let mean = sum / T::from_usize(count.max(1));
                out.extend(core::iter::repeat_n((mean.min(cap), mean <= cap), shape.len));
            }
            out
        }
    }
}

/// The aggregated entropy and the gradient of `−coef · agg(entropy)`.
fn entropy_bonus<T: Float>(coef: f64, shape: SeqShape, entropy: Option<&[T]>, w: &[T]) -> Result<(T, Vec<T>)> {
    match entropy {
        Some(h) => {
            shape.check("entropy", h)?;
            let c = T::from_f64(coef);
            Ok((weighted_sum(w, h), w.iter().map(|&w| -c * w).collect()))
        }
        None if coef != 0.0 => Err(LearnError::Empty { name: "entropy (required when entropy_coef != 0)" }),
        None => Ok((T::ZERO, Vec::new())),
    }
}
