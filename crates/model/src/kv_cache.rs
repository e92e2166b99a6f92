//! The KV cache: every layer's keys and values in paged blocks, the layout the GPU decode kernel reads,
//! with [`PagedKvCache`] (`selfplay-kvcache`) deciding which block holds which tokens. So the CPU and
//! GPU caches behave the same: sequences grow block by block (no preallocated worst case, no
//! concatenation), and [`KvCache::fork`] shares a sequence's blocks with a new one, copying only the
//! partly filled last block, and only when one of them appends to it (copy-on-write). That is how a GRPO
//! group computes and stores its prompt once.
//!
//! A layer's pool is `[num_blocks · block_size, kv_dim]`: token `t` of a sequence lives in pool row
//! `table[t / block_size] · block_size + t % block_size`. The transformer sees the cache through
//! `CacheStep` (crate-internal): where each new row goes and each sequence's block table.

use std::borrow::BorrowMut;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use selfplay_kvcache::{BlockId, KvCacheConfig, KvCacheError, PagedKvCache, Reservation, SeqId};

use crate::backend::{AttnSpan, Backend, PagedSpan};
use crate::config::ModelConfig;
use crate::error::ModelError;
use crate::transformer::batch::PackedBatch;
use crate::transformer::{Activations, CacheStep};
use selfplay_tensor::Float;

/// Tokens per block unless a caller picks otherwise (as in vLLM and the GPU pool).
pub const DEFAULT_BLOCK_SIZE: usize = 16;

/// Paged keys and values of every layer for any number of sequences, in a fixed pool of blocks.
#[derive(Debug)]
pub struct KvCache<T: Float, B: Backend<T>> {
    blocks: PagedKvCache,
    /// Per layer `(keys, values)`, each `[num_blocks · block_size, kv_dim]`.
    layers: Vec<(B::Owned, B::Owned)>,
    block_size: usize,
    kv_dim: usize,
    max_len: usize,
    /// Buffers the model's forward steps over this cache reuse (see [`StepScratch`]).
    scratch: StepScratch<B::Owned>,
    _scalar: PhantomData<T>,
}

/// What one forward step over a cache keeps for the next: activations, the packed batch and the
/// step's metadata. A decode step of the same batch size then allocates nothing.
#[derive(Debug)]
pub(crate) struct StepScratch<O> {
    /// Inference activations of the last step.
    pub(crate) acts: Option<Activations<O>>,
    pub(crate) batch: PackedBatch,
    /// Each stepped sequence's cached length before the step.
    pub(crate) context: Vec<usize>,
    pub(crate) plan: StepPlan,
    /// An emptied vector for the step's paged spans (see `transformer::params::recycle`).
    pub(crate) spans: Vec<PagedSpan<'static>>,
}

impl<O> Default for StepScratch<O> {
    fn default() -> Self {
        StepScratch {
            acts: None,
            batch: PackedBatch::default(),
            context: Vec::new(),
            plan: StepPlan::default(),
            spans: Vec::new(),
        }
    }
}

/// Where one forward step's new keys and values go (host metadata, made by [`KvCache::reserve`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct StepPlan {
    /// The pool row of every new token, in packed order.
    slots: Vec<u32>,
    /// Each stepped sequence's block table after the step.
    tables: Vec<Vec<BlockId>>,
    /// One sequence's reservation, reused while reserving.
    reservation: Reservation,
}

impl StepPlan {
    /// The paged view of a packed batch's spans (`spans[i]` belongs to the `i`-th stepped sequence).
    pub(crate) fn paged_spans<'p>(&'p self, spans: &[AttnSpan]) -> Vec<PagedSpan<'p>> {
        spans
            .iter()
            .zip(&self.tables)
            .map(|(s, table)| PagedSpan { q_start: s.q_start, q_len: s.q_len, kv_len: s.kv_len, blocks: table })
            .collect()
    }

    /// [`StepPlan::paged_spans`] into `out` (cleared first).
    pub(crate) fn paged_spans_into<'p>(&'p self, spans: &[AttnSpan], out: &mut Vec<PagedSpan<'p>>) {
        out.clear();
        out.extend(spans.iter().zip(&self.tables).map(|(s, table)| PagedSpan {
            q_start: s.q_start,
            q_len: s.q_len,
            kv_len: s.kv_len,
            blocks: table,
        }));
    }
}

impl<T: Float, B: Backend<T>> KvCache<T, B> {
    /// A cache of `num_blocks` blocks of `block_size` tokens for a model of shape `cfg`.
    pub fn new(b: &B, cfg: &ModelConfig, num_blocks: usize, block_size: usize) -> Result<Self, ModelError> {
        Self::build(b, cfg, num_blocks, block_size, false)
    }

    /// [`KvCache::new`] with prefix caching: full blocks of committed tokens stay behind when their sequences
    /// end, and [`KvCache::admit`] starts a new sequence on the longest such prefix of its tokens (least
    /// recently used blocks are evicted when the pool runs short).
    pub fn with_prefix_caching(
        b: &B,
        cfg: &ModelConfig,
        num_blocks: usize,
        block_size: usize,
    ) -> Result<Self, ModelError> {
        Self::build(b, cfg, num_blocks, block_size, true)
    }

    fn build(
        b: &B,
        cfg: &ModelConfig,
        num_blocks: usize,
        block_size: usize,
        prefix_caching: bool,
    ) -> Result<Self, ModelError> {
        let too_large = || ModelError::CacheTooLarge { num_blocks, block_size };
        let config = KvCacheConfig {
            num_blocks: u32::try_from(num_blocks).map_err(|_| too_large())?,
            block_size: u32::try_from(block_size).map_err(|_| too_large())?,
            prefix_caching,
        };
        let blocks = PagedKvCache::new(config)?;
        let per_buffer = num_blocks
            .checked_mul(block_size)
            .and_then(|rows| rows.checked_mul(cfg.kv_dim()))
            .filter(|&e| e.saturating_mul(2 * cfg.num_hidden_layers) <= isize::MAX as usize / size_of::<T>())
            .ok_or_else(too_large)?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|_| Ok((b.zeros(per_buffer)?, b.zeros(per_buffer)?)))
            .collect::<Result<_, ModelError>>()?;
        Ok(KvCache {
            blocks,
            layers,
            block_size,
            kv_dim: cfg.kv_dim(),
            max_len: cfg.max_position_embeddings,
            scratch: StepScratch::default(),
            _scalar: PhantomData,
        })
    }

    /// Refuses a cache built for a model of another shape, whose pools the model's forward would
    /// index out of bounds.
    pub(crate) fn check_fits(&self, cfg: &ModelConfig) -> Result<(), ModelError> {
        let mismatch = |what, expected, got| Err(ModelError::CacheMismatch { what, expected, got });
        if self.layers.len() != cfg.num_hidden_layers {
            return mismatch("layers", cfg.num_hidden_layers, self.layers.len());
        }
        if self.kv_dim != cfg.kv_dim() {
            return mismatch("key/value width", cfg.kv_dim(), self.kv_dim);
        }
        if self.max_len != cfg.max_position_embeddings {
            return mismatch("context length", cfg.max_position_embeddings, self.max_len);
        }
        Ok(())
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Blocks in the pool, used or not.
    pub fn num_blocks(&self) -> usize {
        self.blocks.config().num_blocks as usize
    }

    /// Blocks not used by any sequence.
    pub fn free_blocks(&self) -> usize {
        self.blocks.free_blocks()
    }

    /// Starts an empty sequence.
    pub fn add_sequence(&mut self) -> Result<SeqId, ModelError> {
        Ok(self.blocks.admit(&[])?.seq)
    }

    /// Starts a sequence on the longest cached prefix of `tokens` in full blocks (never the last token, whose
    /// outputs a caller needs) and returns it with that prefix's length: feed it `tokens[cached..]`. Without
    /// prefix caching the sequence starts empty.
    pub fn admit(&mut self, tokens: &[u32]) -> (SeqId, usize) {
        self.blocks.admit_cached(tokens)
    }

    /// Full blocks held by the prefix cache.
    pub fn cached_blocks(&self) -> usize {
        self.blocks.cached_blocks()
    }

    /// Makes room for `additional` more tokens of `seq` in the cache's bookkeeping (no block is taken), so the
    /// decode steps that append them allocate nothing.
    pub fn reserve_tokens(&mut self, seq: SeqId, additional: usize) -> Result<(), ModelError> {
        Ok(self.blocks.reserve(seq, additional)?)
    }

    /// A new sequence continuing `seq`'s tokens, sharing its blocks (nothing is copied now).
    pub fn fork(&mut self, seq: SeqId) -> Result<SeqId, ModelError> {
        Ok(self.blocks.fork(seq)?)
    }

    /// Ends a sequence; blocks no other sequence shares go back to the pool.
    pub fn release(&mut self, seq: SeqId) -> Result<(), ModelError> {
        Ok(self.blocks.release(seq)?)
    }

    /// Tokens cached for `seq`.
    pub fn len(&self, seq: SeqId) -> Result<usize, ModelError> {
        Ok(self.blocks.len(seq)?)
    }

    /// `seq`'s block table.
    pub fn block_table(&self, seq: SeqId) -> Result<&[BlockId], ModelError> {
        Ok(self.blocks.block_table(seq)?)
    }

    /// Makes room for `tokens[i]` after the tokens of `seqs[i]` (distinct sequences), all or nothing:
    /// every check, including that the pool has the blocks, runs before anything changes. Runs the
    /// copy-on-write block copies on the backend, then returns where the new keys and values go.
    pub(crate) fn reserve(&mut self, b: &B, seqs: &[SeqId], tokens: &[&[u32]]) -> Result<StepPlan, ModelError> {
        let mut plan = StepPlan::default();
        self.reserve_into(b, seqs, tokens, &mut plan)?;
        Ok(plan)
    }

    /// [`KvCache::reserve`] into `plan`'s buffers.
    pub(crate) fn reserve_into(
        &mut self,
        b: &B,
        seqs: &[SeqId],
        tokens: &[&[u32]],
        plan: &mut StepPlan,
    ) -> Result<(), ModelError> {
        if seqs.len() != tokens.len() {
            return Err(ModelError::length("token rows per sequence", seqs.len(), tokens.len()));
        }
        let bs = self.block_size;
        let mut needed = 0usize;
        // References to shared blocks that earlier sequences of this step give up by copying them.
        let mut given_up: BTreeMap<BlockId, u32> = BTreeMap::new();
        for (i, (&seq, new)) in seqs.iter().zip(tokens).enumerate() {
            if seqs[..i].contains(&seq) {
                return Err(ModelError::InvalidValue {
                    what: "cache step",
                    seq: Some(i),
                    reason: "names a sequence twice",
                });
            }
            let (len, table) = (self.blocks.len(seq)?, self.blocks.block_table(seq)?);
            if len + new.len() > self.max_len {
                return Err(ModelError::SequenceTooLong { len: len + new.len(), limit: self.max_len });
            }
            if new.is_empty() {
                continue;
            }
            let copies_last = match table.get(len / bs) {
                Some(&block) if len % bs != 0 => {
                    let refs = self.blocks.pool().refcount(block) - given_up.get(&block).copied().unwrap_or(0);
                    if refs > 1 {
                        *given_up.entry(block).or_default() += 1;
                    }
                    refs > 1
                }
                _ => false,
            };
            needed += (len + new.len()).div_ceil(bs) - table.len() + usize::from(copies_last);
        }
        // With prefix caching, blocks cached by ended sequences are evicted for room (least recently used first).
        if needed > self.blocks.free_blocks() && self.blocks.make_free(needed).is_err() {
            let available = self.blocks.free_blocks();
            return Err(KvCacheError::OutOfBlocks { needed, available }.into());
        }
        let StepPlan { slots, tables, reservation } = plan;
        slots.clear();
        for (&seq, new) in seqs.iter().zip(tokens) {
            self.blocks.append_into(seq, new, reservation)?;
            for copy in &reservation.copies {
                let (src, dst) = (copy.src.index() * bs, copy.dst.index() * bs);
                for (k, v) in &mut self.layers {
                    b.copy_rows_within(k.borrow_mut(), src, dst, bs, self.kv_dim)?;
                    b.copy_rows_within(v.borrow_mut(), src, dst, bs, self.kv_dim)?;
                }
            }
            slots.extend_from_slice(&reservation.slots);
        }
        tables.truncate(seqs.len());
        tables.resize_with(seqs.len(), Vec::new);
        for (table, &s) in tables.iter_mut().zip(seqs) {
            table.clear();
            table.extend_from_slice(self.blocks.block_table(s)?);
        }
        Ok(())
    }

    /// Takes the buffers a forward step reuses (put them back with [`KvCache::put_scratch`]).
    pub(crate) fn take_scratch(&mut self) -> StepScratch<B::Owned> {
        std::mem::take(&mut self.scratch)
    }

    pub(crate) fn put_scratch(&mut self, scratch: StepScratch<B::Owned>) {
        self.scratch = scratch;
    }

    /// The buffers and metadata the transformer needs for a reserved step.
    pub(crate) fn step<'c>(&'c mut self, plan: &'c StepPlan, spans: &'c [PagedSpan<'c>]) -> CacheStep<'c, B::Owned> {
        CacheStep { layers: &mut self.layers, slots: &plan.slots, spans, block_size: self.block_size }
    }

    /// Declares the step's keys and values written (the bookkeeping's protocol; see [`PagedKvCache`]).
    pub(crate) fn commit(&mut self, seqs: &[SeqId]) -> Result<(), ModelError> {
        seqs.iter().try_for_each(|&s| Ok(self.blocks.commit(s)?))
    }
}
