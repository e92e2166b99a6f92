//! NCCL as a [`Collective`]: the gradient all-reduce of data-parallel training on GPUs, one rank per GPU, with the
//! ranks found and the small host messages carried by a bootstrap collective (MPI across processes and nodes, or
//! [`selfplay_collective::SingleProcess`] for one GPU).
//!
//! **Order.** NCCL adds in the order of its own algorithm (rings, trees; chosen by message size and topology), not
//! in rank order, so [`NcclCollective::all_reduce_sum`] does not give the bits the other collectives give, and may
//! give other bits on another machine or NCCL version. To keep the ranks' weights identical anyway, rank 0's sum is
//! broadcast to every rank after the all-reduce (about half again the traffic of the all-reduce alone).
//!
//! **Timeouts.** NCCL's own calls are not under the bootstrap's timeout: a rank that stops calling leaves the others
//! waiting in NCCL until the launcher stops the run. The bootstrap's timeout does cover the length check that
//! precedes every all-reduce, which catches a rank that never arrives there.
//!
//! Built only with the `nccl` feature. No test here runs NCCL without a GPU and libnccl; the one smoke test (a world
//! of one rank) prints `SKIP (no GPU)` without them.

use std::cell::RefCell;
use std::ffi::c_char;
use std::fmt;
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaSlice, CudaStream, DriverError};
use cudarc::nccl::result::NcclError;
use cudarc::nccl::{Comm, Id, ReduceOp};
use selfplay_collective::{Collective, CollectiveError, any, gather_concat};

use crate::device::driver_available;
use crate::error::KernelError;

/// The length of an NCCL unique id, as rank 0 broadcasts it.
const ID_BYTES: usize = 128;

/// Whether the NCCL library (libnccl) can be loaded.
pub fn nccl_available() -> bool {
    // SAFETY: only tries to dlopen libnccl's candidate names; no NCCL call is made.
    unsafe { cudarc::nccl::sys::is_culib_present() }
}

/// One rank of an NCCL communicator: sums on the GPU, everything else through the bootstrap collective.
pub struct NcclCollective {
    bootstrap: Box<dyn Collective>,
    comm: Comm,
    stream: Arc<CudaStream>,
    /// The device buffer of the last all-reduce, kept while the length stays the same (a run's gradients are the same
    /// size every step), so that a step allocates nothing on the device.
    buffer: RefCell<Option<CudaSlice<f32>>>,
}

impl NcclCollective {
    /// Joins the NCCL communicator of `bootstrap`'s ranks on GPU `device_ordinal`: every rank opens its GPU, rank 0
    /// makes the communicator's unique id and broadcasts it over `bootstrap`, then all join. A rank that cannot open
    /// its GPU or load libnccl makes every rank fail here, rather than leave the others waiting in NCCL's set-up.
    pub fn new(bootstrap: Box<dyn Collective>, device_ordinal: usize) -> Result<Self, CollectiveError> {
        let opened = open(device_ordinal);
        let failed_somewhere = any(bootstrap.as_ref(), opened.is_err())?;
        let stream = match opened {
            Err(err) => return Err(err),
            Ok(_) if failed_somewhere => {
                return Err(CollectiveError::Device("another rank could not open its GPU or load libnccl".into()));
            }
            Ok(stream) => stream,
        };

        // Rank 0 broadcasts its id, or nothing if NCCL could not make one (so the others learn of it too).
        let created = (bootstrap.rank() == 0).then(Id::new);
        let mut id = match &created {
            Some(Ok(id)) => id.internal().iter().map(|&c| c as u8).collect(),
            _ => Vec::new(),
        };
        bootstrap.broadcast(0, &mut id)?;
        if let Some(Err(err)) = created {
            return Err(nccl("ncclGetUniqueId", err));
        }
        let id = <[u8; ID_BYTES]>::try_from(id.as_slice())
            .map_err(|_| CollectiveError::Device("rank 0 could not make an NCCL unique id".into()))?;

        let comm = Comm::from_rank(
            Arc::clone(&stream),
            bootstrap.rank(),
            bootstrap.world_size(),
            Id::uninit(id.map(|b| b as c_char)),
        )
        .map_err(|err| nccl("ncclCommInitRank", err))?;
        Ok(Self { bootstrap, comm, stream, buffer: RefCell::new(None) })
    }

    /// The summing itself, on the cached device buffer.
    fn sum_on_device(&self, values: &mut [f32]) -> Result<(), CollectiveError> {
        let mut cached = self
            .buffer
            .try_borrow_mut()
            .map_err(|_| CollectiveError::Device("NcclCollective::all_reduce_sum re-entered".into()))?;
        let mut buffer = match cached.take() {
            Some(buffer) if buffer.len() == values.len() => buffer,
            _ => self.stream.alloc_zeros::<f32>(values.len()).map_err(|err| cuda("alloc", err))?,
        };
        self.stream.memcpy_htod(values, &mut buffer).map_err(|err| cuda("copy to the device", err))?;
        self.comm.all_reduce_in_place(&mut buffer, &ReduceOp::Sum).map_err(|err| nccl("ncclAllReduce", err))?;
        self.comm.broadcast_in_place(&mut buffer, 0).map_err(|err| nccl("ncclBroadcast", err))?;
        // A copy into pageable host memory returns once the data is there.
        self.stream.memcpy_dtoh(&buffer, values).map_err(|err| cuda("copy to the host", err))?;
        *cached = Some(buffer);
        Ok(())
    }
}

impl Collective for NcclCollective {
    fn rank(&self) -> usize {
        self.bootstrap.rank()
    }

    fn world_size(&self) -> usize {
        self.bootstrap.world_size()
    }

    /// NCCL's sum (in NCCL's order, see the module docs), then rank 0's result on every rank. The lengths are first
    /// compared over the bootstrap (a small host message), since NCCL given different lengths would hang or
    /// read out of bounds.
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<(), CollectiveError> {
        let lengths: Vec<usize> = gather_concat(self.bootstrap.as_ref(), vec![values.len()])?;
        let expected = lengths.first().copied().unwrap_or_default();
        if let Some((rank, &got)) = lengths.iter().enumerate().find(|&(_, &n)| n != expected) {
            return Err(CollectiveError::LengthMismatch { operation: "all_reduce_sum", rank, expected, got });
        }
        if values.is_empty() {
            return Ok(());
        }
        self.sum_on_device(values)
    }

    fn all_gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>, CollectiveError> {
        self.bootstrap.all_gather(mine)
    }

    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) -> Result<(), CollectiveError> {
        self.bootstrap.broadcast(root, bytes)
    }

    fn barrier(&self) -> Result<(), CollectiveError> {
        self.bootstrap.barrier()
    }
}

impl fmt::Debug for NcclCollective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NcclCollective")
            .field("rank", &self.rank())
            .field("world_size", &self.world_size())
            .field("device", &self.comm.ordinal())
            .finish_non_exhaustive()
    }
}

/// A stream of its own on GPU `ordinal`, once libcuda and libnccl are known to load (cudarc panics on the first call
/// into a library it cannot load).
fn open(ordinal: usize) -> Result<Arc<CudaStream>, CollectiveError> {
    if !driver_available() {
        return Err(CollectiveError::Device(KernelError::DriverMissing.to_string()));
    }
    if !nccl_available() {
        return Err(CollectiveError::Device("NCCL library (libnccl) not found".into()));
    }
    CudaContext::new(ordinal).and_then(|ctx| ctx.new_stream()).map_err(|err| cuda("open the device", err))
}

fn cuda(what: &str, err: DriverError) -> CollectiveError {
    CollectiveError::Device(format!("CUDA {what}: {err}"))
}

fn nccl(what: &str, err: NcclError) -> CollectiveError {
    // NcclError's own Debug says only "NcclError"; the status it wraps names the failure.
    CollectiveError::Device(format!("NCCL {what}: {:?}", err.0))
}

#[cfg(test)]
mod tests {
    use selfplay_collective::SingleProcess;

    use super::*;

    /// A world of one GPU: NCCL's sum of one rank is that rank's values, bit for bit, through a change of length
    /// (a new device buffer) and an empty buffer. Needs a GPU and libnccl.
    #[test]
    fn a_world_of_one_sums_to_itself() {
        let collective = match NcclCollective::new(Box::new(SingleProcess), 0) {
            Ok(collective) => collective,
            Err(err) => {
                let required = std::env::var("SELFPLAY_REQUIRE_GPU").is_ok_and(|v| v == "1");
                assert!(!required, "SELFPLAY_REQUIRE_GPU=1 but NCCL is unusable: {err}");
                println!("SKIP (no GPU): {err}");
                return;
            }
        };
        for values in [vec![1e8f32, 1.0, -1e8, 0.5], vec![3.25; 1001], vec![], vec![f32::MIN_POSITIVE, -7.5]] {
            let mut summed = values.clone();
            collective.all_reduce_sum(&mut summed).unwrap();
            assert_eq!(
                summed.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                values.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
        assert_eq!(collective.all_gather(b"abc").unwrap(), vec![b"abc".to_vec()]);
        collective.barrier().unwrap();
    }
}
