//! One optimizer update on a batch of sequences, the same for every training loop.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use selfplay_collective::{Collective, CollectiveError, shard};
use selfplay_learn::LearnError;
use selfplay_model::{HostAccess, Model, ModelError, ModelWeights, SequenceGrads, TokenStats, TrainPass};

use super::gathered;
use super::layout::RowGrads;
use crate::optimizer::{ModelOptimizer, UpdateStats};
use crate::rollout::row_seed;

/// What a loss reads of a batch's forward pass: every sequence's per-token statistics and, for losses over whole
/// distributions (AlphaZero's policy), the logits of its last positions (as many as the trainer keeps,
/// [`Trainer::keeping_tail`]). In a data-parallel step it holds every rank's rows, gathered, so a loss always
/// sees the whole batch.
pub struct PassView<'a, B: HostAccess> {
    /// One entry per sequence, in the batch's order.
    pub stats: &'a [TokenStats],
    logits: TailLogits<'a, B>,
}

/// Where the last positions' logits come from: the local pass (with the vocabulary and the positions kept), or
/// the rows the ranks gathered.
enum TailLogits<'a, B: HostAccess> {
    Pass(&'a TrainPass<B>, usize, usize),
    Gathered(&'a [Vec<f32>]),
}

impl<B: HostAccess> std::fmt::Debug for PassView<'_, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassView").field("sequences", &self.stats.len()).finish_non_exhaustive()
    }
}

impl<'a, B: HostAccess> PassView<'a, B> {
    /// Sequence `seq`'s logits at its last positions (`[positions kept, vocab]`, row-major; the last row scores
    /// the token that would follow it).
    pub fn tail_logits(&self, seq: usize) -> Result<&'a [f32], ModelError> {
        match self.logits {
            TailLogits::Pass(pass, vocab, rows) => Ok(tail_rows(pass.seq_logits(seq)?, vocab, rows)),
            TailLogits::Gathered(rows) => rows.get(seq).map(Vec::as_slice).ok_or(ModelError::UnknownSequence(seq)),
        }
    }
}

/// The last `rows` rows of `vocab` logits of a sequence's `[len, vocab]` block (all of them when it is shorter).
fn tail_rows(logits: &[f32], vocab: usize, rows: usize) -> &[f32] {
    &logits[logits.len().saturating_sub(rows * vocab)..]
}

/// Runs updates for one model, keeping the weight-gradient buffer and the token statistics between them: after
/// the first update, a step allocates no gradient buffer (the model's own passes reuse theirs too).
///
/// **Data parallel.** Over a [`Collective`] of several ranks, each rank runs the forward and backward passes of
/// its [`shard`] of the batch's rows only. The ranks gather their rows' statistics, so the loss (evaluated on
/// every rank) sees the whole batch; each rank back-propagates its own rows' loss gradients, and the weight
/// gradients are summed over the ranks in rank order. Every rank then holds the same gradient, the whole batch's,
/// and takes the same optimizer step. Over one rank nothing is exchanged.
#[derive(Debug)]
pub struct Trainer {
    grads: Option<ModelWeights>,
    stats: Vec<TokenStats>,
    /// Trailing positions whose logits a loss may read ([`PassView::tail_logits`]).
    tail: usize,
}

impl Default for Trainer {
    fn default() -> Self {
        Trainer { grads: None, stats: Vec::new(), tail: 1 }
    }
}

impl Trainer {
    /// A trainer with no buffers yet (they are made on the first update, shaped like that model's weights),
    /// whose losses read the logits of each sequence's last position.
    pub fn new() -> Self {
        Trainer::default()
    }

    /// A trainer whose losses read the logits of each sequence's last `positions` positions (at least one); in
    /// a data-parallel step the ranks exchange that many rows of logits per sequence.
    pub fn keeping_tail(positions: usize) -> Self {
        Trainer { tail: positions.max(1), ..Trainer::default() }
    }

    /// The gradient of `loss` on `sequences` with respect to `model`'s weights: one forward pass, `loss` turns
    /// the pass (its per-token statistics, its logits) into one [`RowGrads`] per sequence (and whatever it
    /// reports, `O`), one backward pass; over several ranks, as the type's documentation says. The gradient stays
    /// in the trainer ([`Trainer::gradient_buffer`]).
    pub fn gradient<B: HostAccess, O, E: From<ModelError> + From<CollectiveError>>(
        &mut self,
        model: &Model<B>,
        collective: &dyn Collective,
        sequences: &[&[u32]],
        loss: impl FnOnce(&PassView<'_, B>) -> Result<(O, Vec<RowGrads>), E>,
    ) -> Result<O, E> {
        self.backward(model, collective, sequences, loss).map(|(out, _)| out)
    }

    /// [`Trainer::gradient`], then one clipped AdamW step of `optimizer` on `model`'s weights.
    pub fn update<B: HostAccess, O, E: From<ModelError> + From<LearnError> + From<CollectiveError>>(
        &mut self,
        model: &mut Model<B>,
        optimizer: &mut ModelOptimizer,
        collective: &dyn Collective,
        sequences: &[&[u32]],
        loss: impl FnOnce(&PassView<'_, B>) -> Result<(O, Vec<RowGrads>), E>,
    ) -> Result<(O, UpdateStats), E> {
        let (out, grads) = self.backward(model, collective, sequences, loss)?;
        let update = optimizer.step(model.weights_mut(), grads)?;
        Ok((out, update))
    }

    /// The forward pass of this rank's rows, the loss over every rank's, the backward pass of this rank's into
    /// the kept buffer (zeroed first), summed over the ranks; returns the buffer.
    fn backward<'s, B: HostAccess, O, E: From<ModelError> + From<CollectiveError>>(
        &'s mut self,
        model: &Model<B>,
        collective: &dyn Collective,
        sequences: &[&[u32]],
        loss: impl FnOnce(&PassView<'_, B>) -> Result<(O, Vec<RowGrads>), E>,
    ) -> Result<(O, &'s mut ModelWeights), E> {
        let buffer = match &mut self.grads {
            Some(buffer) => {
                buffer.fill_zero();
                buffer
            }
            none => none.insert(model.weights().zeros_like()),
        };
        let vocab = model.config().vocab_size;
        if collective.world_size() == 1 {
            let pass = model.forward_train(sequences)?;
            pass.token_stats_into(&mut self.stats);
            let view = PassView { stats: &self.stats, logits: TailLogits::Pass(&pass, vocab, self.tail) };
            let (out, rows) = loss(&view)?;
            let grads: Vec<SequenceGrads<'_>> = rows.iter().map(RowGrads::as_grads).collect();
            model.backward(&pass, &grads, buffer)?;
            model.recycle(pass);
            return Ok((out, buffer));
        }
        let mine = shard(sequences.len(), collective.rank(), collective.world_size());
        let pass = if mine.is_empty() { None } else { Some(model.forward_train(&sequences[mine.clone()])?) };
        let mut local = Vec::new();
        let mut last: Vec<&[f32]> = Vec::new();
        if let Some(pass) = &pass {
            pass.token_stats_into(&mut local);
            for i in 0..local.len() {
                last.push(tail_rows(pass.seq_logits(i)?, vocab, self.tail));
            }
        }
        let gathered = gathered::gather(collective, &local, &last)?;
        if gathered.stats.len() != sequences.len() {
            let message =
                format!("the ranks gathered {} rows of a {}-row batch", gathered.stats.len(), sequences.len());
            return Err(CollectiveError::Transport(message).into());
        }
        let view = PassView { stats: &gathered.stats, logits: TailLogits::Gathered(&gathered.tail_logits) };
        let (out, rows) = loss(&view)?;
        if let Some(pass) = pass {
            let grads: Vec<SequenceGrads<'_>> =
                rows.get(mine).unwrap_or_default().iter().map(RowGrads::as_grads).collect();
            model.backward(&pass, &grads, buffer)?;
            model.recycle(pass);
        }
        collective.all_reduce_sum(buffer.as_flat_mut())?;
        self.stats = gathered.stats;
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
