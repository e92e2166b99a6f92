//! A batch of variable-length sequences packed row after row (no padding), with the host-side
//! metadata every op needs: token ids, absolute positions and attention spans.

use crate::backend::AttnSpan;
use crate::error::ModelError;

/// Sequences packed into `[total_tokens, ·]` rows.
#[derive(Debug, Clone, PartialEq)]
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
        Self::with_context(batch, &vec![0; batch.len()], vocab_size, max_len)
    }

    /// Packs new tokens that follow `context[i]` cached tokens. Spans point at the batch's own rows
    /// for keys (`kv_start == q_start`); a paged cache step reads the cached keys through block tables.
    pub fn with_context(
        batch: &[&[u32]],
        context: &[usize],
        vocab_size: usize,
        max_len: usize,
    ) -> Result<Self, ModelError> {
        if batch.is_empty() {
            return Err(ModelError::EmptyInput("the batch has no sequences"));
        }
        let total: usize = batch.iter().map(|s| s.len()).sum();
        let mut packed = PackedBatch {
            ids: Vec::with_capacity(total),
            positions: Vec::with_capacity(total),
            spans: Vec::with_capacity(batch.len()),
        };
        if context.len() != batch.len() {
            return Err(ModelError::length("cached context per sequence", batch.len(), context.len()));
        }
        for (i, (seq, &ctx)) in batch.iter().zip(context).enumerate() {
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
            let q_start = packed.ids.len();
            packed.ids.extend_from_slice(seq);
            packed.positions.extend((ctx..len).map(|p| p as u32));
            packed.spans.push(AttnSpan { q_start, q_len: seq.len(), kv_start: q_start, kv_len: len });
        }
        Ok(packed)
    }

    /// Number of packed rows.
    pub fn rows(&self) -> usize {
        self.ids.len()
    }
}
