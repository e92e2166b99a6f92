//! A learned value model: a copy of the policy whose value head (and trunk) is trained to predict whether a
//! completion will be verified correct, from completions the final policy samples on training problems.
//!
//! Why a separate model: the policy's own value head is trained on the side of RL, only on the groups that
//! carry signal, with a small loss weight, and its trunk serves the policy first. An outcome-supervised value
//! model (an ORM; Cobbe et al. 2021, with Math-Shepherd's Monte-Carlo labels at every position) trained on the
//! policy's own samples, right and wrong alike, is the standard remedy. Every position of a completion regresses
//! on the completion's verdict, so the value at a prefix estimates the policy's chance of success from there,
//! and the value at the end scores the finished completion.
//!
//! Measured on the demo's 0.8M-parameter policy it does not help (so `[value_model]` is off by default): it
//! fits its data (mean squared error 0.06 against the base rate's 0.23) but on held-out samples it rates
//! correct completions barely above wrong ones (0.44 against 0.40), and what it rates highest are fluent
//! solutions with one arithmetic slip (`80-54=29`), the very mistakes the policy's trunk makes itself.
//! Best-of-64 by it picked a correct answer for 0.26 of the problems, below a random sample's 0.35 (measured
//! before `best_of_n_value` was limited to well-formed answers, which removes the garbled completions it liked). A judge
//! that must re-check arithmetic needs more capacity than the policy; `selfplay eval --value-model` tries any
//! saved one.

use std::time::Instant;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use selfplay_learn::LearnError;
use selfplay_learn::value::value_loss;
use selfplay_learn::{LossAgg, SeqShape};
use selfplay_model::HostAccess;
use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{GenerationConfig, IoError, Model, ModelError, SamplingParams, SequenceGrads};
use selfplay_tasks::Task;
use serde::{Deserialize, Serialize};

use crate::engine::progress::Progress;
use crate::optimizer::{ModelOptimizer, OptimConfig};
use crate::rollout::{completion_text, encode_prompt, row_seed, sample};

/// What training or using a value model can fail on.
#[derive(Debug, thiserror::Error)]
pub enum ValueModelError {
    /// No problems, samples or batch to train on.
    #[error("the value model needs problems, samples per problem and a batch size of at least 1")]
    Empty,
    /// Every sampled completion was empty.
    #[error("the policy produced no completion to train the value model on")]
    NoCompletions,
    /// A prompt or completion could not be encoded or decoded.
    #[error("tokenizer: {0}")]
    Tokenizer(#[from] IoError),
    /// The model failed.
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// The loss or the optimizer refused its input.
    #[error("learning: {0}")]
    Learn(#[from] LearnError),
}

/// How the value model is trained (`[value_model]` in a run's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValueModelSettings {
    /// Train one (false: `best_of_n_value` judges by the policy's own value head).
    pub enabled: bool,
    /// Training problems whose completions are sampled and labelled.
    pub problems: usize,
    /// Completions sampled per problem (temperature 1).
    pub samples_per_problem: usize,
    pub steps: u64,
    pub batch_size: usize,
    pub lr: f32,
}

impl Default for ValueModelSettings {
    fn default() -> Self {
        ValueModelSettings {
            enabled: false,
            problems: 1000,
            samples_per_problem: 8,
            steps: 300,
            batch_size: 64,
            lr: 1e-3,
        }
    }
}

/// One labelled completion: `<bos> prompt completion <eos>` and whether the verifier accepted it.
#[derive(Debug, Clone, PartialEq)]
struct Labelled {
    tokens: Vec<u32>,
    prompt_len: usize,
    correct: bool,
}

/// What training the value model saw and did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueModelReport {
    /// Completions sampled and labelled.
    pub samples: usize,
    /// Fraction of them the verifier accepted (the base rate the model must beat).
    pub positive_rate: f64,
    /// Mean squared error of the last 10% of steps.
    pub final_loss: f32,
    /// Tokens generated to make the data, and tokens trained on.
    pub sampled_tokens: usize,
    pub trained_tokens: usize,
    pub seconds: f64,
}

/// Trains a value model from `policy` (its copy) on `settings.problems` of `problems`.
#[allow(clippy::too_many_arguments)]
pub fn train<B: HostAccess + Clone, T: Task>(
    policy: &Model<B>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    settings: &ValueModelSettings,
    max_new_tokens: usize,
    seed: u64,
) -> Result<(Model<B>, ValueModelReport), ValueModelError> {
    if problems.is_empty() || settings.problems == 0 || settings.samples_per_problem == 0 || settings.batch_size == 0 {
        return Err(ValueModelError::Empty);
    }
    let started = Instant::now();
    let chosen = &problems[..settings.problems.min(problems.len())];
    let data = label(policy, tokenizer, task, chosen, settings.samples_per_problem, max_new_tokens, seed)?;
    let sampled_tokens = data.iter().map(|d| d.tokens.len() - d.prompt_len).sum();
    let positives = data.iter().filter(|d| d.correct).count();

    let mut model = policy.clone();
    let optim = OptimConfig::warmup_cosine(settings.lr, 0.0, settings.steps);
    let mut optimizer = ModelOptimizer::new(model.weights(), optim)?;
    let progress = Progress::new("value model", settings.steps);
    let mut losses = Vec::with_capacity(settings.steps as usize);
    let mut trained_tokens = 0;
    for step in 1..=settings.steps {
        let mut rng = ChaCha8Rng::seed_from_u64(row_seed(seed, step, 0x7A1));
        let batch: Vec<&Labelled> =
            (0..settings.batch_size).map(|_| &data[(rng.next_u64() % data.len() as u64) as usize]).collect();
        let loss = update(&mut model, &mut optimizer, &batch)?;
        trained_tokens += batch.iter().map(|b| b.tokens.len()).sum::<usize>();
        losses.push(loss);
        progress.step(format!("mse {loss:.3}"));
    }
    progress.finish();
    let tail = &losses[losses.len() - (losses.len() / 10).max(1).min(losses.len())..];
    let report = ValueModelReport {
        samples: data.len(),
        positive_rate: positives as f64 / data.len().max(1) as f64,
        final_loss: tail.iter().sum::<f32>() / tail.len().max(1) as f32,
        sampled_tokens,
        trained_tokens,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((model, report))
}

/// Samples and labels the training data.
fn label<B: HostAccess, T: Task>(
    policy: &Model<B>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    samples: usize,
    max_new_tokens: usize,
    seed: u64,
) -> Result<Vec<Labelled>, ValueModelError> {
    let prompts: Vec<Vec<u32>> =
        problems.iter().map(|p| encode_prompt(tokenizer, &task.prompt(p))).collect::<Result<_, _>>()?;
    let ids: Vec<u64> = (0..problems.len() as u64).collect();
    let config = GenerationConfig { max_new_tokens, sampling: SamplingParams::default(), stop_tokens: vec![] };
    // Its own seed stream: the value model's data never repeats the evaluation's samples.
    let generations = sample(policy, &prompts, &ids, samples, &config, row_seed(seed, u64::MAX, 0x7A1))?;
    let mut data = Vec::with_capacity(problems.len() * samples);
    for ((problem, prompt), rows) in problems.iter().zip(&prompts).zip(&generations) {
        for generation in rows.iter().filter(|g| !g.tokens.is_empty()) {
            let text = completion_text(tokenizer, generation)?;
            let correct = task.reward(problem, text.as_bytes()).verdict.is_correct();
            let mut tokens = prompt.clone();
            tokens.extend_from_slice(&generation.tokens);
            data.push(Labelled { tokens, prompt_len: prompt.len(), correct });
        }
    }
    if data.is_empty() {
        return Err(ValueModelError::NoCompletions);
    }
    Ok(data)
}

/// One regression step: every completion position (each prefix that ends inside the completion) toward the
/// completion's verdict; returns the loss.
fn update<B: HostAccess>(
    model: &mut Model<B>,
    optimizer: &mut ModelOptimizer,
    batch: &[&Labelled],
) -> Result<f32, ValueModelError> {
    let sequences: Vec<&[u32]> = batch.iter().map(|b| b.tokens.as_slice()).collect();
    let pass = model.forward_train(&sequences)?;
    let stats = pass.token_stats();
    let width = batch.iter().map(|b| b.tokens.len() - b.prompt_len).max().unwrap_or(0);
    let shape = SeqShape::new(batch.len(), width);
    let cells = batch.len() * width;
    let (mut values, mut returns, mut mask) = (vec![0.0f32; cells], vec![0.0f32; cells], vec![false; cells]);
    for (i, (b, stat)) in batch.iter().zip(&stats).enumerate() {
        for j in 0..b.tokens.len() - b.prompt_len {
            // Position prompt_len + j: the prefix that ends with completion token j.
            values[i * width + j] = stat.values[b.prompt_len + j];
            returns[i * width + j] = if b.correct { 1.0 } else { 0.0 };
            mask[i * width + j] = true;
        }
    }
    let loss = value_loss(shape, &values, &values, &returns, &mask, None, LossAgg::TokenMean)?;
    let d_logprobs: Vec<Vec<f32>> = batch.iter().map(|b| vec![0.0; b.tokens.len() - 1]).collect();
    let mut d_values: Vec<Vec<f32>> = batch.iter().map(|b| vec![0.0; b.tokens.len()]).collect();
    for (i, b) in batch.iter().enumerate() {
        for j in 0..b.tokens.len() - b.prompt_len {
            d_values[i][b.prompt_len + j] = loss.grad_values[i * width + j];
        }
    }
    let grads: Vec<SequenceGrads<'_>> = (0..batch.len())
        .map(|i| SequenceGrads {
            d_logprobs: &d_logprobs[i],
            d_entropies: None,
            d_values: Some(&d_values[i]),
            d_logits: None,
        })
        .collect();
    let mut weight_grads = model.weights().zeros_like();
    model.backward(&pass, &grads, &mut weight_grads)?;
    optimizer.step(model.weights_mut(), &mut weight_grads)?;
    Ok(loss.loss)
}

/// The value model's score of each completion: its value at the last token of `prompts[i]` followed by
/// `completions[i]` (the stop token included: the prefix that says the solution is finished); NaN for an empty
/// completion.
pub fn score<B: HostAccess>(
    model: &Model<B>,
    prompts: &[&[u32]],
    completions: &[&[u32]],
) -> Result<Vec<f32>, ValueModelError> {
    const ROWS_PER_BATCH: usize = 256;
    let sequences: Vec<Vec<u32>> = prompts.iter().zip(completions).map(|(p, c)| [*p, *c].concat()).collect();
    let mut out = Vec::with_capacity(sequences.len());
    for (chunk, completion_chunk) in sequences.chunks(ROWS_PER_BATCH).zip(completions.chunks(ROWS_PER_BATCH)) {
        let batch: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        for (output, completion) in model.forward(&batch)?.iter().zip(completion_chunk) {
            out.push(if completion.is_empty() { f32::NAN } else { output.values.last().copied().unwrap_or(f32::NAN) });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::o1::rl::tests::tiny_model;

    /// Completions ending in token 5 are "correct", ending in 6 "wrong": the regression must learn to tell
    /// them apart at the last position, and its loss must fall.
    #[test]
    fn regression_separates_labelled_completions() {
        let mut model = tiny_model(0.1, 3);
        let data: Vec<Labelled> = (0..8)
            .map(|i| {
                let correct = i % 2 == 0;
                Labelled {
                    tokens: vec![1, 3, 4, 3 + (i % 3) as u32, if correct { 5 } else { 6 }],
                    prompt_len: 2,
                    correct,
                }
            })
            .collect();
        let batch: Vec<&Labelled> = data.iter().collect();
        let optim = OptimConfig { lr: 1e-2, weight_decay: 0.0, warmup_steps: 0, total_steps: 200, max_grad_norm: 1.0 };
        let mut optimizer = ModelOptimizer::new(model.weights(), optim).unwrap();
        let first = update(&mut model, &mut optimizer, &batch).unwrap();
        let mut last = first;
        for _ in 0..150 {
            last = update(&mut model, &mut optimizer, &batch).unwrap();
        }
        assert!(last < first * 0.5, "loss {first} -> {last}");
        let prompt: &[u32] = &[1, 3];
        let scores = score(&model, &[prompt, prompt, prompt], &[&[4, 3, 5], &[4, 3, 6], &[]]).unwrap();
        assert!(scores[0] > 0.7 && scores[1] < 0.3, "{scores:?}");
        assert!(scores[2].is_nan());
    }

    #[test]
    fn empty_inputs_are_errors() {
        let model = tiny_model(0.1, 3);
        let tokenizer = selfplay_model::CharTokenizer::ascii();
        let task = selfplay_tasks::CountdownTask::default();
        let settings = ValueModelSettings::default();
        assert!(train(&model, &tokenizer, &task, &[], &settings, 8, 1).is_err());
    }
}
