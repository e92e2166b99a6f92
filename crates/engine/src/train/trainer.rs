//! One optimizer update on a batch of sequences, the same for every training loop.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use selfplay_learn::LearnError;
use selfplay_model::{HostAccess, Model, ModelError, ModelWeights, SequenceGrads, TokenStats, TrainPass};

use super::layout::RowGrads;
use crate::optimizer::{ModelOptimizer, UpdateStats};
use crate::rollout::row_seed;

/// What a loss reads of a batch's forward pass: every sequence's per-token statistics and, for losses over whole
/// distributions (AlphaZero's policy), its logits.
pub struct PassView<'a, B: HostAccess> {
    /// One entry per sequence, in the batch's order.
    pub stats: &'a [TokenStats],
    pass: &'a TrainPass<B>,
}

impl<B: HostAccess> std::fmt::Debug for PassView<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassView").field("sequences", &self.stats.len()).finish_non_exhaustive()
    }
}

impl<'a, B: HostAccess> PassView<'a, B> {
    /// Sequence `seq`'s logits, `[len, vocab]` row-major (row `t` scores the token after position `t`).
    pub fn logits(&self, seq: usize) -> Result<&'a [f32], ModelError> {
        self.pass.seq_logits(seq)
    }
}

/// Runs updates for one model, keeping the weight-gradient buffer and the token statistics between them: after
/// the first update, a step allocates no gradient buffer (the model's own passes reuse theirs too).
#[derive(Debug, Default)]
pub struct Trainer {
    grads: Option<ModelWeights>,
    stats: Vec<TokenStats>,
}

impl Trainer {
    /// A trainer with no buffers yet (they are made on the first update, shaped like that model's weights).
    pub fn new() -> Self {
        Trainer::default()
    }

    /// The gradient of `loss` on `sequences` with respect to `model`'s weights: one forward pass, `loss` turns
    /// the pass (its per-token statistics, its logits) into one [`RowGrads`] per sequence (and whatever it reports, `O`), one
    /// backward pass. The gradient stays in the trainer ([`Trainer::gradient_buffer`]).
    pub fn gradient<B: HostAccess, O, E: From<ModelError>>(
        &mut self,
        model: &Model<B>,
        sequences: &[&[u32]],
        loss: impl FnOnce(&PassView<'_, B>) -> Result<(O, Vec<RowGrads>), E>,
    ) -> Result<O, E> {
        self.backward(model, sequences, loss).map(|(out, _)| out)
    }

    /// [`Trainer::gradient`], then one clipped AdamW step of `optimizer` on `model`'s weights.
    pub fn update<B: HostAccess, O, E: From<ModelError> + From<LearnError>>(
        &mut self,
        model: &mut Model<B>,
        optimizer: &mut ModelOptimizer,
        sequences: &[&[u32]],
        loss: impl FnOnce(&PassView<'_, B>) -> Result<(O, Vec<RowGrads>), E>,
    ) -> Result<(O, UpdateStats), E> {
        let (out, grads) = self.backward(model, sequences, loss)?;
        let update = optimizer.step(model.weights_mut(), grads)?;
        Ok((out, update))
    }

    /// The forward pass, the loss and the backward pass into the kept buffer (zeroed first), which it returns.
    fn backward<'s, B: HostAccess, O, E: From<ModelError>>(
        &'s mut self,
        model: &Model<B>,
        sequences: &[&[u32]],
        loss: impl FnOnce(&PassView<'_, B>) -> Result<(O, Vec<RowGrads>), E>,
    ) -> Result<(O, &'s mut ModelWeights), E> {
        let pass = model.forward_train(sequences)?;
        pass.token_stats_into(&mut self.stats);
        let (out, rows) = loss(&PassView { stats: &self.stats, pass: &pass })?;
        let grads: Vec<SequenceGrads<'_>> = rows.iter().map(RowGrads::as_grads).collect();
        let buffer = match &mut self.grads {
            Some(buffer) => {
                buffer.fill_zero();
                buffer
            }
            none => none.insert(model.weights().zeros_like()),
        };
        model.backward(&pass, &grads, buffer)?;
        model.recycle(pass);
        Ok((out, buffer))
    }

    /// The gradient of the last [`Trainer::gradient`] (before the optimizer clipped it, if `update` has not
    /// run since), or `None` before the first.
    pub fn gradient_buffer(&self) -> Option<&ModelWeights> {
        self.grads.as_ref()
    }
}

/// `batch_size` items drawn uniformly with replacement by a generator seeded from `(seed, step, stream)`
/// alone; `stream` keeps the draws of different loops apart. Empty when `items` is.
pub fn draw_with_replacement<T>(items: &[T], batch_size: usize, seed: u64, step: u64, stream: u64) -> Vec<&T> {
    if items.is_empty() {
        return Vec::new();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(row_seed(seed, step, stream));
    (0..batch_size).map(|_| &items[(rng.next_u64() % items.len() as u64) as usize]).collect()
}
