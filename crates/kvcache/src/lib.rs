//! Paged KV-cache bookkeeping on the host: a block pool with reference counts, per-sequence block
//! tables, copy-on-write forks and a radix prefix cache with LRU eviction.
//!
//! The device side (kernels that read keys and values through block tables, append them into slots and
//! copy blocks) lives elsewhere; this crate only decides which block goes where, so it is plain data
//! structures, `no_std` and fully testable on a CPU. Forks are how a GRPO group shares one prompt and
//! how search-tree nodes share their parent's prefix.
//!
//! It owns the [`BlockPool`] (reference-counted block allocator) and the [`PagedKvCache`] over it:
//! [`admit`](PagedKvCache::admit) and [`append`](PagedKvCache::append) reserve slots (and report the
//! copy-on-write [`BlockCopy`]s to run first), the caller writes keys and values there and then
//! [`commit`](PagedKvCache::commit)s, which offers the now full blocks to the prefix cache;
//! [`fork`](PagedKvCache::fork) shares every block of a sequence and [`release`](PagedKvCache::release)
//! gives them back.
//!
//! ```
//! use selfplay_kvcache::{KvCacheConfig, PagedKvCache};
//!
//! # fn main() -> Result<(), selfplay_kvcache::KvCacheError> {
//! let mut cache = PagedKvCache::new(KvCacheConfig { num_blocks: 8, block_size: 4, prefix_caching: true })?;
//!
//! // A 6-token prompt takes two blocks: one full, one half full.
//! let prompt = [1, 2, 3, 4, 5, 6];
//! let first = cache.admit(&prompt)?;
//! assert_eq!(first.cached_tokens, 0);
//! assert_eq!(first.reservation.slots.len(), 6);
//! assert_eq!(cache.block_table(first.seq)?.len(), 2);
//! // ... the forward pass writes the prompt's keys and values into those slots, then:
//! cache.commit(first.seq)?;
//!
//! // A second completion of the same prompt shares every block; nothing is copied yet.
//! let second = cache.fork(first.seq)?;
//! assert_eq!(cache.block_table(second)?, cache.block_table(first.seq)?);
//!
//! // Appending to the shared, half-full last block copies it first (copy-on-write);
//! // the full block stays shared.
//! let reservation = cache.append(second, &[7])?;
//! let (a, b) = (cache.block_table(first.seq)?.to_vec(), cache.block_table(second)?.to_vec());
//! assert_eq!(reservation.copies.len(), 1);
//! assert_eq!((reservation.copies[0].src, reservation.copies[0].dst), (a[1], b[1]));
//! assert_eq!(a[0], b[0]);
//! assert_eq!(reservation.slots, [cache.slot(second, 6)?]);
//! cache.commit(second)?;
//!
//! // Both sequences end, but the full block [1, 2, 3, 4] stays in the prefix cache:
//! // a new request that starts the same way skips its first four tokens.
//! cache.release(first.seq)?;
//! cache.release(second)?;
//! assert_eq!(cache.cached_blocks(), 1);
//! let third = cache.admit(&[1, 2, 3, 4, 9])?;
//! assert_eq!(third.cached_tokens, 4);
//! assert_eq!(cache.block_table(third.seq)?[0], a[0]);
//! # Ok(())
//! # }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
extern crate alloc;

mod cache;
mod error;
mod pool;
mod prefix;

pub use cache::{Admission, BlockCopy, KvCacheConfig, PagedKvCache, Reservation, SeqId};
pub use error::{KvCacheError, Result};
pub use pool::BlockPool;

/// Index of a block in the device pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub u32);

impl BlockId {
    /// The id as an index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}
