//! A batch of variable-length sequences packed row after row (no padding), with the host-side
//! metadata every op needs: token ids, absolute positions and attention spans.

use crate::backend::AttnSpan;
use crate::error::ModelError;

/// Sequences packed into `[total_tokens, ·]` rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PackedBatch {
    /// Every token id, sequence after sequence.
    pub ids: Vec<u32>,
    /// The absolute position of each row (its index in its sequence, plus any cached prefix).
    pub positions: Vec<u32>,
    /// Each sequence's rows and the keys/values it attends to.
    pub spans: Vec<AttnSpan>,
}

impl PackedBatch {
    /// Packs `batch` for a forward pass without a cache, validating it against the model's limits.
    pub fn new(batch: &[&[u32]], vocab_size: usize, max_len: usize) -> Result<Self, ModelError> {
        let mut packed = PackedBatch::default();
        packed.refill(batch, None, vocab_size, max_len)?;
        Ok(packed)
    }

    /// Packs new tokens that follow `context[i]` cached tokens. Spans point at the batch's own rows
    /// for keys (`kv_start == q_start`); a paged cache step reads the cached keys through block tables.
    pub fn with_context(
        batch: &[&[u32]],
        context: &[usize],
        vocab_size: usize,
        max_len: usize,
    ) -> Result<Self, ModelError> {
        let total: usize = batch.iter().map(|s| s.len()).sum();
        let mut packed = PackedBatch {
            ids: Vec::with_capacity(total),
            positions: Vec::with_capacity(total),
            spans: Vec::with_capacity(batch.len()),
        };
        packed.refill(batch, Some(context), vocab_size, max_len)?;
        Ok(packed)
    }

    /// [`PackedBatch::with_context`] (or [`PackedBatch::new`] when `context` is `None`) into this
    /// batch's buffers, allocating only to grow them. On an error the batch is left valid but
    /// unspecified.
    pub fn refill(
        &mut self,
        batch: &[&[u32]],
        context: Option<&[usize]>,
        vocab_size: usize,
        max_len: usize,
    ) -> Result<(), ModelError> {
        self.ids.clear();
        self.positions.clear();
        self.spans.clear();
        if batch.is_empty() {
            return Err(ModelError::EmptyInput("the batch has no sequences"));
        }
        if let Some(context) = context
            && context.len() != batch.len()
        {
            return Err(ModelError::length("cached context per sequence", batch.len(), context.len()));
        }
        for (i, seq) in batch.iter().enumerate() {
            let ctx = context.and_then(|c| c.get(i)).copied().unwrap_or(0);
            if seq.is_empty() {
                return Err(ModelError::EmptySequence(i));
            }
            let len = ctx + seq.len();
            if len > max_len {
                return Err(ModelError::SequenceTooLong { len, limit: max_len });
            }
            if let Some(&id) = seq.iter().find(|&&id| id as usize >= vocab_size) {
                return Err(ModelError::TokenOutOfRange { id, vocab_size });
            }
            let q_start = self.ids.len();
            self.ids.extend_from_slice(seq);
            self.positions.extend((ctx..len).map(|p| p as u32));
            self.spans.push(AttnSpan { q_start, q_len: seq.len(), kv_start: q_start, kv_len: len });
        }
        Ok(())
    }

    /// Number of packed rows.
    pub fn rows(&self) -> usize {
        self.ids.len()
    }
}
