//! Small reference games implementing [`crate::Game`], for tests, examples and benchmarks.

mod tictactoe;

pub use tictactoe::{TicTacToe, TicTacToeEvaluator};
