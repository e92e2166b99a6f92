//! The o1 loop on Countdown as a list of stages, from a randomly initialised transformer to the two scaling
//! curves, resumable at any step:
//!
//! 1. `sft` ([`SftStage`]): supervised training on optimal solution traces (saved as `sft_model/`);
//! 2. `rl` ([`RlStage`]): GRPO, RLOO, PPO with GAE or expert iteration with the exact verifier as reward, the
//!    held-out greedy accuracy measured along the way (the train-time compute curve);
//! 3. `value` ([`ValueStage`], only with `[value_model] enabled`): a value model trained on the policy's labelled
//!    samples (saved as `value_model/`), the judge of `best_of_n_value` and `weighted_vote`;
//! 4. `eval` ([`EvalStage`]): test-time compute: held-out accuracy of each method at each budget (the test-time
//!    curves); the report (`report.json`, `report.md`, SVG and PNG plots) and the
//!    final model as a Hugging Face directory (`model/`).
//!
//! The [`Runner`] writes `metrics.jsonl` and `config.toml`, checkpoints every `checkpoint.every` steps, at each
//! stage's end and whenever the stop signal fires (Ctrl-C); a resumed run continues bit-identically.

use std::path::{Path, PathBuf};

use selfplay_collective::{Collective, SingleProcess};
use selfplay_model::{CpuBackend, DEFAULT_INIT_STD, HostAccess, Model, ModelDir, init_weights};

use super::config::RunConfig;
use super::data::RecipeData;
use super::error::O1Error;
use super::record::O1Record;
use super::report::Report;
use super::rl::RlStage;
use super::sft::SftStage;
use super::sweep::EvalStage;
use super::value_model::ValueStage;
use crate::engine::runner::Resumed;
use crate::engine::{
    CheckpointDir, Context, EngineError, Outcome as RunnerOutcome, RunClock, RunStart, Runner, RunnerSettings, Stage,
    StopSignal,
};

/// Where the demo writes by default.
pub fn default_out() -> PathBuf {
    PathBuf::from("runs/demo")
}

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Every stage ran; the report is written.
    Finished(Box<Report>),
    /// The stop signal fired; the state is checkpointed in `checkpoint`.
    Interrupted {
        /// The stage it stopped in.
        stage: &'static str,
        /// Steps of that stage completed.
        step: u64,
        /// The checkpoint written.
        checkpoint: PathBuf,
    },
}

/// The settings of the run checkpointed in `out`, to resume it with (`None` when it has no checkpoint).
pub fn saved_config(out: &Path) -> Result<Option<RunConfig>, O1Error> {
    let state = CheckpointDir::of_run(out).load_latest_state::<RunConfig, O1Record>()?;
    Ok(state.map(|s| s.config))
}

/// Runs (or, with [`RunStart::Resume`], continues) the loop under `config`, writing everything under `out`, on
/// the CPU.
///
/// A new run is refused when `out` already holds a run, unless `start` is [`RunStart::Overwrite`], which
/// removes that run's own files first. A resumed run requires `out`'s checkpoint to have been written with the
/// same `config`; without any checkpoint it starts from the beginning.
pub fn run(config: &RunConfig, out: &Path, start: RunStart, stop: StopSignal<'_>) -> Result<Outcome, O1Error> {
    run_on(CpuBackend, &SingleProcess, config, out, start, stop)
}

/// [`run`] with every model (policy, reference, value model) on `backend` (a GPU backend, or one that wraps
/// the CPU's to count or replace ops), data-parallel over `collective`'s ranks: each rank generates its share
/// of every step's rollouts and trains on its share of every batch; rank 0 writes the run's files.
pub fn run_on<B: HostAccess + Clone>(
    backend: B,
    collective: &dyn Collective,
    config: &RunConfig,
    out: &Path,
    start: RunStart,
    stop: StopSignal<'_>,
) -> Result<Outcome, O1Error> {
    config.validate()?;
    let settings = RunnerSettings { checkpoint_every: config.checkpoint.every, keep: config.checkpoint.keep };
    // The directory is opened (and a new run into an earlier one refused) before any work or output. The
    // checkpoints keep the recipe's tokenizer, which a BPE learns from the problems generated next.
    let (mut runner, checkpoint) = Runner::open::<O1Record>(out, config, settings, None, start, stop, collective)?;
    let data = RecipeData::generate(config)?;
    runner.save_tokenizer(data.tokenizer.as_ref());

    let (mut sft, mut rl, mut eval) = (SftStage::new(&data), RlStage::new(&data), EvalStage::new(&data));
    let mut value = ValueStage::new(&data);
    let stages: &mut [&mut dyn Stage<O1Record, B, Error = O1Error>] = if config.value_model.enabled {
        &mut [&mut sft, &mut rl, &mut value, &mut eval]
    } else {
        &mut [&mut sft, &mut rl, &mut eval]
    };
    let (mut cx, resumed) = match checkpoint {
        Some(checkpoint) => {
            let positions: Vec<(&str, u64)> = stages.iter().map(|s| (s.name(), s.steps())).collect();
            let expected = config.model_config(data.tokenizer.as_ref());
            CheckpointDir::of_run(out).check_resumable(&checkpoint, &expected, &positions)?;
            let (resumed, state, saved) = Resumed::from_checkpoint(checkpoint);
            if let Some(saved_tokenizer) = &saved.tokenizer
                && saved_tokenizer.to_hf_json()? != data.tokenizer.to_hf_json()?
            {
                return Err(O1Error::TokenizerChanged);
            }
            let model = Model::with_backend(saved.config, saved.weights, backend)?;
            let clock = RunClock::starting_at(state.elapsed_seconds);
            (Context { model, record: state.record, out, clock, collective }, Some(resumed))
        }
        None => {
            let model = initial_model(config, &data, backend)?;
            let clock = RunClock::starting_at(0.0);
            (Context { model, record: O1Record::default(), out, clock, collective }, None)
        }
    };
    // Written once the checkpoint is known good: a refused resume leaves the run as it was.
    if collective.is_root() {
        let config_file = out.join("config.toml");
        std::fs::write(&config_file, config.to_toml()?).map_err(EngineError::io(&config_file))?;
    }
    match runner.run(&mut cx, stages, resumed)? {
        RunnerOutcome::Interrupted { stage, step, checkpoint } => Ok(Outcome::Interrupted { stage, step, checkpoint }),
        RunnerOutcome::Finished => {
            let report = eval.into_report().ok_or(O1Error::NotStarted("eval"))?;
            Ok(Outcome::Finished(Box::new(report)))
        }
    }
}

/// The model before training: `init_from`'s, or a random one.
fn initial_model<B: HostAccess>(config: &RunConfig, data: &RecipeData, backend: B) -> Result<Model<B>, O1Error> {
    let expected = config.model_config(data.tokenizer.as_ref());
    let model = match &config.init_from {
        Some(dir) => {
            let saved = ModelDir::load(dir)?;
            if saved.config != expected {
                return Err(O1Error::InitShape { dir: dir.clone() });
            }
            Model::with_backend(saved.config, saved.weights, backend)?
        }
        None => {
            Model::with_backend(expected.clone(), init_weights(&expected, DEFAULT_INIT_STD, config.seed)?, backend)?
        }
    };
    eprintln!("model: {} parameters", model.weights().num_params());
    Ok(model)
}
