//! The transformer as AlphaZero's policy-value network: a board position is its observation tokens, the policy
//! is the logits of the action tokens at the last position, the value is the value head there.
//!
//! The network's vocabulary is the observation tokens followed by one token per action. How a game's
//! observation becomes tokens is the [`TokenLayout`]: the game's own tokens ("empty / mine / theirs"), shared
//! by every cell, or one token per (cell, state) pair, so that each cell's embedding says where it is.

use std::marker::PhantomData;

use selfplay_model::{HostAccess, Model, ModelError};
use selfplay_search::{Game, PolicyValue};

/// How an observation of game `G` becomes the network's tokens, and where the policy and value are read.
///
/// The transformer's only positional signal is RoPE, which makes attention depend on *relative* offsets: a
/// network reading shared tokens must infer where a cell sits (which column, whether the cell one to the right
/// wraps onto the next row) from the causal mask alone. *Placed* tokens put the place in the token, as a learned
/// absolute position embedding would; on Connect Four it cut a network's mistakes on held-out solver-labelled
/// positions from 0.26 to 0.18 at the same size, data and steps (the `c4_supervised` example; README, "Connect
/// Four, measured").
///
/// Without *action queries* every action's logit and the value are read at the board's last cell: one hidden
/// state must carry the whole policy. With them, one query token per action follows the board; each sees the
/// whole board (the mask is causal, and the queries come last), action `a`'s logit is read at query `a`, and the
/// value at the last query, so every action has a hidden state of its own to weigh its move in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLayout {
    /// Token `t` of cell `i` is `i · G::NUM_TOKENS + t` (`G::OBSERVATION_LEN · G::NUM_TOKENS` observation
    /// tokens); otherwise token `t` of any cell is `t` (`G::NUM_TOKENS`).
    pub placed: bool,
    /// One query token per action after the board, where the actions' logits are read.
    pub action_queries: bool,
}

impl TokenLayout {
    /// Every layout, in the order [`TokenLayout::of_vocab`] tries them.
    pub const ALL: [TokenLayout; 4] = [
        TokenLayout { placed: true, action_queries: false },
        TokenLayout { placed: true, action_queries: true },
        TokenLayout { placed: false, action_queries: false },
        TokenLayout { placed: false, action_queries: true },
    ];

    /// The observation tokens of game `G` in this layout.
    pub fn observation_vocab<G: Game>(self) -> usize {
        if self.placed { G::OBSERVATION_LEN * G::NUM_TOKENS } else { G::NUM_TOKENS }
    }

    /// The query tokens: one per action, or none.
    fn query_vocab<G: Game>(self) -> usize {
        if self.action_queries { G::NUM_ACTIONS } else { 0 }
    }

    /// The network vocabulary for game `G`: observation tokens, query tokens, then one token per action.
    pub fn vocab<G: Game>(self) -> usize {
        self.observation_vocab::<G>() + self.query_vocab::<G>() + G::NUM_ACTIONS
    }

    /// The tokens the network reads for one position: the observation, then the queries.
    pub fn sequence_len<G: Game>(self) -> usize {
        G::OBSERVATION_LEN + self.query_vocab::<G>()
    }

    /// The trailing positions the policy and value are read from (the queries, or the last cell).
    pub fn read_positions<G: Game>(self) -> usize {
        if self.action_queries { G::NUM_ACTIONS } else { 1 }
    }

    /// The position, among the [`TokenLayout::read_positions`] trailing ones, where action `action`'s logit is
    /// read.
    pub fn policy_row(self, action: usize) -> usize {
        if self.action_queries { action } else { 0 }
    }

    /// Where action `action`'s logit sits in the [`TokenLayout::read_positions`] trailing rows of a network of
    /// `vocab` tokens (row-major `[rows, vocab]`).
    pub fn policy_logit<G: Game>(self, action: usize, vocab: usize) -> usize {
        self.policy_row(action) * vocab + action_token::<G>(vocab, action)
    }

    /// The layout of a network of `vocab` tokens for game `G` (the first of [`TokenLayout::ALL`] that fits),
    /// or `None` when none does.
    pub fn of_vocab<G: Game>(vocab: usize) -> Option<Self> {
        TokenLayout::ALL.into_iter().find(|layout| layout.vocab::<G>() == vocab)
    }

    /// Appends the network's tokens for `observation` (one whole observation of `G`, the game's own tokens).
    pub fn encode_into<G: Game>(self, observation: &[u32], tokens: &mut Vec<u32>) {
        if self.placed {
            tokens.extend(observation.iter().enumerate().map(|(i, &t)| {
                // An index below OBSERVATION_LEN and a token below NUM_TOKENS fit the vocabulary's u32 ids.
                ((i % G::OBSERVATION_LEN) * G::NUM_TOKENS) as u32 + t
            }));
        } else {
            tokens.extend_from_slice(observation);
        }
        let first = self.observation_vocab::<G>();
        tokens.extend((0..self.query_vocab::<G>()).map(|a| (first + a) as u32));
    }

    /// The network's tokens for `observation`.
    pub fn encode<G: Game>(self, observation: &[u32]) -> Vec<u32> {
        let mut tokens = Vec::with_capacity(self.sequence_len::<G>());
        self.encode_into::<G>(observation, &mut tokens);
        tokens
    }
}

/// The vocabulary id of action `action` in a network of `vocab` tokens (the action tokens come last).
pub fn action_token<G: Game>(vocab: usize, action: usize) -> usize {
    vocab - G::NUM_ACTIONS + action
}

/// `model` consulted by the search over game `G`'s positions: one batched forward pass per call, through the
/// model's own forward (on whatever backend it runs).
#[derive(Debug)]
pub struct NetPolicy<'m, G, B: HostAccess> {
    model: &'m Model<B>,
    layout: TokenLayout,
    observations: Vec<u32>,
    tokens: Vec<u32>,
    /// Positions evaluated so far (the FLOPs of a search are counted from it).
    pub evaluated: usize,
    game: PhantomData<G>,
}

impl<'m, G: Game, B: HostAccess> NetPolicy<'m, G, B> {
    /// The network `model`, whose vocabulary must be `G`'s observation tokens in one [`TokenLayout`] followed
    /// by its action tokens, and whose context must hold an observation.
    pub fn new(model: &'m Model<B>) -> Result<Self, ModelError> {
        let vocab = model.config().vocab_size;
        let layout = TokenLayout::of_vocab::<G>(vocab).ok_or(ModelError::LengthMismatch {
            what: "vocabulary (observation and action tokens)",
            seq: None,
            expected: TokenLayout::ALL[0].vocab::<G>(),
            got: vocab,
        })?;
        let context = model.config().max_position_embeddings;
        if context < layout.sequence_len::<G>() {
            return Err(ModelError::LengthMismatch {
                what: "context (observation and query tokens)",
                seq: None,
                expected: layout.sequence_len::<G>(),
                got: context,
            });
        }
        Ok(NetPolicy { model, layout, observations: Vec::new(), tokens: Vec::new(), evaluated: 0, game: PhantomData })
    }
}

impl<G: Game, B: HostAccess> PolicyValue<G> for NetPolicy<'_, G, B> {
    type Error = ModelError;

    fn evaluate(&mut self, positions: &[G], logits: &mut [f32], values: &mut [f32]) -> Result<(), ModelError> {
        let (layout, len) = (self.layout, self.layout.sequence_len::<G>());
        self.observations.clear();
        selfplay_search::game::observe_batch(positions, &mut self.observations);
        self.tokens.clear();
        for observation in self.observations.chunks_exact(G::OBSERVATION_LEN) {
            layout.encode_into::<G>(observation, &mut self.tokens);
        }
        let batch: Vec<&[u32]> = self.tokens.chunks_exact(len).collect();
        let outputs = self.model.forward(&batch)?;
        let vocab = self.model.config().vocab_size;
        let read_from = len - layout.read_positions::<G>();
        for ((out, row), value) in outputs.iter().zip(logits.chunks_exact_mut(G::NUM_ACTIONS)).zip(values.iter_mut()) {
            let tail = &out.logits.data()[read_from * vocab..len * vocab];
            for (a, logit) in row.iter_mut().enumerate() {
                *logit = tail[layout.policy_logit::<G>(a, vocab)];
            }
            // The value head is linear; no position is worth more than a win or less than a loss.
            *value = out.values[len - 1].clamp(-1.0, 1.0);
        }
        self.evaluated += positions.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use selfplay_search::games::TicTacToe;

    use super::*;

    const PLACED: TokenLayout = TokenLayout { placed: true, action_queries: false };
    const SHARED: TokenLayout = TokenLayout { placed: false, action_queries: false };
    const QUERIED: TokenLayout = TokenLayout { placed: true, action_queries: true };

    #[test]
    fn placed_tokens_carry_the_cell_and_shared_ones_do_not() {
        let position = TicTacToe::parse("X...O....").unwrap();
        let observation = position.observation();
        assert_eq!(SHARED.encode::<TicTacToe>(&observation), observation);
        let placed = PLACED.encode::<TicTacToe>(&observation);
        for (i, (&p, &t)) in placed.iter().zip(&observation).enumerate() {
            assert_eq!(p, 3 * i as u32 + t, "cell {i}");
        }
        // Every placed token lies below the observation vocabulary.
        assert!(placed.iter().all(|&t| (t as usize) < PLACED.observation_vocab::<TicTacToe>()));
        // Queries follow the board: one per action, after the observation tokens and before the action tokens.
        let queried = QUERIED.encode::<TicTacToe>(&observation);
        assert_eq!(queried.len(), QUERIED.sequence_len::<TicTacToe>());
        assert_eq!(&queried[..9], &placed[..]);
        assert_eq!(&queried[9..], &(27..36).collect::<Vec<u32>>()[..]);
    }

    #[test]
    fn a_network_vocabulary_names_its_layout() {
        assert_eq!(PLACED.vocab::<TicTacToe>(), 9 * 3 + 9);
        assert_eq!(SHARED.vocab::<TicTacToe>(), 3 + 9);
        assert_eq!(QUERIED.vocab::<TicTacToe>(), 9 * 3 + 9 + 9);
        for layout in TokenLayout::ALL {
            assert_eq!(TokenLayout::of_vocab::<TicTacToe>(layout.vocab::<TicTacToe>()), Some(layout));
        }
        assert_eq!(TokenLayout::of_vocab::<TicTacToe>(13), None);
        assert_eq!(action_token::<TicTacToe>(36, 0), 27);
        assert_eq!(action_token::<TicTacToe>(12, 8), 11);
        assert_eq!((QUERIED.read_positions::<TicTacToe>(), QUERIED.policy_row(4)), (9, 4));
        assert_eq!((PLACED.read_positions::<TicTacToe>(), PLACED.policy_row(4)), (1, 0));
        assert_eq!(
            (QUERIED.policy_logit::<TicTacToe>(4, 45), PLACED.policy_logit::<TicTacToe>(4, 36)),
            (4 * 45 + 40, 31)
        );
    }
}
