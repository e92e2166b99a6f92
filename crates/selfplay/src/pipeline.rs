//! The whole loop on Countdown, from a randomly initialised transformer to the two scaling curves, resumable
//! at any step.
//!
//! 1. policy initialisation: supervised training on optimal solution traces (saved as `sft_model/`);
//! 2. reinforcement learning (GRPO, RLOO, PPO with GAE or expert iteration) with the exact verifier as reward,
//!    the held-out greedy accuracy measured along the way (the train-time compute curve);
//! 3. a value model trained on the final policy's verified samples (`value_model/`), then test-time compute:
//!    held-out accuracy of each method at each budget (the test-time curves);
//! 4. the report (`report.json`, `report.md`, SVG and PNG plots), `metrics.jsonl`, and the final model as a
//!    Hugging Face directory (`model/`).
//!
//! Phases 1 and 2 checkpoint every `checkpoint.every` steps, at their ends, and whenever the caller's stop
//! signal fires (Ctrl-C); a resumed run loads the newest checkpoint and continues bit-identically. The
//! test-time sweep is deterministic and simply runs again after a resume.

use std::path::{Path, PathBuf};
use std::time::Instant;

use selfplay_learn::optim::AdamWState;
use selfplay_model::{CharTokenizer, DEFAULT_INIT_STD, Model, ModelDir, SamplingParams, init_weights, save_model_dir};
use selfplay_tasks::{CountdownTask, Split, Task};
use selfplay_tensor::DType;

use crate::checkpoint::{self, Checkpoint, Phase, TrainerState};
use crate::cli::CliError;
use crate::config::RunConfig;
use crate::eval::{EvalConfig, greedy, test_time};
use crate::flops::{forward_flops_per_token, train_flops_per_token};
use crate::optimizer::{ModelOptimizer, OptimConfig};
use crate::progress::Progress;
use crate::report::{MetricsLog, Report, TrainPoint, write_report};
use crate::rl;
use crate::sft::{self, SftExample};
use crate::step_search::search_test_time_methods;
use crate::value_model;

/// Where the demo writes by default.
pub fn default_out() -> PathBuf {
    PathBuf::from("runs/demo")
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every phase ran; the report is written.
    Finished(Box<Report>),
    /// The stop signal fired; the state is checkpointed in `checkpoint`.
    Interrupted { phase: Phase, step: u64, checkpoint: PathBuf },
}

/// Asked after every completed step whether to checkpoint and stop (Ctrl-C, or a test's chosen step).
pub type StopSignal<'a> = &'a dyn Fn(Phase, u64) -> bool;

/// What one line of `metrics.jsonl` holds: the phase, then the step's own metrics.
#[derive(serde::Serialize)]
struct MetricsLine<'a, M: serde::Serialize> {
    phase: Phase,
    #[serde(flatten)]
    metrics: &'a M,
}

/// The pieces every phase works with.
struct Run<'a> {
    config: &'a RunConfig,
    out: &'a Path,
    task: CountdownTask,
    tokenizer: CharTokenizer,
    train: Vec<<CountdownTask as Task>::Problem>,
    eval: Vec<<CountdownTask as Task>::Problem>,
    metrics: MetricsLog,
    /// When this session started, and the run's wall-clock time before it.
    session_start: Instant,
    earlier_seconds: f64,
}

impl Run<'_> {
    fn elapsed(&self) -> f64 {
        self.earlier_seconds + self.session_start.elapsed().as_secs_f64()
    }
}

/// Runs (or, with `resume`, continues) the loop under `config`, writing everything under `out`.
///
/// A fresh run clears `out`'s checkpoints and metrics first. A resumed run requires `out`'s checkpoint to have
/// been written with the same `config`; without any checkpoint it starts from the beginning.
pub fn run(config: &RunConfig, out: &Path, resume: bool, stop: StopSignal<'_>) -> Result<Outcome, CliError> {
    config.validate()?;
    std::fs::create_dir_all(out)?;
    let metrics_path = out.join("metrics.jsonl");
    let checkpoint = if resume { checkpoint::load_latest(out)? } else { None };
    match &checkpoint {
        Some(c) if c.state.config != *config => {
            return Err(format!(
                "{} was started with other settings; resume it with its own (omit --config), or use another --out",
                out.display()
            )
            .into());
        }
        Some(c) => {
            eprintln!("resuming {} at {:?} step {}", out.display(), c.state.phase, c.state.step);
            MetricsLog::truncate(&metrics_path, c.state.metrics_lines)?;
        }
        None => {
            if resume {
                eprintln!("{} holds no checkpoint: starting from the beginning", out.display());
            }
            let old = out.join(checkpoint::CHECKPOINTS_DIR);
            if old.exists() {
                std::fs::remove_dir_all(&old)?;
            }
            MetricsLog::truncate(&metrics_path, 0)?;
        }
    }
    std::fs::write(out.join("config.toml"), config.to_toml()?)?;

    let task = config.task();
    eprintln!(
        "generating {} training and {} held-out Countdown problems ({} numbers)",
        config.task.train_problems, config.task.eval_problems, config.task.numbers
    );
    let train = task.generate(Split::Train, config.task.train_problems, config.seed)?;
    let eval = task.generate(Split::Val, config.task.eval_problems, config.seed)?;
    let earlier_seconds = checkpoint.as_ref().map_or(0.0, |c| c.state.elapsed_seconds);
    let mut run = Run {
        config,
        out,
        task,
        tokenizer: CharTokenizer::ascii(),
        train,
        eval,
        metrics: MetricsLog::open(&metrics_path)?,
        session_start: Instant::now(),
        earlier_seconds,
    };

    let (mut model, mut state, mut moments) = match checkpoint {
        Some(Checkpoint { state, model, optimizer }) => (model, state, Some(optimizer)),
        None => (initial_model(config, &run.tokenizer)?, fresh_state(config), None),
    };
    if state.phase == Phase::Sft
        && let Some(stopped) = initialise_policy(&mut run, &mut model, &mut state, moments.take(), stop)?
    {
        return Ok(stopped);
    }
    if let Some(stopped) = reinforce(&mut run, &mut model, &mut state, moments.take(), stop)? {
        return Ok(stopped);
    }
    evaluate_and_report(&mut run, &model, &state).map(|r| Outcome::Finished(Box::new(r)))
}

/// A run's state before its first step.
fn fresh_state(config: &RunConfig) -> TrainerState {
    TrainerState {
        phase: Phase::Sft,
        step: 0,
        config: config.clone(),
        sft_flops: 0.0,
        sft_accuracy: None,
        train_flops: 0.0,
        train_curve: Vec::new(),
        metrics_lines: 0,
        elapsed_seconds: 0.0,
        optimizer_steps: 0,
    }
}

/// The model before training: `init_from`'s, or a random one.
fn initial_model(config: &RunConfig, tokenizer: &CharTokenizer) -> Result<Model, CliError> {
    let expected = config.model_config(tokenizer);
    let model = match &config.init_from {
        Some(dir) => {
            let saved = ModelDir::load(dir)?;
            if saved.config != expected {
                return Err(format!("{} holds a model of another shape than [model]", dir.display()).into());
            }
            Model::new(saved.config, saved.weights)?
        }
        None => Model::new(expected.clone(), init_weights(&expected, DEFAULT_INIT_STD, config.seed)?)?,
    };
    eprintln!("model: {} parameters", model.weights().num_params());
    Ok(model)
}

/// Checkpoints `state` if the stop signal fires or a checkpoint is due; returns the outcome of a stop.
fn checkpoint_or_stop(
    run: &Run<'_>,
    state: &mut TrainerState,
    model: &Model,
    optimizer: &ModelOptimizer,
    stop: StopSignal<'_>,
    force: bool,
) -> Result<Option<Outcome>, CliError> {
    let stopping = stop(state.phase, state.step);
    if !(stopping || force || state.step.is_multiple_of(run.config.checkpoint.every)) {
        return Ok(None);
    }
    state.elapsed_seconds = run.elapsed();
    state.optimizer_steps = optimizer.steps();
    let dir = checkpoint::save(run.out, state, model, &run.tokenizer, optimizer)?;
    Ok(stopping.then_some(Outcome::Interrupted { phase: state.phase, step: state.step, checkpoint: dir }))
}

/// Policy initialisation: the transformer trained on the task's solution traces (no steps with `init_from`).
/// Ends with `sft_model/`, the SFT accuracy as the train-time curve's first point, and a checkpoint at RL
/// step 0.
fn initialise_policy(
    run: &mut Run<'_>,
    model: &mut Model,
    state: &mut TrainerState,
    moments: Option<AdamWState>,
    stop: StopSignal<'_>,
) -> Result<Option<Outcome>, CliError> {
    let config = run.config;
    let steps = if config.init_from.is_some() { 0 } else { config.sft.steps };
    let optim = OptimConfig {
        lr: config.sft.lr,
        weight_decay: config.sft.weight_decay,
        warmup_steps: steps / 20,
        total_steps: steps,
        max_grad_norm: 1.0,
    };
    let mut optimizer = ModelOptimizer::new(model.weights(), optim)?;
    if let Some(moments) = moments {
        optimizer.restore(moments)?;
    }
    if state.step < steps {
        let examples: Vec<SftExample> = run
            .train
            .iter()
            .filter_map(|p| {
                let trace = run.task.solution_trace(p)?;
                Some(SftExample::new(&run.tokenizer, &run.task.prompt(p), &trace))
            })
            .collect::<Result<_, _>>()?;
        let model_config = model.config().clone();
        let phase = Instant::now();
        let progress = Progress::new("policy init (SFT)", steps);
        progress.skip_to(state.step);
        while state.step < steps {
            state.step += 1;
            let m = sft::step(model, &mut optimizer, &examples, config.sft.batch_size, config.seed, state.step)?;
            let context = m.tokens / (2 * config.sft.batch_size);
            let flops = m.tokens as f64 * train_flops_per_token(&model_config, context);
            state.sft_flops += flops;
            state.train_flops += flops;
            run.metrics.write(&MetricsLine { phase: Phase::Sft, metrics: &m })?;
            state.metrics_lines += 1;
            progress.step(format!("loss {:.3}", m.loss));
            if let Some(stopped) = checkpoint_or_stop(run, state, model, &optimizer, stop, state.step == steps)? {
                progress.finish();
                return Ok(Some(stopped));
            }
        }
        progress.finish();
        eprintln!("policy initialisation: {steps} steps in {:.0} s", phase.elapsed().as_secs_f64());
    }

    save_model_dir(&run.out.join("sft_model"), model.config(), model.weights(), Some(&run.tokenizer), DType::F32)?;
    let (accuracy, _) = greedy(model, &run.tokenizer, &run.task, &run.eval, config.max_new_tokens)?;
    eprintln!("after policy initialisation: greedy accuracy {accuracy:.3}");
    state.phase = Phase::Rl;
    state.step = 0;
    state.sft_accuracy = Some(accuracy);
    state.train_curve = vec![TrainPoint { step: 0, train_flops: state.train_flops, accuracy }];
    let rl_optimizer = rl_optimizer(config, model)?;
    checkpoint_or_stop(run, state, model, &rl_optimizer, stop, true)
}

/// The RL phase's optimizer, fresh.
fn rl_optimizer(config: &RunConfig, model: &Model) -> Result<ModelOptimizer, CliError> {
    Ok(ModelOptimizer::new(model.weights(), config.rl.optim_config())?)
}

/// Reinforcement learning from `state` (RL step 0 or a checkpoint), measuring greedy held-out accuracy every
/// `eval.every` steps.
fn reinforce(
    run: &mut Run<'_>,
    model: &mut Model,
    state: &mut TrainerState,
    moments: Option<AdamWState>,
    stop: StopSignal<'_>,
) -> Result<Option<Outcome>, CliError> {
    let config = run.config;
    let mut optimizer = rl_optimizer(config, model)?;
    if let Some(moments) = moments {
        optimizer.restore(moments)?;
    }
    let steps = config.rl.steps;
    if state.step >= steps {
        return Ok(None);
    }
    // The KL penalty pulls toward the policy RL started from, saved as `sft_model/`.
    let reference = if config.rl.kl_coef > 0.0 {
        let saved = ModelDir::load(&run.out.join("sft_model"))?;
        Some(Model::new(saved.config, saved.weights)?)
    } else {
        None
    };
    let model_config = model.config().clone();
    let phase = Instant::now();
    let label = format!("RL ({})", config.rl.algorithm.name());
    let progress = Progress::new(&label, steps);
    progress.skip_to(state.step);
    while state.step < steps {
        state.step += 1;
        let m = rl::step(
            model,
            reference.as_ref(),
            &mut optimizer,
            &run.tokenizer,
            &run.task,
            &run.train,
            &config.rl,
            config.max_new_tokens,
            config.seed,
            state.step,
        )?;
        let context = config.max_new_tokens / 2;
        let rollout_flops = if m.search_flops > 0.0 {
            m.search_flops
        } else {
            m.rollout_tokens as f64 * forward_flops_per_token(&model_config, context)
        };
        state.train_flops += rollout_flops + m.update_tokens as f64 * train_flops_per_token(&model_config, context);
        run.metrics.write(&MetricsLine { phase: Phase::Rl, metrics: &m })?;
        state.metrics_lines += 1;
        progress.step(format!("reward {:.2} acc {:.2}", m.reward_mean, m.train_accuracy));
        if state.step.is_multiple_of(config.eval.every) || state.step == steps {
            let (accuracy, _) = greedy(model, &run.tokenizer, &run.task, &run.eval, config.max_new_tokens)?;
            state.train_curve.push(TrainPoint { step: state.step, train_flops: state.train_flops, accuracy });
        }
        if let Some(stopped) = checkpoint_or_stop(run, state, model, &optimizer, stop, state.step == steps)? {
            progress.finish();
            return Ok(Some(stopped));
        }
    }
    progress.finish();
    eprintln!("reinforcement: {} steps in {:.0} s", steps, phase.elapsed().as_secs_f64());
    Ok(None)
}

/// The test-time sweep on the trained model, then `model/` and the report.
fn evaluate_and_report(run: &mut Run<'_>, model: &Model, state: &TrainerState) -> Result<Report, CliError> {
    let config = run.config;
    let sft_accuracy = state.sft_accuracy.ok_or("the run reached evaluation without an SFT accuracy")?;
    let rl_accuracy = state.train_curve.last().map_or(sft_accuracy, |p| p.accuracy);
    eprintln!("after RL: greedy accuracy {rl_accuracy:.3}; test-time sweep at budgets {:?}", config.eval.budgets);
    let eval_config = EvalConfig {
        max_new_tokens: config.max_new_tokens,
        sampling: SamplingParams { temperature: config.eval.temperature, ..SamplingParams::default() },
        budgets: config.eval.budgets.clone(),
        seed: config.seed,
    };
    let value_model = if config.value_model.enabled {
        let (value_model, trained) = value_model::train(
            model,
            &run.tokenizer,
            &run.task,
            &run.train,
            &config.value_model,
            config.max_new_tokens,
            config.seed,
        )?;
        eprintln!(
            "value model: {} samples ({:.0}% correct), final mse {:.3}, {:.0} s",
            trained.samples,
            100.0 * trained.positive_rate,
            trained.final_loss,
            trained.seconds
        );
        let dir = run.out.join("value_model");
        save_model_dir(&dir, value_model.config(), value_model.weights(), Some(&run.tokenizer), DType::F32)?;
        Some(value_model)
    } else {
        None
    };
    let phase = Instant::now();
    let mut test_time = test_time(model, value_model.as_ref(), &run.tokenizer, &run.task, &run.eval, &eval_config)?;
    eprintln!("test-time sweep, sampling methods: {:.0} s", phase.elapsed().as_secs_f64());
    if !config.eval.search_methods.is_empty() && !config.eval.budgets.is_empty() {
        let phase = Instant::now();
        test_time.extend(search_test_time_methods(
            model,
            &run.tokenizer,
            &run.task,
            &run.eval,
            &config.eval.search_methods,
            &config.eval.budgets,
            &config.eval.search,
            config.max_new_tokens,
            config.seed,
        )?);
        eprintln!("test-time sweep, step searches: {:.0} s", phase.elapsed().as_secs_f64());
    }

    save_model_dir(&run.out.join("model"), model.config(), model.weights(), Some(&run.tokenizer), DType::F32)?;
    let report = Report {
        task: run.task.name().into(),
        eval_problems: run.eval.len(),
        wall_seconds: run.elapsed(),
        sft_accuracy,
        rl_accuracy,
        train_curve: state.train_curve.clone(),
        test_time,
    };
    let files = write_report(run.out, &report)?;
    eprintln!("wrote {}", files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(", "));
    Ok(report)
}
