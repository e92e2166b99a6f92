//! Board games for self-play: Connect Four on bitboards, a perfect solver, fixed opponents and solver-labelled
//! benchmark positions (no_std + alloc).
//!
//! * [`Connect4`] implements `selfplay_search::Game`, so MCTS and Gumbel MuZero search it as they search
//!   tic-tac-toe. Positions are read and written in the column notation (`"4453"`: the columns 1–7 played from
//!   the empty board), the notation of Pascal Pons's solver and test sets; [`Connect4::mirror`] gives the
//!   mirror image for data augmentation; `Display` draws the board. [`TicTacToe`] (from `selfplay-search`)
//!   is re-exported beside it.
//! * [`Solver`] computes exact scores (Pons's convention: positive when the player to move wins, larger for
//!   quicker wins; 0 for a draw) of a position and of each of its moves ([`Solver::analyze`]). It is the
//!   judge of every mistake and the test oracle; it was checked against an independent Python reference
//!   (`tools/connect4_reference.py`, fixture in `tests/fixtures/`).
//! * [`Agent`] is the seam for players: [`RandomAgent`], [`AlphaBetaAgent`] (depth 1–10 with a heuristic
//!   horizon) and [`PerfectAgent`] are the fixed opponents; a network with search implements it too.
//! * [`labelled`] generates solver-labelled positions, groups them (begin/middle/end × easy/medium/hard) and
//!   measures an agent's mistake rate, AlphaZero.jl's Connect Four benchmark.
//! * [`tournament`] plays agents against each other from seeded random openings (colours swapped per opening);
//!   [`elo`] turns the results into Bradley–Terry Elo ratings anchored at fixed players.
//!
//! ```
//! use selfplay_games::{Agent, AlphaBetaAgent, Connect4, Solver, TieBreak};
//! use selfplay_search::{Game, Player};
//!
//! // 21 moves played: the second player (O) to move.
//! let position = Connect4::from_moves("134742156423332441136")?;
//! assert_eq!(position.to_move(), Player::Second);
//! let mut solver = Solver::with_table_entries(1 << 20);
//! // Column 2 wins with O's 14th stone (22 - 14 = 8); columns 3, 4, 6 and 7 lose to X's 13th (13 - 22 = -9).
//! let scores = solver.analyze(&position);
//! assert_eq!(scores, [Some(2), Some(8), Some(-9), Some(-9), Some(7), Some(-9), Some(-9)]);
//! assert_eq!(solver.solve(&position), 8);
//!
//! // A depth-4 alpha-beta opponent: a legal move, whatever its quality.
//! let mut agent = AlphaBetaAgent::new(4, TieBreak::CentreFirst)?;
//! let col = agent.choose_move(&position)?;
//! assert!(scores[col].is_some());
//!
//! let next = position.after(col)?;
//! assert_eq!(Connect4::from_moves(&next.notation())?, next);
//! println!("{next}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;

pub mod agent;
mod bitboard;
pub mod connect4;
pub mod elo;
pub mod error;
pub mod labelled;
pub mod solver;
pub mod tournament;

pub use agent::{Agent, AlphaBetaAgent, PerfectAgent, RandomAgent, TieBreak, play_game};
pub use bitboard::{CELLS, HEIGHT, WIDTH};
pub use connect4::{Connect4, TOKEN_EMPTY, TOKEN_MINE, TOKEN_THEIRS};
pub use elo::{Pairing, fit_ratings};
pub use error::{AgentError, LabelError, ParseError, RatingError};
pub use labelled::{Difficulty, GenerateConfig, GroupedMistakes, LabelledPosition, MistakeReport, Phase, Tactic};
/// Tic-tac-toe lives in `selfplay-search` (its tests use it); re-exported so every game is found here.
pub use selfplay_search::games::TicTacToe;
pub use solver::{Outcome, Solver};
