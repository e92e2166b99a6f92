//! Matrix products through the `gemm` crate (runtime-dispatched AVX-512/AVX2/FMA micro-kernels).
//! Transposed operands cost nothing: `gemm` takes arbitrary row and column strides.

use gemm::Parallelism;

use crate::backend::Gemm;
use selfplay_tensor::Float;

/// A read-only strided matrix operand: element `(i, j)` lives at `ptr + i*rs + j*cs`.
#[derive(Debug, Clone, Copy)]
pub(super) struct MatRef<T> {
    pub ptr: *const T,
    pub rs: isize,
    pub cs: isize,
}

/// `dst[m, n] (+)= scale · a[m, k] · b[k, n]` over strided operands; `dst` rows are `dst_rs` apart.
///
/// # Safety
/// Every element addressed through `a`, `b` (for `i < m`/`k`, `j < k`/`n`) must be readable and every
/// `dst` element `(i, j)` at `dst + i*dst_rs + j` writable, with no other thread writing them.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_strided<T: Float>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_rs: isize,
    accumulate: bool,
    a: MatRef<T>,
    b: MatRef<T>,
    scale: T,
    parallelism: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                // SAFETY: row i of dst holds n writable elements (caller's contract).
                unsafe { core::slice::from_raw_parts_mut(dst.offset(i as isize * dst_rs), n) }.fill(T::ZERO);
            }
        }
        return;
    }
    // SAFETY: bounds and exclusivity are the caller's contract; `gemm` reads `dst` only when
    // `accumulate` (read_dst), computing dst = 1·dst + scale·a·b.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs,
            accumulate,
            a.ptr,
            a.cs,
            a.rs,
            b.ptr,
            b.cs,
            b.rs,
            T::ONE,
            scale,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// A whole-buffer product as described by [`Gemm`], using every rayon thread.
pub(super) fn gemm_dense<T: Float>(g: Gemm, a: &[T], b: &[T], c: &mut [T]) {
    let Gemm { m, n, k, trans_a, trans_b, accumulate } = g;
    assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n, "gemm operand sizes do not match {g:?}");
    let a = if trans_a {
        MatRef { ptr: a.as_ptr(), rs: 1, cs: m as isize }
    } else {
        MatRef { ptr: a.as_ptr(), rs: k as isize, cs: 1 }
    };
    let threads = rayon::current_num_threads();
    let parallel = threads > 1 && m * n * k >= 1 << 15;
    let parallelism = if parallel { Parallelism::Rayon(threads) } else { Parallelism::None };
    // Measured on the reference shapes: with a row-major `[k, n]` right operand `gemm` runs the
    // product on one thread only (110 GFLOP/s on one or two cores), while the same product with the
    // operand stored `[n, k]` splits over both (175). Transposing the (small, weight-sized) operand
    // costs k·n copies against m·n·k multiply-adds, so large products take the fast layout.
    let transposed;
    let b = if trans_b {
        MatRef { ptr: b.as_ptr(), rs: 1, cs: k as isize }
    } else if parallel && m >= 4 * k.min(n) {
        transposed = transpose(b, k, n);
        MatRef { ptr: transposed.as_ptr(), rs: 1, cs: k as isize }
    } else {
        MatRef { ptr: b.as_ptr(), rs: n as isize, cs: 1 }
    };
    // SAFETY: the assert above makes every addressed element of a, b and c in bounds; c is borrowed
    // mutably, so nothing else writes it.
    unsafe { gemm_strided(m, n, k, c.as_mut_ptr(), n as isize, accumulate, a, b, T::ONE, parallelism) }
}

/// `[rows, cols]` row-major to `[cols, rows]` row-major, in cache-sized tiles.
fn transpose<T: Float>(x: &[T], rows: usize, cols: usize) -> Vec<T> {
    const TILE: usize = 32;
    let mut out = vec![T::ZERO; rows * cols];
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = x[r * cols + c];
                }
            }
        }
    }
    out
}
