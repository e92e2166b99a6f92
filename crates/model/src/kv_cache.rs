//! A contiguous KV cache: each sequence gets a slot preallocated to its full capacity (prompt plus
//! every token it may generate), so decoding never reallocates or concatenates.
//!
//! The transformer sees the cache only through `KvCache::step` (crate-internal), which hands out the per-layer
//! buffers, where the new rows go and which rows attention reads. A paged cache (block tables from
//! `selfplay-kvcache`) replaces this type behind the same step interface.

use std::marker::PhantomData;

use crate::backend::{AttnSpan, Backend, Scalar};
use crate::config::ModelConfig;
use crate::error::ModelError;
use crate::transformer::CacheStep;

#[derive(Debug, Clone, Copy)]
struct Slot {
    start: usize,
    capacity: usize,
    len: usize,
}

/// Keys and values of every layer for a fixed set of sequence slots.
#[derive(Debug)]
pub struct KvCache<T: Scalar, B: Backend<T>> {
    /// Per layer `(keys, values)`, each `[total_capacity, kv_dim]`.
    layers: Vec<(B::Owned, B::Owned)>,
    slots: Vec<Slot>,
    _scalar: PhantomData<T>,
}

/// Where one forward step's new tokens go and what attention reads (host metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepPlan {
    /// The cached length of each stepped sequence before the step.
    pub context: Vec<usize>,
    /// The first cache row of each stepped sequence's slot.
    pub kv_starts: Vec<usize>,
}

impl<T: Scalar, B: Backend<T>> KvCache<T, B> {
    /// A cache with one slot per entry of `capacities` (tokens each slot can hold).
    pub fn new(b: &B, cfg: &ModelConfig, capacities: &[usize]) -> Result<Self, ModelError> {
        let mut slots = Vec::with_capacity(capacities.len());
        let mut total = 0usize;
        for &capacity in capacities {
            if capacity > cfg.max_position_embeddings {
                return Err(ModelError::SequenceTooLong { len: capacity, limit: cfg.max_position_embeddings });
            }
            slots.push(Slot { start: total, capacity, len: 0 });
            total += capacity;
        }
        let elems = total
            .checked_mul(cfg.kv_dim())
            .and_then(|e| e.checked_mul(2 * cfg.num_hidden_layers))
            .filter(|&e| e <= isize::MAX as usize / size_of::<T>())
            .ok_or_else(|| ModelError::InvalidConfig(format!("a KV cache of {total} tokens is too large")))?;
        let per_buffer = elems / (2 * cfg.num_hidden_layers).max(1);
        let layers = (0..cfg.num_hidden_layers).map(|_| (b.zeros(per_buffer), b.zeros(per_buffer))).collect();
        Ok(KvCache { layers, slots, _scalar: PhantomData })
    }

    /// Number of slots.
    pub fn num_seqs(&self) -> usize {
        self.slots.len()
    }

    /// Tokens cached in slot `seq`.
    pub fn len(&self, seq: usize) -> Result<usize, ModelError> {
        self.slots.get(seq).map(|s| s.len).ok_or(ModelError::UnknownSequence(seq))
    }

    /// Tokens slot `seq` can hold.
    pub fn capacity(&self, seq: usize) -> Result<usize, ModelError> {
        self.slots.get(seq).map(|s| s.capacity).ok_or(ModelError::UnknownSequence(seq))
    }

    /// Forgets slot `seq`'s tokens (its memory is kept for reuse).
    pub fn clear(&mut self, seq: usize) -> Result<(), ModelError> {
        self.slots.get_mut(seq).ok_or(ModelError::UnknownSequence(seq))?.len = 0;
        Ok(())
    }

    /// Checks that slots `seqs` (distinct) can take `new_lens` more tokens, and describes the step.
    pub fn plan(&self, seqs: &[usize], new_lens: &[usize]) -> Result<StepPlan, ModelError> {
        if seqs.len() != new_lens.len() {
            return Err(ModelError::length("new token counts", seqs.len(), new_lens.len()));
        }
        let mut plan = StepPlan { context: Vec::with_capacity(seqs.len()), kv_starts: Vec::with_capacity(seqs.len()) };
        for (i, (&seq, &n)) in seqs.iter().zip(new_lens).enumerate() {
            let slot = self.slots.get(seq).ok_or(ModelError::UnknownSequence(seq))?;
            if seqs[..i].contains(&seq) {
                return Err(ModelError::value("cache step", format!("sequence {seq} appears twice")));
            }
            if slot.len + n > slot.capacity {
                return Err(ModelError::SequenceTooLong { len: slot.len + n, limit: slot.capacity });
            }
            plan.context.push(slot.len);
            plan.kv_starts.push(slot.start);
        }
        Ok(plan)
    }

    /// The buffers for a planned step whose packed spans are `spans`; `write_rows` receives where
    /// each sequence's new rows go.
    pub(crate) fn step<'c>(
        &'c mut self,
        spans: &'c [AttnSpan],
        write_rows: &'c mut Vec<usize>,
    ) -> CacheStep<'c, B::Owned> {
        write_rows.clear();
        write_rows.extend(spans.iter().map(|s| s.kv_start + s.kv_len - s.q_len));
        CacheStep { layers: &mut self.layers, write_rows, spans }
    }

    /// Records that the planned step's tokens are now cached.
    pub fn commit(&mut self, seqs: &[usize], new_lens: &[usize]) {
        for (&seq, &n) in seqs.iter().zip(new_lens) {
            if let Some(slot) = self.slots.get_mut(seq) {
                slot.len += n;
            }
        }
    }
}
