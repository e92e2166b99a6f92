//! The transformer as AlphaZero's policy-value network: a board position is its observation tokens, the policy
//! is the logits of the action tokens at the last position, the value is the value head there.

use std::marker::PhantomData;

use selfplay_model::{HostAccess, Model, ModelError};
use selfplay_search::{Game, PolicyValue};

/// The vocabulary id of action `action` of game `G` (action tokens follow the observation tokens).
pub fn action_token<G: Game>(action: usize) -> usize {
    G::NUM_TOKENS + action
}

/// `model` consulted by the search over game `G`'s positions: one batched forward pass per call, through the
/// model's own forward (on whatever backend it runs).
#[derive(Debug)]
pub struct NetPolicy<'m, G, B: HostAccess> {
    model: &'m Model<B>,
    tokens: Vec<u32>,
    /// Positions evaluated so far (the FLOPs of a search are counted from it).
    pub evaluated: usize,
    game: PhantomData<G>,
}

impl<'m, G: Game, B: HostAccess> NetPolicy<'m, G, B> {
    /// The network `model`, whose vocabulary must hold `G`'s observation and action tokens.
    pub fn new(model: &'m Model<B>) -> Result<Self, ModelError> {
        let vocab = model.config().vocab_size;
        if vocab < G::NUM_TOKENS + G::NUM_ACTIONS || model.config().max_position_embeddings < G::OBSERVATION_LEN {
            return Err(ModelError::LengthMismatch {
                what: "vocabulary (observation and action tokens)",
                seq: None,
                expected: G::NUM_TOKENS + G::NUM_ACTIONS,
                got: vocab,
            });
        }
        Ok(NetPolicy { model, tokens: Vec::new(), evaluated: 0, game: PhantomData })
    }
}

impl<G: Game, B: HostAccess> PolicyValue<G> for NetPolicy<'_, G, B> {
    type Error = ModelError;

    fn evaluate(&mut self, positions: &[G], logits: &mut [f32], values: &mut [f32]) -> Result<(), ModelError> {
        let len = G::OBSERVATION_LEN;
        self.tokens.clear();
        selfplay_search::game::observe_batch(positions, &mut self.tokens);
        let batch: Vec<&[u32]> = self.tokens.chunks_exact(len).collect();
        let outputs = self.model.forward(&batch)?;
        let vocab = self.model.config().vocab_size;
        let first = action_token::<G>(0);
        for ((out, row), value) in outputs.iter().zip(logits.chunks_exact_mut(G::NUM_ACTIONS)).zip(values.iter_mut()) {
            let last = &out.logits.data()[(len - 1) * vocab..len * vocab];
            row.copy_from_slice(&last[first..first + G::NUM_ACTIONS]);
            *value = out.values[len - 1];
        }
        self.evaluated += positions.len();
        Ok(())
    }
}
