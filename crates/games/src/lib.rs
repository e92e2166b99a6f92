//! Board games for self-play: Connect Four on bitboards, a perfect solver, fixed opponents, labelled positions.
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;

pub mod agent;
mod bitboard;
pub mod connect4;
pub mod error;
pub mod labelled;
pub mod solver;

pub use agent::{Agent, AlphaBetaAgent, PerfectAgent, RandomAgent, TieBreak};
pub use bitboard::{CELLS, HEIGHT, WIDTH};
pub use connect4::Connect4;
pub use error::{AgentError, LabelError, ParseError};
pub use labelled::{Difficulty, GenerateConfig, GroupedMistakes, LabelledPosition, MistakeReport, Phase};
pub use solver::{Outcome, Solver};
