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

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use selfplay_learn::optim::AdamWState;
use selfplay_model::checkpoint::CONFIG_FILE;
use selfplay_model::safetensors_io::{read_safetensors, serialize};
use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{
    HostAccess, Model, ModelConfig, ModelDir, ModelError, ModelWeights, model_dir_files, save_model_dir_with,
    write_file_atomic,
};
use selfplay_tensor::{DType, Tensor};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

    /// Checks that `checkpoint`, the newest (as [`CheckpointDir::load_latest`] read it), is one a run of `stages`
    /// (each stage's name and steps, in order) on a model of config `model` can continue from: its trainer state
    /// at a stage and step the run has, with a sane clock, and its model the one the run's settings describe.
    /// Every failure names the file at fault. (The weights were checked against the checkpoint's own
    /// `config.json` when they were loaded: every tensor present with its shape.)
    pub fn check_resumable<C, R>(
        &self,
        checkpoint: &Checkpoint<C, R>,
        model: &ModelConfig,
        stages: &[(&str, u64)],
    ) -> Result<(), EngineError> {
        let dir = self.latest_dir()?.unwrap_or_else(|| self.root.clone());
        let state = &checkpoint.state;
        let inconsistent = |file: &str, what: String| EngineError::Inconsistent { path: dir.join(file), what };
        let names: Vec<&str> = stages.iter().map(|(name, _)| *name).collect();
        match stages.get(state.stage_index) {
            Some((name, _)) if *name != state.stage => {
                let what = format!(
                    "stage {:?} at position {} of the run, where the run has {name:?} (its stages: {})",
                    state.stage,
                    state.stage_index,
                    names.join(", ")
                );
                return Err(inconsistent(TRAINER_STATE_FILE, what));
            }
            Some((name, steps)) if state.step > *steps => {
                let what = format!("step {} of stage {name}, which has {steps} steps", state.step);
                return Err(inconsistent(TRAINER_STATE_FILE, what));
            }
            Some(_) => {}
            None => {
                let what = format!(
                    "stage {:?} at position {}, but the run has {} stages ({})",
                    state.stage,
                    state.stage_index,
                    stages.len(),
                    names.join(", ")
                );
                return Err(inconsistent(TRAINER_STATE_FILE, what));
            }
        }
        if !(state.elapsed_seconds.is_finite() && state.elapsed_seconds >= 0.0) {
            let what = format!("elapsed_seconds {} is no duration", state.elapsed_seconds);
            return Err(inconsistent(TRAINER_STATE_FILE, what));
        }
        let differences = differences(&checkpoint.model.config, model);
        if !differences.is_empty() {
            let what = format!(
                "the model is not the one the run's settings in {TRAINER_STATE_FILE} describe: {}",
                differences.join(", ")
            );
            return Err(inconsistent(CONFIG_FILE, what));
        }
        Ok(())
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

    /// Removes every checkpoint directory but `current` (the one `latest` now names) and the newest `keep - 1`
    /// before it in the run (see [`pruned`]); directories of stages not in `stage_order` are left alone.
    fn prune(&self, current: &str, keep: usize, stage_order: &[&str]) -> Result<(), EngineError> {
        let entries = std::fs::read_dir(&self.root).map_err(EngineError::io(&self.root))?;
        let names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        for name in pruned(&names, current, keep, stage_order) {
            let dir = self.root.join(name);
            std::fs::remove_dir_all(&dir).map_err(EngineError::io(&dir))?;
        }
        Ok(())
    }
}

/// Of the directory `names`, the checkpoints to delete so that exactly `current` and the `keep - 1` newest
/// before it remain (at least `current`, whatever `keep`).
///
/// "Newest" is the run's order: the stage's position in `stage_order`, then the step. Names do not sort that way
/// (`rl-…` sorts before `sft-…`), so they are parsed, never compared as text. A checkpoint that comes *after*
/// `current` in the run is deleted too: `latest` never names a checkpoint older than one it named before, so such a
/// directory is the leftover of a session that crashed before switching `latest` to it, and the resumed run
/// writes it again. Names that are no checkpoint of a stage in `stage_order` are not touched.
fn pruned<'a>(names: &'a [String], current: &str, keep: usize, stage_order: &[&str]) -> Vec<&'a str> {
    let position = |name: &str| {
        let (stage, step) = parse_name(name)?;
        Some((stage_order.iter().position(|s| *s == stage)?, step))
    };
    let Some(now) = position(current) else { return Vec::new() };
    let mut older: Vec<(usize, u64, &str)> = Vec::new();
    let mut doomed: Vec<&str> = Vec::new();
    for name in names.iter().map(String::as_str).filter(|n| *n != current) {
        match position(name) {
            Some(at) if at < now => older.push((at.0, at.1, name)),
            Some(_) => doomed.push(name),
            None => {}
        }
    }
    older.sort_unstable();
    let excess = older.len().saturating_sub(keep.saturating_sub(1));
    doomed.extend(older.into_iter().take(excess).map(|(_, _, name)| name));
    doomed
}

/// Every key of `config.json` whose value differs between `saved` and `expected`, as `key saved (settings:
/// expected)`, in key order.
fn differences(saved: &ModelConfig, expected: &ModelConfig) -> Vec<String> {
    let as_map = |c: &ModelConfig| match c.to_hf_json(DType::F32) {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let (saved, expected) = (as_map(saved), as_map(expected));
    let keys: BTreeSet<&String> = saved.keys().chain(expected.keys()).collect();
    keys.into_iter()
        .filter_map(|key| {
            let (a, b) = (saved.get(key).unwrap_or(&Value::Null), expected.get(key).unwrap_or(&Value::Null));
            (a != b).then(|| format!("{key} {a} (settings: {b})"))
        })
        .collect()
}

/// `<stage>-<step, 7 digits>`.
pub(super) fn checkpoint_name(stage: &str, step: u64) -> String {
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
    let load_model = |dir: &Path| {
        ModelDir::load(dir).map_err(|source| EngineError::CheckpointModel { dir: dir.to_path_buf(), source })
    };
    let model = load_model(dir)?;
    let stage_model_dir = dir.join(STAGE_MODEL_DIR);
    let stage_model = if stage_model_dir.is_dir() { Some(load_model(&stage_model_dir)?) } else { None };
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

    const ORDER: [&str; 3] = ["sft", "rl", "eval"];

    /// The checkpoint directories in `checkpoints`, sorted by name.
    fn left(checkpoints: &CheckpointDir) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(checkpoints.root())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    /// A run of three SFT checkpoints then three RL ones, saved for real with `keep` = 1, 2, 3: the newest by
    /// run order remain, although every `rl-…` name sorts before every `sft-…` one.
    #[test]
    fn pruning_keeps_the_newest_of_the_run_not_of_the_alphabet() {
        let model = crate::o1::rl::tests::tiny_model(0.1, 1);
        let saves = [("sft", 1), ("sft", 2), ("sft", 3), ("rl", 0), ("rl", 1), ("rl", 2)];
        let expected: [&[&str]; 3] =
            [&["rl-0000002"], &["rl-0000001", "rl-0000002"], &["rl-0000000", "rl-0000001", "rl-0000002"]];
        for (keep, expected) in (1..=3).zip(expected) {
            let run = scratch(&format!("prune-{keep}"));
            let checkpoints = CheckpointDir::of_run(&run);
            for (stage, step) in saves {
                let state = TrainerState {
                    stage: stage.to_string(),
                    stage_index: ORDER.iter().position(|s| *s == stage).unwrap(),
                    step,
                    config: (),
                    record: (),
                    metrics_lines: 0,
                    elapsed_seconds: 0.0,
                    optimizer_steps: 0,
                };
                let parts = CheckpointParts { model: &model, stage_model: None, optimizer: None, stage_state: None };
                checkpoints.save(&state, parts, None, keep, &ORDER).unwrap();
                assert!(left(&checkpoints).len() <= keep, "keep = {keep}: {:?}", left(&checkpoints));
            }
            assert_eq!(left(&checkpoints), expected, "keep = {keep}");
            let latest = checkpoints.load_latest_state::<(), ()>().unwrap().unwrap();
            assert_eq!((latest.stage.as_str(), latest.step), ("rl", 2));
            std::fs::remove_dir_all(&run).unwrap();
        }
    }

    /// Directories that are no checkpoint of the run's stages are left alone, and a checkpoint ahead of the one
    /// `latest` names (a crashed session's leftover) goes, so that exactly `keep` remain.
    #[test]
    fn pruning_ignores_strangers_and_drops_leftovers_ahead_of_latest() {
        let run = scratch("prune-strangers");
        let checkpoints = CheckpointDir::of_run(&run);
        for name in ["sft-0000001", "sft-0000002", "rl-0000000", "rl-0000001", "rl-0000002", "notes", "other-0000009"] {
            std::fs::create_dir_all(checkpoints.root().join(name)).unwrap();
        }
        checkpoints.prune("rl-0000001", 2, &ORDER).unwrap();
        assert_eq!(left(&checkpoints), ["notes", "other-0000009", "rl-0000000", "rl-0000001"]);
        checkpoints.prune("rl-0000001", 1, &ORDER).unwrap();
        assert_eq!(left(&checkpoints), ["notes", "other-0000009", "rl-0000001"]);
        std::fs::remove_dir_all(&run).unwrap();
    }

    proptest::proptest! {
        /// Any run's saves, in the run's order (checkpoints of one stage in step order, stages in recipe order),
        /// with any `keep`: after every save exactly the newest `keep` so far remain (fewer only while fewer have
        /// been written), the one just saved among them.
        #[test]
        fn after_every_save_exactly_the_newest_keep_remain(
            steps in proptest::collection::vec(proptest::collection::btree_set(0u64..40, 0..6), 3),
            keep in 1usize..5,
        ) {
            let saves: Vec<String> = ORDER
                .iter()
                .zip(&steps)
                .flat_map(|(stage, steps)| steps.iter().map(move |&step| checkpoint_name(stage, step)))
                .collect();
            let mut on_disk: Vec<String> = Vec::new();
            for (i, name) in saves.iter().enumerate() {
                on_disk.push(name.clone());
                let doomed: Vec<String> =
                    pruned(&on_disk, name, keep, &ORDER).into_iter().map(str::to_string).collect();
                on_disk.retain(|n| !doomed.contains(n));
                let newest = &saves[(i + 1).saturating_sub(keep)..=i];
                proptest::prop_assert_eq!(&on_disk, newest);
            }
        }
    }

    /// `check_resumable` refuses a checkpoint at a stage or step its run does not have, with a broken clock or of
    /// another model than the run's, naming the file; the checkpoint as saved passes.
    #[test]
    fn a_checkpoint_that_does_not_fit_its_run_is_refused() {
        let run = scratch("resumable");
        let checkpoints = CheckpointDir::of_run(&run);
        let model = crate::o1::rl::tests::tiny_model(0.1, 1);
        let state = TrainerState {
            stage: "rl".to_string(),
            stage_index: 1,
            step: 3,
            config: (),
            record: (),
            metrics_lines: 0,
            elapsed_seconds: 1.5,
            optimizer_steps: 0,
        };
        let parts = CheckpointParts { model: &model, stage_model: None, optimizer: None, stage_state: None };
        let dir = checkpoints.save(&state, parts, None, 2, &ORDER).unwrap();
        let stages = [("sft", 4), ("rl", 5), ("eval", 0)];
        let loaded = || checkpoints.load_latest::<(), ()>().unwrap().unwrap();
        checkpoints.check_resumable(&loaded(), model.config(), &stages).unwrap();

        let refused = |checkpoint: Checkpoint<(), ()>, expected: &ModelConfig| match checkpoints.check_resumable(
            &checkpoint,
            expected,
            &stages,
        ) {
            Err(EngineError::Inconsistent { path, what }) => (path, what),
            other => panic!("{other:?}"),
        };
        let edited = |edit: &dyn Fn(&mut TrainerState<(), ()>)| {
            let mut checkpoint = loaded();
            edit(&mut checkpoint.state);
            refused(checkpoint, model.config())
        };
        let state_file = dir.join(TRAINER_STATE_FILE);
        assert_eq!(edited(&|s| s.step = 6), (state_file.clone(), "step 6 of stage rl, which has 5 steps".into()));
        let (path, what) = edited(&|s| s.stage = "warmup".into());
        assert_eq!(path, state_file);
        assert!(what.starts_with("stage \"warmup\" at position 1 of the run, where the run has \"rl\""), "{what}");
        let (_, what) = edited(&|s| s.stage_index = 3);
        assert_eq!(what, "stage \"rl\" at position 3, but the run has 3 stages (sft, rl, eval)");
        let (_, what) = edited(&|s| s.elapsed_seconds = f64::NAN);
        assert_eq!(what, "elapsed_seconds NaN is no duration");

        let other = ModelConfig { intermediate_size: 48, ..model.config().clone() };
        let (path, what) = refused(loaded(), &other);
        assert_eq!(path, dir.join(CONFIG_FILE));
        assert_eq!(
            what,
            "the model is not the one the run's settings in trainer_state.json describe: intermediate_size 32 \
             (settings: 48)"
        );
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
