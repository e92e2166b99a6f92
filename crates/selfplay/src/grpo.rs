//! One step of group-relative policy optimisation (GRPO) with a Monte-Carlo value head.
//!
//! A step samples `group_size` completions for each of `prompts_per_step` training problems, scores them
//! with the task's verifier, turns the scores into group-relative advantages, and takes one clipped
//! policy-gradient update (on-policy, so the ratio starts at one and the clip guards later epochs). The same
//! update regresses the value head, at every completion position, on the completion's final reward: the
//! Monte-Carlo value of each prefix (Math-Shepherd style), which `best_of_n_value` and search later use.
//! Groups whose completions all score alike carry no signal and are left out of the update.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use selfplay_learn::advantage::{GroupScale, grpo_advantages};
use selfplay_learn::policy::{PolicyBatch, PpoConfig, policy_loss};
use selfplay_learn::value::value_loss;
use selfplay_learn::{LossAgg, SeqShape};
use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{GenerationConfig, Model, SequenceGrads};
use selfplay_tasks::Task;
use serde::Serialize;

use crate::cli::CliError;
use crate::optimizer::ModelOptimizer;
use crate::rollout::{completion_text, encode_prompt, sample};

/// GRPO hyper-parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct GrpoConfig {
    pub prompts_per_step: usize,
    pub group_size: usize,
    pub generation: GenerationConfig,
    pub ppo: PpoConfig,
    /// Weight of the value-regression loss.
    pub value_coef: f32,
    pub seed: u64,
}

/// What one step saw and did (a line of `metrics.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GrpoStepMetrics {
    pub step: u64,
    pub reward_mean: f32,
    /// Fraction of sampled completions the verifier accepted.
    pub train_accuracy: f32,
    pub loss: f32,
    pub value_loss: f32,
    pub entropy: f32,
    pub clip_frac: f32,
    pub approx_kl: f32,
    pub grad_norm: f32,
    pub lr: f32,
    /// Sequences that carried signal (their group's scores differed).
    pub trained_sequences: usize,
    pub rollout_tokens: usize,
    /// Tokens (prompt + completion) the update ran forward and backward over.
    pub update_tokens: usize,
}

/// Runs step `step` on `problems` (the training set).
pub fn step<T: Task>(
    model: &mut Model,
    optimizer: &mut ModelOptimizer,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    config: &GrpoConfig,
    step: u64,
) -> Result<GrpoStepMetrics, CliError> {
    if problems.is_empty() || config.prompts_per_step == 0 || config.group_size < 2 {
        return Err("GRPO needs training problems, prompts_per_step >= 1 and group_size >= 2".into());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed ^ step.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let picked: Vec<usize> =
        (0..config.prompts_per_step).map(|_| (rng.next_u64() % problems.len() as u64) as usize).collect();
    let prompts: Vec<Vec<u32>> =
        picked.iter().map(|&i| encode_prompt(tokenizer, &task.prompt(&problems[i]))).collect::<Result<_, _>>()?;
    let ids: Vec<u64> = picked.iter().map(|&i| i as u64).collect();
    let groups = sample(model, &prompts, &ids, config.group_size, &config.generation, config.seed ^ step)?;

    // Score every completion.
    let mut scores = Vec::new();
    let mut correct = 0usize;
    let mut group_ids = Vec::new();
    let mut rollout_tokens = 0;
    for (g, (generations, &problem)) in groups.iter().zip(&picked).enumerate() {
        for generation in generations {
            let reward = task.reward(&problems[problem], completion_text(tokenizer, generation)?.as_bytes());
            correct += usize::from(reward.verdict.is_correct());
            scores.push(reward.value);
            group_ids.push(g as u64);
            rollout_tokens += generation.tokens.len();
        }
    }
    let advantages = grpo_advantages(&scores, &group_ids, GroupScale::GroupStd, 1e-6)?;
    let mut metrics = GrpoStepMetrics {
        step,
        reward_mean: scores.iter().sum::<f32>() / scores.len() as f32,
        train_accuracy: correct as f32 / scores.len() as f32,
        loss: 0.0,
        value_loss: 0.0,
        entropy: 0.0,
        clip_frac: 0.0,
        approx_kl: 0.0,
        grad_norm: 0.0,
        lr: 0.0,
        trained_sequences: 0,
        rollout_tokens,
        update_tokens: 0,
    };

    // Sequences with signal: prompt + completion, with their old logprobs, advantage and return.
    struct Row<'a> {
        tokens: Vec<u32>,
        prompt_len: usize,
        old_logprobs: &'a [f32],
        advantage: f32,
        score: f32,
    }
    let generations = groups.iter().flatten();
    let rows: Vec<Row<'_>> = generations
        .zip(&group_ids)
        .zip(advantages.iter().zip(&scores))
        .filter(|(_, (a, _))| **a != 0.0)
        .filter(|((generation, _), _)| !generation.tokens.is_empty())
        .map(|((generation, &g), (&advantage, &score))| {
            let prompt = &prompts[g as usize];
            let mut tokens = prompt.clone();
            tokens.extend_from_slice(&generation.tokens);
            Row { tokens, prompt_len: prompt.len(), old_logprobs: &generation.model_logprobs, advantage, score }
        })
        .collect();
    if rows.is_empty() {
        return Ok(metrics);
    }

    // Completion tokens laid out as a padded [rows, width] matrix for the learn crate's losses.
    let width = rows.iter().map(|r| r.tokens.len() - r.prompt_len).max().unwrap_or(0);
    let shape = SeqShape::new(rows.len(), width);
    let batch: Vec<&[u32]> = rows.iter().map(|r| r.tokens.as_slice()).collect();
    let pass = model.forward_train(&batch)?;
    let stats = pass.token_stats();
    let cells = rows.len() * width;
    let (mut logprobs, mut old, mut adv, mut mask) =
        (vec![0.0; cells], vec![0.0; cells], vec![0.0; cells], vec![false; cells]);
    let (mut entropy, mut values, mut returns) = (vec![0.0; cells], vec![0.0; cells], vec![0.0; cells]);
    for (i, (row, stat)) in rows.iter().zip(&stats).enumerate() {
        for j in 0..row.tokens.len() - row.prompt_len {
            // Completion token j sits at position prompt_len + j, predicted from position prompt_len + j − 1.
            let (cell, pred) = (i * width + j, row.prompt_len + j - 1);
            logprobs[cell] = stat.logprobs[pred];
            entropy[cell] = stat.entropies[pred];
            // The value after token j: the prefix that ends with it (the last one is the finished completion).
            values[cell] = stat.values[pred + 1];
            old[cell] = row.old_logprobs[j];
            adv[cell] = row.advantage;
            returns[cell] = row.score;
            mask[cell] = true;
        }
    }
    let policy = policy_loss(
        &config.ppo,
        &PolicyBatch {
            shape,
            logprobs: &logprobs,
            old_logprobs: &old,
            advantages: &adv,
            mask: &mask,
            entropy: Some(&entropy),
        },
    )?;
    let value = value_loss(shape, &values, &values, &returns, &mask, None, LossAgg::TokenMean)?;

    // Scatter the gradients back to each sequence's positions.
    let mut d_lp: Vec<Vec<f32>> = rows.iter().map(|r| vec![0.0; r.tokens.len() - 1]).collect();
    let mut d_ent: Vec<Vec<f32>> = d_lp.clone();
    let mut d_val: Vec<Vec<f32>> = rows.iter().map(|r| vec![0.0; r.tokens.len()]).collect();
    for (i, row) in rows.iter().enumerate() {
        for j in 0..row.tokens.len() - row.prompt_len {
            let (cell, pred) = (i * width + j, row.prompt_len + j - 1);
            d_lp[i][pred] = policy.grad_logprobs[cell];
            if let Some(&g) = policy.grad_entropy.get(cell) {
                d_ent[i][pred] = g;
            }
            d_val[i][pred + 1] = config.value_coef * value.grad_values[cell];
        }
    }
    let grads: Vec<SequenceGrads<'_>> = (0..rows.len())
        .map(|i| SequenceGrads { d_logprobs: &d_lp[i], d_entropies: Some(&d_ent[i]), d_values: Some(&d_val[i]) })
        .collect();
    let mut weight_grads = model.weights().zeros_like();
    model.backward(&pass, &grads, &mut weight_grads)?;
    let update = optimizer.step(model.weights_mut(), &mut weight_grads)?;

    metrics.loss = policy.loss;
    metrics.value_loss = value.loss;
    metrics.entropy = policy.entropy;
    metrics.clip_frac = policy.clip_frac;
    metrics.approx_kl = policy.approx_kl;
    metrics.grad_norm = update.grad_norm;
    metrics.lr = update.lr;
    metrics.trained_sequences = rows.len();
    metrics.update_tokens = batch.iter().map(|t| t.len()).sum();
    Ok(metrics)
}
