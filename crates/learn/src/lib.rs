//! Learning for reasoning RL: advantages, policy/value/KL/DPO/BC/soft-CE losses with gradients, AdamW, schedules (no_std + alloc).
//!
//! Losses take flat slices (chosen-token log-probabilities of the current, old and reference policies,
//! advantages, masks, values, returns) laid out as padded `[batch, len]` rows ([`SeqShape`]), and return the
//! loss, its gradient with respect to the inputs that carry one, and diagnostics. The model's backward pass
//! consumes those gradients; this crate never sees a model. [`distill`] takes full `[rows, vocab]` logits
//! instead: cross-entropy to soft targets (AlphaZero's visit counts, Gumbel MuZero's improved policy). Every loss is generic over [`Float`] (f32 to
//! train, f64 to check gradients by finite differences), the workspace's float trait from `selfplay-tensor`;
//! the losses use its portable (`libm`) `exp`/`ln`, so their numbers are the same on every platform.
//!
//! One GRPO update, from rewards to a parameter step (the model supplies log-probabilities and consumes
//! `grad_logprobs` in its backward pass):
//!
//! ```
//! use selfplay_learn::advantage::{GroupScale, broadcast_to_tokens, grpo_advantages};
//! use selfplay_learn::kl::{KlEstimator, KlLoss};
//! use selfplay_learn::optim::{AdamW, AdamWConfig, clip_grad_norm};
//! use selfplay_learn::policy::{PolicyBatch, PpoConfig, policy_loss};
//! use selfplay_learn::schedule::WarmupCosine;
//! use selfplay_learn::{LossAgg, SeqShape};
//!
//! # fn main() -> Result<(), selfplay_learn::LearnError> {
//! // Two prompts, two completions each, padded to 3 tokens.
//! let shape = SeqShape::new(4, 3);
//! let mask = [true, true, true, true, true, false, true, false, false, true, true, true];
//! let rewards = [1.0f32, 0.0, 0.0, 1.0];
//! let per_seq = grpo_advantages(&rewards, &[0, 0, 1, 1], GroupScale::GroupStd, 1e-6)?;
//! let advantages = broadcast_to_tokens(shape, &per_seq, &mask)?;
//!
//! let old = [-1.0f32; 12]; // sampler log-probabilities
//! let current = [-0.9f32; 12]; // current policy, from the forward pass
//! let reference = [-1.2f32; 12]; // frozen reference policy
//! let config = PpoConfig { clip_high: 0.28, agg: LossAgg::TokenMean, ..PpoConfig::default() };
//! let batch = PolicyBatch { shape, logprobs: &current, old_logprobs: &old, advantages: &advantages, mask: &mask, entropy: None };
//! let pg = policy_loss(&config, &batch)?;
//! let kl = KlLoss { estimator: KlEstimator::K3, k2_gradient: false, agg: LossAgg::TokenMean }
//!     .compute(shape, &current, &reference, &mask)?;
//! let beta = 0.04;
//! let grad_logprobs: Vec<f32> = pg.grad_logprobs.iter().zip(&kl.grad).map(|(g, k)| g + beta * k).collect();
//! assert_eq!(grad_logprobs.len(), 12);
//!
//! // ... the model's backward turns grad_logprobs into parameter gradients; then:
//! let mut weights = vec![0.5f32; 8];
//! let mut grads = vec![0.1f32; 8];
//! let mut opt = AdamW::new(AdamWConfig::default(), &[8]);
//! let schedule = WarmupCosine::new(10, 1000);
//! let norm = clip_grad_norm(&mut [&mut grads], 1.0);
//! opt.step(&mut [&mut weights], &[&grads], schedule.lr(1e-3, 5))?;
//! assert!(norm > 0.0 && weights[0] < 0.5);
//! # Ok(())
//! # }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;

use alloc::vec::Vec;

pub mod advantage;
pub mod agg;
pub mod distill;
pub mod error;
pub mod kl;
pub mod optim;
pub mod policy;
pub mod preference;
pub mod schedule;
pub mod shape;
pub mod supervised;
pub mod value;

pub use agg::{BatchTotals, LossAgg};
pub use error::{LearnError, Result};
pub use selfplay_tensor::Float;
pub use shape::SeqShape;

/// A scalar loss and its gradient with respect to one input.
#[derive(Debug, Clone, PartialEq)]
pub struct LossGrad<T> {
    /// The loss.
    pub loss: T,
    /// ∂loss/∂input, same layout as the input (0 at masked slots).
    pub grad: Vec<T>,
}
