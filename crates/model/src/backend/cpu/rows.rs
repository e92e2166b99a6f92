//! Row-parallel helpers shared by the CPU kernels, with deterministic reductions (fixed chunking,
//! partial sums added in order) so a training run is bit-reproducible regardless of thread timing.

use rayon::prelude::*;

use super::scratch::{Slot, with_scratch};
use selfplay_tensor::Float;

/// Rows per parallel task: big enough to amortise scheduling, small enough to balance two cores.
pub(super) const ROW_CHUNK: usize = 32;

/// Adds into `out` (`cols` wide) the sum, over all rows, of the per-row contributions `f(row, acc)`
/// adds into an accumulator. Chunks of [`ROW_CHUNK`] rows are summed in parallel, each from zero into
/// its own row of a scratch buffer; then, per column, the chunk partials are added in chunk order to
/// a total starting at zero, and the total to `out`. Neither step depends on the thread count.
pub(super) fn add_column_sums<T: Float>(rows: usize, cols: usize, f: impl Fn(usize, &mut [T]) + Sync, out: &mut [T]) {
    let chunks = rows.div_ceil(ROW_CHUNK);
    // The partials sit in the calling thread's scratch, written by the tasks (one row each); the tasks
    // themselves borrow no scratch, so the slot is never wanted twice on one thread.
    with_scratch::<T, _>(Slot::Partials, chunks * cols, |partials| {
        partials.par_chunks_mut(cols.max(1)).enumerate().for_each(|(chunk, acc)| {
            acc.fill(T::ZERO);
            for row in chunk * ROW_CHUNK..((chunk + 1) * ROW_CHUNK).min(rows) {
                f(row, acc);
            }
        });
        for (c, o) in out.iter_mut().enumerate().take(cols) {
            let mut total = T::ZERO;
            for chunk in 0..chunks {
                total += partials[chunk * cols + c];
            }
            *o += total;
        }
    });
}

/// A raw pointer that may cross threads. Used where parallel tasks write provably disjoint parts of
/// one buffer (per-head column blocks of packed rows) that cannot be expressed as disjoint slices.
#[derive(Debug, Clone, Copy)]
pub(super) struct SharedMut<T>(pub *mut T);

// SAFETY: only used for disjoint writes, as argued at each use site.
unsafe impl<T: Send> Send for SharedMut<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SharedMut<T> {}

impl<T> SharedMut<T> {
    /// The pointer (a method, so closures capture the `Sync` wrapper, not the raw pointer).
    pub(super) fn get(self) -> *mut T {
        self.0
    }
}
