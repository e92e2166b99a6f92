//! The collective across processes and nodes: MPI's `MPI_COMM_WORLD` through the `mpi` crate (rsmpi), as the
//! launcher (`mpirun -np N`, `srun`) placed the ranks.
//!
//! **Sums in rank order.** `MPI_Allreduce` adds in an order the library chooses (it may differ with the message
//! size, the algorithm and the network), so its result need not be the same bits as the other collectives' or even
//! the same on every rank. [`MpiCollective::all_reduce_sum`] instead moves the data so that one rank holds every
//! rank's values of each element, adds them there in rank order, and sends the sums back: a reduce-scatter by
//! all-to-all and an all-gather, which moves as many bytes per rank as a ring all-reduce does.
//!
//! **No hang beyond the timeout.** A rank that dies is seen by the launcher (Open MPI's `mpirun` then stops the
//! others); a rank that hangs or stops calling is not, and the others would wait in MPI forever. Every operation
//! here therefore arms a deadline, and a watchdog thread ends the process when one passes
//! ([`MpiCollective::TIMEOUT_EXIT_CODE`]); its exit in turn makes the launcher stop the remaining ranks.

use std::fmt;
use std::io::Write;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mpi::Threading;
use mpi::datatype::{Partition, PartitionMut};
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::{Communicator, CommunicatorCollectives, Root};

use crate::util::sum_in_rank_order;
use crate::{Collective, CollectiveError, shard};

/// MPI's element counts and displacements are C `int`s.
type Count = mpi::Count;

/// The most elements one MPI call may carry by default: all that a C `int` count can say.
const COUNT_LIMIT: usize = Count::MAX as usize;

/// The ranks of `MPI_COMM_WORLD`, with MPI initialised for as long as this lives (dropping it finalises MPI; MPI
/// cannot be initialised twice in a process, so there is at most one).
///
/// MPI is initialised for "funneled" use: only the thread that initialised it calls it. The type is therefore
/// neither `Send` nor `Sync`, whichever MPI library it is built against, and stays on the thread that made it.
pub struct MpiCollective {
    world: SimpleCommunicator,
    rank: usize,
    world_size: usize,
    /// The most elements one MPI call carries; longer operations run in pieces ([`MpiCollective::with_message_limit`]).
    message_limit: usize,
    watchdog: Watchdog,
    /// Taken (and so finalised) in [`Drop`] while the watchdog still watches.
    universe: Option<Universe>,
    funneled: PhantomData<*const ()>,
}

impl MpiCollective {
    /// The exit status of a process whose operation waited longer than its timeout: 124, as `timeout(1)` uses.
    pub const TIMEOUT_EXIT_CODE: i32 = 124;

    /// Initialises MPI and joins `MPI_COMM_WORLD`. Any operation still waiting for the other ranks after `timeout`
    /// ends this process with [`Self::TIMEOUT_EXIT_CODE`]: choose it above the longest time one rank may legitimately
    /// work alone while the others wait (a checkpoint written by rank 0, an uneven step).
    ///
    /// Fails if MPI was already initialised in this process, or the library cannot run with a second thread.
    pub fn init(timeout: Duration) -> Result<Self, CollectiveError> {
        let (universe, threading) = mpi::initialize_with_threading(Threading::Funneled)
            .ok_or_else(|| CollectiveError::Transport("MPI is already initialised in this process".into()))?;
        if threading < Threading::Funneled {
            return Err(CollectiveError::Transport(format!(
                "the MPI library offers {threading:?} threading; the timeout watchdog needs Funneled"
            )));
        }
        let world = universe.world();
        let rank = usize::try_from(world.rank())
            .map_err(|_| CollectiveError::Transport(format!("MPI gave the negative rank {}", world.rank())))?;
        let world_size = usize::try_from(world.size())
            .map_err(|_| CollectiveError::Transport(format!("MPI gave the world size {}", world.size())))?;
        Ok(Self {
            world,
            rank,
            world_size,
            message_limit: COUNT_LIMIT,
            watchdog: Watchdog::start(rank, timeout)?,
            universe: Some(universe),
            funneled: PhantomData,
        })
    }

    /// Caps the elements (bytes or `f32`s) one MPI call receives at `elements` (at least one per rank; at most, and
    /// by default, `i32::MAX`, the most an MPI count can say); longer operations run as several calls. A lower cap
    /// also bounds the temporary buffers an operation holds, and lets tests run the piecewise paths on small data.
    /// Every rank must set the same cap.
    #[must_use]
    pub fn with_message_limit(mut self, elements: usize) -> Self {
        self.message_limit = elements.clamp(1, COUNT_LIMIT);
        self
    }

    /// How many elements each rank contributes to one MPI call that receives from every rank.
    fn per_rank_limit(&self) -> usize {
        (self.message_limit / self.world_size).max(1)
    }

    /// Every rank's `mine`, in rank order.
    fn lengths(&self, mine: usize) -> Result<Vec<usize>, CollectiveError> {
        let mut all = vec![0u64; self.world_size];
        self.world.all_gather_into(&(mine as u64), &mut all[..]);
        all.into_iter()
            .map(|n| {
                usize::try_from(n)
                    .map_err(|_| CollectiveError::Transport(format!("a rank's length {n} does not fit this machine")))
            })
            .collect()
    }

    /// Sums one piece (at most a message's worth) of an all-reduce. With the piece cut into the ranks' [`shard`]s,
    /// rank c receives every rank's shard c (all-to-all), adds them in rank order, and every rank receives every sum
    /// (all-gather).
    fn reduce_piece(&self, piece: &mut [f32]) -> Result<(), CollectiveError> {
        let shards = Layout::new((0..self.world_size).map(|r| shard(piece.len(), r, self.world_size).len()))?;
        let mine = shard(piece.len(), self.rank, self.world_size).len();
        let from_each = Layout::new(std::iter::repeat_n(mine, self.world_size))?;
        let mut received = vec![0.0f32; from_each.total];
        self.world.all_to_all_varcount_into(
            &Partition::new(&*piece, &shards.counts[..], &shards.displs[..]),
            &mut PartitionMut::new(&mut received[..], &from_each.counts[..], &from_each.displs[..]),
        );
        let parts: Vec<&[f32]> = from_each.split(&received).collect();
        let mut sums = vec![0.0f32; mine];
        sum_in_rank_order(&parts, &mut sums, "all_reduce_sum")?;
        self.world
            .all_gather_varcount_into(&sums[..], &mut PartitionMut::new(piece, &shards.counts[..], &shards.displs[..]));
        Ok(())
    }
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world_size
    }

    /// Checks that every rank passed the same length (one small all-gather), then sums in pieces of at most the
    /// message limit. Each element is added on one rank in rank order, so the result is the same bits everywhere and
    /// equals the other collectives'.
    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<(), CollectiveError> {
        let _armed = self.watchdog.arm("all_reduce_sum");
        let lengths = self.lengths(values.len())?;
        let expected = lengths.first().copied().unwrap_or_default();
        if let Some((rank, &got)) = lengths.iter().enumerate().find(|&(_, &n)| n != expected) {
            return Err(CollectiveError::LengthMismatch { operation: "all_reduce_sum", rank, expected, got });
        }
        // A multiple of the world size, so that every rank's shard of a piece is the same per-rank limit.
        let piece = self.per_rank_limit() * self.world_size;
        values.chunks_mut(piece).try_for_each(|piece| self.reduce_piece(piece))
    }

    /// Gathers the lengths first, then the bytes, in rounds of at most the per-rank share of the message limit.
    fn all_gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>, CollectiveError> {
        let _armed = self.watchdog.arm("all_gather");
        let lengths = self.lengths(mine.len())?;
        let mut gathered: Vec<Vec<u8>> = lengths.iter().map(|&n| Vec::with_capacity(n)).collect();
        let round = self.per_rank_limit();
        let longest = lengths.iter().copied().max().unwrap_or_default();
        let mut buffer = Vec::new();
        for start in (0..longest).step_by(round) {
            let layout = Layout::new(lengths.iter().map(|&n| n.saturating_sub(start).min(round)))?;
            buffer.resize(layout.total, 0u8);
            let send = mine.get(start..).unwrap_or_default();
            let send = send.get(..round).unwrap_or(send);
            self.world.all_gather_varcount_into(
                send,
                &mut PartitionMut::new(&mut buffer[..], &layout.counts[..], &layout.displs[..]),
            );
            gathered.iter_mut().zip(layout.split(&buffer)).for_each(|(all, part)| all.extend_from_slice(part));
        }
        Ok(gathered)
    }

    /// Broadcasts the length, then the bytes in pieces of at most the message limit.
    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) -> Result<(), CollectiveError> {
        let no_such_rank = CollectiveError::NoSuchRank { rank: root, world_size: self.world_size };
        if root >= self.world_size {
            return Err(no_such_rank);
        }
        let _armed = self.watchdog.arm("broadcast");
        let root = self.world.process_at_rank(Count::try_from(root).map_err(|_| no_such_rank)?);
        let mut length = bytes.len() as u64;
        root.broadcast_into(&mut length);
        let length = usize::try_from(length)
            .map_err(|_| CollectiveError::Transport(format!("the root's length {length} does not fit this machine")))?;
        bytes.resize(length, 0);
        bytes.chunks_mut(self.message_limit).for_each(|piece| root.broadcast_into(piece));
        Ok(())
    }

    fn barrier(&self) -> Result<(), CollectiveError> {
        let _armed = self.watchdog.arm("barrier");
        self.world.barrier();
        Ok(())
    }
}

impl Drop for MpiCollective {
    /// Finalises MPI, which waits for the other ranks too, under the watchdog.
    fn drop(&mut self) {
        let _armed = self.watchdog.arm("MPI_Finalize");
        drop(self.universe.take());
    }
}

impl fmt::Debug for MpiCollective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MpiCollective")
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .field("message_limit", &self.message_limit)
            .field("timeout", &self.watchdog.timeout)
            .finish_non_exhaustive()
    }
}

/// Where each rank's part lies in the buffer of an MPI call that sends to or receives from every rank: the parts
/// one after another in rank order.
struct Layout {
    counts: Vec<Count>,
    displs: Vec<Count>,
    ranges: Vec<Range<usize>>,
    total: usize,
}

impl Layout {
    /// The layout of parts of `lengths` elements; fails if the buffer would be longer than an MPI count can say.
    fn new(lengths: impl IntoIterator<Item = usize>) -> Result<Self, CollectiveError> {
        let count = |n: usize| {
            Count::try_from(n).map_err(|_| CollectiveError::Transport(format!("{n} elements exceed an MPI count")))
        };
        let mut layout = Self { counts: Vec::new(), displs: Vec::new(), ranges: Vec::new(), total: 0 };
        for n in lengths {
            let end = layout.total + n;
            layout.counts.push(count(n)?);
            layout.displs.push(count(layout.total)?);
            layout.ranges.push(layout.total..end);
            layout.total = end;
        }
        count(layout.total)?;
        Ok(layout)
    }

    /// Each rank's part of `buffer` (a buffer of at least `total` elements).
    fn split<'a, T>(&'a self, buffer: &'a [T]) -> impl Iterator<Item = &'a [T]> {
        self.ranges.iter().map(|range| buffer.get(range.clone()).unwrap_or_default())
    }
}

/// Ends the process when an operation outlives its timeout. The thread sleeps while nothing is in flight and
/// until the deadline while something is; it makes no MPI call, as funneled MPI requires.
struct Watchdog {
    shared: Arc<Watched>,
    timeout: Duration,
    thread: Option<JoinHandle<()>>,
}

/// What the watchdog thread and the operations share.
#[derive(Default)]
struct Watched {
    state: Mutex<WatchState>,
    changed: Condvar,
}

#[derive(Default)]
struct WatchState {
    /// The operation in flight and its deadline (none when the timeout is too long for the clock to reach).
    in_flight: Option<(&'static str, Option<Instant>)>,
    stopping: bool,
}

/// An armed deadline: disarmed when dropped, at the end of its operation.
struct Armed<'a>(&'a Watched);

impl Watched {
    fn lock(&self) -> MutexGuard<'_, WatchState> {
        // The state stays consistent whatever panicked while holding the lock: every write is one assignment.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Watchdog {
    fn start(rank: usize, timeout: Duration) -> Result<Self, CollectiveError> {
        let shared = Arc::new(Watched::default());
        let watched = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("collective-watchdog".into())
            .spawn(move || watch(&watched, rank, timeout))
            .map_err(CollectiveError::Watchdog)?;
        Ok(Self { shared, timeout, thread: Some(thread) })
    }

    fn arm(&self, operation: &'static str) -> Armed<'_> {
        self.shared.lock().in_flight = Some((operation, Instant::now().checked_add(self.timeout)));
        self.shared.changed.notify_one();
        Armed(&self.shared)
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        // No need to wake the watchdog: it finds nothing in flight when its deadline comes.
        self.0.lock().in_flight = None;
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.changed.notify_one();
        if let Some(thread) = self.thread.take() {
            // The thread cannot panic (it only waits and exits the process); nothing to report if it did.
            let _ = thread.join();
        }
    }
}

/// The watchdog thread: waits for an operation, then for its deadline; ends the process if the same operation (the
/// same deadline) is still in flight then.
fn watch(watched: &Watched, rank: usize, timeout: Duration) {
    let mut state = watched.lock();
    while !state.stopping {
        let wait = match state.in_flight {
            Some((operation, Some(deadline))) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => {
                    // The exit status tells the launcher even if stderr is gone.
                    let _ = writeln!(
                        std::io::stderr(),
                        "error: rank {rank}: {operation} waited more than {} s for the other ranks; stopping",
                        timeout.as_secs_f64()
                    );
                    std::process::exit(MpiCollective::TIMEOUT_EXIT_CODE);
                }
            },
            _ => None,
        };
        state = match wait {
            Some(left) => watched.changed.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0,
            None => watched.changed.wait(state).unwrap_or_else(PoisonError::into_inner),
        };
    }
}
