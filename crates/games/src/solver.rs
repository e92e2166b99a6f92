//! A perfect Connect Four solver: the exact score of a position and of each of its moves.
//!
//! The method is the one Pascal Pons describes in his tutorial "Solving Connect 4" (blog.gamesolver.org),
//! written afresh here:
//!
//! * **negamax with alpha-beta** over bitboard positions, scores from the mover's side;
//! * a node never plays into an immediate loss: it first checks that the opponent has no double threat and
//!   that the move neither ignores a single threat nor lets the opponent play on top of it
//!   (the "safe moves"). That precondition, "the mover cannot win at once", is what lets each node tighten
//!   its window to the scores still reachable before searching;
//! * **move ordering**: moves that create the most winning cells first, ties broken centre-first;
//! * a **transposition table** of lower and upper bounds keyed by the position's unique 49-bit key;
//! * **null-window search**: the root score is found by a sequence of searches with window `(m, m+1)`, each
//!   answering "is the score above `m`?", narrowing `[min, max]`, probing near 0 first (most positions are
//!   close to a draw or a slow win) and halving otherwise.
//!
//! # Scores
//!
//! Pons's convention, for the player to move: a win with one's own `k`-th stone scores `22 - k` (1 for a win
//! with the last stone, 21 for a win with the first), a loss to the opponent's `k`-th stone `k - 22`, a draw 0.
//! The best move's score is the position's score; after it, the opponent's score is the negation.
//!
//! No opening book, so early positions are slow. Measured in release on one core of a shared machine (about
//! 5 M nodes per CPU-second): random mid-game positions (15–28 stones) about 5 ms each with every move
//! analysed, begin positions of the committed benchmark (8–14 stones) about 1 s, the empty board's seven
//! moves about 27 CPU-minutes (9.6 G nodes; the ignored `empty_board` test).

use alloc::vec;
use alloc::vec::Vec;

use crate::bitboard::{Bits, CELLS, WIDTH, column_mask, winning_cells};
use crate::connect4::Connect4;

/// Columns in the order the solver tries them before sorting: centre first, then outwards.
pub const CENTRE_FIRST: [usize; WIDTH] = [3, 2, 4, 1, 5, 0, 6];

/// The transposition table's size when none is given: 2^23 entries of 8 bytes (64 MiB).
pub const DEFAULT_TABLE_ENTRIES: usize = 1 << 23;

/// The exact score of the player to move winning with the next move, `moves` moves having been played.
fn win_now(moves: u32) -> i32 {
    (CELLS as i32 + 1 - moves as i32) / 2
}

/// A fixed-size, always-replace table of score bounds. An entry packs the position key (49 bits, never 0) above
/// one byte: bit 7 set for a lower bound, clear for an upper bound, the low 7 bits the score + 64. A zero entry
/// is empty. Keeping the whole key means a hit is never a different position, whatever the table size.
#[derive(Debug, Clone)]
struct Table {
    entries: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bound {
    Lower(i32),
    Upper(i32),
}

impl Table {
    fn new(entries: usize) -> Self {
        Self { entries: vec![0; entries.max(1)] }
    }

    fn slot(&self, key: u64) -> usize {
        // Fibonacci hashing then a multiply-high range reduction: works for any table length.
        let h = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        ((u128::from(h) * self.entries.len() as u128) >> 64) as usize
    }

    fn get(&self, key: u64) -> Option<Bound> {
        let e = *self.entries.get(self.slot(key))?;
        if e == 0 || e >> 8 != key {
            return None;
        }
        let score = (e & 0x7f) as i32 - 64;
        Some(if e & 0x80 != 0 { Bound::Lower(score) } else { Bound::Upper(score) })
    }

    fn put(&mut self, key: u64, bound: Bound) {
        let (flag, score) = match bound {
            Bound::Lower(s) => (0x80, s),
            Bound::Upper(s) => (0, s),
        };
        let slot = self.slot(key);
        if let Some(e) = self.entries.get_mut(slot) {
            *e = (key << 8) | flag | ((score + 64) as u64 & 0x7f);
        }
    }

    fn clear(&mut self) {
        self.entries.fill(0);
    }
}

/// Up to 7 moves sorted by a score, best first; equal scores keep insertion order.
struct SortedMoves {
    cells: [u64; WIDTH],
    scores: [u32; WIDTH],
    len: usize,
}

impl SortedMoves {
    fn new() -> Self {
        Self { cells: [0; WIDTH], scores: [0; WIDTH], len: 0 }
    }

    fn push(&mut self, cell: u64, score: u32) {
        let mut i = self.len;
        while i > 0 && self.scores[i - 1] < score {
            self.cells[i] = self.cells[i - 1];
            self.scores[i] = self.scores[i - 1];
            i -= 1;
        }
        self.cells[i] = cell;
        self.scores[i] = score;
        self.len += 1;
    }

    fn as_slice(&self) -> &[u64] {
        &self.cells[..self.len]
    }
}

/// The solver. Its transposition table persists across calls (entries are exact facts about positions, so
/// they stay valid), which speeds up solving related positions, e.g. every move of one position.
#[derive(Debug, Clone)]
pub struct Solver {
    table: Table,
    nodes: u64,
}

impl Default for Solver {
    fn default() -> Self {
        Self::new()
    }
}

impl Solver {
    /// A solver with a table of [`DEFAULT_TABLE_ENTRIES`] entries.
    pub fn new() -> Self {
        Self::with_table_entries(DEFAULT_TABLE_ENTRIES)
    }

    /// A solver whose table has `entries` slots of 8 bytes (at least one). Larger tables help deep
    /// positions; small ones are enough near the end of the game.
    pub fn with_table_entries(entries: usize) -> Self {
        Self { table: Table::new(entries), nodes: 0 }
    }

    /// Positions searched since the solver was made or [`Solver::reset_nodes`] was called.
    pub fn nodes(&self) -> u64 {
        self.nodes
    }

    /// Sets the node counter to 0.
    pub fn reset_nodes(&mut self) {
        self.nodes = 0;
    }

    /// Empties the transposition table (so node counts no longer depend on earlier calls).
    pub fn clear(&mut self) {
        self.table.clear();
    }

    /// The exact score of `position` for the player to move (see the [module docs](self)). A finished game
    /// scores as its last move did, negated: `-(22 - k)` after the opponent's winning `k`-th stone, 0 for a
    /// full board.
    pub fn solve(&mut self, position: &Connect4) -> i32 {
        let bits = position.bits();
        if position.is_won() {
            return -win_now(bits.moves - 1);
        }
        if bits.moves as usize == CELLS {
            return 0;
        }
        self.solve_bits(bits)
    }

    /// The exact score of every column for the player to move (`None` for a full column, and for every
    /// column once the game is over). The best of them is [`Solver::solve`]'s score.
    pub fn analyze(&mut self, position: &Connect4) -> [Option<i32>; WIDTH] {
        let mut out = [None; WIDTH];
        if position.is_won() {
            return out;
        }
        let bits = position.bits();
        for (col, slot) in out.iter_mut().enumerate() {
            if !bits.can_play(col) {
                continue;
            }
            *slot = Some(if bits.wins_with(col) {
                win_now(bits.moves)
            } else {
                let mut next = bits;
                next.play_cell(bits.landing_cell(col));
                if next.moves as usize == CELLS { 0 } else { -self.solve_bits(next) }
            });
        }
        out
    }

    /// The score of a position that is not finished.
    fn solve_bits(&mut self, position: Bits) -> i32 {
        self.nodes += 1;
        if position.can_win_now() {
            return win_now(position.moves);
        }
        let empty = CELLS as i32 - position.moves as i32;
        // Bounds before any search: the opponent wins at best with its next stone; we at best with our next.
        let mut min = -empty / 2;
        let mut max = (empty + 1) / 2;
        while min < max {
            let mut probe = min + (max - min) / 2;
            // Probe closer to 0 first: halving the distance from 0 finds small scores in few searches.
            if probe <= 0 && min / 2 < probe {
                probe = min / 2;
            } else if probe >= 0 && max / 2 > probe {
                probe = max / 2;
            }
            let r = self.negamax(position, probe, probe + 1);
            if r <= probe {
                max = r;
            } else {
                min = r;
            }
        }
        min
    }

    /// Alpha-beta on a position where the player to move cannot win at once: the exact score if it lies in
    /// `(alpha, beta)`, else a bound on the same side of the window as the score.
    fn negamax(&mut self, position: Bits, mut alpha: i32, mut beta: i32) -> i32 {
        self.nodes += 1;
        let safe = position.safe_moves();
        let empty = CELLS as i32 - position.moves as i32;
        if safe == 0 {
            // Every move lets the opponent win with its next stone.
            return -empty / 2;
        }
        if empty <= 2 {
            // Neither side can win with the last two stones (the mover cannot now; a safe move stops the other).
            return 0;
        }
        // A safe move means the opponent's earliest win is with the stone after its next one...
        let mut lower = -(empty - 2) / 2;
        // ...and we cannot win with this stone, only with our next one.
        let mut upper = (empty - 1) / 2;
        let key = position.key();
        match self.table.get(key) {
            Some(Bound::Lower(v)) => lower = lower.max(v),
            Some(Bound::Upper(v)) => upper = upper.min(v),
            None => {}
        }
        if alpha < lower {
            alpha = lower;
            if alpha >= beta {
                return alpha;
            }
        }
        if beta > upper {
            beta = upper;
            if alpha >= beta {
                return beta;
            }
        }
        let mut moves = SortedMoves::new();
        for &col in &CENTRE_FIRST {
            let cell = safe & column_mask(col);
            if cell != 0 {
                let mine = position.current | cell;
                moves.push(cell, winning_cells(mine, position.mask | cell).count_ones());
            }
        }
        for &cell in moves.as_slice() {
            let mut next = position;
            next.play_cell(cell);
            let score = -self.negamax(next, -beta, -alpha);
            if score >= beta {
                self.table.put(key, Bound::Lower(score));
                return score;
            }
            if score > alpha {
                alpha = score;
            }
        }
        self.table.put(key, Bound::Upper(alpha));
        alpha
    }
}

/// The result of a move or position under perfect play, for the player concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// The opponent wins.
    Loss,
    /// Nobody wins.
    Draw,
    /// The player wins.
    Win,
}

impl Outcome {
    /// The outcome of a score: its sign.
    pub fn of_score(score: i32) -> Self {
        match score {
            s if s > 0 => Outcome::Win,
            0 => Outcome::Draw,
            _ => Outcome::Loss,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(moves: &str) -> Connect4 {
        Connect4::from_moves(moves).unwrap()
    }

    #[test]
    fn published_scores() {
        let mut s = Solver::with_table_entries(1 << 16);
        assert_eq!(s.solve(&pos("2252576253462244111563365343671351441")), -1);
        assert_eq!(s.solve(&pos("44455554221")), -15);
        assert!(s.nodes() > 0);
    }

    #[test]
    fn finished_games() {
        let mut s = Solver::with_table_entries(16);
        // The first player wins with its 4th stone: 22 - 4 = 18 for it, so -18 for the player to move.
        assert_eq!(s.solve(&pos("1212121")), -18);
        assert_eq!(s.analyze(&pos("1212121")), [None; 7]);
        assert_eq!(s.solve(&pos("121212")), 18);
    }

    #[test]
    fn table_round_trip() {
        let mut t = Table::new(1000);
        for (k, b) in [(1u64, Bound::Lower(-21)), (1 << 48, Bound::Upper(21)), (12345, Bound::Upper(0))] {
            t.put(k, b);
            assert_eq!(t.get(k), Some(b));
        }
        t.clear();
        assert_eq!(t.get(1), None);
    }

    #[test]
    fn sorted_moves_keep_order_of_ties() {
        let mut m = SortedMoves::new();
        for (c, s) in [(1, 0), (2, 3), (4, 0), (8, 3), (16, 1)] {
            m.push(c, s);
        }
        assert_eq!(m.as_slice(), &[2, 8, 16, 1, 4]);
    }
}
