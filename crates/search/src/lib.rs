//! Search for reasoning and games: best-of-N, voting, step beam search, MCTS (PUCT), Gumbel MuZero (no_std + alloc).
//!
//! * [`Search`] runs MuZero (PUCT) or Gumbel MuZero over arena [`Tree`]s with mctx's exact semantics (replayed
//!   against DeepMind mctx's recorded trees in `tests/mctx_parity.rs`), batched leaf evaluation with virtual loss,
//!   many trees per evaluator call, and subtree reuse ([`Tree::advance`]).
//! * [`Evaluator`] is the seam to the caller's model: it maps `(state, action)` leaves to new states, rewards,
//!   discounts, values and prior logits. Board games implement it directly; language reasoning uses
//!   [`language::StepSearch`], where an action is one of K sampled reasoning steps.
//! * [`Game`] is the interface of a two-player board game (legal moves, play, result, the observation tokens a
//!   network reads); [`GameEvaluator`] searches any `Game` with a batched [`PolicyValue`] model (a network, or
//!   [`RandomRollouts`]). [`games`] holds tic-tac-toe.
//! * [`beam`] (step-level beam search) and [`best_of_n`] (best-of-N and voting) are the cheaper test-time searches.
//! * [`export`] writes a tree as mctx-format JSON or Graphviz DOT.
//!
//! ```
//! use selfplay_search::games::{TicTacToe, TicTacToeEvaluator};
//! use selfplay_search::{Search, SearchConfig, Tree};
//!
//! // X to move can win at once by completing the top row.
//! let board = TicTacToe::parse("XX.OO....").ok_or("bad board")?;
//! let mut evaluator = TicTacToeEvaluator { rollouts: 4, seed: 0 };
//! let mut mask = [false; 9];
//! let mut tree = Tree::new(9);
//! tree.reset(evaluator.root(board, &mut mask))?;
//! let mut config = SearchConfig::gumbel(64);
//! config.seed = 7;
//! let mut search = Search::new(config, 9)?;
//! search.run(std::slice::from_mut(&mut tree), &mut evaluator, 0)?;
//! let out = search.policy(&mut tree)?;
//! assert_eq!(out.action, 2);
//! tree.advance(out.action)?; // keep the subtree for the next move
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;

pub mod beam;
pub mod best_of_n;
pub mod config;
pub mod decisive;
pub mod error;
pub mod evaluator;
pub mod export;
pub mod game;
pub mod game_eval;
pub mod games;
pub mod language;
pub mod mcts;
pub mod qtransform;
pub mod seq_halving;
pub mod tree;

mod rng;

pub use config::{Algorithm, GumbelConfig, MuZeroConfig, SearchConfig};
pub use decisive::DecisiveMoves;
pub use error::{Result, SearchError};
pub use evaluator::{Evaluation, Evaluator, Leaf, LeafBatch, LeafOutputs};
pub use game::{Game, GameError, Player};
pub use game_eval::{GameEvalError, GameEvaluator, PolicyValue, RandomRollouts};
pub use mcts::{PolicyOutput, Search};
pub use qtransform::{EdgeStats, QTransform};
pub use tree::{RootOutput, Tree};
