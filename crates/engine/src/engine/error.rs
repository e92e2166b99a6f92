//! What the engine itself can fail on: files, checkpoints, metrics. A recipe's own error type wraps it.

use std::path::{Path, PathBuf};

use selfplay_learn::LearnError;
use selfplay_model::{IoError, ModelError};

/// A failure of the runner, its checkpoints or its metrics log.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Reading or writing a file or directory.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A model directory inside a checkpoint could not be written or read.
    #[error("checkpoint model: {0}")]
    Model(#[from] ModelError),
    /// A checkpoint file could not be written or read.
    #[error("checkpoint: {0}")]
    File(#[from] IoError),
    /// The optimizer state does not fit the model.
    #[error("optimizer state: {0}")]
    Optimizer(#[from] LearnError),
    /// `trainer_state.json` is not what the engine wrote (the JSON error is the source: a one-line report of
    /// the chain shows it once).
    #[error("invalid trainer state {}", path.display())]
    TrainerState {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A model directory inside a checkpoint does not load: a file missing or corrupt, or weights whose shapes
    /// are not the ones its `config.json` implies.
    #[error("the model in {} does not load", dir.display())]
    CheckpointModel {
        /// The model directory.
        dir: PathBuf,
        /// Why.
        source: IoError,
    },
    /// The checkpoint's `latest` pointer names no checkpoint directory.
    #[error("{} names no checkpoint directory", path.display())]
    BadLatest {
        /// The pointer file.
        path: PathBuf,
    },
    /// The optimizer file lacks a parameter's moment or holds one of the wrong size.
    #[error("optimizer moments in {}: {what}", dir.display())]
    Moments {
        /// The checkpoint directory.
        dir: PathBuf,
        /// Which tensor is missing or mis-sized.
        what: String,
    },
    /// A checkpoint names a stage the recipe does not have, or a step past the stage's end.
    #[error("the checkpoint is at {stage} step {step}, which this recipe's stages do not reach")]
    UnknownPosition {
        /// The stage recorded.
        stage: String,
        /// The step recorded.
        step: u64,
    },
    /// A checkpoint file holds something the run resuming from it cannot be at: a stage it does not have, a step
    /// past a stage's end, a model other than its settings describe (a file edited or mixed in by hand).
    #[error("{}: {what}", path.display())]
    Inconsistent {
        /// The file at fault.
        path: PathBuf,
        /// What does not fit, and with what.
        what: String,
    },
    /// A resume with settings other than the run's own (the command line names the flag that asked for them
    /// before it gets here).
    #[error("{} was started with other settings; resume it with its own", dir.display())]
    OtherSettings {
        /// The run directory.
        dir: PathBuf,
    },
    /// A new run into a directory that holds one ([`super::run_dir`] says which entries are a run's).
    #[error("{} already holds a run ({}); continue it with --resume, or replace it with --overwrite", dir.display(), names(found))]
    ExistingRun {
        /// The directory.
        dir: PathBuf,
        /// The run's entries found in it.
        found: Vec<PathBuf>,
    },
    /// A resume of a directory whose run has no checkpoint to continue from.
    #[error("{} holds a run ({}) but no checkpoint to resume it from; replace it with --overwrite", dir.display(), names(found))]
    NoCheckpoint {
        /// The directory.
        dir: PathBuf,
        /// The run's entries found in it.
        found: Vec<PathBuf>,
    },
    /// An overwrite that would lose files no run writes, inside a model directory it replaces whole.
    #[error(
        "{} would be lost by --overwrite, which replaces its model directory whole: no run writes it; move it out of {} first (nothing was removed)",
        paths(files),
        dir.display()
    )]
    NotTheRuns {
        /// The directory.
        dir: PathBuf,
        /// The files inside the run's model directories that are not the run's.
        files: Vec<PathBuf>,
    },
    /// Communication between the ranks of a data-parallel run failed.
    #[error(transparent)]
    Collective(#[from] selfplay_collective::CollectiveError),
    /// Another rank of a data-parallel run failed (its own error is on its output).
    #[error("rank {rank} failed (its own error says why); stopping every rank")]
    OtherRank {
        /// The first rank that failed.
        rank: usize,
    },
    /// The ranks of a data-parallel run found different things where they must agree.
    #[error("the ranks disagree on {what}")]
    RanksDisagree {
        /// What they disagree on.
        what: &'static str,
    },
    /// Metrics that do not serialise.
    #[error("metrics: {0}")]
    Metrics(serde_json::Error),
    /// A stage reported metrics that are not a JSON object.
    #[error("a stage's metrics must serialise to a JSON object")]
    MetricsNotAnObject,
    /// `metrics.jsonl` is shorter than the checkpoint says it was.
    #[error("{} has {present} lines, fewer than the {expected} its checkpoint recorded", path.display())]
    MetricsTooShort {
        /// The metrics file.
        path: PathBuf,
        /// Lines present.
        present: u64,
        /// Lines the checkpoint recorded.
        expected: u64,
    },
}

/// `a, b, c and 4 more` from the last components of `paths`: enough to say why a directory is a run.
fn names(paths: &[PathBuf]) -> String {
    const SHOWN: usize = 3;
    let names: Vec<String> =
        paths.iter().take(SHOWN).filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
    match paths.len().saturating_sub(SHOWN) {
        0 => names.join(", "),
        more => format!("{} and {more} more", names.join(", ")),
    }
}

/// `a, b, c` from whole paths.
fn paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

impl EngineError {
    /// A closure turning an I/O error on `path` into [`EngineError::Io`], for `map_err`.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
        move |source| EngineError::Io { path: path.to_path_buf(), source }
    }
}
