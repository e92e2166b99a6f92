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
//! Measured on the optimal-trace demo's 0.8M-parameter policy it does not help (so `[value_model]` is off by
//! default): it fits its data (mean squared error 0.06 against the base rate's 0.23) but on held-out samples it rates
//! correct completions barely above wrong ones (0.44 against 0.40), and what it rates highest are fluent
//! solutions with one arithmetic slip (`80-54=29`), the very mistakes the policy's trunk makes itself.
//! Best-of-64 by it picked a correct answer for 0.26 of the problems, below a random sample's 0.35 (measured
//! before `best_of_n_value` was limited to well-formed answers, which removes the garbled completions it liked). A judge
//! that must re-check arithmetic needs more capacity than the policy; `selfplay eval --value-model` tries any
//! saved one.
//!
//! With `[value_model] rollouts` > 0 it is a process reward model instead (Math-Shepherd, Wang et al. 2024): a
//! completion's steps (its lines) are labelled by Monte-Carlo completion, the share of `rollouts` continuations
//! sampled from the end of each step (and of the completion itself, one more sample from there) that verify, and
//! the positions of each step regress toward their step's label; the last step keeps the verdict. Its value at the
//! end of a step then scores that step, and `[eval] step_aggregation` (`min`, `prod`, `last`, `mean`) makes a
//! solution's score of them for `best_of_n_value` and `weighted_vote`. See [`process`]. The step searches read the
//! same model's step scores for their partial solutions, aggregated by `[eval.search] step_aggregation`
//! ([`crate::rollout::step_search::TransformerPolicy::judged_by`]).
//!
//! On the stream demo's policy (`configs/process_reward.toml`) neither kind judges held-out samples much better
//! than a vote counts them: at 64 samples, a vote weighted by the process model's scores reaches 0.674-0.682
//! (by aggregation) and the outcome model's 0.680, against plain majority's 0.678 and the verifier's 0.746; the
//! README's *Judging without the verifier* has the table.
//!
//! [`ValueStage`] trains it as a stage of the recipe, between RL and evaluation (only when `[value_model]
//! enabled`): checkpointed and resumable like every other stage, its model kept in the checkpoints' `stage_model/`.

mod error;
mod labelled;
pub mod process;
mod stage;

pub use error::{NoNewlineToken, ValueModelError};
use labelled::Labelled;
pub use process::{newline_token, policy_step_values, step_ends};
pub use stage::ValueStage;

use selfplay_learn::value::value_loss;
use selfplay_learn::{LossAgg, SeqShape};
use selfplay_model::HostAccess;
use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{GenerationConfig, Model, SamplingParams, TokenStats};
use selfplay_tasks::Task;
use serde::{Deserialize, Serialize};

use crate::rollout::{completion_text, encode_prompt, row_seed, sample};
use crate::train::{Layout, RowGrads, ValueSlot};

/// How the value model is trained (`[value_model]` in a run's config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValueModelSettings {
    /// Train one, to judge `best_of_n_value`, `weighted_vote` and the step searches (false: the policy's own value
    /// head judges them).
    pub enabled: bool,
    /// Training problems whose completions are sampled and labelled.
    pub problems: usize,
    /// Completions sampled per problem (temperature 1).
    pub samples_per_problem: usize,
    /// Continuations sampled from the end of each step of each completion for Math-Shepherd's process labels: a
    /// step's label is the share of them, with the completion itself, that verify. 0: outcome labels, every
    /// position regresses toward its completion's verdict (an outcome reward model). The labelling samples about
    /// `rollouts × steps per completion` continuations per completion.
    pub rollouts: usize,
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
            rollouts: 0,
            steps: 300,
            batch_size: 64,
            lr: 1e-3,
        }
    }
}

/// What training the value model saw and did (kept in the recipe's record, so a resumed run reports the same).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValueModelReport {
    /// Completions sampled and labelled.
    pub samples: usize,
    /// Fraction of them the verifier accepted (the base rate the model must beat).
    pub positive_rate: f64,
    /// Mean squared error of the trained model over every completion position of its training data
    /// (`None` until training finished).
    pub final_loss: Option<f32>,
    /// Tokens generated to make the data, and tokens trained on so far.
    pub sampled_tokens: usize,
    pub trained_tokens: usize,
    /// Process labels only: the steps labelled by Monte-Carlo continuation, their mean label, and the tokens the
    /// continuations generated.
    #[serde(default)]
    pub labelled_steps: usize,
    #[serde(default)]
    pub mean_step_label: f64,
    #[serde(default)]
    pub rollout_tokens: usize,
}

/// The labelled data and what labelling it took.
struct LabelledData {
    data: Vec<Labelled>,
    /// Process labels only (zeros for outcome labels).
    process: process::ProcessLabelStats,
}

/// Samples `samples` completions of each problem from `policy` and labels them with the verifier; with
/// `rollouts` > 0, each step also by Monte-Carlo continuation ([`process::Labeller`]).
#[allow(clippy::too_many_arguments)]
fn label<B: HostAccess, T: Task>(
    policy: &Model<B>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    samples: usize,
    rollouts: usize,
    max_new_tokens: usize,
    seed: u64,
) -> Result<LabelledData, ValueModelError> {
    let prompts: Vec<Vec<u32>> =
        problems.iter().map(|p| encode_prompt(tokenizer, &task.prompt(p))).collect::<Result<_, _>>()?;
    let ids: Vec<u64> = (0..problems.len() as u64).collect();
    let config = GenerationConfig { max_new_tokens, sampling: SamplingParams::default(), stop_tokens: vec![] };
    // Its own seed stream: the value model's data never repeats the evaluation's samples.
    let generations = sample(policy, &prompts, &ids, samples, &config, row_seed(seed, u64::MAX, 0x7A1))?;
    let mut data = Vec::with_capacity(problems.len() * samples);
    let mut owners = Vec::with_capacity(problems.len() * samples);
    for (index, ((problem, prompt), rows)) in problems.iter().zip(&prompts).zip(&generations).enumerate() {
        for generation in rows.iter().filter(|g| !g.tokens.is_empty()) {
            let text = completion_text(tokenizer, &generation.tokens)?;
            let correct = task.reward(problem, text.as_bytes()).verdict.is_correct();
            data.push(Labelled::new([prompt.as_slice(), &generation.tokens].concat(), prompt.len(), correct));
            owners.push(index);
        }
    }
    if data.is_empty() {
        return Err(ValueModelError::NoCompletions);
    }
    let process = if rollouts > 0 {
        let labeller = process::Labeller { policy, tokenizer, task, rollouts, config: &config, seed };
        labeller.label(problems, &owners, &mut data)?
    } else {
        process::ProcessLabelStats::default()
    };
    Ok(LabelledData { data, process })
}

/// The regression of every completion position (each prefix that ends inside the completion) toward the
/// completion's verdict, given the batch's token statistics: its mean squared error and its gradient with
/// respect to each sequence's values.
fn regression(batch: &[&Labelled], stats: &[TokenStats]) -> Result<(f32, Vec<RowGrads>), ValueModelError> {
    let layout = Layout::new(batch.iter().map(|b| (b.prompt_len, b.tokens.len() - b.prompt_len)).collect())?;
    let width = layout.shape.len;
    let values = layout.gather_values(stats, ValueSlot::AfterToken)?;
    let returns: Vec<f32> =
        batch.iter().flat_map(|b| (0..width).map(|j| b.targets.get(j).copied().unwrap_or(0.0))).collect();
    let mask = layout.mask();
    let shape: SeqShape = layout.shape;
    let loss = value_loss(shape, &values, &values, &returns, &mask, None, LossAgg::TokenMean)?;
    let no_policy = vec![0.0; layout.cells()];
    let grads = layout.scatter(&no_policy, None, Some((&loss.grad_values, ValueSlot::AfterToken)))?;
    Ok((loss.loss, grads))
}

/// The mean squared error of `model` over every completion position of `data` (batches of 256, weighted by
/// their completion tokens).
fn mean_squared_error<B: HostAccess>(model: &Model<B>, data: &[Labelled]) -> Result<f32, ValueModelError> {
    const ROWS_PER_BATCH: usize = 256;
    let (mut sum, mut tokens) = (0.0f64, 0usize);
    for chunk in data.chunks(ROWS_PER_BATCH) {
        let batch: Vec<&Labelled> = chunk.iter().collect();
        let sequences: Vec<&[u32]> = chunk.iter().map(|b| b.tokens.as_slice()).collect();
        let (loss, _) = regression(&batch, &model.token_logprobs(&sequences)?)?;
        let n: usize = chunk.iter().map(|b| b.tokens.len() - b.prompt_len).sum();
        sum += f64::from(loss) * n as f64;
        tokens += n;
    }
    Ok((sum / tokens.max(1) as f64) as f32)
}

/// The value model's step scores of each completion: its value at the end of every step of `completions[i]`
/// after `prompts[i]` ([`step_ends`]: after each newline that is not the completion's last token, and at its last
/// token, the stop token included: the prefix that says the solution is finished). Without a `newline` token the
/// completion is one step, scored at its last token. An empty completion has no step.
pub fn step_scores<B: HostAccess>(
    model: &Model<B>,
    prompts: &[&[u32]],
    completions: &[&[u32]],
    newline: Option<u32>,
) -> Result<Vec<Vec<f32>>, ValueModelError> {
    const ROWS_PER_BATCH: usize = 256;
    let sequences: Vec<Vec<u32>> = prompts.iter().zip(completions).map(|(p, c)| [*p, *c].concat()).collect();
    let mut out = Vec::with_capacity(sequences.len());
    let rows = prompts.iter().zip(completions).collect::<Vec<_>>();
    for (chunk, rows) in sequences.chunks(ROWS_PER_BATCH).zip(rows.chunks(ROWS_PER_BATCH)) {
        let batch: Vec<&[u32]> = chunk.iter().map(Vec::as_slice).collect();
        for (output, (prompt, completion)) in model.forward(&batch)?.iter().zip(rows) {
            let ends = step_ends(completion, newline);
            out.push(ends.iter().map(|&e| output.values.get(prompt.len() + e).copied().unwrap_or(f32::NAN)).collect());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::o1::rl::tests::tiny_model;
    use crate::optimizer::{ModelOptimizer, OptimConfig};
    use crate::train::Trainer;

    /// Completions ending in token 5 are "correct", ending in 6 "wrong": the regression must learn to tell
    /// them apart at the last position, and its loss must fall.
    #[test]
    fn regression_separates_labelled_completions() {
        let mut model = tiny_model(0.1, 3);
        let data: Vec<Labelled> = (0..8)
            .map(|i| {
                let correct = i % 2 == 0;
                Labelled::new(vec![1, 3, 4, 3 + (i % 3) as u32, if correct { 5 } else { 6 }], 2, correct)
            })
            .collect();
        let batch: Vec<&Labelled> = data.iter().collect();
        let sequences: Vec<&[u32]> = data.iter().map(|d| d.tokens.as_slice()).collect();
        let optim = OptimConfig {
            lr: 1e-2,
            weight_decay: 0.0,
            warmup_steps: 0,
            total_steps: 200,
            max_grad_norm: 1.0,
            min_lr_ratio: 0.0,
        };
        let mut optimizer = ModelOptimizer::new(model.weights(), optim).unwrap();
        let mut trainer = Trainer::new();
        let mut update = |model: &mut Model| -> f32 {
            let step = trainer.update(model, &mut optimizer, &selfplay_collective::SingleProcess, &sequences, |pass| {
                regression(&batch, pass.stats)
            });
            step.unwrap().0
        };
        let first = update(&mut model);
        let mut last = first;
        for _ in 0..150 {
            last = update(&mut model);
        }
        assert!(last < first * 0.5, "loss {first} -> {last}");
        let mse = mean_squared_error(&model, &data).unwrap();
        assert!((mse - last).abs() < 0.05 * first, "whole-data mse {mse} against the last step's {last}");
        let prompt: &[u32] = &[1, 3];
        let scores = step_scores(&model, &[prompt, prompt, prompt], &[&[4, 3, 5], &[4, 3, 6], &[]], None).unwrap();
        assert!(scores[0][0] > 0.7 && scores[1][0] < 0.3, "{scores:?}");
        assert!(scores[2].is_empty());
    }

    /// The regression's gradient, scattered to the positions it reads, against a hand-computed one: mean
    /// squared error over the completion positions `p..len`, `d/dv = (v − target) / tokens` (the learn crate's
    /// value loss carries a factor ½).
    #[test]
    fn regression_reads_and_writes_the_completion_positions() {
        let data = [Labelled::new(vec![1, 2, 3, 4], 2, true), Labelled::new(vec![1, 2, 3], 1, false)];
        let stats: Vec<TokenStats> = data
            .iter()
            .map(|d| TokenStats {
                logprobs: vec![0.0; d.tokens.len() - 1],
                entropies: vec![0.0; d.tokens.len() - 1],
                values: (0..d.tokens.len()).map(|t| 0.1 * t as f32).collect(),
            })
            .collect();
        let batch: Vec<&Labelled> = data.iter().collect();
        let (loss, grads) = regression(&batch, &stats).unwrap();
        // Completion positions: row 0 at 2, 3 (target 1); row 1 at 1, 2 (target 0).
        let errors = [(0.2f32 - 1.0), (0.3 - 1.0), 0.1, 0.2];
        let want_loss = errors.iter().map(|e| 0.5 * e * e).sum::<f32>() / 4.0;
        assert!((loss - want_loss).abs() < 1e-6, "{loss} vs {want_loss}");
        let d0 = grads[0].as_grads().d_values.unwrap().to_vec();
        let d1 = grads[1].as_grads().d_values.unwrap().to_vec();
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(close(&d0, &[0.0, 0.0, errors[0] / 4.0, errors[1] / 4.0]), "{d0:?}");
        assert!(close(&d1, &[0.0, errors[2] / 4.0, errors[3] / 4.0]), "{d1:?}");
        assert!(grads.iter().all(|g| g.as_grads().d_logprobs.iter().all(|&d| d == 0.0)));
    }
}
