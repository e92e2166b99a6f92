//! Small reference environments for tests, examples and benchmarks: tic-tac-toe as a two-player zero-sum game
//! (discount -1, values from the point of view of the player to move) with an exact solver to judge play.

use crate::error::SearchError;
use crate::evaluator::{Evaluation, Evaluator, LeafBatch, LeafOutputs};
use crate::rng;
use crate::tree::RootOutput;

const UNIFORM: [f32; 9] = [0.0; 9];

const LINES: [[usize; 3]; 8] = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]];

/// A tic-tac-toe position. Cells hold 0 (empty), 1 (first player) or 2 (second player).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TicTacToe {
    cells: [u8; 9],
}

impl TicTacToe {
    /// The empty board, first player to move.
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

    /// The player to move: 1 or 2.
    pub fn to_move(&self) -> u8 {
        let filled = self.cells.iter().filter(|&&c| c != 0).count();
        if filled % 2 == 0 { 1 } else { 2 }
    }

    /// The winner (1 or 2), if any.
    pub fn winner(&self) -> Option<u8> {
        LINES.iter().find_map(|l| {
            let c = self.cells[l[0]];
            (c != 0 && c == self.cells[l[1]] && c == self.cells[l[2]]).then_some(c)
        })
    }

    /// Whether the game is over (a win or a full board).
    pub fn is_over(&self) -> bool {
        self.winner().is_some() || self.cells.iter().all(|&c| c != 0)
    }

    /// Whether `cell` is a legal move.
    pub fn is_legal(&self, cell: usize) -> bool {
        !self.is_over() && self.cells.get(cell) == Some(&0)
    }

    /// The position after the player to move takes `cell`; `None` if illegal.
    pub fn play(&self, cell: usize) -> Option<Self> {
        if !self.is_legal(cell) {
            return None;
        }
        let mut next = *self;
        next.cells[cell] = self.to_move();
        Some(next)
    }

    /// Invalid-action mask (`true` = occupied or game over).
    pub fn invalid_mask(&self) -> [bool; 9] {
        core::array::from_fn(|i| !self.is_legal(i))
    }

    /// Game-theoretic value for the player to move under perfect play: 1 win, 0 draw, -1 loss.
    pub fn solve(&self) -> i8 {
        if let Some(w) = self.winner() {
            // The previous mover completed a line.
            return if w == self.to_move() { 1 } else { -1 };
        }
        (0..9).filter_map(|c| self.play(c)).map(|n| -n.solve()).max().unwrap_or(0)
    }

    /// Every move that keeps the perfect-play value (the moves a perfect player may choose).
    pub fn best_moves(&self) -> impl Iterator<Item = usize> + '_ {
        let best = self.solve();
        (0..9).filter(move |&c| self.play(c).is_some_and(|n| -n.solve() == best))
    }

    fn key(&self) -> u64 {
        self.cells.iter().fold(0u64, |k, &c| k * 3 + u64::from(c))
    }

    /// Mean result of `n` uniformly random playouts, for the player to move (1 win, -1 loss).
    fn rollout_value(&self, n: u32, seed: u64) -> f32 {
        let mut rng = rng::stream_rng(seed, self.key());
        let mut total = 0.0f32;
        for _ in 0..n {
            let mut board = *self;
            while !board.is_over() {
                let legal: [f32; 9] = core::array::from_fn(|c| if board.is_legal(c) { 1.0 } else { 0.0 });
                let Some(cell) = rng::categorical(&mut rng, &legal) else { break };
                board = board.play(cell).unwrap_or(board);
            }
            total += match board.winner() {
                Some(w) if w == self.to_move() => 1.0,
                Some(_) => -1.0,
                None => 0.0,
            };
        }
        if n == 0 { 0.0 } else { total / n as f32 }
    }
}

/// Evaluates tic-tac-toe leaves with a uniform prior over legal moves and a value from seeded random playouts.
/// A winning move earns reward +1 for the mover and ends the game; discount is -1 (two-player zero-sum).
#[derive(Debug, Clone, Copy)]
pub struct TicTacToeEvaluator {
    /// Random playouts per evaluated position (0 = value 0 everywhere: pure tree search).
    pub rollouts: u32,
    /// Seed of the playouts (each position has its own stream, so evaluation order does not matter).
    pub seed: u64,
}

impl TicTacToeEvaluator {
    /// The value of a root position (its prior is uniform over [`TicTacToe::invalid_mask`]'s legal moves).
    pub fn root_value(&self, board: &TicTacToe) -> f32 {
        board.rollout_value(self.rollouts, self.seed)
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
        for (i, leaf) in leaves.iter().enumerate() {
            let parent = *leaf.parent;
            let board =
                parent.play(leaf.action).ok_or(SearchError::InvalidAction { action: leaf.action, num_actions: 9 })?;
            let won = board.winner().is_some();
            let eval = Evaluation {
                state: board,
                reward: if won { 1.0 } else { 0.0 },
                discount: -1.0,
                value: if board.is_over() { 0.0 } else { board.rollout_value(self.rollouts, self.seed) },
                terminal: board.is_over(),
            };
            out.set_masked(i, eval, &UNIFORM, &board.invalid_mask())?;
        }
        Ok(())
    }
}
