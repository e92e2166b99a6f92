//! What can go wrong between ranks.

use thiserror::Error;

/// A collective operation failed.
#[derive(Debug, Error)]
pub enum CollectiveError {
    /// The ranks passed buffers of different lengths to an operation that needs the same length everywhere.
    #[error("rank {rank} passed {got} values to {operation} where rank 0 passed {expected}")]
    LengthMismatch { operation: &'static str, rank: usize, expected: usize, got: usize },
    /// A root or rank outside `0..world_size`.
    #[error("rank {rank} does not exist in a world of {world_size}")]
    NoSuchRank { rank: usize, world_size: usize },
    /// What a rank sent could not be decoded (it runs another version, or the bytes were cut).
    #[error("what rank {rank} sent could not be decoded: {source}")]
    Decode { rank: usize, source: serde_json::Error },
    /// A value could not be encoded for sending.
    #[error("could not encode a value to send: {0}")]
    Encode(serde_json::Error),
    /// The message-passing library reported an error or a size it cannot carry.
    #[error("the message-passing library failed: {0}")]
    Transport(String),
    /// A GPU collective (NCCL) could not open its device, load its library or communicate.
    #[error("the GPU collective failed: {0}")]
    Device(String),
    /// The thread that ends a run whose operation outlives its timeout could not be started.
    #[error("could not start the timeout watchdog thread: {0}")]
    Watchdog(std::io::Error),
}
