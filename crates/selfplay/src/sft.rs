//! Policy initialisation: next-token cross-entropy on a task's solution traces, loss on the completion only.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use selfplay_model::Model;
use selfplay_model::tokenizer::Tokenizer;

use crate::cli::CliError;
use crate::optimizer::{ModelOptimizer, OptimConfig};
use crate::progress::Progress;

/// One training sequence: `<bos> prompt completion <eos>`, with loss weight 1 on the completion's tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct SftExample {
    pub tokens: Vec<u32>,
    /// `tokens.len() − 1` weights: position `t` is weighted by whether token `t + 1` belongs to the completion.
    pub weights: Vec<f32>,
}

impl SftExample {
    /// Tokenises a prompt and its completion.
    pub fn new(tokenizer: &dyn Tokenizer, prompt: &str, completion: &str) -> Result<Self, CliError> {
        let mut tokens: Vec<u32> = tokenizer.bos_id().into_iter().collect();
        tokens.extend(tokenizer.encode(prompt)?);
        let prompt_len = tokens.len();
        tokens.extend(tokenizer.encode(completion)?);
        tokens.extend(tokenizer.eos_id());
        let weights = (1..tokens.len()).map(|t| if t >= prompt_len { 1.0 } else { 0.0 }).collect();
        Ok(SftExample { tokens, weights })
    }
}

/// How long and how hard to fine-tune.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SftConfig {
    pub steps: u64,
    pub batch_size: usize,
    pub optim: OptimConfig,
    pub seed: u64,
}

/// Trains `model` on `examples` (sampled with replacement, in an order fixed by the seed); returns the loss per step.
pub fn train(model: &mut Model, examples: &[SftExample], config: &SftConfig) -> Result<Vec<f32>, CliError> {
    if examples.is_empty() || config.batch_size == 0 {
        return Err("SFT needs at least one example and a batch size above zero".into());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let mut optimizer = ModelOptimizer::new(model.weights(), config.optim)?;
    let progress = Progress::new("policy init (SFT)", config.steps);
    let mut losses = Vec::with_capacity(config.steps as usize);
    for _ in 0..config.steps {
        let batch: Vec<&SftExample> =
            (0..config.batch_size).map(|_| &examples[(rng.next_u64() % examples.len() as u64) as usize]).collect();
        let tokens: Vec<&[u32]> = batch.iter().map(|e| e.tokens.as_slice()).collect();
        let weights: Vec<&[f32]> = batch.iter().map(|e| e.weights.as_slice()).collect();
        let (loss, mut grads) = model.sft_loss_and_grads(&tokens, &weights)?;
        optimizer.step(model.weights_mut(), &mut grads)?;
        losses.push(loss);
        progress.step(format!("loss {loss:.3}"));
    }
    progress.finish();
    Ok(losses)
}
