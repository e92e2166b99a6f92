//! The crate's error types: why a position, a labelled line or an agent's configuration was refused.

use alloc::boxed::Box;
use alloc::string::String;

/// Why a string is not a Connect Four position in the column notation (`"4453"`: the columns 1–7 played from
/// the empty board). Indices count characters from 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A character that is not a digit 1–7.
    #[error("character {found:?} at index {index} is not a column 1-7")]
    BadChar {
        /// Where in the string.
        index: usize,
        /// The character found.
        found: char,
    },
    /// A move into a column that already holds six stones.
    #[error("move {index} plays column {column}, which is full")]
    FullColumn {
        /// Which move (0 = the first).
        index: usize,
        /// The column, 1–7.
        column: u8,
    },
    /// A move after the game was already won.
    #[error("move {index} (column {column}) comes after the game was won")]
    AfterGameOver {
        /// Which move.
        index: usize,
        /// The column, 1–7.
        column: u8,
    },
    /// More characters than a game can have moves.
    #[error("{len} moves: a game has at most 42")]
    TooLong {
        /// The number of characters.
        len: usize,
    },
}

/// Why a labelled-position line (`<moves> s1 … s7`) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    /// The position part is not a position.
    #[error("bad position: {0}")]
    Position(#[from] ParseError),
    /// Not seven score fields after the position.
    #[error("expected 7 scores after the position, found {found}")]
    ScoreCount {
        /// How many fields there were.
        found: usize,
    },
    /// A score field that is neither an integer nor `-`.
    #[error("score field {field:?} of column {column} is not an integer or '-'")]
    BadScore {
        /// The column, 1–7.
        column: u8,
        /// The field as written.
        field: String,
    },
    /// A score given for a column that cannot be played, or `-` for one that can.
    #[error("column {column}: the score's presence does not match the column's legality")]
    Legality {
        /// The column, 1–7.
        column: u8,
    },
    /// A finished position: there is nothing to choose.
    #[error("the position is finished")]
    Finished,
    /// A line of a labelled file ([`crate::labelled::parse_benchmark`]) was refused.
    #[error("line {line}: {error}")]
    Line {
        /// The line, counted from 1.
        line: usize,
        /// Why it was refused.
        #[source]
        error: Box<LabelError>,
    },
}

/// Why an agent could not choose a move.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// The game is over: there is no legal move.
    #[error("the game is over: there is no move to choose")]
    GameOver,
    /// The agent was configured with a search depth it does not support.
    #[error("search depth {depth} is out of range 1..={max}")]
    Depth {
        /// The depth asked for.
        depth: u32,
        /// The largest depth supported.
        max: u32,
    },
    /// Any other failure (a network agent's model error, for example), as text.
    #[error("{0}")]
    Failed(String),
}

/// Why match results could not be turned into ratings ([`crate::elo::fit_ratings`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RatingError {
    /// No player's rating was fixed: ratings are defined only up to a constant.
    #[error("no anchor: at least one player's rating must be fixed")]
    NoAnchor,
    /// An anchor given twice or with a rating that is not finite.
    #[error("player {player} is anchored twice or at a rating that is not finite")]
    Anchor {
        /// The player.
        player: usize,
    },
    /// A player index beyond the number of players.
    #[error("player {player} of {players}")]
    UnknownPlayer {
        /// The index given.
        player: usize,
        /// How many players there are.
        players: usize,
    },
    /// A pairing of a player with itself.
    #[error("player {player} paired with itself")]
    SelfPairing {
        /// The player.
        player: usize,
    },
    /// A player with no chain of games to an anchor.
    #[error("player {player} has no chain of games to an anchored player")]
    Unanchored {
        /// The player.
        player: usize,
    },
    /// A negative or non-finite number of virtual draws.
    #[error("the prior's virtual draws must be finite and non-negative")]
    Prior,
    /// A player won (or lost) every game without a prior to hold it: the likelihood has no finite maximum.
    #[error("the ratings have no finite maximum (a perfect score and no prior?)")]
    Unbounded,
}
