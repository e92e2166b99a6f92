//! The value model as a stage of the o1 recipe: labelled samples of the policy, then `[value_model] steps`
//! regression steps on a copy of it, through the engine's one training path.

use selfplay_model::{CpuBackend, HostAccess, Model};
use serde::Serialize;

use super::{Labelled, ValueModelError, ValueModelReport, label, mean_squared_error, regression};
use crate::engine::{Context, Restored, Stage, StepRecord};
use crate::o1::data::RecipeData;
use crate::o1::error::O1Error;
use crate::o1::record::O1Record;
use crate::optimizer::{ModelOptimizer, OptimConfig};
use crate::train::{Trainer, draw_with_replacement};

/// The stream of the generator that draws the value model's batches.
const BATCH_STREAM: u64 = 0x7A1;

/// Trains the value model: [`Stage::start`] samples and labels the data (deterministic, so a resumed run
/// labels the same) and copies the policy (or takes the checkpoint's value model); each step is one
/// regression update; [`Stage::finish`] measures it on all its data and saves `value_model/`, which the
/// evaluation stage loads.
pub struct ValueStage<'a, B: HostAccess = CpuBackend> {
    data: &'a RecipeData,
    labelled: Vec<Labelled>,
    model: Option<Model<B>>,
    optimizer: Option<ModelOptimizer>,
    trainer: Trainer,
}

impl<B: HostAccess> std::fmt::Debug for ValueStage<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueStage").field("labelled", &self.labelled.len()).finish_non_exhaustive()
    }
}

impl<'a, B: HostAccess> ValueStage<'a, B> {
    /// The stage over `data` (`[value_model]` settings).
    pub fn new(data: &'a RecipeData) -> Self {
        ValueStage { data, labelled: Vec::new(), model: None, optimizer: None, trainer: Trainer::new() }
    }
}

/// One regression step: a line of `metrics.jsonl`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
struct ValueStepMetrics {
    step: u64,
    /// Mean squared error of the batch (before the update).
    loss: f32,
    grad_norm: f32,
    lr: f32,
    /// Tokens the step ran forward and backward over.
    tokens: usize,
}

impl<B: HostAccess + Clone> Stage<O1Record, B> for ValueStage<'_, B> {
    type Error = O1Error;

    fn name(&self) -> &'static str {
        "value"
    }

    fn label(&self) -> String {
        "value model".into()
    }

    fn steps(&self) -> u64 {
        self.data.config.value_model.steps
    }

    fn start(&mut self, cx: &mut Context<'_, O1Record, B>, done: u64, restored: Restored) -> Result<(), O1Error> {
        let (data, config) = (self.data, &self.data.config);
        let settings = &config.value_model;
        if data.train.is_empty() || settings.problems == 0 || settings.samples_per_problem == 0 {
            return Err(ValueModelError::Empty.into());
        }
        let problems = &data.train[..settings.problems.min(data.train.len())];
        let (tokenizer, task) = (data.tokenizer.as_ref(), &data.task);
        let (samples, rollouts) = (settings.samples_per_problem, settings.rollouts);
        let started = std::time::Instant::now();
        let labels = if rollouts > 0 {
            format!("process labels from {rollouts} continuations a step")
        } else {
            "outcome labels".to_string()
        };
        eprintln!("value model: sampling {samples} completions of {} problems, {labels}", problems.len());
        let labelled =
            label(&cx.model, tokenizer, task, problems, samples, rollouts, config.max_new_tokens, config.seed)?;
        if rollouts > 0 {
            let p = &labelled.process;
            eprintln!(
                "value model: {} steps labelled (mean label {:.3}, {} continuation tokens) in {:.0} s",
                p.steps,
                p.mean_label,
                p.tokens,
                started.elapsed().as_secs_f64()
            );
        }
        self.labelled = labelled.data;
        let model = match restored.stage_model {
            Some(saved) => Model::with_backend(saved.config, saved.weights, cx.model.backend().clone())?,
            None => cx.model.clone(),
        };
        let optim = OptimConfig::warmup_cosine(settings.lr, 0.0, settings.steps);
        let mut optimizer = ModelOptimizer::new(model.weights(), optim).map_err(ValueModelError::from)?;
        if let Some(moments) = restored.optimizer {
            optimizer.restore(moments).map_err(ValueModelError::from)?;
        }
        (self.model, self.optimizer) = (Some(model), Some(optimizer));
        if done == 0 {
            let positives = self.labelled.iter().filter(|d| d.correct).count();
            cx.record.value_model = Some(ValueModelReport {
                samples: self.labelled.len(),
                positive_rate: positives as f64 / self.labelled.len() as f64,
                final_loss: None,
                sampled_tokens: self.labelled.iter().map(|d| d.tokens.len() - d.prompt_len).sum(),
                trained_tokens: 0,
                labelled_steps: labelled.process.steps,
                mean_step_label: labelled.process.mean_label,
                rollout_tokens: labelled.process.tokens,
            });
        }
        Ok(())
    }

    fn step(&mut self, cx: &mut Context<'_, O1Record, B>, step: u64) -> Result<StepRecord, O1Error> {
        let config = &self.data.config;
        let (Some(model), Some(optimizer)) = (self.model.as_mut(), self.optimizer.as_mut()) else {
            return Err(O1Error::NotStarted("value"));
        };
        let batch =
            draw_with_replacement(&self.labelled, config.value_model.batch_size, config.seed, step, BATCH_STREAM);
        if batch.is_empty() {
            return Err(ValueModelError::Empty.into());
        }
        let sequences: Vec<&[u32]> = batch.iter().map(|b| b.tokens.as_slice()).collect();
        let (loss, update) =
            self.trainer.update(model, optimizer, cx.collective, &sequences, |pass| regression(&batch, pass.stats))?;
        let tokens = sequences.iter().map(|s| s.len()).sum();
        if let Some(report) = cx.record.value_model.as_mut() {
            report.trained_tokens += tokens;
        }
        let metrics = ValueStepMetrics { step, loss, grad_norm: update.grad_norm, lr: update.lr, tokens };
        Ok(StepRecord::new(&metrics, format!("mse {loss:.3}"))?)
    }

    fn optimizer(&self) -> Option<&ModelOptimizer> {
        self.optimizer.as_ref()
    }

    fn stage_model(&self) -> Option<&Model<B>> {
        self.model.as_ref()
    }

    fn finish(&mut self, cx: &mut Context<'_, O1Record, B>) -> Result<(), O1Error> {
        let model = self.model.take().ok_or(O1Error::NotStarted("value"))?;
        let mse = mean_squared_error(&model, &self.labelled)?;
        self.data.save_model(&model, &cx.out.join("value_model"), cx.collective)?;
        if let Some(report) = cx.record.value_model.as_mut() {
            report.final_loss = Some(mse);
            eprintln!(
                "value model: {} samples ({:.0}% correct), mse {mse:.3} on them",
                report.samples,
                100.0 * report.positive_rate
            );
        }
        (self.labelled, self.optimizer, self.trainer) = (Vec::new(), None, Trainer::new());
        Ok(())
    }
}
