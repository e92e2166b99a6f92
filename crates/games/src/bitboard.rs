//! The 7×6 Connect Four board as two 64-bit words, the representation both the rules and the solver use.
//!
//! Column `c` owns bits `7c .. 7c+7`: rows 0 (bottom) to 5, then one always-empty sentinel bit. The sentinel
//! is why shifts never carry a line from the top of one column into the bottom of the next, so four in a row
//! in any direction is four shifts and ands, with no per-direction edge masks. A position is
//!
//! * `mask`: every occupied cell;
//! * `current`: the stones of the player **to move** (the other player's are `current ^ mask`).
//!
//! Storing the mover's stones rather than a fixed colour makes a move two instructions (flip the point of
//! view, add the stone), and makes everything the solver computes automatically "from the mover's side".

/// Columns of the board.
pub const WIDTH: usize = 7;
/// Rows of the board.
pub const HEIGHT: usize = 6;
/// Cells of the board: the most moves a game can last.
pub const CELLS: usize = WIDTH * HEIGHT;
/// Bits per column: the rows plus the sentinel.
const STRIDE: usize = HEIGHT + 1;

/// The bottom cell of every column.
pub(crate) const BOTTOM: u64 = {
    let mut m = 0u64;
    let mut c = 0;
    while c < WIDTH {
        m |= 1 << (c * STRIDE);
        c += 1;
    }
    m
};

/// Every playable cell (no sentinels).
pub(crate) const BOARD: u64 = BOTTOM * ((1 << HEIGHT) - 1);

/// The cells of column `col` (`col < WIDTH`).
pub(crate) const fn column_mask(col: usize) -> u64 {
    ((1u64 << HEIGHT) - 1) << (col * STRIDE)
}

/// The top cell of column `col`: occupied exactly when the column is full.
pub(crate) const fn top_cell(col: usize) -> u64 {
    1u64 << (HEIGHT - 1 + col * STRIDE)
}

/// The bit of cell (`col`, `row`), row 0 at the bottom.
pub(crate) const fn cell(col: usize, row: usize) -> u64 {
    1u64 << (col * STRIDE + row)
}

/// Shifts (in bits) to the next cell along a line: up, right, down-right, up-right.
const DIRECTIONS: [u32; 4] = [1, STRIDE as u32, STRIDE as u32 - 1, STRIDE as u32 + 1];

/// Whether `stones` hold four in a row in any direction.
pub(crate) fn has_four(stones: u64) -> bool {
    DIRECTIONS.iter().any(|&d| {
        let pairs = stones & (stones >> d);
        pairs & (pairs >> (2 * d)) != 0
    })
}

/// The empty cells (at any height, reachable now or not) where one more stone would give `stones` four in a
/// row. `mask` is every occupied cell.
pub(crate) fn winning_cells(stones: u64, mask: u64) -> u64 {
    // Vertically only three stones directly below can complete a line.
    let mut r = (stones << 1) & (stones << 2) & (stones << 3);
    for &d in &DIRECTIONS[1..] {
        // The three other cells of a four through the candidate x: x-3d..x-d, x-2d..x+d, x-d..x+2d, x+d..x+3d.
        let before2 = (stones << d) & (stones << (2 * d));
        let after2 = (stones >> d) & (stones >> (2 * d));
        r |= before2 & (stones << (3 * d));
        r |= before2 & (stones >> d);
        r |= after2 & (stones << d);
        r |= after2 & (stones >> (3 * d));
    }
    r & (BOARD ^ mask)
}

/// A position as the solver sees it: plain bits, cheap to copy, no history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Bits {
    /// The stones of the player to move.
    pub current: u64,
    /// Every occupied cell.
    pub mask: u64,
    /// Moves played so far.
    pub moves: u32,
}

impl Bits {
    /// A key unique to the position: in each column, the mover's stones plus one bit just above the column's
    /// top stone (`mask + BOTTOM` sets it), so the height and the colours can both be read back. Never 0.
    pub fn key(&self) -> u64 {
        self.current + self.mask + BOTTOM
    }

    /// The lowest empty cell of every column that is not full.
    pub fn playable(&self) -> u64 {
        (self.mask + BOTTOM) & BOARD
    }

    /// Whether column `col` has room.
    pub fn can_play(&self, col: usize) -> bool {
        self.mask & top_cell(col) == 0
    }

    /// The cell a stone dropped in `col` lands on (0 if the column is full).
    pub fn landing_cell(&self, col: usize) -> u64 {
        (self.mask + (BOTTOM & column_mask(col))) & column_mask(col)
    }

    /// Plays the stone `cell` (one of [`Bits::playable`]) for the player to move.
    pub fn play_cell(&mut self, cell: u64) {
        self.current ^= self.mask;
        self.mask |= cell;
        self.moves += 1;
    }

    /// The player to move's winning cells (see [`winning_cells`]).
    pub fn my_winning_cells(&self) -> u64 {
        winning_cells(self.current, self.mask)
    }

    /// The opponent's winning cells.
    pub fn their_winning_cells(&self) -> u64 {
        winning_cells(self.current ^ self.mask, self.mask)
    }

    /// Whether the player to move can win with this move.
    pub fn can_win_now(&self) -> bool {
        self.my_winning_cells() & self.playable() != 0
    }

    /// Whether a stone in `col` (playable) wins at once for the player to move.
    pub fn wins_with(&self, col: usize) -> bool {
        self.my_winning_cells() & self.landing_cell(col) != 0
    }

    /// The moves (as cells) after which the opponent cannot win on its next move, assuming the player to move
    /// cannot win now. If the opponent threatens two playable cells, none; if one, only blocking it; never a
    /// cell directly below an opponent's winning cell (that would let it play there).
    pub fn safe_moves(&self) -> u64 {
        let mut moves = self.playable();
        let threats = self.their_winning_cells();
        let forced = moves & threats;
        if forced != 0 {
            if forced & (forced - 1) != 0 {
                return 0;
            }
            moves = forced;
        }
        moves & !(threats >> 1)
    }

    /// The mirror image (column `c` becomes column `6 - c`).
    pub fn mirror(&self) -> Self {
        let flip =
            |x: u64| (0..WIDTH).fold(0u64, |acc, c| acc | (((x >> (c * STRIDE)) & 0x7f) << ((WIDTH - 1 - c) * STRIDE)));
        Self { current: flip(self.current), mask: flip(self.mask), moves: self.moves }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_constants() {
        assert_eq!(BOARD.count_ones(), 42);
        assert_eq!(BOTTOM.count_ones(), 7);
        assert_eq!(BOARD & (BOARD << 1) & BOTTOM, 0);
        assert_eq!(column_mask(3).count_ones(), 6);
        assert_eq!(top_cell(0), cell(0, 5));
    }

    #[test]
    fn lines_in_every_direction() {
        let vertical = cell(2, 1) | cell(2, 2) | cell(2, 3) | cell(2, 4);
        let horizontal = cell(3, 0) | cell(4, 0) | cell(5, 0) | cell(6, 0);
        let up_right = cell(0, 0) | cell(1, 1) | cell(2, 2) | cell(3, 3);
        let down_right = cell(3, 5) | cell(4, 4) | cell(5, 3) | cell(6, 2);
        for line in [vertical, horizontal, up_right, down_right] {
            assert!(has_four(line));
            assert!(!has_four(line & (line - 1)));
        }
        // No wrap from the top of one column to the bottom of the next.
        assert!(!has_four(cell(0, 4) | cell(0, 5) | cell(1, 0) | cell(1, 1)));
    }
}
