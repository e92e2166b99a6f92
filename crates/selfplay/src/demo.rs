//! `selfplay demo`: the whole loop on an embedded default, what `cargo run --release` runs. Countdown (the o1 loop,
//! written to `runs/demo`) unless `--game connect4` asks for AlphaZero on Connect Four (`runs/demo-connect4`,
//! the network in its `model/`).
//!
//! Without `--out` the demo never refuses to run and never touches an earlier run: when its folder already holds
//! one, it writes to the next fresh sibling (`runs/demo-2`, `runs/demo-3`, …) and says so; `--resume` continues
//! the one of those folders checkpointed last; `--overwrite` replaces the run in the folder itself.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use selfplay_engine::alphazero::AlphaZeroConfig;
use selfplay_engine::engine::run_dir;
use selfplay_engine::o1;

use super::CliError;
use super::game::train::{self as game_train, GameName, Preset, TrainArgs};
use super::train::{self, RunArgs};
use crate::stdio::errln;

/// What the demo runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum DemoGame {
    /// The o1 loop on Countdown: SFT, RL, test-time scaling, report.
    #[default]
    Countdown,
    /// AlphaZero self-play on Connect Four, measured on the solver-labelled benchmark.
    Connect4,
}

/// `selfplay demo` options.
#[derive(Debug, Args, Default)]
pub struct DemoArgs {
    /// The demo.
    #[arg(long, value_enum, default_value = "countdown")]
    game: DemoGame,
    #[command(flatten)]
    run: RunArgs,
}

/// Where `selfplay demo --game connect4` writes unless `--out` says otherwise.
const CONNECT4_OUT: &str = "runs/demo-connect4";

pub fn run(args: DemoArgs) -> Result<(), CliError> {
    let mut run = args.run;
    let base = match args.game {
        DemoGame::Countdown => o1::default_out(),
        DemoGame::Connect4 => PathBuf::from(CONNECT4_OUT),
    };
    let out = match run.out.take() {
        Some(out) => out,
        None => default_out(base, &run)?,
    };
    match args.game {
        DemoGame::Countdown => train::run(run, out),
        DemoGame::Connect4 => {
            let preset = match run.full {
                true => Preset { config: AlphaZeroConfig::connect4_full(), flag: Some("--full") },
                false => Preset { config: AlphaZeroConfig::connect4_demo(), flag: None },
            };
            let train_args = TrainArgs {
                game: GameName::Connect4,
                out,
                config: run.config,
                resume: run.resume,
                overwrite: run.overwrite,
                print_config: run.print_config,
                iterations: None,
                seed: run.seed,
                ranks: run.ranks,
            };
            game_train::train(&train_args, preset, "selfplay demo")
        }
    }
}

/// The folder the demo writes to without `--out`: `base`, or when that holds a run already, the next fresh
/// sibling (said on stderr); with `--resume`, the sibling checkpointed last (`base` when none is, which then
/// has nothing to resume); with `--overwrite` or `--print-config`, `base` itself.
fn default_out(base: PathBuf, run: &RunArgs) -> Result<PathBuf, CliError> {
    if selfplay_collective::launched_by_mpi() {
        // Each rank would pick its folder alone, and not necessarily the same one.
        return Err(
            "under mpirun the demo needs --out: every rank must write to (and resume from) the same folder".into()
        );
    }
    if run.resume {
        return Ok(run_dir::newest_checkpointed(&base)?.unwrap_or(base));
    }
    if run.overwrite.overwrite || run.print_config {
        return Ok(base);
    }
    let fresh = run_dir::fresh_dir(&base)?;
    if fresh != base {
        errln!("{} holds an earlier run: writing this one to {}", base.display(), fresh.display())?;
    }
    Ok(fresh)
}
