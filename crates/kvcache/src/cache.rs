//! The paged KV cache's host side: sequences, their block tables, copy-on-write forks and prefix reuse.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::pool::BlockPool;
use crate::prefix::{NodeId, PrefixTree};
use crate::{BlockId, KvCacheError, Result};

/// Pool shape and policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvCacheConfig {
    /// Blocks in the device pool.
    pub num_blocks: u32,
    /// Tokens per block (16 by default, as in vLLM: small enough to waste little, large enough for
    /// coalesced reads in the decode kernel).
    pub block_size: u32,
    /// Whether full blocks are kept in the radix prefix cache after their sequences end.
    pub prefix_caching: bool,
}

impl KvCacheConfig {
    /// `num_blocks` blocks of the default size with prefix caching on.
    pub fn with_blocks(num_blocks: u32) -> Self {
        Self { num_blocks, block_size: 16, prefix_caching: true }
    }
}

/// Identifies a live sequence. Ids are never reused, so a stale id is always reported as unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeqId(u64);

/// A block copy the device must perform before the next forward pass writes into `dst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockCopy {
    /// Block shared with other sequences.
    pub src: BlockId,
    /// Fresh block that becomes this sequence's private copy.
    pub dst: BlockId,
}

/// Where the keys and values of newly appended tokens go, and the copies to make first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reservation {
    /// One flat slot index (`block * block_size + offset`) per appended token, in order.
    pub slots: Vec<u32>,
    /// Copy-on-write copies; run them before writing any slot.
    pub copies: Vec<BlockCopy>,
}

/// Result of admitting a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The new sequence.
    pub seq: SeqId,
    /// Leading prompt tokens whose keys and values are already cached; the forward pass starts after
    /// them. Never the whole prompt: the last prompt token is always recomputed to produce logits.
    pub cached_tokens: usize,
    /// Slots for the remaining prompt tokens.
    pub reservation: Reservation,
}

#[derive(Debug, Clone)]
struct Sequence {
    tokens: Vec<u32>,
    blocks: Vec<BlockId>,
    /// Leading full blocks already on a path of the prefix tree.
    cached_blocks: usize,
    /// End of that path (locked in the tree while this sequence lives).
    cached_node: NodeId,
}

/// Host bookkeeping for a paged KV cache: a fixed pool of blocks, a block table per sequence, reference
/// counts shared by forks, and an optional radix prefix cache.
///
/// Protocol: [`admit`](Self::admit) or [`append`](Self::append) reserve slots; the caller runs the
/// returned copies and writes the new tokens' keys and values into the slots; then it calls
/// [`commit`](Self::commit), which offers the sequence's now complete blocks to the prefix cache. Until a
/// commit no other sequence can match those blocks, so a prefix hit never reads unwritten memory.
#[derive(Debug, Clone)]
pub struct PagedKvCache {
    config: KvCacheConfig,
    pool: BlockPool,
    tree: PrefixTree,
    sequences: BTreeMap<SeqId, Sequence>,
    next_seq: u64,
}

impl PagedKvCache {
    /// An empty cache.
    pub fn new(config: KvCacheConfig) -> Result<Self> {
        if config.block_size == 0 {
            return Err(KvCacheError::InvalidConfig("block_size must be positive"));
        }
        if config.num_blocks == 0 {
            return Err(KvCacheError::InvalidConfig("num_blocks must be positive"));
        }
        if u64::from(config.num_blocks) * u64::from(config.block_size) > u64::from(u32::MAX) + 1 {
            return Err(KvCacheError::InvalidConfig("num_blocks * block_size must fit u32 slot indices"));
        }
        Ok(Self {
            config,
            pool: BlockPool::new(config.num_blocks),
            tree: PrefixTree::new(),
            sequences: BTreeMap::new(),
            next_seq: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> KvCacheConfig {
        self.config
    }

    fn block_size(&self) -> usize {
        self.config.block_size as usize
    }

    /// Blocks on the free list now (not counting evictable cached blocks).
    pub fn free_blocks(&self) -> usize {
        self.pool.free_count()
    }

    /// Full blocks held by the prefix cache.
    pub fn cached_blocks(&self) -> usize {
        self.tree.len()
    }

    /// The block pool (read only, for inspection and invariant checks).
    pub fn pool(&self) -> &BlockPool {
        &self.pool
    }

    /// Live sequences, in id order.
    pub fn sequences(&self) -> impl Iterator<Item = SeqId> + '_ {
        self.sequences.keys().copied()
    }

    fn seq(&self, id: SeqId) -> Result<&Sequence> {
        self.sequences.get(&id).ok_or(KvCacheError::UnknownSequence(id))
    }

    /// The sequence's block table: block `i` holds tokens `i * block_size ..`.
    pub fn block_table(&self, id: SeqId) -> Result<&[BlockId]> {
        Ok(&self.seq(id)?.blocks)
    }

    /// Tokens in the sequence (cached, computed and reserved).
    pub fn tokens(&self, id: SeqId) -> Result<&[u32]> {
        Ok(&self.seq(id)?.tokens)
    }

    /// Length of the sequence in tokens.
    pub fn len(&self, id: SeqId) -> Result<usize> {
        Ok(self.seq(id)?.tokens.len())
    }

    /// Flat slot index of token `position`.
    pub fn slot(&self, id: SeqId, position: usize) -> Result<u32> {
        let seq = self.seq(id)?;
        if position >= seq.tokens.len() {
            return Err(KvCacheError::PositionOutOfRange { position, len: seq.tokens.len() });
        }
        let bs = self.block_size();
        let block = seq.blocks.get(position / bs).copied().ok_or(KvCacheError::SequenceTooLong(position))?;
        slot_index(block, position % bs, self.config.block_size)
    }

    /// Starts a sequence for `prompt`, reusing the longest cached prefix of full blocks (never the last
    /// prompt token) and reserving slots for the rest. Fails without any effect on live sequences.
    pub fn admit(&mut self, prompt: &[u32]) -> Result<Admission> {
        let (seq, cached_tokens) = self.admit_cached(prompt);
        match self.append(seq, prompt.get(cached_tokens..).unwrap_or_default()) {
            Ok(reservation) => Ok(Admission { seq, cached_tokens, reservation }),
            Err(err) => {
                self.release(seq)?;
                Err(err)
            }
        }
    }

    /// Starts a sequence holding only the longest cached prefix of `prompt` in full blocks (never its last
    /// token), and returns it with that prefix's length; the caller appends the rest. Without prefix caching,
    /// or on a miss, the sequence starts empty. Takes no free block, so it cannot fail.
    pub fn admit_cached(&mut self, prompt: &[u32]) -> (SeqId, usize) {
        let bs = self.block_size();
        let mut node = NodeId::ROOT;
        let mut blocks = Vec::new();
        if self.config.prefix_caching {
            let reusable = prompt.len().saturating_sub(1) / bs;
            for chunk in prompt.chunks_exact(bs).take(reusable) {
                let Some(child) = self.tree.child(node, chunk) else { break };
                let Some(block) = self.tree.block(child) else { break };
                self.tree.touch(child);
                blocks.push(block);
                node = child;
            }
        }
        for &block in &blocks {
            self.pool.retain(block);
        }
        self.tree.lock(node);
        let cached_tokens = blocks.len() * bs;
        let seq = SeqId(self.next_seq);
        self.next_seq += 1;
        let cached_blocks = blocks.len();
        self.sequences.insert(
            seq,
            Sequence {
                tokens: prompt.get(..cached_tokens).unwrap_or_default().to_vec(),
                blocks,
                cached_blocks,
                cached_node: node,
            },
        );
        (seq, cached_tokens)
    }

    /// Makes room in `id`'s token list and block table for `additional` more tokens without taking any block,
    /// so a decode loop that knows its length appends without reallocating them.
    pub fn reserve(&mut self, id: SeqId, additional: usize) -> Result<()> {
        let bs = self.block_size();
        let seq = self.sequences.get_mut(&id).ok_or(KvCacheError::UnknownSequence(id))?;
        let total = seq.tokens.len().saturating_add(additional).min(self.pool.capacity().saturating_mul(bs));
        seq.tokens.reserve(total - seq.tokens.len().min(total));
        let blocks = total.div_ceil(bs);
        seq.blocks.reserve(blocks.saturating_sub(seq.blocks.len()));
        Ok(())
    }

    /// Reserves slots for `tokens` at the end of the sequence. If the last block is partly filled and
    /// shared with a fork, the sequence first gets a private copy of it (returned in `copies`).
    pub fn append(&mut self, id: SeqId, tokens: &[u32]) -> Result<Reservation> {
        let mut reservation = Reservation::default();
        self.append_into(id, tokens, &mut reservation)?;
        Ok(reservation)
    }

    /// [`PagedKvCache::append`] into `out`'s vectors (cleared first), so a decode loop that keeps
    /// `out` allocates nothing here but the sequence's own growth.
    pub fn append_into(&mut self, id: SeqId, tokens: &[u32], out: &mut Reservation) -> Result<()> {
        out.slots.clear();
        out.copies.clear();
        let bs = self.block_size();
        let seq = self.seq(id)?;
        let len = seq.tokens.len();
        let new_len = len.checked_add(tokens.len()).ok_or(KvCacheError::SequenceTooLong(usize::MAX))?;
        if tokens.is_empty() {
            return Ok(());
        }
        if new_len > self.pool.capacity() * bs {
            return Err(KvCacheError::SequenceTooLong(new_len));
        }
        let partial_shared = match seq.blocks.get(len / bs) {
            Some(&block) if len % bs != 0 && self.pool.refcount(block) > 1 => Some(block),
            _ => None,
        };
        let needed = new_len.div_ceil(bs) - seq.blocks.len() + usize::from(partial_shared.is_some());
        self.make_free(needed)?;

        let seq = self.sequences.get_mut(&id).ok_or(KvCacheError::UnknownSequence(id))?;
        let mut fresh = needed;
        if let Some(src) = partial_shared {
            // `src` stays referenced by another sequence, so releasing it frees nothing and the
            // blocks allocated are those of allocating all `needed` first.
            let dst = self.pool.allocate()?;
            fresh -= 1;
            if let Some(entry) = seq.blocks.get_mut(len / bs) {
                *entry = dst;
            }
            self.pool.release(src);
            out.copies.push(BlockCopy { src, dst });
        }
        for _ in 0..fresh {
            seq.blocks.push(self.pool.allocate()?);
        }
        seq.tokens.extend_from_slice(tokens);
        for position in len..new_len {
            let block = seq.blocks.get(position / bs).copied().ok_or(KvCacheError::SequenceTooLong(new_len))?;
            out.slots.push(slot_index(block, position % bs, self.config.block_size)?);
        }
        Ok(())
    }

    /// Declares that every reserved slot of the sequence has been written, so its full blocks may be
    /// shared through the prefix cache.
    pub fn commit(&mut self, id: SeqId) -> Result<()> {
        if !self.config.prefix_caching {
            self.seq(id)?;
            return Ok(());
        }
        let bs = self.block_size();
        let seq = self.sequences.get_mut(&id).ok_or(KvCacheError::UnknownSequence(id))?;
        let full = seq.tokens.len() / bs;
        let start_node = seq.cached_node;
        let mut node = start_node;
        for index in seq.cached_blocks..full {
            let (Some(chunk), Some(&block)) = (seq.tokens.get(index * bs..(index + 1) * bs), seq.blocks.get(index))
            else {
                break;
            };
            node = match self.tree.child(node, chunk) {
                // Another sequence cached the same chunk first; keep our copy private and follow theirs.
                Some(existing) => existing,
                None => {
                    self.pool.retain(block);
                    match self.tree.insert(node, chunk, block) {
                        Some(inserted) => inserted,
                        None => {
                            self.pool.release(block);
                            break;
                        }
                    }
                }
            };
            self.tree.touch(node);
            seq.cached_blocks = index + 1;
        }
        seq.cached_node = node;
        if node != start_node {
            self.tree.lock(node);
            self.tree.unlock(start_node);
        }
        Ok(())
    }

    /// A new sequence sharing every block of `id`. Nothing is copied now: the first append to a shared,
    /// partly filled block copies it (so a GRPO group of G forks makes at most G copies of the prompt's
    /// last block, and none of the full ones).
    pub fn fork(&mut self, id: SeqId) -> Result<SeqId> {
        let seq = self.seq(id)?.clone();
        for &block in &seq.blocks {
            self.pool.retain(block);
        }
        self.tree.lock(seq.cached_node);
        let child = SeqId(self.next_seq);
        self.next_seq += 1;
        self.sequences.insert(child, seq);
        Ok(child)
    }

    /// Ends a sequence, returning its blocks to the pool unless a fork or the prefix cache still uses them.
    pub fn release(&mut self, id: SeqId) -> Result<()> {
        let seq = self.sequences.remove(&id).ok_or(KvCacheError::UnknownSequence(id))?;
        for block in seq.blocks {
            self.pool.release(block);
        }
        self.tree.unlock(seq.cached_node);
        Ok(())
    }

    /// Drops every cached prefix that no live sequence builds on; returns the blocks freed.
    pub fn evict_unused(&mut self) -> usize {
        let mut freed = 0;
        while let Some(block) = self.tree.evict_lru() {
            freed += usize::from(self.pool.release(block));
        }
        freed
    }

    /// Evicts least recently used cached prefixes that no live sequence builds on until `needed` blocks are
    /// free, so a caller can check a whole batch's room before appending anything. Fails when even evicting
    /// everything evictable leaves fewer (what was evicted stays evicted; no sequence is touched).
    pub fn make_free(&mut self, needed: usize) -> Result<()> {
        while self.pool.free_count() < needed {
            match self.tree.evict_lru() {
                Some(block) => {
                    self.pool.release(block);
                }
                None => return Err(KvCacheError::OutOfBlocks { needed, available: self.pool.free_count() }),
            }
        }
        Ok(())
    }
}

fn slot_index(block: BlockId, offset: usize, block_size: u32) -> Result<u32> {
    u32::try_from(offset)
        .ok()
        .and_then(|offset| block.0.checked_mul(block_size)?.checked_add(offset))
        .ok_or(KvCacheError::SequenceTooLong(offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(num_blocks: u32, block_size: u32) -> PagedKvCache {
        PagedKvCache::new(KvCacheConfig { num_blocks, block_size, prefix_caching: true }).unwrap()
    }

    #[test]
    fn rejects_bad_configs() {
        for (num_blocks, block_size) in [(0, 16), (4, 0), (u32::MAX, 16)] {
            let config = KvCacheConfig { num_blocks, block_size, prefix_caching: true };
            assert!(matches!(PagedKvCache::new(config), Err(KvCacheError::InvalidConfig(_))));
        }
    }

    /// Reserving room takes no block and changes no slot; an unknown sequence is an error; an absurd count is
    /// capped by the pool, not allocated.
    #[test]
    fn reserving_takes_no_block() {
        let mut kv = cache(8, 4);
        let a = kv.admit(&[1, 2, 3]).unwrap();
        let free = kv.free_blocks();
        kv.reserve(a.seq, 20).unwrap();
        kv.reserve(a.seq, usize::MAX).unwrap();
        assert_eq!(kv.free_blocks(), free);
        assert_eq!(kv.append(a.seq, &[4, 5]).unwrap().slots, [3, 4]);
        assert_eq!(kv.reserve(SeqId(99), 1), Err(KvCacheError::UnknownSequence(SeqId(99))));
    }

    #[test]
    fn slots_follow_the_block_table() {
        let mut kv = cache(8, 4);
        let a = kv.admit(&[1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(a.cached_tokens, 0);
        let table = kv.block_table(a.seq).unwrap().to_vec();
        assert_eq!(table, [BlockId(0), BlockId(1)]);
        assert_eq!(a.reservation.slots, [0, 1, 2, 3, 4, 5]);
        assert_eq!(kv.slot(a.seq, 5), Ok(5));
        assert_eq!(kv.slot(a.seq, 6), Err(KvCacheError::PositionOutOfRange { position: 6, len: 6 }));
    }

    #[test]
    fn fork_copies_the_shared_partial_block_on_first_write_only() {
        let mut kv = cache(8, 4);
        let parent = kv.admit(&[1, 2, 3, 4, 5, 6]).unwrap().seq;
        kv.commit(parent).unwrap();
        let child = kv.fork(parent).unwrap();
        assert_eq!(kv.pool().refcount(BlockId(1)), 2);
        let r = kv.append(child, &[7]).unwrap();
        assert_eq!(r.copies, [BlockCopy { src: BlockId(1), dst: BlockId(2) }]);
        assert_eq!(r.slots, [2 * 4 + 2]);
        // The parent now owns block 1 alone and writes in place.
        let r = kv.append(parent, &[8]).unwrap();
        assert!(r.copies.is_empty());
        assert_eq!(r.slots, [4 + 2]);
        // The full first block stays shared.
        assert_eq!(kv.block_table(child).unwrap()[0], BlockId(0));
        assert_eq!(kv.pool().refcount(BlockId(0)), 3, "two sequences and the prefix cache");
    }

    #[test]
    fn prefix_hit_reuses_full_blocks_but_never_the_last_prompt_token() {
        let mut kv = cache(16, 4);
        let a = kv.admit(&[1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap().seq;
        // Uncommitted blocks are not shared.
        assert_eq!(kv.admit(&[1, 2, 3, 4, 0]).unwrap().cached_tokens, 0);
        kv.commit(a).unwrap();
        assert_eq!(kv.cached_blocks(), 2);
        let b = kv.admit(&[1, 2, 3, 4, 5, 6, 7, 8, 10, 11]).unwrap();
        assert_eq!(b.cached_tokens, 8);
        assert_eq!(kv.block_table(b.seq).unwrap()[..2], kv.block_table(a).unwrap()[..2]);
        // Exactly two full blocks long: the second block must be recomputed for the last token's logits.
        assert_eq!(kv.admit(&[1, 2, 3, 4, 5, 6, 7, 8]).unwrap().cached_tokens, 4);
        assert_eq!(kv.admit(&[9, 2, 3, 4, 5]).unwrap().cached_tokens, 0);
    }

    /// `admit_cached` takes the hit alone: the rest is the caller's to append, and a miss or a cache without
    /// prefix caching starts empty.
    #[test]
    fn admit_cached_starts_at_the_hit_and_reserves_nothing() {
        let mut kv = cache(16, 4);
        let a = kv.admit(&[1, 2, 3, 4, 5, 6, 7, 8, 9]).unwrap().seq;
        kv.commit(a).unwrap();
        let free = kv.free_blocks();
        let (b, cached) = kv.admit_cached(&[1, 2, 3, 4, 5, 6, 7, 8, 10, 11]);
        assert_eq!((cached, kv.len(b).unwrap(), kv.free_blocks()), (8, 8, free));
        assert_eq!(kv.block_table(b).unwrap(), &kv.block_table(a).unwrap()[..2]);
        assert_eq!(kv.append(b, &[10, 11]).unwrap().slots.len(), 2);
        assert_eq!(kv.tokens(b).unwrap(), [1, 2, 3, 4, 5, 6, 7, 8, 10, 11]);
        let (miss, cached) = kv.admit_cached(&[9, 9, 9, 9, 9]);
        assert_eq!((cached, kv.len(miss).unwrap()), (0, 0));
        let mut plain =
            PagedKvCache::new(KvCacheConfig { num_blocks: 4, block_size: 4, prefix_caching: false }).unwrap();
        let seq = plain.admit(&[1, 2, 3, 4, 5]).unwrap().seq;
        plain.commit(seq).unwrap();
        assert_eq!(plain.admit_cached(&[1, 2, 3, 4, 5]).1, 0);
    }

    #[test]
    fn released_prefixes_survive_until_evicted_lru_first() {
        let mut kv = cache(4, 2);
        for prompt in [[1, 1, 0], [2, 2, 0]] {
            let seq = kv.admit(&prompt).unwrap().seq;
            kv.commit(seq).unwrap();
            kv.release(seq).unwrap();
        }
        assert_eq!((kv.free_blocks(), kv.cached_blocks()), (2, 2));
        // Touch [1, 1] so [2, 2] becomes the least recently used.
        let seq = kv.admit(&[1, 1, 5]).unwrap();
        assert_eq!(seq.cached_tokens, 2);
        kv.release(seq.seq).unwrap();
        // Needs three blocks: one eviction, and it must be [2, 2].
        let big = kv.admit(&[7, 7, 7, 7, 7]).unwrap().seq;
        assert_eq!(kv.cached_blocks(), 1);
        kv.release(big).unwrap();
        assert_eq!(kv.admit(&[1, 1, 9]).unwrap().cached_tokens, 2);
        assert_eq!(kv.admit(&[2, 2, 9]).unwrap().cached_tokens, 0);
    }

    #[test]
    fn out_of_blocks_leaves_live_sequences_untouched() {
        let mut kv = cache(3, 2);
        let a = kv.admit(&[1, 2, 3]).unwrap().seq;
        kv.admit(&[7]).unwrap();
        let before = kv.block_table(a).unwrap().to_vec();
        assert_eq!(kv.append(a, &[4, 5]), Err(KvCacheError::OutOfBlocks { needed: 1, available: 0 }));
        assert_eq!(kv.block_table(a).unwrap(), before);
        assert_eq!(kv.len(a), Ok(3));
        assert!(matches!(kv.admit(&[9, 9, 9]), Err(KvCacheError::OutOfBlocks { .. })));
        assert_eq!(kv.sequences().count(), 2, "a failed admission leaves no sequence behind");
        assert_eq!(kv.append(a, &[0; 10]), Err(KvCacheError::SequenceTooLong(13)));
    }

    #[test]
    fn stale_ids_are_unknown() {
        let mut kv = cache(2, 2);
        let a = kv.admit(&[1]).unwrap().seq;
        kv.release(a).unwrap();
        assert_eq!(kv.release(a), Err(KvCacheError::UnknownSequence(a)));
        assert_eq!(kv.fork(a), Err(KvCacheError::UnknownSequence(a)));
        assert_eq!(kv.append(a, &[1]), Err(KvCacheError::UnknownSequence(a)));
        assert_eq!(kv.commit(a), Err(KvCacheError::UnknownSequence(a)));
        assert_eq!(kv.free_blocks(), 2);
    }

    #[test]
    fn empty_prompt_is_a_valid_start() {
        let mut kv = cache(2, 2);
        let a = kv.admit(&[]).unwrap();
        assert_eq!((a.cached_tokens, kv.len(a.seq).unwrap()), (0, 0));
        assert_eq!(kv.append(a.seq, &[3]).unwrap().slots.len(), 1);
    }
}
