//! The transformer as AlphaZero's policy-value network: a board position is its observation tokens, the policy
//! is the logits of the action tokens at the last position, the value is the value head there.
//!
//! The network's vocabulary is the observation tokens followed by one token per action. How a game's
//! observation becomes tokens is the [`TokenLayout`]: the game's own tokens ("empty / mine / theirs"), shared
//! by every cell, or one token per (cell, state) pair, so that each cell's embedding says where it is.

use std::marker::PhantomData;

use selfplay_model::{HostAccess, Model, ModelError};
use selfplay_search::{Game, PolicyValue};

/// How an observation of game `G` becomes the network's tokens.
///
/// The transformer's only positional signal is RoPE, which makes attention depend on *relative* offsets: a
/// network reading [`TokenLayout::Shared`] tokens must infer where a cell sits (which column, whether the cell
/// one to the right wraps onto the next row) from the causal mask alone. [`TokenLayout::Placed`] puts the
/// place in the token, as a learned absolute position embedding would; on Connect Four it cut a network's
/// mistakes on held-out solver-labelled positions from 0.26 to 0.18 at the same size, data and steps (the
/// `c4_supervised` example; README, "Connect Four, measured").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenLayout {
    /// Observation token `t` of any cell is token `t`: `G::NUM_TOKENS` observation tokens.
    Shared,
    /// Token `t` of cell `i` is `i · G::NUM_TOKENS + t`: `G::OBSERVATION_LEN · G::NUM_TOKENS` observation tokens.
    Placed,
}

impl TokenLayout {
    /// `Placed` when `placed`, else `Shared`.
    pub fn new(placed: bool) -> Self {
        if placed { TokenLayout::Placed } else { TokenLayout::Shared }
    }

    /// The observation tokens of game `G` in this layout (the vocabulary before the action tokens).
    pub fn observation_vocab<G: Game>(self) -> usize {
        match self {
            TokenLayout::Shared => G::NUM_TOKENS,
            TokenLayout::Placed => G::OBSERVATION_LEN * G::NUM_TOKENS,
        }
    }

    /// The network vocabulary for game `G`: observation tokens, then one token per action.
    pub fn vocab<G: Game>(self) -> usize {
        self.observation_vocab::<G>() + G::NUM_ACTIONS
    }

    /// The layout of a network of `vocab` tokens for game `G`, or `None` when `vocab` fits neither.
    pub fn of_vocab<G: Game>(vocab: usize) -> Option<Self> {
        [TokenLayout::Placed, TokenLayout::Shared].into_iter().find(|layout| layout.vocab::<G>() == vocab)
    }

    /// Appends the network's tokens for `observation` (whole observations of `G`, the game's own tokens).
    pub fn encode_into<G: Game>(self, observation: &[u32], tokens: &mut Vec<u32>) {
        match self {
            TokenLayout::Shared => tokens.extend_from_slice(observation),
            TokenLayout::Placed => tokens.extend(observation.iter().enumerate().map(|(i, &t)| {
                // An index below OBSERVATION_LEN and a token below NUM_TOKENS fit the vocabulary's u32 ids.
                ((i % G::OBSERVATION_LEN) * G::NUM_TOKENS) as u32 + t
            })),
        }
    }

    /// The network's tokens for `observation`.
    pub fn encode<G: Game>(self, observation: &[u32]) -> Vec<u32> {
        let mut tokens = Vec::with_capacity(observation.len());
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
            expected: TokenLayout::Placed.vocab::<G>(),
            got: vocab,
        })?;
        let context = model.config().max_position_embeddings;
        if context < G::OBSERVATION_LEN {
            return Err(ModelError::LengthMismatch {
                what: "context (observation tokens)",
                seq: None,
                expected: G::OBSERVATION_LEN,
                got: context,
            });
        }
        Ok(NetPolicy { model, layout, observations: Vec::new(), tokens: Vec::new(), evaluated: 0, game: PhantomData })
    }
}

impl<G: Game, B: HostAccess> PolicyValue<G> for NetPolicy<'_, G, B> {
    type Error = ModelError;

    fn evaluate(&mut self, positions: &[G], logits: &mut [f32], values: &mut [f32]) -> Result<(), ModelError> {
        let len = G::OBSERVATION_LEN;
        self.observations.clear();
        selfplay_search::game::observe_batch(positions, &mut self.observations);
        self.tokens.clear();
        self.layout.encode_into::<G>(&self.observations, &mut self.tokens);
        let batch: Vec<&[u32]> = self.tokens.chunks_exact(len).collect();
        let outputs = self.model.forward(&batch)?;
        let vocab = self.model.config().vocab_size;
        let first = action_token::<G>(vocab, 0);
        for ((out, row), value) in outputs.iter().zip(logits.chunks_exact_mut(G::NUM_ACTIONS)).zip(values.iter_mut()) {
            let last = &out.logits.data()[(len - 1) * vocab..len * vocab];
            row.copy_from_slice(&last[first..first + G::NUM_ACTIONS]);
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

    #[test]
    fn placed_tokens_carry_the_cell_and_shared_ones_do_not() {
        let position = TicTacToe::parse("X...O....").unwrap();
        let observation = position.observation();
        assert_eq!(TokenLayout::Shared.encode::<TicTacToe>(&observation), observation);
        let placed = TokenLayout::Placed.encode::<TicTacToe>(&observation);
        for (i, (&p, &t)) in placed.iter().zip(&observation).enumerate() {
            assert_eq!(p, 3 * i as u32 + t, "cell {i}");
        }
        // Every placed token lies below the observation vocabulary; two observations encode as their concatenation.
        assert!(placed.iter().all(|&t| (t as usize) < TokenLayout::Placed.observation_vocab::<TicTacToe>()));
        let two: Vec<u32> = observation.iter().chain(&observation).copied().collect();
        assert_eq!(TokenLayout::Placed.encode::<TicTacToe>(&two), [placed.clone(), placed].concat());
    }

    #[test]
    fn a_network_vocabulary_names_its_layout() {
        assert_eq!(TokenLayout::Placed.vocab::<TicTacToe>(), 9 * 3 + 9);
        assert_eq!(TokenLayout::Shared.vocab::<TicTacToe>(), 3 + 9);
        assert_eq!(TokenLayout::of_vocab::<TicTacToe>(36), Some(TokenLayout::Placed));
        assert_eq!(TokenLayout::of_vocab::<TicTacToe>(12), Some(TokenLayout::Shared));
        assert_eq!(TokenLayout::of_vocab::<TicTacToe>(13), None);
        assert_eq!(action_token::<TicTacToe>(36, 0), 27);
        assert_eq!(action_token::<TicTacToe>(12, 8), 11);
    }
}
