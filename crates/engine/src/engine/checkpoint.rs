//! Training checkpoints: everything a killed run needs to continue bit-identically.
//!
//! A checkpoint is a Hugging Face model directory (weights in f32, so nothing is rounded), plus
//! `optimizer.safetensors` (AdamW's moments, `m.<param>` and `v.<param>`, when the stage has an optimizer) and
//! `trainer_state.json` (stage, step, the run's config, the recipe's record of everything measured so far), and
//! `stage_model/` (a second model directory) when the stage trains a model of its own, such as a value model, and
//! `stage_state.bin` when the stage keeps state of its own (a replay buffer). Each
//! is written whole into its own directory `checkpoints/<stage>-<step>/` (temporary name, fsync, rename), and only
//! then does the one-line file `checkpoints/latest` switch to it, atomically: a crash at any instant leaves the
//! previous checkpoint or the new one, never a mixture. Every step of a stage is a pure function of (weights,
//! optimizer state, seed, step index), so these files are the whole state: no RNG stream or data cursor needs
//! saving.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use selfplay_learn::optim::AdamWState;
use selfplay_model::safetensors_io::{read_safetensors, serialize};
use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{
    HostAccess, Model, ModelDir, ModelError, ModelWeights, model_dir_files, save_model_dir_with, write_file_atomic,
};
use selfplay_tensor::{DType, Tensor};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::EngineError;

/// Directory of a run's checkpoints.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// File in [`CHECKPOINTS_DIR`] naming the newest complete checkpoint.
pub const LATEST_FILE: &str = "latest";
/// The trainer's state inside a checkpoint.
pub const TRAINER_STATE_FILE: &str = "trainer_state.json";
/// The optimizer's moments inside a checkpoint.
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
/// The subdirectory (a Hugging Face model directory) holding the model a stage trains besides the policy.
pub const STAGE_MODEL_DIR: &str = "stage_model";
/// The stage's own state besides models and moments (a replay buffer), in the stage's encoding.
pub const STAGE_STATE_FILE: &str = "stage_state.bin";

/// What a checkpoint holds besides the trainer state.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointParts<'a, B: HostAccess> {
    /// The policy (the context's model).
    pub model: &'a Model<B>,
    /// The model the stage trains besides the policy, if any.
    pub stage_model: Option<&'a Model<B>>,
    /// The stage's optimizer moments (of `stage_model` when there is one, else of `model`).
    pub optimizer: Option<&'a AdamWState>,
    /// The stage's own state, already encoded.
    pub stage_state: Option<&'a [u8]>,
}

/// Where a run stands: what `trainer_state.json` holds. `C` is the run's config, `R` the recipe's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState<C, R> {
    /// The stage the run is in.
    pub stage: String,
    /// Its position in the recipe's list of stages.
    pub stage_index: usize,
    /// Steps of `stage` completed.
    pub step: u64,
    /// The run's settings (a resumed run must use the same ones).
    pub config: C,
    /// What the recipe has measured so far (curves, FLOPs, accuracies).
    pub record: R,
    /// Lines of `metrics.jsonl` written up to this checkpoint (later lines are dropped on resume: the resumed
    /// run writes them again).
    pub metrics_lines: u64,
    /// Wall-clock seconds spent by the run up to this checkpoint, over all its sessions.
    pub elapsed_seconds: f64,
    /// Updates the stage's optimizer has taken (its learning-rate schedule and bias correction read it).
    pub optimizer_steps: u64,
}

/// A checkpoint read back.
#[derive(Debug)]
pub struct Checkpoint<C, R> {
    /// Where the run stood.
    pub state: TrainerState<C, R>,
    /// The model's config and weights (a recipe puts them on its backend with `Model::with_backend`).
    pub model: ModelDir,
    /// The stage's optimizer moments and step count, when it has an optimizer.
    pub optimizer: Option<AdamWState>,
    /// The model the stage trains besides the policy, when it has one (its optimizer's moments are that
    /// model's).
    pub stage_model: Option<ModelDir>,
    /// The stage's own state, as it encoded it.
    pub stage_state: Option<Vec<u8>>,
}

/// The checkpoints of one run directory.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    root: PathBuf,
}

impl CheckpointDir {
    /// The checkpoints of the run in `run_dir`.
    pub fn of_run(run_dir: &Path) -> Self {
        CheckpointDir { root: run_dir.join(CHECKPOINTS_DIR) }
    }

    /// The directory holding every checkpoint.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes a checkpoint of `parts` at `state`, points `latest` at it, and deletes all but the newest `keep`
    /// checkpoints, newest by position in `stage_order` and then by step. Returns its directory.
    pub fn save<C: Serialize, R: Serialize, B: HostAccess>(
        &self,
        state: &TrainerState<C, R>,
        parts: CheckpointParts<'_, B>,
        tokenizer: Option<&dyn Tokenizer>,
        keep: usize,
        stage_order: &[&str],
    ) -> Result<PathBuf, EngineError> {
        std::fs::create_dir_all(&self.root).map_err(EngineError::io(&self.root))?;
        let name = checkpoint_name(&state.stage, state.step);
        let dir = self.root.join(&name);
        let state_json = serde_json::to_string_pretty(state)
            .map_err(|source| EngineError::TrainerState { path: dir.join(TRAINER_STATE_FILE), source })?
            + "\n";
        let CheckpointParts { model, stage_model, optimizer, stage_state } = parts;
        let optimizer_bytes = match optimizer {
            Some(optimizer) => {
                let moments = optimizer_tensors(stage_model.unwrap_or(model), optimizer, &dir)?;
                Some(serialize(moments.iter().map(|(name, t)| (name.clone(), t)), DType::F32)?)
            }
            None => None,
        };
        let mut extra: Vec<(&str, &[u8])> = vec![(TRAINER_STATE_FILE, state_json.as_bytes())];
        if let Some(bytes) = &optimizer_bytes {
            extra.push((OPTIMIZER_FILE, bytes));
        }
        let stage_model_files = match stage_model {
            Some(m) => model_dir_files(m.config(), m.weights(), None, DType::F32)?
                .into_iter()
                .map(|(name, bytes)| (format!("{STAGE_MODEL_DIR}/{name}"), bytes))
                .collect(),
            None => Vec::new(),
        };
        extra.extend(stage_model_files.iter().map(|(name, bytes)| (name.as_str(), bytes.as_slice())));
        if let Some(bytes) = stage_state {
            extra.push((STAGE_STATE_FILE, bytes));
        }
        save_model_dir_with(&dir, model.config(), model.weights(), tokenizer, DType::F32, &extra)?;
        write_file_atomic(&self.root.join(LATEST_FILE), name.as_bytes())?;
        self.prune(&name, keep, stage_order)?;
        Ok(dir)
    }

    /// The newest complete checkpoint, or `None` when the run has none.
    pub fn load_latest<C: DeserializeOwned, R: DeserializeOwned>(
        &self,
    ) -> Result<Option<Checkpoint<C, R>>, EngineError> {
        self.latest_dir()?.map(|dir| load(&dir)).transpose()
    }

    /// Only the trainer state of the newest checkpoint (cheap: no weights are read).
    pub fn load_latest_state<C: DeserializeOwned, R: DeserializeOwned>(
        &self,
    ) -> Result<Option<TrainerState<C, R>>, EngineError> {
        self.latest_dir()?.map(|dir| read_state(&dir)).transpose()
    }

    /// The directory `latest` names, or `None` when the run has no checkpoint.
    fn latest_dir(&self) -> Result<Option<PathBuf>, EngineError> {
        let pointer = self.root.join(LATEST_FILE);
        let latest = match std::fs::read_to_string(&pointer) {
            Ok(name) => name,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EngineError::io(&pointer)(e)),
        };
        let name = latest.trim();
        if parse_name(name).is_none() {
            return Err(EngineError::BadLatest { path: pointer });
        }
        Ok(Some(self.root.join(name)))
    }

    /// Removes checkpoint directories other than the newest `keep` (ordered by the stage's position in
    /// `stage_order`, then by step), never `current`; directories of stages not in `stage_order` are left alone.
    fn prune(&self, current: &str, keep: usize, stage_order: &[&str]) -> Result<(), EngineError> {
        let entries = std::fs::read_dir(&self.root).map_err(EngineError::io(&self.root))?;
        let mut found: Vec<(usize, u64, String)> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|name| {
                let (stage, step) = parse_name(&name)?;
                let index = stage_order.iter().position(|s| *s == stage)?;
                Some((index, step, name))
            })
            .collect();
        found.sort();
        let excess = found.len().saturating_sub(keep.max(1));
        for (_, _, name) in found.into_iter().take(excess).filter(|(_, _, n)| n != current) {
            let dir = self.root.join(&name);
            std::fs::remove_dir_all(&dir).map_err(EngineError::io(&dir))?;
        }
        Ok(())
    }
}

/// `<stage>-<step, 7 digits>`.
fn checkpoint_name(stage: &str, step: u64) -> String {
    format!("{stage}-{step:07}")
}

/// The stage and step a checkpoint directory name encodes; `None` for anything else (paths, dot files).
fn parse_name(name: &str) -> Option<(&str, u64)> {
    let (stage, step) = name.rsplit_once('-')?;
    let well_formed = !stage.is_empty()
        && stage.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !step.is_empty()
        && step.chars().all(|c| c.is_ascii_digit());
    well_formed.then(|| step.parse().ok().map(|step| (stage, step))).flatten()
}

fn read_state<C: DeserializeOwned, R: DeserializeOwned>(dir: &Path) -> Result<TrainerState<C, R>, EngineError> {
    let path = dir.join(TRAINER_STATE_FILE);
    let text = std::fs::read_to_string(&path).map_err(EngineError::io(&path))?;
    serde_json::from_str(&text).map_err(|source| EngineError::TrainerState { path, source })
}

/// Reads the checkpoint in `dir`.
pub fn load<C: DeserializeOwned, R: DeserializeOwned>(dir: &Path) -> Result<Checkpoint<C, R>, EngineError> {
    let state = read_state(dir)?;
    let model = ModelDir::load(dir)?;
    let stage_model_dir = dir.join(STAGE_MODEL_DIR);
    let stage_model = if stage_model_dir.is_dir() { Some(ModelDir::load(&stage_model_dir)?) } else { None };
    let trained = &stage_model.as_ref().unwrap_or(&model).weights;
    let path = dir.join(OPTIMIZER_FILE);
    let optimizer = if path.exists() { Some(read_moments(dir, &path, trained, state.optimizer_steps)?) } else { None };
    let state_path = dir.join(STAGE_STATE_FILE);
    let stage_state = match std::fs::read(&state_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(EngineError::io(&state_path)(e)),
    };
    Ok(Checkpoint { state, model, optimizer, stage_model, stage_state })
}

/// AdamW's moments for every parameter of `model`, checked for presence and size.
fn read_moments(dir: &Path, path: &Path, weights: &ModelWeights, steps: u64) -> Result<AdamWState, EngineError> {
    let mut tensors = read_safetensors(path)?;
    let mut take = |kind: &str, name: &str, expected: usize| -> Result<Vec<f32>, EngineError> {
        let key = format!("{kind}.{name}");
        let moments = |what: String| EngineError::Moments { dir: dir.to_path_buf(), what };
        let tensor = tensors.remove(&key).ok_or_else(|| moments(format!("{key} is missing")))?;
        if tensor.numel() != expected {
            return Err(moments(format!("{key} holds {} values, the parameter {expected}", tensor.numel())));
        }
        Ok(tensor.data().to_vec())
    };
    let (mut m, mut v) = (Vec::new(), Vec::new());
    for (param, _) in weights.iter() {
        let name = param.name.to_string();
        m.push(take("m", &name, param.numel())?);
        v.push(take("v", &name, param.numel())?);
    }
    Ok(AdamWState { step: steps, m, v })
}

/// The moments as named tensors shaped like their parameters.
fn optimizer_tensors<B: HostAccess>(
    model: &Model<B>,
    state: &AdamWState,
    dir: &Path,
) -> Result<BTreeMap<String, Tensor<f32>>, EngineError> {
    let params = model.weights().layout().entries();
    if state.m.len() != params.len() || state.v.len() != params.len() {
        return Err(EngineError::Moments {
            dir: dir.to_path_buf(),
            what: "the optimizer does not match the model's parameters".into(),
        });
    }
    let mut out = BTreeMap::new();
    for (param, (m, v)) in params.iter().zip(state.m.iter().zip(&state.v)) {
        let name = param.name;
        out.insert(format!("m.{name}"), Tensor::from_vec(param.dims().to_vec(), m.clone()).map_err(ModelError::from)?);
        out.insert(format!("v.{name}"), Tensor::from_vec(param.dims().to_vec(), v.clone()).map_err(ModelError::from)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("selfplay-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Pruning keeps the newest by stage order then step, whatever the names' alphabetical order (`rl` sorts
    /// before `sft`), never the current one, and leaves directories it does not recognise alone.
    #[test]
    fn pruning_keeps_the_newest_by_stage_then_step() {
        let run = scratch("prune");
        let checkpoints = CheckpointDir::of_run(&run);
        for name in ["sft-0000001", "sft-0000002", "rl-0000000", "rl-0000001", "notes", "other-0000009"] {
            std::fs::create_dir_all(checkpoints.root().join(name)).unwrap();
        }
        checkpoints.prune("rl-0000001", 2, &["sft", "rl", "eval"]).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(checkpoints.root())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["notes", "other-0000009", "rl-0000000", "rl-0000001"]);
        std::fs::remove_dir_all(&run).unwrap();
    }

    #[test]
    fn only_checkpoint_names_parse() {
        assert_eq!(parse_name("sft-0001500"), Some(("sft", 1500)));
        assert_eq!(parse_name("value_model-0000003"), Some(("value_model", 3)));
        for bad in ["", "sft", "sft-", "-12", "../x-1", ".hidden-1", "sft-12a", "a/b-1"] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }
    }

    /// A `latest` that names no checkpoint directory is an error, not a path to follow.
    #[test]
    fn a_tampered_latest_is_refused() {
        let run = scratch("latest");
        let checkpoints = CheckpointDir::of_run(&run);
        std::fs::create_dir_all(checkpoints.root()).unwrap();
        std::fs::write(checkpoints.root().join(LATEST_FILE), "../../etc").unwrap();
        let loaded = checkpoints.load_latest_state::<u8, u8>();
        assert!(matches!(loaded, Err(EngineError::BadLatest { .. })), "{loaded:?}");
        std::fs::remove_dir_all(&run).unwrap();
    }
}
