//! Self-play as in AlphaGo Zero, on any [`selfplay_search::Game`]: the same transformer, the same tree search and
//! the same training path as the o1 recipe.
//!
//! Each iteration plays `[selfplay] games` games against itself at once. Every move is chosen by a search —
//! Gumbel MuZero (the default) or PUCT with Dirichlet noise — over the network's policy and value, the leaves of
//! every game's tree evaluated in one batched forward pass. The searched positions enter a replay window with
//! two targets: the search's improved policy (full searches only: playout-cap randomisation), and the game's
//! result. The network then takes `[learn] updates_per_iteration` steps of soft cross-entropy to the policy
//! targets plus value regression, through the engine's one training path. Search makes better moves than the
//! network alone; learning distils them back into it: the train-time law (Elo against fixed opponents,
//! [`arena`], grows with self-play compute) and the test-time law (strength grows with simulations) in their
//! cleanest form. A finished run is summed up by [`report`]: `report.json`, `report.md` and plots.
//!
//! The network is [`selfplay_model::Model`]: the board as tokens (one per cell, from the view of the player to
//! move), the policy in the logits of one action token per move at the last position, the value head there
//! ([`AlphaZeroConfig::model_config`]). Runs go through the engine's [`Runner`]: progress bars, `metrics.jsonl`,
//! checkpoints (the replay window in `stage_state.bin`) and bit-identical resume.
//!
//! ```
//! use selfplay_engine::alphazero::{AlphaZeroConfig, run};
//! use selfplay_engine::engine::RunStart;
//! use selfplay_search::games::TicTacToe;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = AlphaZeroConfig::tiny();
//! config.iterations = 1;
//! let out = std::env::temp_dir().join(format!("selfplay-az-doc-{}", std::process::id()));
//! let report = run(&config, TicTacToe::new(), &out, RunStart::New, &|_, _| false)?.expect("nothing stopped it");
//! assert_eq!(report.curve.len(), 1);
//! # std::fs::remove_dir_all(&out)?;
//! # Ok(())
//! # }
//! ```

pub mod agent;
pub mod arena;
pub mod benchmark;
pub mod config;
pub mod error;
pub mod learner;
pub mod net;
pub mod play;
pub mod replay;
pub mod report;
pub mod stage;

use std::path::Path;

use selfplay_collective::{Collective, SingleProcess};
use selfplay_model::{CpuBackend, DEFAULT_INIT_STD, HostAccess, Model, init_weights};
use selfplay_tensor::DType;

pub use agent::{NetAgent, SETTINGS_FILE, load_agent};
pub use arena::ArenaGame;
pub use arena::ArenaPoint;
pub use benchmark::{Connect4Benchmark, GroupRates, MistakeRates, MoveBenchmark};
pub use config::{AlphaZeroConfig, ConfigFileError, OpeningPlies, SearchKind};
pub use error::AlphaZeroError;
pub use play::{MatchResult, choose_moves, play_match, random_action, self_play};
pub use stage::{AlphaZeroRecord, AlphaZeroStage, TestTimePoint};

use crate::engine::runner::Resumed;
use crate::engine::{
    CheckpointDir, Context, EngineError, Outcome, RunClock, RunStart, Runner, RunnerSettings, Stage, StopSignal,
};

impl AlphaZeroConfig {
    /// A run small enough for tests and examples: a 2-layer, 32-wide network, 16 games of 8-simulation searches
    /// per iteration.
    pub fn tiny() -> Self {
        let defaults = AlphaZeroConfig::default();
        AlphaZeroConfig {
            iterations: 4,
            net: config::NetShape { hidden_size: 32, intermediate_size: 64, ..defaults.net },
            selfplay: config::SelfPlaySettings {
                games: 16,
                simulations: 8,
                fast_simulations: 4,
                considered_actions: 8,
                ..defaults.selfplay
            },
            learn: config::LearnSettings { updates_per_iteration: 8, batch_size: 64, ..defaults.learn },
            arena: config::ArenaSettings {
                every: 2,
                games: 20,
                simulations: 8,
                test_time_simulations: vec![0, 8],
                alphabeta_depths: vec![1, 2],
                opening_plies: 2,
                league: 1,
            },
            checkpoint: config::CheckpointSettings { every: 2, keep: 2 },
            ..defaults
        }
    }
}

/// The settings of the AlphaZero run checkpointed in `out` (`None` when it has no checkpoint).
pub fn saved_config(out: &Path) -> Result<Option<AlphaZeroConfig>, AlphaZeroError> {
    let state = CheckpointDir::of_run(out).load_latest_state::<AlphaZeroConfig, AlphaZeroRecord>()?;
    Ok(state.map(|s| s.config))
}

/// Runs (or, with [`RunStart::Resume`], continues) AlphaZero on game `G` from `start` under `config` on the CPU, writing
/// `metrics.jsonl`, `config.toml`, checkpoints, the final network (`model/`, with the run's settings in
/// `model/alphazero.toml` for [`load_agent`]) and the report (`report.json`, `report.md` and plots) under
/// `out`. A new run is refused when `out` already holds a run, unless `run_start` is [`RunStart::Overwrite`].
/// Returns the record, or `None` when the stop signal interrupted it (its state is checkpointed).
pub fn run<G: ArenaGame>(
    config: &AlphaZeroConfig,
    start: G,
    out: &Path,
    run_start: RunStart,
    stop: StopSignal<'_>,
) -> Result<Option<AlphaZeroRecord>, AlphaZeroError> {
    run_on(CpuBackend, &SingleProcess, config, start, None, out, run_start, stop)
}

/// [`run`] on Connect Four from the empty board, measuring mistakes on the committed solver-labelled benchmark
/// along the way and, at the end, against the search budget; data-parallel over `collective`'s ranks.
pub fn run_connect4(
    collective: &dyn Collective,
    config: &AlphaZeroConfig,
    out: &Path,
    run_start: RunStart,
    stop: StopSignal<'_>,
) -> Result<Option<AlphaZeroRecord>, AlphaZeroError> {
    let benchmark = Connect4Benchmark::committed()?;
    run_on(CpuBackend, collective, config, selfplay_games::Connect4::new(), Some(&benchmark), out, run_start, stop)
}

/// [`run`] with the network on `backend`, measuring mistakes on `benchmark` when given, data-parallel over
/// `collective`'s ranks: each rank plays its share of every iteration's games and trains on its share of every
/// batch; the ranks gather the games, so they keep the same replay buffer and weights; rank 0 alone measures
/// (the arena, the benchmark) and writes the run's files.
#[allow(clippy::too_many_arguments)]
pub fn run_on<G: ArenaGame, B: HostAccess>(
    backend: B,
    collective: &dyn Collective,
    config: &AlphaZeroConfig,
    start: G,
    benchmark: Option<&dyn MoveBenchmark<G>>,
    out: &Path,
    run_start: RunStart,
    stop: StopSignal<'_>,
) -> Result<Option<AlphaZeroRecord>, AlphaZeroError> {
    config.validate()?;
    let settings = RunnerSettings { checkpoint_every: config.checkpoint.every, keep: config.checkpoint.keep };
    let (mut runner, checkpoint) =
        Runner::open::<AlphaZeroRecord>(out, config, settings, None, run_start, stop, collective)?;
    let mut stage = AlphaZeroStage::new(config, start, benchmark);
    let (mut cx, resumed) = match checkpoint {
        Some(checkpoint) => {
            let position = [(Stage::<AlphaZeroRecord, B>::name(&stage), Stage::<AlphaZeroRecord, B>::steps(&stage))];
            CheckpointDir::of_run(out).check_resumable(&checkpoint, &config.model_config::<G>(), &position)?;
            let (resumed, state, saved) = Resumed::from_checkpoint(checkpoint);
            let model = Model::with_backend(saved.config, saved.weights, backend)?;
            let clock = RunClock::starting_at(state.elapsed_seconds);
            (Context { model, record: state.record, out, clock, collective }, Some(resumed))
        }
        None => {
            let model_config = config.model_config::<G>();
            let weights = init_weights(&model_config, DEFAULT_INIT_STD, config.seed)?;
            let model = Model::with_backend(model_config, weights, backend)?;
            let clock = RunClock::starting_at(0.0);
            (Context { model, record: AlphaZeroRecord::default(), out, clock, collective }, None)
        }
    };
    // Written once the checkpoint is known good: a refused resume leaves the run as it was.
    let config_file = out.join("config.toml");
    let toml = config.to_toml()?;
    if collective.is_root() {
        std::fs::write(&config_file, &toml).map_err(EngineError::io(&config_file))?;
    }
    match runner.run(&mut cx, &mut [&mut stage], resumed)? {
        Outcome::Interrupted { .. } => Ok(None),
        Outcome::Finished if !collective.is_root() => Ok(Some(cx.record)),
        Outcome::Finished => {
            // The settings travel inside the directory, published in the same atomic step as the weights, so a
            // copied `model/` still searches the way it was trained to.
            selfplay_model::save_model_dir_with(
                &out.join("model"),
                cx.model.config(),
                cx.model.weights(),
                None,
                DType::F32,
                &[(SETTINGS_FILE, toml.as_bytes())],
            )?;
            report::write_report(out, &cx.record)?;
            Ok(Some(cx.record))
        }
    }
}

#[cfg(test)]
mod distributed_tests;
#[cfg(test)]
mod tests;
