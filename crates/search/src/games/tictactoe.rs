//! Tic-tac-toe as a [`Game`], with an exact solver to judge play and [`TicTacToeEvaluator`], the random-playout
//! evaluator the search's tests and examples use.

use crate::error::SearchError;
use crate::evaluator::{Evaluator, LeafBatch, LeafOutputs};
use crate::game::{Game, GameError, Player};
use crate::game_eval::{RandomRollouts, transition};
use crate::tree::RootOutput;

const UNIFORM: [f32; 9] = [0.0; 9];

const LINES: [[usize; 3]; 8] = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]];

/// A tic-tac-toe position. Cells, numbered 0..9 row by row, hold 0 (empty), 1 (X, the first player) or 2 (O).
///
/// As a [`Game`]: action `c` marks cell `c`; the observation is the 9 cells as tokens 0 (empty), 1 (the player
/// to move's mark) and 2 (the opponent's), so it reads the same for X and O.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TicTacToe {
    cells: [u8; 9],
}

fn mark(player: Player) -> u8 {
    match player {
        Player::First => 1,
        Player::Second => 2,
    }
}

impl TicTacToe {
    /// The empty board, X (the first player) to move.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a position from a 9-character string of `.`, `X`, `O`; `None` if malformed or unreachable counts.
    pub fn parse(s: &str) -> Option<Self> {
        let mut cells = [0u8; 9];
        let mut n = 0;
        for c in s.chars() {
            let v = match c {
                '.' => 0,
                'X' | 'x' => 1,
                'O' | 'o' => 2,
                _ => return None,
            };
            *cells.get_mut(n)? = v;
            n += 1;
        }
        let (x, o) = (cells.iter().filter(|&&c| c == 1).count(), cells.iter().filter(|&&c| c == 2).count());
        (n == 9 && (x == o || x == o + 1)).then_some(Self { cells })
    }

    /// Who holds `cell`; `None` if it is empty or out of range.
    pub fn cell(&self, cell: usize) -> Option<Player> {
        match self.cells.get(cell)? {
            1 => Some(Player::First),
            2 => Some(Player::Second),
            _ => None,
        }
    }

    /// The winner, if a line is complete.
    pub fn winner(&self) -> Option<Player> {
        LINES.iter().find_map(|l| {
            let c = self.cells[l[0]];
            (c != 0 && c == self.cells[l[1]] && c == self.cells[l[2]]).then(|| self.cell(l[0])).flatten()
        })
    }

    fn is_full(&self) -> bool {
        self.cells.iter().all(|&c| c != 0)
    }

    /// Invalid-action mask (`true` = occupied or game over).
    pub fn invalid_mask(&self) -> [bool; 9] {
        core::array::from_fn(|i| !self.is_legal(i))
    }

    /// Game-theoretic value for the player to move under perfect play: 1 win, 0 draw, -1 loss.
    pub fn solve(&self) -> i8 {
        if let Some(v) = self.terminal_value() {
            return v as i8;
        }
        self.legal_actions().filter_map(|c| self.after(c).ok()).map(|n| -n.solve()).max().unwrap_or(0)
    }

    /// Every move that keeps the perfect-play value (the moves a perfect player may choose).
    pub fn best_moves(&self) -> impl Iterator<Item = usize> + '_ {
        let best = self.solve();
        (0..9).filter(move |&c| self.after(c).is_ok_and(|n| -n.solve() == best))
    }
}

impl Game for TicTacToe {
    const NUM_ACTIONS: usize = 9;
    const OBSERVATION_LEN: usize = 9;
    const NUM_TOKENS: usize = 3;

    fn to_move(&self) -> Player {
        let filled = self.cells.iter().filter(|&&c| c != 0).count();
        if filled % 2 == 0 { Player::First } else { Player::Second }
    }

    fn is_legal(&self, action: usize) -> bool {
        self.cells.get(action) == Some(&0) && !self.is_terminal()
    }

    fn play(&mut self, action: usize) -> Result<(), GameError> {
        if action >= 9 {
            return Err(GameError::OutOfRange { action, num_actions: 9 });
        }
        if self.is_terminal() {
            return Err(GameError::GameOver { action });
        }
        if self.cells[action] != 0 {
            return Err(GameError::Illegal { action });
        }
        self.cells[action] = mark(self.to_move());
        Ok(())
    }

    /// -1 once a line is complete (in play, by the previous mover: the player to move has lost; a parsed
    /// position where the player to move holds the line is +1), 0 on a full board, `None` otherwise.
    fn terminal_value(&self) -> Option<f32> {
        if let Some(w) = self.winner() {
            Some(if w == self.to_move() { 1.0 } else { -1.0 })
        } else if self.is_full() {
            Some(0.0)
        } else {
            None
        }
    }

    fn observation_token(&self, index: usize) -> u32 {
        match self.cell(index) {
            None => 0,
            Some(p) if p == self.to_move() => 1,
            Some(_) => 2,
        }
    }

    /// Left-right: cell `3r + c` becomes `3r + 2 − c`.
    fn mirror_action(action: usize) -> Option<usize> {
        (action < 9).then(|| action - action % 3 + 2 - action % 3)
    }

    /// The observation is the cells, so it mirrors as the actions do.
    fn mirror_observation_index(index: usize) -> Option<usize> {
        Self::mirror_action(index)
    }

    /// The cells read as a base-3 number (unique per position).
    fn key(&self) -> u64 {
        self.cells.iter().fold(0u64, |k, &c| k * 3 + u64::from(c))
    }
}

/// Evaluates tic-tac-toe leaves with a uniform prior over legal moves and a value from seeded random playouts
/// ([`RandomRollouts`]). A winning move earns reward +1 for the mover and ends the game; discount is -1
/// (two-player zero-sum). The same search as [`crate::GameEvaluator`] over [`RandomRollouts`], with the
/// search's own error type and no buffers.
#[derive(Debug, Clone, Copy)]
pub struct TicTacToeEvaluator {
    /// Random playouts per evaluated position (0 = value 0 everywhere: pure tree search).
    pub rollouts: u32,
    /// Seed of the playouts (each position has its own stream, so evaluation order does not matter).
    pub seed: u64,
}

impl TicTacToeEvaluator {
    fn model(&self) -> RandomRollouts {
        RandomRollouts { rollouts: self.rollouts, seed: self.seed }
    }

    /// The value of a root position (its prior is uniform over [`TicTacToe::invalid_mask`]'s legal moves).
    pub fn root_value(&self, board: &TicTacToe) -> f32 {
        self.model().value(board)
    }

    /// The root output for `board`, with `mask` holding its invalid-action mask.
    pub fn root<'a>(&self, board: TicTacToe, mask: &'a mut [bool; 9]) -> RootOutput<'a, TicTacToe> {
        *mask = board.invalid_mask();
        let mask: &'a [bool; 9] = mask;
        RootOutput { state: board, prior_logits: &UNIFORM, value: self.root_value(&board), invalid_actions: Some(mask) }
    }
}

impl Evaluator for TicTacToeEvaluator {
    type State = TicTacToe;
    type Error = SearchError;

    fn evaluate(
        &mut self,
        leaves: &LeafBatch<'_, TicTacToe>,
        out: &mut LeafOutputs<TicTacToe>,
    ) -> Result<(), SearchError> {
        let model = self.model();
        for (i, leaf) in leaves.iter().enumerate() {
            let mut eval = transition(leaf.parent, leaf.action)
                .map_err(|_| SearchError::InvalidAction { action: leaf.action, num_actions: 9 })?;
            if !eval.terminal {
                eval.value = model.value(&eval.state);
            }
            let invalid = eval.state.invalid_mask();
            out.set_masked(i, eval, &UNIFORM, &invalid)?;
        }
        Ok(())
    }
}
