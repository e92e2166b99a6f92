//! RL as a stage of the o1 recipe: `[rl] steps` steps from the policy SFT left, the held-out greedy accuracy
//! measured every `[eval] every` steps (the train-time curve), every step's FLOPs charged to it.

use selfplay_model::{CpuBackend, HostAccess, Model, ModelDir};

use super::{RlError, step};
use crate::engine::{Context, Restored, Stage, StepRecord};
use crate::flops::{forward_flops_per_token, train_flops_per_token};
use crate::o1::config::RunConfig;
use crate::o1::data::RecipeData;
use crate::o1::error::O1Error;
use crate::o1::record::{O1Record, TrainPoint};
use crate::optimizer::ModelOptimizer;
use crate::train::Trainer;

/// The RL stage.
pub struct RlStage<'a, B: HostAccess = CpuBackend> {
    data: &'a RecipeData,
    optimizer: Option<ModelOptimizer>,
    trainer: Trainer,
    /// The frozen policy the KL penalty pulls toward (`sft_model/`), when the penalty is on.
    reference: Option<Model<B>>,
}

impl<B: HostAccess> std::fmt::Debug for RlStage<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RlStage").field("reference", &self.reference.is_some()).finish_non_exhaustive()
    }
}

impl<'a, B: HostAccess> RlStage<'a, B> {
    /// The stage over `data`.
    pub fn new(data: &'a RecipeData) -> Self {
        RlStage { data, optimizer: None, trainer: Trainer::new(), reference: None }
    }
}

impl<B: HostAccess + Clone> Stage<O1Record, B> for RlStage<'_, B> {
    type Error = O1Error;

    fn name(&self) -> &'static str {
        "rl"
    }

    fn label(&self) -> String {
        format!("RL ({})", self.data.config.rl.algorithm.name())
    }

    fn steps(&self) -> u64 {
        self.data.config.rl.steps
    }

    fn start(&mut self, cx: &mut Context<'_, O1Record, B>, done: u64, restored: Restored) -> Result<(), O1Error> {
        let config = &self.data.config;
        let mut optimizer = ModelOptimizer::new(cx.model.weights(), config.rl.optim_config()).map_err(RlError::from)?;
        if let Some(moments) = restored.optimizer {
            optimizer.restore(moments).map_err(RlError::from)?;
        }
        self.optimizer = Some(optimizer);
        self.reference = if config.rl.kl_coef > 0.0 && done < self.steps() {
            let saved = ModelDir::load(&cx.out.join("sft_model"))?;
            Some(Model::with_backend(saved.config, saved.weights, cx.model.backend().clone())?)
        } else {
            None
        };
        Ok(())
    }

    fn step(&mut self, cx: &mut Context<'_, O1Record, B>, index: u64) -> Result<StepRecord, O1Error> {
        let data = self.data;
        let config = &data.config;
        let optimizer = self.optimizer.as_mut().ok_or(O1Error::NotStarted("rl"))?;
        let numbers = config.rl_numbers(index);
        let proposer = RunConfig::task_of(numbers);
        let m = step(
            &mut cx.model,
            self.reference.as_ref(),
            optimizer,
            &mut self.trainer,
            data.tokenizer.as_ref(),
            &data.task,
            data.rl_problems(index),
            &config.rl,
            config.max_new_tokens,
            config.seed,
            index,
            cx.collective,
            Some(&proposer),
        )?;
        let model_config = cx.model.config();
        let context = config.max_new_tokens / 2;
        let rollout_flops = if m.search_flops > 0.0 {
            m.search_flops
        } else {
            m.rollout_tokens as f64 * forward_flops_per_token(model_config, context)
        };
        let update_flops = m.terms.tokens as f64 * train_flops_per_token(model_config, context);
        cx.record.train_flops += rollout_flops + m.selection_flops + update_flops;
        if let Some(proposals) = &m.proposals {
            cx.record.proposal_window.get_or_insert_default().absorb(proposals);
        }
        if index.is_multiple_of(config.eval.every) || index == self.steps() {
            let accuracy = data.greedy_accuracy(&cx.model, cx.collective)?;
            let proposals = cx.record.proposal_window.take();
            cx.record.train_curve.push(TrainPoint {
                step: index,
                train_flops: cx.record.train_flops,
                accuracy,
                proposals,
            });
        }
        let stage = if config.task.curriculum.is_empty() { String::new() } else { format!("{numbers} numbers: ") };
        let proposed = match &m.proposals {
            Some(p) => format!(" proposed {}/{} solve {:.2}", p.certified, p.proposed, p.solve_rate.unwrap_or(0.0)),
            None => String::new(),
        };
        let message = format!("{stage}reward {:.2} acc {:.2}{proposed}", m.reward_mean, m.train_accuracy);
        Ok(StepRecord::new(&m, message)?)
    }

    fn optimizer(&self) -> Option<&ModelOptimizer> {
        self.optimizer.as_ref()
    }

    fn finish(&mut self, _cx: &mut Context<'_, O1Record, B>) -> Result<(), O1Error> {
        self.reference = None;
        self.trainer = Trainer::new();
        Ok(())
    }
}
