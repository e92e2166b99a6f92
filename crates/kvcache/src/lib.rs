//! Paged KV-cache bookkeeping on the host: a block pool with reference counts, per-sequence block
//! tables, copy-on-write forks and a radix prefix cache with LRU eviction.
//!
//! The device side (kernels that read keys and values through block tables, append them into slots and
//! copy blocks) lives elsewhere; this crate only decides which block goes where, so it is plain data
//! structures, `no_std` and fully testable on a CPU. Forks are how a GRPO group shares one prompt and
//! how search-tree nodes share their parent's prefix.
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
