//! `selfplay demo`: the whole loop on an embedded default, what `cargo run --release` runs. Countdown (the o1 loop,
//! written to `runs/demo`) unless `--game connect4` asks for AlphaZero on Connect Four (`runs/demo-connect4`,
//! the network in its `model/`).

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use selfplay_engine::alphazero::AlphaZeroConfig;
use selfplay_engine::o1::default_out;

use super::CliError;
use super::game::train::{self as game_train, GameName, TrainArgs};
use super::train::{self, RunArgs};

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
    match args.game {
        DemoGame::Countdown => train::run(args.run, default_out()),
        DemoGame::Connect4 => {
            let run = args.run;
            let preset = if run.full { AlphaZeroConfig::connect4_full() } else { AlphaZeroConfig::connect4_demo() };
            let train_args = TrainArgs {
                game: GameName::Connect4,
                out: run.out.unwrap_or_else(|| PathBuf::from(CONNECT4_OUT)),
                config: run.config,
                resume: run.resume,
                print_config: run.print_config,
                iterations: None,
                seed: run.seed,
            };
            game_train::train(&train_args, preset, "selfplay demo")
        }
    }
}
