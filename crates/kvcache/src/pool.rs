//! A fixed pool of equally sized KV blocks with reference counts.
//!
//! The pool only counts: it never knows what a block holds. A block is free exactly when its count is
//! zero, and then it sits once on the free list; that single rule is what the property tests check.

use alloc::vec::Vec;

use crate::{BlockId, KvCacheError, Result};

/// Reference-counted block allocator. Free blocks are handed out lowest id first after construction and
/// most-recently-freed first afterwards (a stack), so runs are deterministic.
#[derive(Debug, Clone)]
pub struct BlockPool {
    refcounts: Vec<u32>,
    free: Vec<BlockId>,
}

impl BlockPool {
    /// A pool of `num_blocks` free blocks.
    pub fn new(num_blocks: u32) -> Self {
        Self { refcounts: alloc::vec![0; num_blocks as usize], free: (0..num_blocks).rev().map(BlockId).collect() }
    }

    /// Total number of blocks.
    pub fn capacity(&self) -> usize {
        self.refcounts.len()
    }

    /// Number of blocks on the free list.
    pub fn free_count(&self) -> usize {
        self.free.len()
    }

    /// Reference count of `block` (zero for a free block or an id outside the pool).
    pub fn refcount(&self, block: BlockId) -> u32 {
        self.refcounts.get(block.index()).copied().unwrap_or(0)
    }

    /// Takes a free block, giving it a count of one.
    pub fn allocate(&mut self) -> Result<BlockId> {
        let block = self.free.pop().ok_or(KvCacheError::OutOfBlocks { needed: 1, available: 0 })?;
        if let Some(count) = self.refcounts.get_mut(block.index()) {
            *count = 1;
        }
        Ok(block)
    }

    /// Adds a reference to a block that is in use.
    pub(crate) fn retain(&mut self, block: BlockId) {
        if let Some(count) = self.refcounts.get_mut(block.index()) {
            debug_assert!(*count > 0, "retain of a free block");
            *count = count.saturating_add(1);
        }
    }

    /// Drops a reference; returns `true` when that was the last one and the block went back to the pool.
    pub(crate) fn release(&mut self, block: BlockId) -> bool {
        match self.refcounts.get_mut(block.index()) {
            Some(count) if *count > 0 => {
                *count -= 1;
                if *count == 0 {
                    self.free.push(block);
                    true
                } else {
                    false
                }
            }
            _ => {
                debug_assert!(false, "release of a free block");
                false
            }
        }
    }

    /// Ids currently on the free list (for invariant checks).
    pub fn free_blocks(&self) -> &[BlockId] {
        &self.free
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocate_retain_release_round_trip() {
        let mut pool = BlockPool::new(2);
        let a = pool.allocate().unwrap();
        assert_eq!(a, BlockId(0));
        pool.retain(a);
        assert_eq!(pool.refcount(a), 2);
        assert!(!pool.release(a));
        let b = pool.allocate().unwrap();
        assert_eq!(pool.allocate(), Err(KvCacheError::OutOfBlocks { needed: 1, available: 0 }));
        assert!(pool.release(a));
        assert!(pool.release(b));
        assert_eq!(pool.free_count(), 2);
        assert_eq!(pool.refcount(BlockId(7)), 0);
    }
}
