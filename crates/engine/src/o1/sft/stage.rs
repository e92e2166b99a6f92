//! Policy initialisation as the recipe's first stage.

use selfplay_model::HostAccess;

use super::{SftError, SftExample, proposer_examples, sft_examples};
use crate::engine::{Context, Restored, Stage, StepRecord};
use crate::flops::train_flops_per_token;
use crate::o1::data::RecipeData;
use crate::o1::error::O1Error;
use crate::o1::record::{O1Record, SftPoint, TrainPoint};
use crate::optimizer::{ModelOptimizer, OptimConfig};
use crate::train::Trainer;

/// Policy initialisation as a stage: `[sft] steps` supervised steps on the training problems' solution traces
/// (none when the run starts from `init_from`). Its end saves `sft_model/` and measures the greedy held-out
/// accuracy, the train-time curve's first point.
#[derive(Debug)]
pub struct SftStage<'a> {
    data: &'a RecipeData,
    examples: Vec<SftExample>,
    optimizer: Option<ModelOptimizer>,
    trainer: Trainer,
}

impl<'a> SftStage<'a> {
    /// The stage over `data`.
    pub fn new(data: &'a RecipeData) -> Self {
        SftStage { data, examples: Vec::new(), optimizer: None, trainer: Trainer::new() }
    }

    /// `[sft] steps`, or none when the run starts from `init_from`.
    fn total_steps(&self) -> u64 {
        if self.data.config.init_from.is_some() { 0 } else { self.data.config.sft.steps }
    }
}

impl<B: HostAccess + Clone> Stage<O1Record, B> for SftStage<'_> {
    type Error = O1Error;

    fn name(&self) -> &'static str {
        "sft"
    }

    fn label(&self) -> String {
        "policy init (SFT)".into()
    }

    fn steps(&self) -> u64 {
        self.total_steps()
    }

    fn start(&mut self, cx: &mut Context<'_, O1Record, B>, done: u64, restored: Restored) -> Result<(), O1Error> {
        let config = &self.data.config;
        let steps = self.total_steps();
        let optim = OptimConfig::warmup_cosine(config.sft.lr, config.sft.weight_decay, steps);
        let mut optimizer = ModelOptimizer::new(cx.model.weights(), optim).map_err(SftError::from)?;
        if let Some(moments) = restored.optimizer {
            optimizer.restore(moments).map_err(SftError::from)?;
        }
        self.optimizer = Some(optimizer);
        if done < steps {
            let data = self.data;
            let problems = data.sft_problems();
            let (mut examples, mut stats) = sft_examples(
                &data.task,
                data.tokenizer.as_ref(),
                &problems,
                &config.sft.traces,
                config.sft.stream_max_lines,
                config.max_new_tokens,
            )?;
            let (proposals, proposal_stats) =
                proposer_examples(data.tokenizer.as_ref(), &problems, config.sft.proposer_every)?;
            examples.extend(proposals);
            stats.extend(proposal_stats);
            for s in &stats {
                eprintln!(
                    "SFT traces {}: {} of {} problems ({} missed by the search, {} longer than max_new_tokens), \
                     {:.1} tokens on average",
                    s.kind, s.traces, s.problems, s.missed, s.too_long, s.mean_tokens
                );
            }
            if examples.is_empty() {
                return Err(SftError::NoTraces(config.max_new_tokens).into());
            }
            self.examples = examples;
            cx.record.sft_traces = stats;
            // Checked before the first step, not by the model on whichever batch first draws the longest trace.
            let longest = self.examples.iter().map(|e| e.tokens.len()).max().unwrap_or(0);
            config.check_sequence(longest, "the SFT examples (BOS, prompt, solution trace, EOS)")?;
        }
        Ok(())
    }

    fn step(&mut self, cx: &mut Context<'_, O1Record, B>, step: u64) -> Result<StepRecord, O1Error> {
        let config = &self.data.config;
        let optimizer = self.optimizer.as_mut().ok_or(O1Error::NotStarted("sft"))?;
        let (examples, batch_size) = (&self.examples, config.sft.batch_size);
        let m = super::step(
            &mut cx.model,
            optimizer,
            &mut self.trainer,
            examples,
            batch_size,
            config.seed,
            step,
            cx.collective,
        )?;
        let context = m.tokens / (2 * config.sft.batch_size);
        let flops = m.tokens as f64 * train_flops_per_token(cx.model.config(), context);
        cx.record.sft_flops += flops;
        cx.record.train_flops += flops;
        let every = config.sft.eval_every;
        // The last step's accuracy is measured by `finish`, after the model is saved.
        if every > 0 && step.is_multiple_of(every) && step < self.total_steps() {
            let accuracy = self.data.greedy_accuracy(&cx.model, cx.collective)?;
            cx.record.sft_curve.push(SftPoint { step, train_flops: cx.record.train_flops, accuracy });
        }
        let mut message = format!("loss {:.3}", m.loss);
        if let Some(last) = cx.record.sft_curve.last() {
            message += &format!(" (greedy {:.3} at step {})", last.accuracy, last.step);
        }
        Ok(StepRecord::new(&m, message)?)
    }

    fn optimizer(&self) -> Option<&ModelOptimizer> {
        self.optimizer.as_ref()
    }

    fn finish(&mut self, cx: &mut Context<'_, O1Record, B>) -> Result<(), O1Error> {
        self.examples = Vec::new();
        self.trainer = Trainer::new();
        self.data.save_model(&cx.model, &cx.out.join("sft_model"), cx.collective)?;
        let accuracy = self.data.greedy_accuracy(&cx.model, cx.collective)?;
        eprintln!("after policy initialisation: greedy accuracy {accuracy:.3}");
        cx.record.sft_accuracy = Some(accuracy);
        let steps = self.total_steps();
        if steps > 0 {
            cx.record.sft_curve.push(SftPoint { step: steps, train_flops: cx.record.train_flops, accuracy });
        }
        cx.record.train_curve =
            vec![TrainPoint { step: 0, train_flops: cx.record.train_flops, accuracy, proposals: None }];
        Ok(())
    }
}
