//! The collective seam every data-parallel recipe runs on.
//!
//! A run is `world_size` copies of the same program (ranks), each holding the same weights, optimizer state and
//! data. A step splits its work (rollouts, self-play games, the rows of a training batch) across the ranks,
//! gathers what they made ([`Collective::all_gather`]) and sums their gradients ([`Collective::all_reduce_sum`]),
//! so that every rank applies the same update and the ranks never drift apart. Rank 0 alone writes files.
//!
//! * [`SingleProcess`]: one rank, no communication and no dependency; the default.
//! * [`ThreadWorld`]: ranks as threads of one process (tests, and trying a world size on one machine).
//! * `MpiCollective` (feature `mpi`): Open MPI or MPICH through the `mpi` crate, across processes and nodes as
//!   the MPI launcher places them (`mpirun -np N`, host files).
//! * `selfplay_kernels::NcclCollective` (the kernels' `nccl` feature): NCCL on GPUs, bootstrapped over one of
//!   these.
//!
//! **Reduction order.** [`Collective::all_reduce_sum`] adds the ranks' values in rank order, so its result is the
//! same bits on every rank and on every run (floating-point addition is not associative: a reduction whose order
//! depends on timing would let the ranks' weights drift apart). The helpers below ([`shard`],
//! [`gather_concat`], [`any`]) are written once over the trait.

mod error;
mod launch;
mod single;
mod threads;
mod util;

#[cfg(feature = "mpi")]
mod mpi_backend;

pub use error::CollectiveError;
pub use launch::launched_by_mpi;
pub use single::SingleProcess;
pub use threads::{ThreadRank, ThreadWorld};
pub use util::{all_reduce_mean, any, broadcast_value, floats_from_bytes, gather_concat, shard};

#[cfg(feature = "mpi")]
pub use mpi_backend::MpiCollective;

/// Communication between the ranks of one run. Every rank must make the same calls in the same order (as in MPI);
/// a rank that stops calling makes the others wait until the implementation's timeout ends the run.
pub trait Collective {
    /// This process's rank, `0..world_size`.
    fn rank(&self) -> usize;

    /// How many ranks the run has.
    fn world_size(&self) -> usize;

    /// Replaces `values` on every rank by its element-wise sum over the ranks, added in rank order
    /// (`((v₀ + v₁) + v₂) + …`), so every rank gets the same bits. Every rank passes the same length.
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<(), CollectiveError>;

    /// Every rank's `mine`, in rank order (the lengths may differ from rank to rank).
    fn all_gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>, CollectiveError>;

    /// Replaces `bytes` on every rank by `root`'s.
    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) -> Result<(), CollectiveError>;

    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<(), CollectiveError>;

    /// Whether this rank writes the run's files (rank 0).
    fn is_root(&self) -> bool {
        self.rank() == 0
    }
}
