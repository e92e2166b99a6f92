//! Training checkpoints: everything a killed run needs to continue bit-identically.
//!
//! A checkpoint is a Hugging Face model directory (weights in f32, so nothing is rounded) plus
//! `optimizer.safetensors` (AdamW's moments, `m.<param>` and `v.<param>`) and `trainer_state.json` (phase,
//! step, the run's config and everything measured so far). Each is written whole into its own directory
//! `checkpoints/<phase>-<step>/` (temporary name, fsync, rename), and only then does the one-line file
//! `checkpoints/latest` switch to it, atomically: a crash at any instant leaves the previous checkpoint or
//! the new one, never a mixture. Every step of the loop is a pure function of (weights, optimizer state,
//! seed, step index), so these files are the whole state: no RNG stream or data cursor needs saving.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use selfplay_learn::optim::AdamWState;
use selfplay_model::safetensors_io::{read_safetensors, serialize};
use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{Model, ModelDir, save_model_dir_with, write_file_atomic};
use selfplay_tensor::{DType, Tensor};
use serde::{Deserialize, Serialize};

use crate::cli::CliError;
use crate::config::RunConfig;
use crate::optimizer::ModelOptimizer;
use crate::report::TrainPoint;

/// Directory of a run's checkpoints.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// File in [`CHECKPOINTS_DIR`] naming the newest complete checkpoint.
pub const LATEST_FILE: &str = "latest";
/// The trainer's state inside a checkpoint.
pub const TRAINER_STATE_FILE: &str = "trainer_state.json";
/// The optimizer's moments inside a checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

/// Which part of the loop a checkpoint was taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Policy initialisation (supervised).
    Sft,
    /// Reinforcement learning.
    Rl,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Sft => "sft",
            Phase::Rl => "rl",
        }
    }
}

/// Where a run stands: what `trainer_state.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    pub phase: Phase,
    /// Steps of `phase` completed.
    pub step: u64,
    /// The run's settings (a resumed run must use the same ones).
    pub config: RunConfig,
    /// FLOPs spent on policy initialisation.
    pub sft_flops: f64,
    /// Greedy held-out accuracy after policy initialisation, once measured.
    pub sft_accuracy: Option<f64>,
    /// FLOPs spent on training so far (SFT and RL).
    pub train_flops: f64,
    /// The train-time curve so far.
    pub train_curve: Vec<TrainPoint>,
    /// Lines of `metrics.jsonl` written up to this checkpoint (later lines are dropped on resume: the resumed
    /// run writes them again).
    pub metrics_lines: u64,
    /// Wall-clock seconds spent by the run up to this checkpoint, over all its sessions.
    pub elapsed_seconds: f64,
    /// Updates the phase's optimizer has taken (its learning-rate schedule and bias correction read it).
    pub optimizer_steps: u64,
}

/// A checkpoint read back.
#[derive(Debug)]
pub struct Checkpoint {
    pub state: TrainerState,
    pub model: Model,
    pub optimizer: AdamWState,
}

/// Writes a checkpoint of `model` and `optimizer` at `state`, points `checkpoints/latest` at it, and
/// deletes all but the newest `keep` checkpoints. Returns the checkpoint's directory.
pub fn save(
    run_dir: &Path,
    state: &TrainerState,
    model: &Model,
    tokenizer: &dyn Tokenizer,
    optimizer: &ModelOptimizer,
) -> Result<PathBuf, CliError> {
    let root = run_dir.join(CHECKPOINTS_DIR);
    std::fs::create_dir_all(&root)?;
    let name = format!("{}-{:07}", state.phase.name(), state.step);
    let dir = root.join(&name);
    let state_json = serde_json::to_string_pretty(state)? + "\n";
    let moments = optimizer_tensors(model, optimizer.state())?;
    let optimizer_bytes = serialize(moments.iter().map(|(name, t)| (name.clone(), t)), DType::F32)?;
    let extra: [(&str, &[u8]); 2] = [(OPTIMIZER_FILE, &optimizer_bytes), (TRAINER_STATE_FILE, state_json.as_bytes())];
    save_model_dir_with(&dir, model.config(), model.weights(), Some(tokenizer), DType::F32, &extra)?;
    write_file_atomic(&root.join(LATEST_FILE), name.as_bytes())?;
    prune(&root, &name, state.config.checkpoint.keep)?;
    Ok(dir)
}

/// The newest complete checkpoint of the run in `run_dir`, or `None` when it has none.
pub fn load_latest(run_dir: &Path) -> Result<Option<Checkpoint>, CliError> {
    latest_dir(run_dir)?.map(|dir| load(&dir)).transpose()
}

/// Only the trainer state of the newest checkpoint (cheap: no weights are read).
pub fn load_latest_state(run_dir: &Path) -> Result<Option<TrainerState>, CliError> {
    latest_dir(run_dir)?.map(|dir| read_state(&dir)).transpose()
}

/// The directory `checkpoints/latest` names, or `None` when the run has no checkpoint.
fn latest_dir(run_dir: &Path) -> Result<Option<PathBuf>, CliError> {
    let root = run_dir.join(CHECKPOINTS_DIR);
    let latest = match std::fs::read_to_string(root.join(LATEST_FILE)) {
        Ok(name) => name,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", root.join(LATEST_FILE).display()).into()),
    };
    let name = latest.trim();
    if name.is_empty() || name.contains(['/', '\\']) || name.starts_with('.') {
        return Err(format!("{} names no checkpoint directory", root.join(LATEST_FILE).display()).into());
    }
    Ok(Some(root.join(name)))
}

fn read_state(dir: &Path) -> Result<TrainerState, CliError> {
    let path = dir.join(TRAINER_STATE_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text).map_err(|e| format!("invalid trainer state {}: {e}", path.display()))?)
}

/// Reads the checkpoint in `dir`.
pub fn load(dir: &Path) -> Result<Checkpoint, CliError> {
    let state = read_state(dir)?;
    let saved = ModelDir::load(dir)?;
    let model = Model::new(saved.config, saved.weights)?;
    let mut tensors = read_safetensors(&dir.join(OPTIMIZER_FILE))?;
    let mut take = |kind: &str, name: &str, expected: usize| -> Result<Vec<f32>, CliError> {
        let key = format!("{kind}.{name}");
        let tensor =
            tensors.remove(&key).ok_or_else(|| format!("{OPTIMIZER_FILE} in {} lacks {key}", dir.display()))?;
        if tensor.numel() != expected {
            return Err(format!("{key} holds {} values, the parameter {expected}", tensor.numel()).into());
        }
        Ok(tensor.data().to_vec())
    };
    let (mut m, mut v) = (Vec::new(), Vec::new());
    for (name, param) in model.weights().named() {
        m.push(take("m", &name, param.numel())?);
        v.push(take("v", &name, param.numel())?);
    }
    let optimizer = AdamWState { step: state.optimizer_steps, m, v };
    Ok(Checkpoint { state, model, optimizer })
}

/// The moments as named tensors shaped like their parameters.
fn optimizer_tensors(model: &Model, state: &AdamWState) -> Result<BTreeMap<String, Tensor<f32>>, CliError> {
    let named = model.weights().named();
    if state.m.len() != named.len() || state.v.len() != named.len() {
        return Err("the optimizer does not match the model's parameters".into());
    }
    let mut out = BTreeMap::new();
    for ((name, param), (m, v)) in named.iter().zip(state.m.iter().zip(&state.v)) {
        out.insert(format!("m.{name}"), Tensor::from_vec(param.dims().to_vec(), m.clone())?);
        out.insert(format!("v.{name}"), Tensor::from_vec(param.dims().to_vec(), v.clone())?);
    }
    Ok(out)
}

/// Removes checkpoint directories other than the newest `keep` (by name order, which is phase then step
/// order: `rl-` sorts after `sft-`), never `current`.
fn prune(root: &Path, current: &str, keep: usize) -> Result<(), CliError> {
    let mut names: Vec<String> = std::fs::read_dir(root)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with("sft-") || n.starts_with("rl-"))
        .collect();
    names.sort();
    let excess = names.len().saturating_sub(keep.max(1));
    for name in names.into_iter().take(excess).filter(|n| n != current) {
        std::fs::remove_dir_all(root.join(name))?;
    }
    Ok(())
}
