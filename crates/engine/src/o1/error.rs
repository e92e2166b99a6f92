//! Everything the o1 recipe can fail on, one variant per stage or module family.

use std::path::PathBuf;

use super::config::ConfigError;
use super::eval::EvalError;
use super::report::ReportError;
use super::rl::RlError;
use super::sft::SftError;
use super::value_model::ValueModelError;
use crate::engine::EngineError;

/// A failed o1 run.
#[derive(Debug, thiserror::Error)]
pub enum O1Error {
    /// The runner, a checkpoint or the metrics log.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The settings.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Generating the problems.
    #[error("task: {0}")]
    Task(#[from] selfplay_tasks::TasksError),
    /// Building, loading or saving a model.
    #[error("model: {0}")]
    Model(#[from] selfplay_model::ModelError),
    /// Communication between the ranks of a data-parallel run.
    #[error("between ranks: {0}")]
    Collective(#[from] selfplay_collective::CollectiveError),
    /// Reading or writing a model directory.
    #[error("model directory: {0}")]
    ModelDir(#[from] selfplay_model::IoError),
    /// Policy initialisation.
    #[error("SFT: {0}")]
    Sft(#[from] SftError),
    /// Reinforcement learning.
    #[error("RL: {0}")]
    Rl(#[from] RlError),
    /// The value model.
    #[error("value model: {0}")]
    ValueModel(#[from] ValueModelError),
    /// Evaluation.
    #[error("evaluation: {0}")]
    Eval(#[from] EvalError),
    /// Writing the report.
    #[error("report: {0}")]
    Report(#[from] ReportError),
    /// `init_from` holds a model of another shape than `[model]`.
    #[error("{} holds a model of another shape than [model]", dir.display())]
    InitShape {
        /// The model directory.
        dir: PathBuf,
    },
    /// `--resume` on a run directory without a checkpoint, where one is required.
    #[error("{} holds no checkpoint to resume", dir.display())]
    NothingToResume {
        /// The run directory.
        dir: PathBuf,
    },
    /// The checkpoint to resume from was written with another tokenizer than the one the run's settings build
    /// now (a BPE trained by another version of the `tokenizers` crate, say): resuming would read its ids wrongly.
    #[error("the checkpoint's tokenizer.json differs from the tokenizer these settings build; start a new run")]
    TokenizerChanged,
    /// A stage was asked to step before it was started: a bug in the runner.
    #[error("internal: the {0} stage stepped before it started")]
    NotStarted(&'static str),
    /// The evaluation stage finished without an SFT accuracy in the record: the checkpoint was not this
    /// recipe's.
    #[error("the run reached evaluation without an SFT accuracy")]
    MissingSftAccuracy,
}
