//! `selfplay game`: AlphaZero on a board game. `train` makes a network by self-play; `move`, `play` and `eval` load
//! the `model/` directory a run wrote and answer positions on stdin, play a person in the terminal, or measure
//! mistakes on the solver-labelled benchmark.

use clap::{Args, Subcommand};

use super::CliError;

mod agent_args;
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
