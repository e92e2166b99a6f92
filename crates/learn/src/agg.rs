//! Reducing a `[batch, len]` matrix of per-token losses to one number, in verl's `agg_loss` modes.
//!
//! Every mode is linear in the per-token losses, so a mode is computed once as a per-token weight and the
//! loss is `Σ w_t ℓ_t`; the gradient of the aggregate with respect to `ℓ_t` is then `w_t`.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{LearnError, Result};
use crate::shape::{SeqShape, check_param};
use selfplay_tensor::Float;

/// How per-token losses are averaged (the names are verl's `loss_agg_mode`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossAgg {
    /// `token-mean`: mean over all unmasked tokens of the batch (long sequences weigh more; DAPO's choice).
    TokenMean,
    /// `seq-mean-token-mean`: mean over tokens within a sequence, then over sequences (original GRPO).
    SeqMeanTokenMean,
    /// `seq-mean-token-sum`: sum over tokens within a sequence, then mean over sequences.
    SeqMeanTokenSum,
    /// `seq-mean-token-sum-norm`: `seq-mean-token-sum` divided by a constant (Dr. GRPO), by default the padded
    /// length `len` as verl does; set a fixed generation budget to keep the scale constant across batches.
    SeqMeanTokenSumNorm {
        /// The divisor; `None` means the padded length.
        norm: Option<f64>,
    },
}

impl LossAgg {
    /// The weight of each token slot: `loss = Σ w_t ℓ_t`. Masked slots get 0. Sequences without any unmasked
    /// token are excluded from the sequence means (as verl does); a batch without any unmasked token is an
    /// error, since every mode would divide by zero.
    pub fn weights<T: Float>(&self, shape: SeqShape, mask: &[bool]) -> Result<Vec<T>> {
        shape.check_len("mask", mask)?;
        let counts: Vec<usize> = shape.seq_counts(mask).collect();
        let total: usize = counts.iter().sum();
        if total == 0 {
            return Err(LearnError::Empty { name: "mask (no unmasked token)" });
        }
        let live_seqs = T::from_usize(counts.iter().filter(|&&c| c > 0).count());
        let per_seq: Vec<T> = match *self {
            LossAgg::TokenMean => vec![T::ONE / T::from_usize(total); shape.batch],
            LossAgg::SeqMeanTokenMean => {
                counts.iter().map(|&c| if c > 0 { T::ONE / (T::from_usize(c) * live_seqs) } else { T::ZERO }).collect()
            }
            LossAgg::SeqMeanTokenSum => vec![T::ONE / live_seqs; shape.batch],
            LossAgg::SeqMeanTokenSumNorm { norm } => {
                let norm = norm.unwrap_or(shape.len as f64);
                check_param("norm", norm, f64::MIN_POSITIVE)?;
                vec![T::ONE / (live_seqs * T::from_f64(norm)); shape.batch]
            }
        };
        let mut w = vec![T::ZERO; mask.len()];
        for ((w_row, m_row), &ws) in w.chunks_exact_mut(shape.len).zip(mask.chunks_exact(shape.len)).zip(&per_seq) {
            for (w, &m) in w_row.iter_mut().zip(m_row) {
                if m {
                    *w = ws;
                }
            }
        }
        Ok(w)
    }
}

/// Unmasked tokens and sequences with at least one unmasked token: what the aggregation modes divide by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchTotals {
    /// Unmasked tokens.
    pub tokens: usize,
    /// Sequences with at least one unmasked token.
    pub sequences: usize,
}

impl BatchTotals {
    /// The counts of one (micro-)batch.
    pub fn of(shape: SeqShape, mask: &[bool]) -> Result<Self> {
        shape.check_len("mask", mask)?;
        let (tokens, sequences) = shape.seq_counts(mask).fold((0, 0), |(t, s), c| (t + c, s + usize::from(c > 0)));
        Ok(Self { tokens, sequences })
    }
}

impl core::ops::Add for BatchTotals {
    type Output = Self;

    /// The counts of two batches together (sum the micro-batches of a mini-batch).
    fn add(self, other: Self) -> Self {
        Self { tokens: self.tokens + other.tokens, sequences: self.sequences + other.sequences }
    }
}

impl LossAgg {
    /// Gradient accumulation: the factor by which to multiply a micro-batch's loss and gradients so that
    /// their sum over the micro-batches equals the loss and gradients of the whole mini-batch at once.
    /// Token-mean rescales by token counts, the sequence modes by sequence counts. (With
    /// `SeqMeanTokenSumNorm`, give a fixed `norm` if micro-batches are padded to different lengths.)
    pub fn micro_batch_scale(&self, micro: BatchTotals, total: BatchTotals) -> Result<f64> {
        let (part, whole) = match self {
            LossAgg::TokenMean => (micro.tokens, total.tokens),
            _ => (micro.sequences, total.sequences),
        };
        if whole == 0 || part > whole {
            return Err(LearnError::InvalidConfig {
                name: "total",
                reason: "must be non-empty and cover the micro-batch",
            });
        }
        Ok(part as f64 / whole as f64)
    }
}

impl core::str::FromStr for LossAgg {
    type Err = LearnError;

    /// Parses verl's `loss_agg_mode` names (`seq-mean-token-sum-norm` divides by the padded length).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "token-mean" => Ok(LossAgg::TokenMean),
            "seq-mean-token-mean" => Ok(LossAgg::SeqMeanTokenMean),
            "seq-mean-token-sum" => Ok(LossAgg::SeqMeanTokenSum),
            "seq-mean-token-sum-norm" => Ok(LossAgg::SeqMeanTokenSumNorm { norm: None }),
            _ => Err(LearnError::InvalidConfig { name: "loss_agg_mode", reason: "unknown aggregation mode" }),
        }
    }
}

/// `Σ w_t x_t` over unmasked slots (masked slots have weight 0 and are skipped, so padding never leaks in).
pub(crate) fn weighted_sum<T: Float>(weights: &[T], xs: &[T]) -> T {
    weights.iter().zip(xs).filter(|(w, _)| **w != T::ZERO).fold(T::ZERO, |acc, (&w, &x)| acc + w * x)
}

/// Mean of `xs` over unmasked slots (0 when none): the diagnostics' `masked_mean`.
pub(crate) fn masked_mean<T: Float>(xs: impl Iterator<Item = T>, mask: &[bool]) -> T {
    let (sum, n) = xs.zip(mask).filter(|(_, m)| **m).fold((T::ZERO, 0usize), |(s, n), (x, _)| (s + x, n + 1));
    if n == 0 { T::ZERO } else { sum / T::from_usize(n) }
}
