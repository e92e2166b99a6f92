//! Ranks as threads of one process: the same semantics as MPI's collectives, over shared memory. Tests use it to
//! run a data-parallel recipe with several ranks without an MPI installation; a user can use it to try a
//! configuration's world size on one machine.

use std::sync::{Arc, Barrier, Mutex, PoisonError};

use crate::util::{floats_from_bytes, sum_in_rank_order};
use crate::{Collective, CollectiveError};

/// The ranks of a world of threads: [`ThreadWorld::ranks`] makes one handle per rank, each to be moved into its
/// own thread.
#[derive(Debug)]
pub struct ThreadWorld;

#[derive(Debug)]
struct Shared {
    barrier: Barrier,
    slots: Mutex<Vec<Vec<u8>>>,
}

/// One rank of a [`ThreadWorld`].
#[derive(Debug, Clone)]
pub struct ThreadRank {
    rank: usize,
    world_size: usize,
    shared: Arc<Shared>,
}

impl ThreadWorld {
    /// `world_size` handles (at least one), rank 0 first.
    pub fn ranks(world_size: usize) -> Vec<ThreadRank> {
        let world_size = world_size.max(1);
        let shared =
            Arc::new(Shared { barrier: Barrier::new(world_size), slots: Mutex::new(vec![Vec::new(); world_size]) });
        (0..world_size).map(|rank| ThreadRank { rank, world_size, shared: Arc::clone(&shared) }).collect()
    }
}

impl ThreadWorld {
    /// Runs `body` on every rank of a world of `world_size` threads and returns the ranks' results in rank order
    /// (a panic on any rank is resumed here).
    pub fn run<T: Send>(world_size: usize, body: impl Fn(&ThreadRank) -> T + Sync) -> Vec<T> {
        let ranks = ThreadWorld::ranks(world_size);
        std::thread::scope(|scope| {
            let body = &body;
            let handles: Vec<_> = ranks.iter().map(|rank| scope.spawn(move || body(rank))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
        })
    }
}

impl ThreadRank {
    /// Every rank's bytes: each writes its slot, all wait, all copy, all wait again before a slot is reused.
    fn exchange(&self, mine: &[u8]) -> Vec<Vec<u8>> {
        self.shared.slots.lock().unwrap_or_else(PoisonError::into_inner)[self.rank] = mine.to_vec();
        self.shared.barrier.wait();
        let all = self.shared.slots.lock().unwrap_or_else(PoisonError::into_inner).clone();
        self.shared.barrier.wait();
        all
    }
}

impl Collective for ThreadRank {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.world_size
    }

    fn all_reduce_sum(&self, values: &mut [f32]) -> Result<(), CollectiveError> {
        let parts: Vec<Vec<f32>> =
            self.exchange(bytemuck::cast_slice(values)).iter().map(|p| floats_from_bytes(p)).collect();
        let parts: Vec<&[f32]> = parts.iter().map(Vec::as_slice).collect();
        sum_in_rank_order(&parts, values, "all_reduce_sum")
    }

    fn all_gather(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>, CollectiveError> {
        Ok(self.exchange(mine))
    }

    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>) -> Result<(), CollectiveError> {
        if root >= self.world_size {
            return Err(CollectiveError::NoSuchRank { rank: root, world_size: self.world_size });
        }
        let mine = if self.rank == root { std::mem::take(bytes) } else { Vec::new() };
        let mut all = self.exchange(&mine);
        *bytes = std::mem::take(&mut all[root]);
        Ok(())
    }

    fn barrier(&self) -> Result<(), CollectiveError> {
        self.shared.barrier.wait();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{any, broadcast_value, gather_concat, shard};

    #[test]
    fn sums_gathers_and_broadcasts_agree_on_every_rank() {
        let results = ThreadWorld::run(3, |c| {
            let mut values = [c.rank() as f32 + 0.5, 1.0];
            c.all_reduce_sum(&mut values).unwrap();
            let items: Vec<u32> = (0..10u32).collect();
            let mine = items[shard(items.len(), c.rank(), c.world_size())].to_vec();
            let gathered = gather_concat(c, mine).unwrap();
            let root = broadcast_value(c, 2, &format!("from {}", c.rank())).unwrap();
            let stop = any(c, c.rank() == 1).unwrap();
            c.barrier().unwrap();
            (values, gathered, root, stop)
        });
        for (values, gathered, root, stop) in results {
            assert_eq!(values, [4.5, 3.0]);
            assert_eq!(gathered, (0..10).collect::<Vec<u32>>());
            assert_eq!(root, "from 2");
            assert!(stop);
        }
    }

    #[test]
    fn a_length_mismatch_is_an_error_on_every_rank() {
        let results = ThreadWorld::run(2, |c| {
            let mut values = vec![1.0f32; 2 + c.rank()];
            c.all_reduce_sum(&mut values)
        });
        assert!(results.iter().all(|r| matches!(r, Err(CollectiveError::LengthMismatch { .. }))));
    }
}
