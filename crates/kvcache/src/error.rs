//! The one error type of this crate.

use crate::SeqId;

/// Everything that can go wrong in KV-cache bookkeeping. Every operation either succeeds or returns one
/// of these with the cache left consistent (a failed operation may only have evicted unused cached
/// prefixes, which never changes what a live sequence sees).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvCacheError {
    /// The configuration cannot describe a usable pool.
    #[error("invalid KV-cache configuration: {0}")]
    InvalidConfig(&'static str),
    /// Not enough free blocks even after evicting every unused cached prefix.
    #[error("out of KV blocks: need {needed}, only {available} can be made free")]
    OutOfBlocks {
        /// Blocks the operation needs.
        needed: usize,
        /// Blocks free after eviction.
        available: usize,
    },
    /// The sequence id was never issued or has been released.
    #[error("unknown sequence {0:?}")]
    UnknownSequence(SeqId),
    /// A token position at or past the sequence's length.
    #[error("position {position} is past the end of a sequence of length {len}")]
    PositionOutOfRange {
        /// The position asked for.
        position: usize,
        /// The sequence length.
        len: usize,
    },
    /// The sequence would hold more slots than a `u32` slot index can address.
    #[error("sequence length {0} exceeds the addressable slot range")]
    SequenceTooLong(usize),
}

/// Shorthand for this crate's results.
pub type Result<T> = core::result::Result<T, KvCacheError>;
