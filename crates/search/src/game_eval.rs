//! Glue between a [`Game`] and the search: [`GameEvaluator`] turns any game plus a batched policy-value model
//! ([`PolicyValue`]: a network, or [`RandomRollouts`]) into an [`Evaluator`], so [`crate::Search`] (MuZero
//! PUCT or Gumbel MuZero) searches the game.
//!
//! How a game's results become search quantities (see [`transition`]): a move that ends the game earns its
//! result as the transition's reward, from the mover's point of view, and the terminal node's value is 0;
//! a move that does not end the game has reward 0 and the model's value. The discount is `-1` when the turn
//! passes to the opponent and `+1` when the same player moves again, so every node value stays "for the
//! player to move there".
//!
//! ```
//! use selfplay_search::games::TicTacToe;
//! use selfplay_search::{Game, GameEvaluator, RandomRollouts, Search, SearchConfig, Tree};
//!
//! // O to move must block the top row at cell 2.
//! let board = TicTacToe::parse("XX..O....").ok_or("bad board")?;
//! let mut evaluator = GameEvaluator::new(RandomRollouts { rollouts: 8, seed: 0 });
//! let mut tree = Tree::new(TicTacToe::NUM_ACTIONS);
//! tree.reset(evaluator.root(&board)?)?;
//! let mut search = Search::new(SearchConfig::muzero(200), TicTacToe::NUM_ACTIONS)?;
//! search.run(std::slice::from_mut(&mut tree), &mut evaluator, 0)?;
//! assert_eq!(search.policy(&mut tree)?.action, 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use alloc::vec::Vec;
use core::fmt::{Debug, Display};

use crate::error::SearchError;
use crate::evaluator::{Evaluation, Evaluator, LeafBatch, LeafOutputs};
use crate::game::{Game, GameError};
use crate::rng;
use crate::tree::RootOutput;

/// A batched policy-value function over game positions: the network the search consults.
pub trait PolicyValue<G: Game> {
    /// The model's own failure type, passed through [`GameEvalError::Model`].
    type Error: Debug + Display;

    /// Evaluates `positions` (never terminal ones). Writes `G::NUM_ACTIONS` prior logits per position into
    /// `logits` (row-major `[positions.len(), NUM_ACTIONS]`; the logits of illegal actions are ignored) and one
    /// value per position into `values`, from the point of view of the player to move there. Both buffers
    /// arrive zeroed and exactly that long. A network reads the positions' tokens with
    /// [`crate::game::observe_batch`].
    fn evaluate(&mut self, positions: &[G], logits: &mut [f32], values: &mut [f32]) -> Result<(), Self::Error>;
}

/// What a [`GameEvaluator`] can fail on.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum GameEvalError<E: Debug + Display> {
    /// A move the game refuses (the search asked for an action the game calls illegal).
    #[error(transparent)]
    Game(#[from] GameError),
    /// [`GameEvaluator::root`] was given a finished game: there is nothing to search.
    #[error("the root position is terminal: there is nothing to search")]
    TerminalRoot,
    /// The outputs could not be written (a batch or action count that disagrees with the search's).
    #[error(transparent)]
    Search(#[from] SearchError),
    /// The model failed.
    #[error("model error: {0}")]
    Model(E),
}

/// The game side of evaluating the leaf "`action` from `parent`": the next position, the reward the mover
/// earns (the result of a move that ends the game, else 0), the discount (`-1` if the turn passes, `+1` if the
/// same player moves again) and whether the game is over. `value` is 0; for a non-terminal position the caller
/// sets the model's value.
pub fn transition<G: Game>(parent: &G, action: usize) -> Result<Evaluation<G>, GameError> {
    let next = parent.after(action)?;
    let same_mover = next.to_move() == parent.to_move();
    let discount = if same_mover { 1.0 } else { -1.0 };
    let (reward, terminal) = match next.terminal_value() {
        // `0.0 - v`, not `-v`: a draw is +0 for both players.
        Some(v) => (if same_mover { v } else { 0.0 - v }, true),
        None => (0.0, false),
    };
    Ok(Evaluation { state: next, reward, discount, value: 0.0, terminal })
}

/// Searches any [`Game`] with a batched [`PolicyValue`] model: an [`Evaluator`] over `G`'s positions that plays
/// each leaf's move, evaluates every non-terminal leaf of the batch in one model call, and masks illegal moves.
/// Buffers are reused from call to call.
#[derive(Debug)]
pub struct GameEvaluator<G, M> {
    model: M,
    batch: Vec<G>,
    logits: Vec<f32>,
    values: Vec<f32>,
    invalid: Vec<bool>,
    evals: Vec<Evaluation<G>>,
    root_logits: Vec<f32>,
    root_invalid: Vec<bool>,
}

impl<G: Game, M: PolicyValue<G>> GameEvaluator<G, M> {
    /// An evaluator consulting `model`.
    pub fn new(model: M) -> Self {
        Self {
            model,
            batch: Vec::new(),
            logits: Vec::new(),
            values: Vec::new(),
            invalid: alloc::vec![false; G::NUM_ACTIONS],
            evals: Vec::new(),
            root_logits: alloc::vec![0.0; G::NUM_ACTIONS],
            root_invalid: alloc::vec![false; G::NUM_ACTIONS],
        }
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The model, mutably (to swap in new weights between searches).
    pub fn model_mut(&mut self) -> &mut M {
        &mut self.model
    }

    /// Gives the model back.
    pub fn into_model(self) -> M {
        self.model
    }

    /// Evaluates `position` as the root of a search: the model's prior and value, and the illegal moves masked.
    /// Hand the result to [`crate::Tree::reset`]. A finished game is refused with [`GameEvalError::TerminalRoot`].
    pub fn root(&mut self, position: &G) -> Result<RootOutput<'_, G>, GameEvalError<M::Error>> {
        if position.is_terminal() {
            return Err(GameEvalError::TerminalRoot);
        }
        self.root_logits.iter_mut().for_each(|l| *l = 0.0);
        let mut value = [0.0f32];
        self.model
            .evaluate(core::slice::from_ref(position), &mut self.root_logits, &mut value)
            .map_err(GameEvalError::Model)?;
        position.invalid_mask_into(&mut self.root_invalid);
        Ok(RootOutput {
            state: position.clone(),
            prior_logits: &self.root_logits,
            value: value[0],
            invalid_actions: Some(&self.root_invalid),
        })
    }
}

impl<G: Game, M: PolicyValue<G>> Evaluator for GameEvaluator<G, M> {
    type State = G;
    type Error = GameEvalError<M::Error>;

    fn evaluate(&mut self, leaves: &LeafBatch<'_, G>, out: &mut LeafOutputs<G>) -> Result<(), Self::Error> {
        let a = G::NUM_ACTIONS;
        if out.num_actions() != a {
            return Err(SearchError::Shape { what: "num_actions (game)", expected: a, got: out.num_actions() }.into());
        }
        self.batch.clear();
        self.evals.clear();
        for leaf in leaves.iter() {
            let eval = transition(leaf.parent, leaf.action)?;
            if !eval.terminal {
                self.batch.push(eval.state.clone());
            }
            self.evals.push(eval);
        }
        let n = self.batch.len();
        self.logits.clear();
        self.logits.resize(n * a, 0.0);
        self.values.clear();
        self.values.resize(n, 0.0);
        if n > 0 {
            self.model.evaluate(&self.batch, &mut self.logits, &mut self.values).map_err(GameEvalError::Model)?;
        }
        let mut row = 0;
        for (i, mut eval) in self.evals.drain(..).enumerate() {
            eval.state.invalid_mask_into(&mut self.invalid);
            let logits = if eval.terminal {
                None
            } else {
                eval.value = self.values.get(row).copied().unwrap_or(0.0);
                row += 1;
                self.logits.get((row - 1) * a..row * a)
            };
            let invalid = &self.invalid;
            out.fill(i, eval, |l, m| {
                match logits {
                    Some(src) => l.copy_from_slice(src),
                    None => l.fill(0.0),
                }
                m.copy_from_slice(invalid);
            })?;
        }
        Ok(())
    }
}

/// A stand-in model for any game: a uniform prior over the legal moves and the mean result of uniformly random
/// playouts. Each position draws from its own random stream (`seed`, [`Game::key`]), so a value does not depend
/// on evaluation order or batch composition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomRollouts {
    /// Random playouts per position (0 = value 0 everywhere: pure tree search).
    pub rollouts: u32,
    /// Seed of the playouts.
    pub seed: u64,
}

impl RandomRollouts {
    /// Mean result of the playouts from `position`, for its player to move (1 win, -1 loss).
    pub fn value<G: Game>(&self, position: &G) -> f32 {
        if self.rollouts == 0 {
            return 0.0;
        }
        let mut rng = rng::stream_rng(self.seed, position.key());
        let mover = position.to_move();
        let mut weights = alloc::vec![0.0f32; G::NUM_ACTIONS];
        let mut total = 0.0f32;
        for _ in 0..self.rollouts {
            let mut p = position.clone();
            total += loop {
                if let Some(v) = p.terminal_value() {
                    break if p.to_move() == mover { v } else { 0.0 - v };
                }
                for (a, w) in weights.iter_mut().enumerate() {
                    *w = if p.is_legal(a) { 1.0 } else { 0.0 };
                }
                // A game that is not over always has a legal move; should one break that rule, call it a draw.
                let Some(a) = rng::categorical(&mut rng, &weights) else { break 0.0 };
                if p.play(a).is_err() {
                    break 0.0;
                }
            };
        }
        total / self.rollouts as f32
    }
}

impl<G: Game> PolicyValue<G> for RandomRollouts {
    type Error = core::convert::Infallible;

    fn evaluate(&mut self, positions: &[G], logits: &mut [f32], values: &mut [f32]) -> Result<(), Self::Error> {
        logits.iter_mut().for_each(|l| *l = 0.0);
        for (v, p) in values.iter_mut().zip(positions) {
            *v = self.value(p);
        }
        Ok(())
    }
}
