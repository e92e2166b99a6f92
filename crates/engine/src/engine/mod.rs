//! The engine every recipe runs on: a recipe is a list of [`Stage`]s over one shared [`Context`]; the
//! [`Runner`] drives any such list with progress bars, one `metrics.jsonl` line per step, checkpoints named by
//! stage and step, the stop signal, and bit-identical resume. Every run is data-parallel over the context's
//! [`Context::collective`] (one process by default): rank 0 alone writes, the ranks stop together, and after every
//! step the runner checks that they hold the same weights.
//!
//! A stage owns its steps and its optimizer; what stages hand each other (the model, and the recipe's record
//! of curves and counters) lives in the context, which the runner checkpoints whole. A stage's step must be a
//! pure function of the context, its optimizer state, the seed and the step index, so that a run resumed from
//! a checkpoint continues exactly as the uninterrupted run did.
//!
//! ```text
//! for each stage from the checkpoint's (or the first):
//!     stage.start(cx, steps done, restored optimizer and stage model)
//!     for each remaining step: stage.step(cx, step) -> metrics line; checkpoint when due or asked to stop
//!     stage.finish(cx)
//!     next stage.start(cx, 0, None); checkpoint at <next>-0000000
//! ```

pub mod checkpoint;
pub mod error;
pub mod metrics;
pub mod progress;
pub mod run_dir;
pub mod runner;

use std::path::Path;
use std::time::Instant;

use selfplay_collective::Collective;
use selfplay_learn::optim::AdamWState;
use selfplay_model::{CpuBackend, HostAccess, Model, ModelDir};

pub use checkpoint::{Checkpoint, CheckpointDir, CheckpointParts, STAGE_MODEL_DIR, STAGE_STATE_FILE, TrainerState};
pub use error::EngineError;
pub use metrics::{MetricsLog, StepRecord, seeded_metrics};
pub use progress::Progress;
pub use run_dir::RunStart;
pub use runner::{Outcome, Runner, RunnerSettings, StopSignal, weights_hash};

use crate::optimizer::ModelOptimizer;

/// What a recipe's stages share: the model they train in turn, the recipe's record (checkpointed with it), the
/// run's directory, its clock and the ranks it runs on.
pub struct Context<'a, R, B: HostAccess = CpuBackend> {
    /// The policy every stage works on, on backend `B`.
    pub model: Model<B>,
    /// Everything the recipe has measured so far (serialisable: it is part of every checkpoint).
    pub record: R,
    /// The run directory.
    pub out: &'a Path,
    /// The run's wall clock over all its sessions.
    pub clock: RunClock,
    /// The ranks of a data-parallel run ([`selfplay_collective::SingleProcess`] for one process): a stage splits
    /// its work across them and gathers the results, so every rank keeps the same state; rank 0 alone writes.
    pub collective: &'a dyn Collective,
}

impl<R: std::fmt::Debug, B: HostAccess> std::fmt::Debug for Context<'_, R, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("record", &self.record).field("out", &self.out).finish_non_exhaustive()
    }
}

/// Wall-clock time of a run that may span several sessions (a resumed run adds its checkpoint's time).
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    session_start: Instant,
    earlier_seconds: f64,
}

impl RunClock {
    /// A clock that already shows `earlier_seconds`.
    pub fn starting_at(earlier_seconds: f64) -> Self {
        RunClock { session_start: Instant::now(), earlier_seconds }
    }

    /// Seconds the run has taken so far.
    pub fn elapsed(&self) -> f64 {
        self.earlier_seconds + self.session_start.elapsed().as_secs_f64()
    }
}

/// What a checkpoint gives back to the stage it was written in, for [`Stage::start`].
#[derive(Debug, Default)]
pub struct Restored {
    /// The optimizer's moments and step count, when the stage has an optimizer.
    pub optimizer: Option<AdamWState>,
    /// The model the stage trains besides the context's ([`Stage::stage_model`]): config and weights.
    pub stage_model: Option<ModelDir>,
    /// The stage's own state, as [`Stage::stage_state`] encoded it.
    pub stage_state: Option<Vec<u8>>,
}

/// One unit of training or evaluation: its own steps, metrics and optimizer, over a shared [`Context`].
pub trait Stage<R, B: HostAccess = CpuBackend> {
    /// The recipe's error type; engine failures convert into it.
    type Error: From<EngineError>;

    /// The stage's name: checkpoints are `checkpoints/<name>-<step>/`, metrics lines carry `"stage": name`.
    fn name(&self) -> &'static str;

    /// The label of its progress bar.
    fn label(&self) -> String {
        self.name().to_string()
    }

    /// Steps it takes (0 for a stage whose work is all in [`Stage::finish`]).
    fn steps(&self) -> u64;

    /// Prepares to take steps after `done` (0 when fresh), restoring what its checkpoint kept (nothing when
    /// fresh): the optimizer's moments and the stage's own model.
    fn start(&mut self, cx: &mut Context<'_, R, B>, done: u64, restored: Restored) -> Result<(), Self::Error>;

    /// Takes step `step` (counted from 1) and reports its metrics.
    fn step(&mut self, cx: &mut Context<'_, R, B>, step: u64) -> Result<StepRecord, Self::Error>;

    /// The optimizer whose moments its checkpoints keep, if it trains.
    fn optimizer(&self) -> Option<&ModelOptimizer>;

    /// A model the stage trains besides the context's policy (a value or reward model), which its optimizer
    /// then steps: checkpoints keep it (`stage_model/`) and give it back to [`Stage::start`].
    fn stage_model(&self) -> Option<&Model<B>> {
        None
    }

    /// State the stage keeps besides models and optimizer moments (a replay buffer), encoded as it likes:
    /// checkpoints store the bytes and give them back to [`Stage::start`] in [`Restored::stage_state`].
    fn stage_state(&self) -> Result<Option<Vec<u8>>, Self::Error> {
        Ok(None)
    }

    /// Runs once after its last step (or at once, without steps): save what it made, measure it.
    fn finish(&mut self, cx: &mut Context<'_, R, B>) -> Result<(), Self::Error>;
}
