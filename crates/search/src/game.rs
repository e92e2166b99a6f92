//! The [`Game`] trait: a two-player, zero-sum, perfect-information board game as AlphaZero self-play needs it.
//!
//! A game is a value type (the position) that knows whose turn it is, which actions are legal, how to play one
//! (an illegal one is a typed [`GameError`], never a panic), when it is over and with what result, and what a
//! network reads: [`Game::OBSERVATION_LEN`] cell tokens, each below [`Game::NUM_TOKENS`]. The shape follows
//! OpenSpiel's `State` (current player, legal actions, apply action, returns, observation tensor) and
//! AlphaZero.jl's `GameInterface` (`actions_mask`, `play!`, `vectorize_state`), with one convention throughout:
//! **every value is from the point of view of the player to move** (the convention of [`crate::Evaluator`],
//! where a `-1` discount turns the child's value into the parent's).
//!
//! [`crate::GameEvaluator`] lets [`crate::Search`] (MuZero PUCT or Gumbel MuZero) search any `Game`; [`perft`]
//! and [`count_games`] count move sequences, the usual first test of a move generator.

use alloc::vec::Vec;

/// One of the two players: `First` moves from the initial position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Player {
    /// The player who moves first (X in tic-tac-toe, the first to drop a disc in Connect Four).
    First,
    /// The other player.
    Second,
}

impl Player {
    /// The opponent.
    pub fn other(self) -> Self {
        match self {
            Player::First => Player::Second,
            Player::Second => Player::First,
        }
    }

    /// 0 for [`Player::First`], 1 for [`Player::Second`].
    pub fn index(self) -> usize {
        match self {
            Player::First => 0,
            Player::Second => 1,
        }
    }
}

/// Why an action cannot be played. The position is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GameError {
    /// The action index is not below [`Game::NUM_ACTIONS`].
    #[error("action {action} is out of range (the game has {num_actions} actions)")]
    OutOfRange {
        /// The action asked for.
        action: usize,
        /// [`Game::NUM_ACTIONS`].
        num_actions: usize,
    },
    /// The game is over: no action is legal.
    #[error("action {action} cannot be played: the game is over")]
    GameOver {
        /// The action asked for.
        action: usize,
    },
    /// The action exists but is not legal here (an occupied cell, a full column).
    #[error("action {action} is not legal in this position")]
    Illegal {
        /// The action asked for.
        action: usize,
    },
}

/// A two-player, zero-sum, perfect-information game, one value per position.
///
/// Actions are the indices `0..NUM_ACTIONS` (a fixed action space: the policy head's width); a position says
/// which are legal. The players need not alternate strictly: the adapter reads [`Game::to_move`] before and
/// after every move and uses discount `-1` when the turn passes, `+1` when the same player moves again.
///
/// Implementations must keep `play` and `is_legal` consistent (`play(a)` succeeds exactly when `is_legal(a)`),
/// leave the position unchanged when `play` fails, and make `terminal_value` `Some` exactly when no action is
/// legal.
pub trait Game: Clone {
    /// Number of action slots (legal or not) of every position.
    const NUM_ACTIONS: usize;
    /// Number of tokens of an observation (the sequence length a transformer reads).
    const OBSERVATION_LEN: usize;
    /// Number of distinct tokens: every observation token is below it (the vocabulary size).
    const NUM_TOKENS: usize;

    /// The player whose turn it is. In a finished game, the player who would move next.
    fn to_move(&self) -> Player;

    /// Whether `action` can be played now (`false` for out-of-range actions and in finished games).
    fn is_legal(&self, action: usize) -> bool;

    /// Plays `action` for the player to move; on error the position is unchanged.
    fn play(&mut self, action: usize) -> Result<(), GameError>;

    /// `None` while the game goes on; at the end, the result **for the player to move** (who, in a game won by
    /// the last move, is the loser): `1` a win, `0` a draw, `-1` a loss (any value in `[-1, 1]` for games
    /// scored otherwise).
    fn terminal_value(&self) -> Option<f32>;

    /// Token `index` (`< OBSERVATION_LEN`) of the observation, below `NUM_TOKENS`. An observation should
    /// identify the position from the mover's side (for example "empty / mine / theirs" cells), so a network
    /// predicting the mover's value needs nothing else.
    fn observation_token(&self, index: usize) -> u32;

    /// A 64-bit key of the position (seeds per-position random streams, keys transposition tables). Equal
    /// positions must have equal keys; distinct positions should have distinct ones. The provided key is
    /// FNV-1a over the player to move and the observation tokens.
    fn key(&self) -> u64 {
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        let mut eat = |x: u64| {
            h ^= x;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        };
        eat(self.to_move().index() as u64);
        for i in 0..Self::OBSERVATION_LEN {
            eat(u64::from(self.observation_token(i)));
        }
        h
    }

    /// The action `action` becomes in the mirror image of a position, for a game whose rules a mirror leaves
    /// unchanged (Connect Four: column `c` becomes `6 − c`): learners then add mirror images of their positions
    /// (data augmentation). `None`, the default, for a game without one; a game that has one also gives
    /// [`Game::mirror_observation_index`], and both must be involutions.
    fn mirror_action(action: usize) -> Option<usize> {
        let _ = action;
        None
    }

    /// The index that observation token `index` moves to in the mirror image (see [`Game::mirror_action`]).
    fn mirror_observation_index(index: usize) -> Option<usize> {
        let _ = index;
        None
    }

    /// Whether the game is over.
    fn is_terminal(&self) -> bool {
        self.terminal_value().is_some()
    }

    /// The legal actions, in increasing order.
    fn legal_actions(&self) -> impl Iterator<Item = usize> + '_ {
        (0..Self::NUM_ACTIONS).filter(move |&a| self.is_legal(a))
    }

    /// Writes the invalid-action mask (`true` = illegal, the convention of [`crate::RootOutput`]) into the first
    /// `NUM_ACTIONS` slots of `invalid`.
    fn invalid_mask_into(&self, invalid: &mut [bool]) {
        for (a, slot) in invalid.iter_mut().take(Self::NUM_ACTIONS).enumerate() {
            *slot = !self.is_legal(a);
        }
    }

    /// The position after `action`, leaving `self` as it is.
    fn after(&self, action: usize) -> Result<Self, GameError> {
        let mut next = self.clone();
        next.play(action)?;
        Ok(next)
    }

    /// Writes the observation into `tokens`, which must hold exactly `OBSERVATION_LEN` tokens; returns `false`
    /// (writing nothing) otherwise.
    fn observe_into(&self, tokens: &mut [u32]) -> bool {
        if tokens.len() != Self::OBSERVATION_LEN {
            return false;
        }
        for (i, t) in tokens.iter_mut().enumerate() {
            *t = self.observation_token(i);
        }
        true
    }

    /// The observation as a new vector of `OBSERVATION_LEN` tokens.
    fn observation(&self) -> Vec<u32> {
        (0..Self::OBSERVATION_LEN).map(|i| self.observation_token(i)).collect()
    }
}

/// Appends the observations of `positions` to `tokens`, row after row (`[positions.len(), OBSERVATION_LEN]`),
/// the batch a policy-value network reads.
pub fn observe_batch<G: Game>(positions: &[G], tokens: &mut Vec<u32>) {
    tokens.reserve(positions.len() * G::OBSERVATION_LEN);
    for p in positions {
        tokens.extend((0..G::OBSERVATION_LEN).map(|i| p.observation_token(i)));
    }
}

/// The number of move sequences of exactly `depth` moves from `position` (chess programmers' "perft"): games
/// that end sooner do not count. `perft(p, 0) == 1`.
pub fn perft<G: Game>(position: &G, depth: u32) -> u64 {
    if depth == 0 {
        return 1;
    }
    position.legal_actions().filter_map(|a| position.after(a).ok()).map(|next| perft(&next, depth - 1)).sum()
}

/// The number of distinct complete games from `position` (move sequences that end the game); 1 if the game
/// is already over. Exhaustive: for small games only.
pub fn count_games<G: Game>(position: &G) -> u64 {
    if position.is_terminal() {
        return 1;
    }
    position.legal_actions().filter_map(|a| position.after(a).ok()).map(|next| count_games(&next)).sum()
}
