//! Row-parallel helpers shared by the CPU kernels, with deterministic reductions (fixed chunking,
//! partial sums added in order) so a training run is bit-reproducible regardless of thread timing.

use rayon::prelude::*;

use selfplay_tensor::Float;

/// Rows per parallel task: big enough to amortise scheduling, small enough to balance two cores.
pub(super) const ROW_CHUNK: usize = 32;

/// Sums, over all rows, the per-row contributions `f(row, acc)` adds into a `cols`-wide accumulator.
/// Chunks of [`ROW_CHUNK`] rows are summed in parallel, then the chunk partials in order.
pub(super) fn column_sums<T: Float>(rows: usize, cols: usize, f: impl Fn(usize, &mut [T]) + Sync) -> Vec<T> {
    let partials: Vec<Vec<T>> = (0..rows.div_ceil(ROW_CHUNK))
        .into_par_iter()
        .map(|chunk| {
            let mut acc = vec![T::ZERO; cols];
            for row in chunk * ROW_CHUNK..((chunk + 1) * ROW_CHUNK).min(rows) {
                f(row, &mut acc);
            }
            acc
        })
        .collect();
    let mut total = vec![T::ZERO; cols];
    for partial in partials {
        total.iter_mut().zip(partial).for_each(|(t, p)| *t += p);
    }
    total
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
