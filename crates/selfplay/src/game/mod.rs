//! `selfplay game`: AlphaZero on a board game. `train` makes a network by self-play; `move`, `play` and `eval` load
//! the `model/` directory a run wrote and answer positions on stdin, play a person in the terminal, or measure
//! mistakes on the solver-labelled benchmark.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::CliError;

mod eval;
mod moves;
mod play;
pub mod train;

/// `selfplay game` and its subcommand.
#[derive(Debug, Args)]
pub struct GameArgs {
    #[command(subcommand)]
    command: GameCommand,
}

#[derive(Debug, Subcommand)]
enum GameCommand {
    /// Self-play as in AlphaGo Zero: `selfplay game train --game connect4 --out runs/c4`.
    Train(train::TrainArgs),
    /// The network's move for each position on stdin (columns played, `4453`), one column per line on stdout.
    Move(moves::MoveArgs),
    /// Play the network in the terminal.
    Play(play::PlayArgs),
    /// Mistake rates on the solver-labelled benchmark at each search budget.
    Eval(eval::EvalArgs),
}

/// Runs the `selfplay game` subcommand `args` name.
pub fn run(args: GameArgs) -> Result<(), CliError> {
    match args.command {
        GameCommand::Train(args) => train::run(args),
        GameCommand::Move(args) => moves::run(args),
        GameCommand::Play(args) => play::run(args),
        GameCommand::Eval(args) => eval::run(args),
    }
}

/// The games a trained network can be asked about: those with a position notation for stdin and a drawing for
/// the terminal (tic-tac-toe trains, but has neither here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlayedGame {
    /// Connect Four; positions are the columns 1–7 played from the empty board (`4453`).
    Connect4,
}

/// Which network plays, and how its searches are seeded.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The game.
    #[arg(long, value_enum)]
    game: PlayedGame,
    /// The network: the `model/` directory of a run (its search settings come from `alphazero.toml` there).
    #[arg(long)]
    model: PathBuf,
    /// Seed of the searches (the same position, budget and seed always give the same move).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}
