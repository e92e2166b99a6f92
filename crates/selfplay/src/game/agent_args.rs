//! The arguments every command that loads a trained network shares (`move`, `play`, `eval`): which game, which
//! network, which seed. Kept apart from the subcommand list so the commands depend on it and not on each other.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

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
    pub(super) game: PlayedGame,
    /// The network: the `model/` directory of a run (its search settings come from `alphazero.toml` there).
    #[arg(long)]
    pub(super) model: PathBuf,
    /// Seed of the searches (the same position, budget and seed always give the same move).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    pub(super) seed: u64,
}
