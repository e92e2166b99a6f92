//! The runner: drives a recipe's stages in order, logging, checkpointing and stopping as asked.

use std::path::{Path, PathBuf};
use std::time::Instant;

use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{HostAccess, ModelDir};
use serde::Serialize;
use serde::de::DeserializeOwned;

use selfplay_collective::{Collective, any, floats_from_bytes, gather_concat};

use super::checkpoint::{Checkpoint, CheckpointDir, CheckpointParts, TrainerState, checkpoint_name};
use super::error::EngineError;
use super::metrics::MetricsLog;
use super::progress::Progress;
use super::run_dir::{RunStart, prepare_fresh};
use super::{Context, Restored, Stage};

/// Asked after every completed step, with the stage's name and the step, whether to checkpoint and stop
/// (Ctrl-C, or a test's chosen step). Step 0 of a stage is asked right after the previous stage finished.
pub type StopSignal<'a> = &'a dyn Fn(&str, u64) -> bool;

/// How often the runner checkpoints and how many checkpoints it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunnerSettings {
    /// A checkpoint every this many steps of each stage (and always at a stage's end and on a stop).
    pub checkpoint_every: u64,
    /// Checkpoints kept on disk: the newest by stage order, then step.
    pub keep: usize,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every stage ran to its end.
    Finished,
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

/// Where a resumed run continues: a checkpoint's stage and step, and what it gives back to that stage.
#[derive(Debug)]
pub struct Resumed {
    stage: String,
    stage_index: usize,
    step: u64,
    restored: Restored,
}

impl Resumed {
    /// Splits a checkpoint into where it stands, the state it recorded and the saved model.
    pub fn from_checkpoint<C, R>(checkpoint: Checkpoint<C, R>) -> (Resumed, TrainerState<C, R>, ModelDir) {
        let Checkpoint { state, model, optimizer, stage_model, stage_state } = checkpoint;
        let restored = Restored { optimizer, stage_model, stage_state };
        let resumed =
            Resumed { stage: state.stage.clone(), stage_index: state.stage_index, step: state.step, restored };
        (resumed, state, model)
    }
}

/// Drives a list of stages for one run directory.
pub struct Runner<'a, C> {
    config: &'a C,
    settings: RunnerSettings,
    tokenizer: Option<&'a dyn Tokenizer>,
    checkpoints: CheckpointDir,
    /// `metrics.jsonl`, cut back to the lines already logged and opened when the stages start running, so that
    /// a resume refused after [`Runner::open`] (a checkpoint its recipe finds inconsistent) has changed nothing.
    metrics_path: PathBuf,
    metrics_lines: u64,
    stop: StopSignal<'a>,
    /// Whether this rank writes the run's files (rank 0 of a data-parallel run, or the only process).
    writes: bool,
}

impl<C> std::fmt::Debug for Runner<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("checkpoints", &self.checkpoints).field("settings", &self.settings).finish()
    }
}

impl<'a, C: Serialize + DeserializeOwned + PartialEq> Runner<'a, C> {
    /// Opens `out` for a run of `config`, as `start` asks. A new run ([`RunStart::New`]) is refused when `out`
    /// already holds a run; [`RunStart::Overwrite`] first removes that run's own files (see [`super::run_dir`]).
    /// [`RunStart::Resume`] loads the newest checkpoint (it must have been written with `config`) and drops the
    /// metrics logged after it; without a checkpoint it starts from the beginning, as a new run would.
    /// `tokenizer` (none for a board game, whose network reads positions) is saved into every checkpoint.
    /// Returns the runner and that checkpoint.
    ///
    /// Over several ranks, rank 0 alone prepares and writes the directory; every rank reads the checkpoint it
    /// resumes from (the run directory must be visible to every rank, as a cluster's shared filesystem makes
    /// it), and they agree before going on: when one rank fails to open, every rank returns an error.
    pub fn open<R: DeserializeOwned>(
        out: &Path,
        config: &'a C,
        settings: RunnerSettings,
        tokenizer: Option<&'a dyn Tokenizer>,
        start: RunStart,
        stop: StopSignal<'a>,
        collective: &dyn Collective,
    ) -> Result<(Self, Option<Checkpoint<C, R>>), EngineError> {
        let (checkpoints, metrics_path, writes) =
            (CheckpointDir::of_run(out), out.join("metrics.jsonl"), collective.is_root());
        let mut runner =
            Runner { config, settings, tokenizer, checkpoints, metrics_path, metrics_lines: 0, stop, writes };
        let opened = runner.prepare::<R>(out, start);
        let here = match &opened {
            Ok(checkpoint) => checkpoint.as_ref().map(|c| (c.state.stage.clone(), c.state.step)),
            Err(_) => None,
        };
        let (ok, positions) = (opened.is_ok(), gather_concat(collective, vec![(opened.is_ok(), here)])?);
        if let Some(rank) = positions.iter().position(|(opened, _)| !opened).filter(|_| ok) {
            return Err(EngineError::OtherRank { rank });
        }
        if ok && positions.iter().any(|(_, position)| *position != positions[0].1) {
            return Err(EngineError::RanksDisagree { what: "the checkpoint to resume from" });
        }
        opened.map(|checkpoint| (runner, checkpoint))
    }

    /// Saves `tokenizer` into every checkpoint from now on: for a run whose tokenizer is known only once its
    /// directory is open (a BPE trained on the run's own problems).
    pub fn save_tokenizer(&mut self, tokenizer: &'a dyn Tokenizer) {
        self.tokenizer = Some(tokenizer);
    }

    /// [`Runner::open`] on this rank alone: loads the checkpoint to resume from and, on the rank that writes,
    /// prepares the directory.
    fn prepare<R: DeserializeOwned>(
        &mut self,
        out: &Path,
        start: RunStart,
    ) -> Result<Option<Checkpoint<C, R>>, EngineError> {
        let checkpoint: Option<Checkpoint<C, R>> =
            if start == RunStart::Resume { self.checkpoints.load_latest()? } else { None };
        self.metrics_lines = match &checkpoint {
            Some(c) if c.state.config != *self.config => {
                return Err(EngineError::OtherSettings { dir: out.to_path_buf() });
            }
            Some(c) => {
                if self.writes {
                    eprintln!("resuming {} at {} step {}", out.display(), c.state.stage, c.state.step);
                }
                c.state.metrics_lines
            }
            None if !self.writes => 0,
            None => {
                prepare_fresh(out, start)?;
                if start == RunStart::Resume {
                    eprintln!("{} holds no checkpoint: starting from the beginning", out.display());
                }
                0
            }
        };
        if self.writes {
            std::fs::create_dir_all(out).map_err(EngineError::io(out))?;
        }
        Ok(checkpoint)
    }

    /// Runs `stages` in order over `cx`, from `resumed`'s position or from the start.
    pub fn run<R: Serialize, B: HostAccess, E: From<EngineError>>(
        &mut self,
        cx: &mut Context<'_, R, B>,
        stages: &mut [&mut dyn Stage<R, B, Error = E>],
        resumed: Option<Resumed>,
    ) -> Result<Outcome, E> {
        let mut metrics = if self.writes {
            MetricsLog::truncate(&self.metrics_path, self.metrics_lines)?;
            Some(MetricsLog::open(&self.metrics_path)?)
        } else {
            None
        };
        weights_from_root(cx)?;
        let order: Vec<&'static str> = stages.iter().map(|s| s.name()).collect();
        let (first, mut done, restored) = match resumed {
            None => (0, 0, Restored::default()),
            Some(r) => {
                let known = order.get(r.stage_index) == Some(&r.stage.as_str())
                    && stages.get(r.stage_index).is_some_and(|s| r.step <= s.steps());
                if !known {
                    return Err(EngineError::UnknownPosition { stage: r.stage, step: r.step }.into());
                }
                (r.stage_index, r.step, r.restored)
            }
        };
        if let Some(stage) = stages.get_mut(first) {
            stage.start(cx, done, restored)?;
        }
        for index in first..stages.len() {
            let stage = &mut *stages[index];
            let total = stage.steps();
            if done < total {
                let started = Instant::now();
                let label = stage.label();
                let progress = if self.writes { Progress::new(&label, total) } else { Progress::hidden() };
                progress.skip_to(done);
                while done < total {
                    done += 1;
                    let record = stage.step(cx, done)?;
                    check_same_weights(cx)?;
                    if let Some(metrics) = &mut metrics {
                        metrics.write(stage.name(), &record)?;
                    }
                    self.metrics_lines += 1;
                    progress.step(record.message);
                    let due = done == total || done.is_multiple_of(self.settings.checkpoint_every.max(1));
                    if let Some(outcome) = self.checkpoint_or_stop(cx, &order, index, &*stage, done, due)? {
                        progress.finish();
                        return Ok(outcome);
                    }
                }
                progress.finish();
                if self.writes {
                    eprintln!("{label}: {total} steps in {:.0} s", started.elapsed().as_secs_f64());
                }
            }
            stage.finish(cx)?;
            done = 0;
            if let Some(next) = stages.get_mut(index + 1) {
                next.start(cx, 0, Restored::default())?;
                if let Some(outcome) = self.checkpoint_or_stop(cx, &order, index + 1, &**next, 0, true)? {
                    return Ok(outcome);
                }
            }
        }
        Ok(Outcome::Finished)
    }

    /// Checkpoints `stage` at `step` if `due` or the stop signal fires (on any rank: the ranks stop together);
    /// the outcome of a stop. Rank 0 writes the checkpoint.
    fn checkpoint_or_stop<R: Serialize, B: HostAccess, E: From<EngineError>>(
        &mut self,
        cx: &Context<'_, R, B>,
        order: &[&'static str],
        index: usize,
        stage: &dyn Stage<R, B, Error = E>,
        step: u64,
        due: bool,
    ) -> Result<Option<Outcome>, E> {
        let name = stage.name();
        let stopping = any(cx.collective, (self.stop)(name, step)).map_err(EngineError::from)?;
        if !(stopping || due) {
            return Ok(None);
        }
        if !self.writes {
            let dir = self.checkpoints.root().join(checkpoint_name(name, step));
            return Ok(stopping.then_some(Outcome::Interrupted { stage: name, step, checkpoint: dir }));
        }
        let optimizer = stage.optimizer().map(|o| o.state());
        let state = TrainerState {
            stage: name.to_string(),
            stage_index: index,
            step,
            config: self.config,
            record: &cx.record,
            metrics_lines: self.metrics_lines,
            elapsed_seconds: cx.clock.elapsed(),
            optimizer_steps: optimizer.map_or(0, |o| o.step),
        };
        let stage_state = stage.stage_state()?;
        let parts = CheckpointParts {
            model: &cx.model,
            stage_model: stage.stage_model(),
            optimizer,
            stage_state: stage_state.as_deref(),
        };
        let dir = self.checkpoints.save(&state, parts, self.tokenizer, self.settings.keep, order)?;
        Ok(stopping.then_some(Outcome::Interrupted { stage: name, step, checkpoint: dir }))
    }
}

/// Over several ranks, gives every rank rank 0's weights before the first step. The ranks built or loaded the
/// same weights already (the same seed, the same checkpoint); the broadcast makes it so whatever each rank read,
/// as data-parallel trainers usually do at the start.
fn weights_from_root<R, B: HostAccess>(cx: &mut Context<'_, R, B>) -> Result<(), EngineError> {
    if cx.collective.world_size() == 1 {
        return Ok(());
    }
    let mut bytes = bytemuck::cast_slice::<f32, u8>(cx.model.weights().as_flat()).to_vec();
    cx.collective.broadcast(0, &mut bytes)?;
    let weights = cx.model.weights_mut().as_flat_mut();
    if bytes.len() != weights.len() * 4 {
        let (expected, got) = (weights.len(), bytes.len() / 4);
        let rank = cx.collective.rank();
        return Err(selfplay_collective::CollectiveError::LengthMismatch {
            operation: "broadcast",
            rank,
            expected,
            got,
        }
        .into());
    }
    weights.copy_from_slice(&floats_from_bytes(&bytes));
    Ok(())
}

/// Over several ranks, that every rank holds the same weights after a step: each rank hashes its weights' bits
/// and they compare. Data parallelism keeps the ranks identical by construction (the same data, the same
/// gradient summed in rank order, the same update); this finds the step where anything breaks that (a
/// nondeterministic op, a rank-dependent draw) instead of letting the ranks drift apart unnoticed.
fn check_same_weights<R, B: HostAccess>(cx: &Context<'_, R, B>) -> Result<(), EngineError> {
    if cx.collective.world_size() == 1 {
        return Ok(());
    }
    let hashes = gather_concat(cx.collective, vec![weights_hash(cx.model.weights().as_flat())])?;
    if hashes.iter().any(|&h| h != hashes[0]) {
        return Err(EngineError::RanksDisagree { what: "the weights after a step" });
    }
    Ok(())
}

/// FNV-1a over the weights' bits, a word at a time: equal weights give equal hashes on every machine.
pub fn weights_hash(weights: &[f32]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    weights.iter().fold(OFFSET, |hash, w| (hash ^ u64::from(w.to_bits())).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use selfplay_collective::ThreadWorld;

    use super::*;
    use crate::engine::RunClock;

    /// Ranks whose weights differ in one bit of one weight are caught; equal ones pass.
    #[test]
    fn ranks_whose_weights_differ_are_caught_after_the_step() {
        let results = ThreadWorld::run(3, |rank| {
            let agree = |nudge: bool| {
                let mut model = crate::o1::rl::tests::tiny_model(0.1, 1);
                if nudge {
                    let w = &mut model.weights_mut().as_flat_mut()[17];
                    *w = f32::from_bits(w.to_bits() ^ 1);
                }
                let cx = Context {
                    model,
                    record: (),
                    out: Path::new("."),
                    clock: RunClock::starting_at(0.0),
                    collective: rank,
                };
                check_same_weights(&cx)
            };
            (agree(false).is_ok(), agree(rank.rank() == 2))
        });
        for (same, nudged) in results {
            assert!(same, "identical ranks were refused");
            assert!(matches!(nudged, Err(EngineError::RanksDisagree { .. })), "{nudged:?}");
        }
        assert_ne!(weights_hash(&[1.0, 2.0]), weights_hash(&[2.0, 1.0]), "the hash sees the order");
    }
}
