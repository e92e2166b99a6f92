//! Connect Four (7 columns × 6 rows) as a [`Game`]: rules on bitboards, the column notation, a drawing.

use core::fmt;
use core::str::FromStr;

use alloc::string::String;
use selfplay_search::{Game, GameError, Player};

use crate::bitboard::{Bits, CELLS, HEIGHT, WIDTH, cell, has_four};
use crate::error::ParseError;

/// Observation token of an empty cell.
pub const TOKEN_EMPTY: u32 = 0;
/// Observation token of a cell holding a stone of the player to move.
pub const TOKEN_MINE: u32 = 1;
/// Observation token of a cell holding a stone of the opponent.
pub const TOKEN_THEIRS: u32 = 2;

/// A Connect Four position, with the moves that led to it.
///
/// Columns are 0–6 in the API (action `c` drops a stone in column `c`) and 1–7 in the notation, where a
/// position is written as the columns played from the empty board (`"4453"`: the first player in the centre,
/// the second on top of it, …). The notation is the one of Pascal Pons's solver and test sets.
///
/// As a [`Game`]: 7 actions; the observation is the 42 cells, token index `row * 7 + col` with row 0 the
/// bottom row, each [`TOKEN_EMPTY`], [`TOKEN_MINE`] (the player to move) or [`TOKEN_THEIRS`], so the network
/// sees every position from the mover's side. A game won by the last move has [`Game::terminal_value`] `-1`
/// (the player to move lost); a full board without a line is a draw, `0`.
///
/// Equality and hashing compare positions, not move orders: two move sequences reaching the same stones are
/// equal. The history only serves [`Connect4::notation`].
#[derive(Debug, Clone, Copy)]
pub struct Connect4 {
    bits: Bits,
    /// Whether the last move made four in a row.
    won: bool,
    /// Columns (0–6) played, in order; the first `bits.moves` entries are meaningful.
    history: [u8; CELLS],
}

impl Default for Connect4 {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for Connect4 {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
    }
}

impl Eq for Connect4 {}

impl core::hash::Hash for Connect4 {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.bits.key().hash(state);
    }
}

impl Connect4 {
    /// Columns.
    pub const WIDTH: usize = WIDTH;
    /// Rows.
    pub const HEIGHT: usize = HEIGHT;

    /// The empty board, the first player to move.
    pub fn new() -> Self {
        Self { bits: Bits::default(), won: false, history: [0; CELLS] }
    }

    /// Parses the column notation (`"4453"`); the empty string is the empty board. Never panics: every bad
    /// input is a [`ParseError`].
    pub fn from_moves(moves: &str) -> Result<Self, ParseError> {
        let len = moves.chars().count();
        if len > CELLS {
            return Err(ParseError::TooLong { len });
        }
        let mut position = Self::new();
        for (index, found) in moves.chars().enumerate() {
            let column = match found {
                '1'..='7' => found as u8 - b'0',
                _ => return Err(ParseError::BadChar { index, found }),
            };
            if position.won {
                return Err(ParseError::AfterGameOver { index, column });
            }
            if !position.bits.can_play(usize::from(column - 1)) {
                return Err(ParseError::FullColumn { index, column });
            }
            position.drop_stone(usize::from(column - 1));
        }
        Ok(position)
    }

    /// The position in the column notation (`"4453"`), as [`Connect4::from_moves`] reads it.
    pub fn notation(&self) -> String {
        self.columns().iter().map(|&c| char::from(b'1' + c)).collect()
    }

    /// The columns played so far (0–6), in order.
    pub fn columns(&self) -> &[u8] {
        &self.history[..self.bits.moves as usize]
    }

    /// Number of moves played (stones on the board).
    pub fn moves_played(&self) -> usize {
        self.bits.moves as usize
    }

    /// Whether the last move made four in a row.
    pub fn is_won(&self) -> bool {
        self.won
    }

    /// The winner, if the game has been won.
    pub fn winner(&self) -> Option<Player> {
        self.won.then(|| self.to_move().other())
    }

    /// Stones in column `col` (0 for a column out of range).
    pub fn height(&self, col: usize) -> usize {
        if col >= WIDTH { 0 } else { (self.bits.mask & crate::bitboard::column_mask(col)).count_ones() as usize }
    }

    /// Who holds cell (`col`, `row`), row 0 at the bottom; `None` if empty or out of range.
    pub fn cell(&self, col: usize, row: usize) -> Option<Player> {
        if col >= WIDTH || row >= HEIGHT {
            return None;
        }
        let bit = cell(col, row);
        if self.bits.mask & bit == 0 {
            None
        } else if self.bits.current & bit != 0 {
            Some(self.to_move())
        } else {
            Some(self.to_move().other())
        }
    }

    /// Whether the player to move wins at once by playing `col` (false if `col` is not legal).
    pub fn is_winning_move(&self, col: usize) -> bool {
        self.is_legal(col) && self.bits.wins_with(col)
    }

    /// The mirror image: column `c` becomes column `6 - c` (history included). Connect Four is symmetric
    /// under it, so a position and its mirror have mirrored move values (used for data augmentation).
    pub fn mirror(&self) -> Self {
        let mut history = self.history;
        for c in history.iter_mut() {
            *c = (WIDTH - 1) as u8 - *c;
        }
        Self { bits: self.bits.mirror(), won: self.won, history }
    }

    /// The column a mirrored action maps to (`6 - col`).
    pub fn mirror_column(col: usize) -> usize {
        (WIDTH - 1).saturating_sub(col)
    }

    /// A 64-bit key, unique to the position (see [`Game::key`]).
    pub fn position_key(&self) -> u64 {
        self.bits.key()
    }

    pub(crate) fn bits(&self) -> Bits {
        self.bits
    }

    /// Drops a stone for the player to move in `col`, which must be a legal column of an unfinished game.
    fn drop_stone(&mut self, col: usize) {
        let landing = self.bits.landing_cell(col);
        let mover = self.bits.current | landing;
        self.history[self.bits.moves as usize] = col as u8;
        self.bits.play_cell(landing);
        self.won = has_four(mover);
    }
}

impl FromStr for Connect4 {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, ParseError> {
        Self::from_moves(s)
    }
}

impl Game for Connect4 {
    const NUM_ACTIONS: usize = WIDTH;
    const OBSERVATION_LEN: usize = CELLS;
    const NUM_TOKENS: usize = 3;

    fn to_move(&self) -> Player {
        if self.bits.moves.is_multiple_of(2) { Player::First } else { Player::Second }
    }

    fn is_legal(&self, action: usize) -> bool {
        action < WIDTH && !self.won && self.bits.can_play(action)
    }

    fn play(&mut self, action: usize) -> Result<(), GameError> {
        if action >= WIDTH {
            return Err(GameError::OutOfRange { action, num_actions: WIDTH });
        }
        if self.won || self.bits.moves as usize == CELLS {
            return Err(GameError::GameOver { action });
        }
        if !self.bits.can_play(action) {
            return Err(GameError::Illegal { action });
        }
        self.drop_stone(action);
        Ok(())
    }

    fn terminal_value(&self) -> Option<f32> {
        if self.won {
            Some(-1.0)
        } else if self.bits.moves as usize == CELLS {
            Some(0.0)
        } else {
            None
        }
    }

    fn observation_token(&self, index: usize) -> u32 {
        let (row, col) = (index / WIDTH, index % WIDTH);
        if row >= HEIGHT {
            return TOKEN_EMPTY;
        }
        let bit = cell(col, row);
        if self.bits.mask & bit == 0 {
            TOKEN_EMPTY
        } else if self.bits.current & bit != 0 {
            TOKEN_MINE
        } else {
            TOKEN_THEIRS
        }
    }

    /// Left-right: column `c` becomes `6 − c`.
    fn mirror_action(action: usize) -> Option<usize> {
        (action < WIDTH).then(|| Self::mirror_column(action))
    }

    /// Cell `row·7 + col` becomes `row·7 + 6 − col`.
    fn mirror_observation_index(index: usize) -> Option<usize> {
        (index < CELLS).then(|| index - index % WIDTH + WIDTH - 1 - index % WIDTH)
    }

    /// The bitboard key: in each column the mover's stones plus a marker bit above the top stone; unique.
    fn key(&self) -> u64 {
        self.bits.key()
    }
}

/// Draws the board, top row first: `X` the first player's stones, `O` the second's, `.` empty, then the
/// column numbers 1–7.
impl fmt::Display for Connect4 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in (0..HEIGHT).rev() {
            for col in 0..WIDTH {
                let c = match self.cell(col, row) {
                    None => '.',
                    Some(Player::First) => 'X',
                    Some(Player::Second) => 'O',
                };
                if col > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\n")?;
        }
        f.write_str("1 2 3 4 5 6 7")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn notation_round_trip_and_drawing() {
        let p = Connect4::from_moves("4453").unwrap();
        assert_eq!(p.notation(), "4453");
        assert_eq!(p.moves_played(), 4);
        assert_eq!(p.to_move(), Player::First);
        assert_eq!(p.cell(3, 0), Some(Player::First));
        assert_eq!(p.cell(3, 1), Some(Player::Second));
        assert_eq!(p.cell(4, 0), Some(Player::First));
        assert_eq!(p.cell(2, 0), Some(Player::Second));
        let drawn = p.to_string();
        assert!(drawn.ends_with(". . O X X . .\n1 2 3 4 5 6 7"), "{drawn}");
        assert!(drawn.contains(". . . O . . .\n. . O X X"), "{drawn}");
    }

    #[test]
    fn parse_errors() {
        assert_eq!(Connect4::from_moves("48"), Err(ParseError::BadChar { index: 1, found: '8' }));
        assert_eq!(Connect4::from_moves("é"), Err(ParseError::BadChar { index: 0, found: 'é' }));
        assert_eq!(Connect4::from_moves("1111111"), Err(ParseError::FullColumn { index: 6, column: 1 }));
        assert_eq!(Connect4::from_moves("12121212"), Err(ParseError::AfterGameOver { index: 7, column: 2 }));
        assert_eq!(Connect4::from_moves(&"1".repeat(43)), Err(ParseError::TooLong { len: 43 }));
        assert!(Connect4::from_moves("1212121").unwrap().is_won());
    }

    #[test]
    fn game_rules() {
        let mut p = Connect4::from_moves("121212").unwrap();
        assert!(p.is_winning_move(0));
        assert!(!p.is_winning_move(1));
        p.play(0).unwrap();
        assert_eq!(p.terminal_value(), Some(-1.0));
        assert_eq!(p.winner(), Some(Player::First));
        assert_eq!(p.play(3), Err(GameError::GameOver { action: 3 }));
        assert_eq!(p.legal_actions().count(), 0);
        let mut q = Connect4::from_moves("111111").unwrap();
        assert_eq!(q.play(0), Err(GameError::Illegal { action: 0 }));
        assert_eq!(q.play(7), Err(GameError::OutOfRange { action: 7, num_actions: 7 }));
        assert_eq!(q.notation(), "111111");
    }

    #[test]
    fn observation_is_from_the_mover() {
        let p = Connect4::from_moves("4").unwrap();
        // Second player to move: the centre stone is theirs.
        assert_eq!(p.observation_token(3), TOKEN_THEIRS);
        let q = p.after(3).unwrap();
        assert_eq!(q.observation_token(3), TOKEN_MINE);
        assert_eq!(q.observation_token(10), TOKEN_THEIRS);
        assert_eq!(q.observation_token(0), TOKEN_EMPTY);
        assert!(q.observation().iter().all(|&t| t < 3));
    }

    #[test]
    fn transpositions_are_equal() {
        let a = Connect4::from_moves("4453").unwrap();
        let b = Connect4::from_moves("5344").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.key(), b.key());
        assert_ne!(a.notation(), b.notation());
        assert_eq!(a.mirror().notation(), "4435");
    }
}
