//! The recipe's last stage: the test-time sweep on the trained policy, then `model/` and the report.
//!
//! It takes no steps: the sweep is deterministic, so a run resumed at this stage simply runs it again. With
//! `[value_model] enabled` the value stage's `value_model/` judges `best_of_n_value`, `weighted_vote` and the step
//! searches' partial solutions.

use std::time::Instant;

use selfplay_model::SamplingParams;
use selfplay_model::{HostAccess, Model, ModelDir};
use selfplay_tasks::Task;

use super::compute_optimal::{ComputeOptimalPoint, compute_optimal};
use super::data::RecipeData;
use super::error::O1Error;
use super::eval::{EvalConfig, EvalError, sampling_sweep};
use super::record::O1Record;
use super::report::{Report, fit_rl_curve, write_report};
use super::thinking::thinking_curve;
use crate::engine::{Context, Restored, Stage, StepRecord};
use crate::optimizer::ModelOptimizer;
use crate::rollout::step_search::{TransformerPolicy, sweep_with};
use crate::rollout::{Outcomes, TestTimePoint};

/// The evaluation stage; holds the report once it has run.
#[derive(Debug)]
pub struct EvalStage<'a> {
    data: &'a RecipeData,
    report: Option<Report>,
}

impl<'a> EvalStage<'a> {
    /// The stage over `data`.
    pub fn new(data: &'a RecipeData) -> Self {
        EvalStage { data, report: None }
    }

    /// The report, once the stage has finished.
    pub fn into_report(self) -> Option<Report> {
        self.report
    }
}

impl<B: HostAccess + Clone> Stage<O1Record, B> for EvalStage<'_> {
    type Error = O1Error;

    fn name(&self) -> &'static str {
        "eval"
    }

    fn steps(&self) -> u64 {
        0
    }

    fn start(&mut self, _: &mut Context<'_, O1Record, B>, _: u64, _: Restored) -> Result<(), O1Error> {
        Ok(())
    }

    fn step(&mut self, _: &mut Context<'_, O1Record, B>, _: u64) -> Result<StepRecord, O1Error> {
        Err(O1Error::NotStarted("eval"))
    }

    fn optimizer(&self) -> Option<&ModelOptimizer> {
        None
    }

    fn finish(&mut self, cx: &mut Context<'_, O1Record, B>) -> Result<(), O1Error> {
        let data = self.data;
        let config = &data.config;
        let model = &cx.model;
        let sft_accuracy = cx.record.sft_accuracy.ok_or(O1Error::MissingSftAccuracy)?;
        let rl_accuracy = cx.record.train_curve.last().map_or(sft_accuracy, |p| p.accuracy);
        eprintln!("after RL: greedy accuracy {rl_accuracy:.3}; test-time sweep at budgets {:?}", config.eval.budgets);
        let eval_config = EvalConfig {
            max_new_tokens: config.max_new_tokens,
            sampling: SamplingParams { temperature: config.eval.temperature, ..SamplingParams::default() },
            budgets: config.eval.budgets.clone(),
            seed: config.seed,
            step_aggregation: config.eval.step_aggregation,
        };
        let value_model = if config.value_model.enabled {
            let saved = ModelDir::load(&cx.out.join("value_model"))?;
            Some(Model::with_backend(saved.config, saved.weights, model.backend().clone())?)
        } else {
            None
        };
        let started = Instant::now();
        let sweep =
            sampling_sweep(model, value_model.as_ref(), data.tokenizer.as_ref(), &data.task, &data.eval, &eval_config)?;
        let mut points = sweep.points;
        eprintln!("test-time sweep, sampling methods: {:.0} s", started.elapsed().as_secs_f64());
        if !config.eval.search_methods.is_empty() && !config.eval.budgets.is_empty() {
            let started = Instant::now();
            let mut policy = TransformerPolicy::new(
                model,
                data.tokenizer.as_ref(),
                &data.task,
                &data.eval,
                &config.eval.search,
                config.max_new_tokens,
                config.seed,
            )
            .and_then(|policy| policy.judged_by(value_model.as_ref()))
            .map_err(EvalError::from)?;
            points.extend(
                sweep_with(&mut policy, &config.eval.search_methods, &config.eval.budgets).map_err(EvalError::from)?,
            );
            eprintln!("test-time sweep, step searches: {:.0} s", started.elapsed().as_secs_f64());
        }
        let (points, outcomes): (Vec<TestTimePoint>, Vec<Outcomes>) = points.into_iter().unzip();
        let compute_optimal = compute_optimal_curves(&outcomes, &sweep.difficulty, config.eval.difficulty_bins);

        let thinking = thinking_curve(model, data.tokenizer.as_ref(), &data.task, &data.eval, config.max_new_tokens)?;
        let budgets: Vec<String> = thinking.iter().map(|p| format!("{}: {:.3}", p.max_tokens, p.accuracy)).collect();
        eprintln!("thinking length (most tokens: greedy accuracy): {}", budgets.join(", "));

        let rl_fit = fit_rl_curve(&cx.record.train_curve);
        if let Some(f) = &rl_fit {
            eprintln!(
                "train-time fit: {:+.3} greedy accuracy a decade of RL FLOPs over {:.2} decades (R² {:.3})",
                f.slope_per_decade, f.decades, f.r_squared
            );
        }
        data.save_model(model, &cx.out.join("model"), cx.collective)?;
        let report = Report {
            task: data.task.name().into(),
            eval_problems: data.eval.len(),
            wall_seconds: cx.clock.elapsed(),
            sft_accuracy,
            rl_accuracy,
            sft_curve: cx.record.sft_curve.clone(),
            train_curve: cx.record.train_curve.clone(),
            rl_fit,
            value_model: cx.record.value_model.clone(),
            test_time: points,
            compute_optimal,
            sft_traces: cx.record.sft_traces.clone(),
            thinking,
        };
        if cx.collective.is_root() {
            let files = write_report(cx.out, &report)?;
            eprintln!("wrote {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
        }
        self.report = Some(report);
        Ok(())
    }
}

/// The cross-fitted compute-optimal curves over every option of the sweep, with the verifier and without it, and
/// the policy's value on each prompt as the difficulty estimate; empty when they cannot be fitted (fewer than two
/// problems, no bin).
fn compute_optimal_curves(options: &[Outcomes], difficulty: &[f32], bins: usize) -> Vec<ComputeOptimalPoint> {
    let mut curves = Vec::new();
    for verifier in [true, false] {
        match compute_optimal(options, difficulty, bins, verifier) {
            Ok(curve) => curves.extend(curve),
            Err(err) => eprintln!("compute-optimal allocation skipped: {err}"),
        }
    }
    curves
}
