//! Decisive moves (Teytaud and Teytaud, "On the huge benefit of decisive moves in Monte-Carlo Tree Search
//! algorithms", IEEE CIG 2010): a position in which the player to move can win at once is scored as won, and
//! the search is told to play the winning move.
//!
//! A tree search over a weak network finds an opponent's immediate win only if it happens to visit that reply:
//! Gumbel MuZero's interior nodes follow the network's prior and values, so with an untrained prior they can
//! spend every simulation below a losing move without trying the one reply that wins against it. Checking a
//! leaf's moves for a win costs a few moves of the game, far less than the network's forward pass, and makes a
//! losing move show its value on the first visit: the child it leads to is a leaf where the opponent wins at
//! once. So the search blocks immediate threats and takes immediate wins whatever the prior says, and
//! self-play's policy targets teach the network both from the first iteration.
//!
//! [`DecisiveMoves`] wraps any [`PolicyValue`]: where the player to move has a decisive move, the value
//! becomes the win and every other legal move's prior logit falls far below the decisive ones. A decisive
//! move is one that ends the game with the best result there is, 1 (a win) for the mover; a game scored by
//! margins gains nothing from an immediate smaller result, so such a move is left to the search.

use crate::game::Game;
use crate::game_eval::PolicyValue;

/// How far below the decisive moves' prior logits the other moves' fall: their prior weight is `e^-50` of a
/// decisive move's, so no selection rule picks them while a decisive move is there.
pub const DECISIVE_LOGIT_MARGIN: f32 = 50.0;

/// The result, for the player to move in `position`, of playing `action` when that ends the game, or `None`
/// when the game goes on (or `action` is illegal).
fn ending_result<G: Game>(position: &G, action: usize) -> Option<f32> {
    let after = position.after(action).ok()?;
    let result = after.terminal_value()?;
    // `terminal_value` is for the player to move after the game ends: the mover's opponent when the turn passed.
    Some(if after.to_move() == position.to_move() { result } else { -result })
}

/// Whether `action` wins `position` at once for the player to move (ends the game with result 1 for them).
pub fn is_decisive<G: Game>(position: &G, action: usize) -> bool {
    ending_result(position, action).is_some_and(|r| r >= 1.0)
}

/// A [`PolicyValue`] that scores positions with a decisive move as won and points the prior at those moves;
/// other positions get `model`'s outputs unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisiveMoves<M> {
    /// The wrapped policy-value function.
    pub model: M,
    /// `false` passes `model`'s outputs through untouched.
    pub enabled: bool,
}

impl<M> DecisiveMoves<M> {
    /// `model` with decisive moves checked when `enabled`.
    pub fn new(model: M, enabled: bool) -> Self {
        DecisiveMoves { model, enabled }
    }
}

impl<G: Game, M: PolicyValue<G>> PolicyValue<G> for DecisiveMoves<M> {
    type Error = M::Error;

    fn evaluate(&mut self, positions: &[G], logits: &mut [f32], values: &mut [f32]) -> Result<(), Self::Error> {
        self.model.evaluate(positions, logits, values)?;
        if !self.enabled {
            return Ok(());
        }
        let a = G::NUM_ACTIONS;
        for ((position, row), value) in positions.iter().zip(logits.chunks_exact_mut(a)).zip(values.iter_mut()) {
            let mut lowest_decisive = f32::INFINITY;
            for action in position.legal_actions().filter(|&action| is_decisive(position, action)) {
                lowest_decisive = lowest_decisive.min(row[action]);
            }
            if lowest_decisive == f32::INFINITY {
                continue;
            }
            *value = 1.0;
            let floor = lowest_decisive - DECISIVE_LOGIT_MARGIN;
            for action in position.legal_actions() {
                if !is_decisive(position, action) {
                    row[action] = row[action].min(floor);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec;
    use alloc::vec::Vec;

    use super::*;
    use crate::games::TicTacToe;
    use crate::{Algorithm, GameEvaluator, GumbelConfig, Search, SearchConfig, Tree};

    /// A uniform prior and a value of 0 everywhere: a network that knows nothing.
    struct Blank;

    impl PolicyValue<TicTacToe> for Blank {
        type Error = core::convert::Infallible;
        fn evaluate(&mut self, _: &[TicTacToe], _: &mut [f32], _: &mut [f32]) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    fn outputs(model: &mut impl PolicyValue<TicTacToe>, position: &TicTacToe) -> (Vec<f32>, f32) {
        let (mut logits, mut value) = (vec![0.0; 9], [0.0]);
        model.evaluate(core::slice::from_ref(position), &mut logits, &mut value).map_err(|_| ()).unwrap();
        (logits, value[0])
    }

    #[test]
    fn a_position_with_a_win_is_won_and_its_prior_points_at_the_winning_moves() {
        // X to move wins at 2 (top row) and at 6 (left column).
        let position = TicTacToe::parse("XX.X.O.OO").unwrap();
        assert!(is_decisive(&position, 2) && is_decisive(&position, 6) && !is_decisive(&position, 4));
        let (logits, value) = outputs(&mut DecisiveMoves::new(Blank, true), &position);
        assert_eq!(value, 1.0);
        assert_eq!(logits, [0.0, 0.0, 0.0, 0.0, -50.0, 0.0, 0.0, 0.0, 0.0]);
        // Switched off, or with no win to take, the model's outputs pass through.
        assert_eq!(outputs(&mut DecisiveMoves::new(Blank, false), &position), (vec![0.0; 9], 0.0));
        let quiet = TicTacToe::parse("X...O....").unwrap();
        assert_eq!(outputs(&mut DecisiveMoves::new(Blank, true), &quiet), (vec![0.0; 9], 0.0));
    }

    /// Gumbel MuZero over a network that knows nothing misses an immediate threat in one of these positions at
    /// 32 simulations; with decisive moves it blocks every one.
    #[test]
    fn gumbel_search_over_a_blank_network_blocks_every_immediate_threat() {
        let threats = ["XX.O.....", "X..XO....", "X...X.O..", "..X.X...O", "O..XX....", "X.O.X....", ".X..X.O.."];
        let blocks = [2, 6, 8, 6, 5, 8, 7];
        let block_all = |decisive: bool| {
            threats.iter().zip(blocks).all(|(board, block)| {
                let position = TicTacToe::parse(board).unwrap();
                let mut evaluator = GameEvaluator::new(DecisiveMoves::new(Blank, decisive));
                let mut tree = Tree::new(9);
                tree.reset(evaluator.root(&position).unwrap()).unwrap();
                let gumbel = GumbelConfig { gumbel_scale: 0.0, ..GumbelConfig::default() };
                let config = SearchConfig { algorithm: Algorithm::GumbelMuZero(gumbel), ..SearchConfig::gumbel(32) };
                let mut search = Search::new(config, 9).unwrap();
                search.run(core::slice::from_mut(&mut tree), &mut evaluator, 0).unwrap();
                search.policy(&mut tree).unwrap().action == block
            })
        };
        assert!(!block_all(false), "the blank network alone should miss a threat");
        assert!(block_all(true));
    }
}
