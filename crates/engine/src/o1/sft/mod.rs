//! Policy initialisation: next-token cross-entropy on a task's solution traces, loss on the completion only;
//! [`SftStage`] runs it as the recipe's first stage.

mod stage;
mod traces;

pub use stage::SftStage;
pub use traces::{TraceStats, proposer_examples, sft_examples, trace_of};

use std::time::Instant;

use selfplay_collective::Collective;
use selfplay_learn::LearnError;
use selfplay_model::HostAccess;
use selfplay_model::loss::{check_loss_weights, weighted_nll};
use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{IoError, Model, ModelError};
use serde::Serialize;

use crate::optimizer::ModelOptimizer;
use crate::train::{RowGrads, Trainer, draw_with_replacement};

/// What supervised training can fail on.
#[derive(Debug, thiserror::Error)]
pub enum SftError {
    /// No examples, or a batch size of zero.
    #[error("SFT needs at least one example and a batch size above zero")]
    EmptyBatch,
    /// Every search stream was missed or left out as too long, and no optimal trace was asked for.
    #[error(
        "no training problem has a search stream the policy could write within max_new_tokens = {0}: raise \
         max_new_tokens (and [model] context) or [sft] stream_max_lines, or add \"optimal\" to [sft] traces"
    )]
    NoTraces(usize),
    /// A trace could not be encoded.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] IoError),
    /// The forward or backward pass failed.
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// Communication between the ranks of a data-parallel run.
    #[error("between ranks: {0}")]
    Collective(#[from] selfplay_collective::CollectiveError),
    /// The optimizer refused its settings or gradients.
    #[error("optimizer: {0}")]
    Learn(#[from] LearnError),
}

/// One training sequence: `<bos> prompt completion <eos>`, with loss weight 1 on the completion's tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct SftExample {
    /// The token ids.
    pub tokens: Vec<u32>,
    /// `tokens.len() − 1` weights: position `t` is weighted by whether token `t + 1` belongs to the completion.
    pub weights: Vec<f32>,
}

impl SftExample {
    /// Tokenises a prompt and its completion.
    pub fn new(tokenizer: &dyn Tokenizer, prompt: &str, completion: &str) -> Result<Self, SftError> {
        let mut tokens: Vec<u32> = tokenizer.bos_id().into_iter().collect();
        tokens.extend(tokenizer.encode(prompt)?);
        let prompt_len = tokens.len();
        tokens.extend(tokenizer.encode(completion)?);
        tokens.extend(tokenizer.eos_id());
        let weights = (1..tokens.len()).map(|t| if t >= prompt_len { 1.0 } else { 0.0 }).collect();
        Ok(SftExample { tokens, weights })
    }
}

/// What one supervised step did: a line of `metrics.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SftStepMetrics {
    /// The step (from 1).
    pub step: u64,
    /// Mean cross-entropy over the completion tokens.
    pub loss: f32,
    /// Gradient norm before clipping.
    pub grad_norm: f32,
    /// Learning rate used.
    pub lr: f32,
    /// Tokens the step ran forward and backward over.
    pub tokens: usize,
    /// Throughput of the step.
    pub tokens_per_second: f64,
}

/// Step `step` (counted from 1): a batch of `batch_size` examples drawn with replacement by a generator seeded
/// from `(seed, step)` alone, so a run resumed at any step draws exactly the batches it would have drawn.
#[allow(clippy::too_many_arguments)]
pub fn step<B: HostAccess>(
    model: &mut Model<B>,
    optimizer: &mut ModelOptimizer,
    trainer: &mut Trainer,
    examples: &[SftExample],
    batch_size: usize,
    seed: u64,
    step: u64,
    collective: &dyn Collective,
) -> Result<SftStepMetrics, SftError> {
    if examples.is_empty() || batch_size == 0 {
        return Err(SftError::EmptyBatch);
    }
    let started = Instant::now();
    let batch = draw_with_replacement(examples, batch_size, seed, step, 0x5F7);
    let tokens: Vec<&[u32]> = batch.iter().map(|e| e.tokens.as_slice()).collect();
    let weights: Vec<&[f32]> = batch.iter().map(|e| e.weights.as_slice()).collect();
    check_loss_weights(tokens.len(), &weights)?;
    let (loss, update) = trainer.update(model, optimizer, collective, &tokens, |pass| -> Result<_, SftError> {
        let (loss, d_logprobs) = weighted_nll(pass.stats, &weights)?;
        Ok((loss, d_logprobs.into_iter().map(RowGrads::logprobs_only).collect()))
    })?;
    let token_count = tokens.iter().map(|t| t.len()).sum();
    Ok(SftStepMetrics {
        step,
        loss,
        grad_norm: update.grad_norm,
        lr: update.lr,
        tokens: token_count,
        tokens_per_second: token_count as f64 / started.elapsed().as_secs_f64().max(1e-9),
    })
}
