//! Matrix products in a fixed order of arithmetic: the same bits on every CPU and at every thread count.
//!
//! # Why not the `gemm` crate as it is
//!
//! Until 2026-12 every product went through `gemm` 0.19 (`gemm::gemm`). Reading gemm, gemm-common
//! and gemm-f32/f64 0.19.0, what fixes the bits of one output element is:
//!
//! * **The k-blocking, taken from the L1 data cache.** The general path (`gemm_basic_generic`) cuts
//!   the depth into chunks of `kc`; each chunk's sum is formed from zero in a register and then added
//!   to the output (`dst = S₁`, then `dst = fma(1, Sⱼ, dst)`). For products with both internal
//!   dimensions ≤ 64, `kc = min(k, 512)`; otherwise `kernel_params` derives it from the L1 size,
//!   associativity and line size (Linux sysfs, else CPUID): `(64 · next_pow2(ways)).max(512).min(k)`
//!   for f32 with 64-byte lines and 64 sets, then rebalanced to `⌈k / ⌈k/kc⌉⌉`. A 48 KiB 12-way L1
//!   (this AMD EPYC, also Ice Lake and later Xeons) gives 1024; a 32 KiB 8-way L1 (Skylake/Cascade
//!   Lake Xeons) gives 512. So any product with k > 512 — every weight gradient (k = rows), the down
//!   projection (k = intermediate) at the larger configs — sums in a CPU-dependent order. This is the
//!   difference the issue saw between an EPYC and a Xeon.
//! * **The kernel family.** x86-64 builds choose at run time between FMA kernels (AVX2) and scalar
//!   kernels (`a * b + c`, two roundings) when the CPU lacks FMA; AVX-512 kernels exist only with the
//!   `x86-v4` cargo feature, which nothing in this workspace enables (a dependent crate could, by
//!   feature unification). Within one family the micro-kernel tile (which `x1x1`…`x2x6`) does not
//!   change an element's result: each element has one accumulator, `acc = fma(a_p, b_p, acc)` over the
//!   chunk in order, with no k-unrolling into several accumulators.
//! * **The small-size paths**, chosen from the shape and strides only: a "horizontal" path when both
//!   operands are contiguous along k and the output has at most 256 elements (8 lanes per element,
//!   `lane = p mod 8`, chunks of 1024, a fixed lane reduction); `gevv` when k ≤ 2 (unfused `a * b + c`);
//!   matrix-vector paths when one output dimension is 1 (a row path: 8×8 lanes, a pairwise then
//!   sequential reduction, a scalar tail; a column path: one fma chain per element, continuing from the
//!   old output when accumulating). Their order does not depend on the machine, but the lane width
//!   would change with the `x86-v4` feature.
//! * **Threads.** gemm splits work over output tiles only (never along k), so its thread count does not
//!   change a result. Our own wrapper did: with more than one thread it copied a `[k, n]` right operand
//!   to `[n, k]` for speed, and the strides decide between the small-size paths above.
//!
//! No function, feature or environment variable of gemm 0.19 fixes `kc` (the cache sizes are read once
//! into a private static), so this module owns the arithmetic.
//!
//! # What this module computes
//!
//! Exactly what gemm 0.19's FMA kernels computed on the reference machine (L1d 48 KiB, 12-way, 64-byte
//! lines: `kc` = 1024) with our wrapper on two or more threads, but with that blocking written down
//! here instead of read from the cache, so the demo's numbers did not move. Per output element
//! `c = β·Σₚ a_p·b_p (+ c)`, by path (chosen by [`plan`] from the shape and the strides gemm saw):
//!
//! * **Blocked** (the general case): chunks of 512 (both output dimensions ≤ 64) or balanced chunks of
//!   at most 1024; in each chunk `S = fma(a_p, b_p, S)` from `S = 0` in order of p; then
//!   `c = β·S` for the first chunk of an overwriting product, else `c = fma(β, S, c)`.
//! * **Horizontal**, **row**, **column**, **gevv**: the orders described above, in [`small`].
//!
//! The fast kernels (AVX2+FMA, AVX-512F; chosen at run time) and the portable one (`mul_add`) perform
//! these same IEEE operations on every element, in the same order, so they agree bit for bit; only
//! the tiling, the vector width and the split over threads differ, and none of them reorders a sum.
//! The kernel can be forced with `SELFPLAY_GEMM_KERNEL=portable|avx2|avx512` (a kernel the CPU lacks
//! falls back to the best it has).
//!
//! # What a product's bits still depend on
//!
//! Only on the shape, the strides of the operands as passed (which pick the path), `accumulate`, the
//! scale and the values: not on the CPU model, its caches, its vector width, the kernel or the rayon
//! thread count. This rests on IEEE 754 binary32/binary64 arithmetic in the default environment (round
//! to nearest even, subnormals kept — Rust never changes it, and no code here does) and on `mul_add`
//! being one correctly rounded fused multiply-add, which Rust guarantees on every target (in hardware,
//! or `fmaf`/`fma` from the C library, which must be exact). So the portable kernel gives the same bits
//! even on CPUs without FMA or outside x86-64, only slowly. f64 products follow the same definition
//! (they are not gemm's f64 order; only the gradient checks use f64). On a 32 KiB-L1 Xeon the results
//! are now what gemm gave on the reference machine, not what it gave on the Xeon.

mod blocked;
mod float;
mod select;
mod small;
#[cfg(test)]
mod tests;
mod types;
#[cfg(target_arch = "x86_64")]
mod x86;

use core::any::TypeId;
use core::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use crate::backend::Gemm;
use crate::backend::cpu::scratch::{Slot, with_scratch};
use float::Float;
use selfplay_tensor::Float as Element;
use types::{Chunks, Prod, Side};
pub(crate) use types::{Kernel, MatRef, Threads};

/// The best kernel this CPU runs.
fn hardware_kernel() -> Kernel {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            if is_x86_feature_detected!("avx512f") {
                return Kernel::Avx512;
            }
            return Kernel::Avx2;
        }
    }
    Kernel::Portable
}

/// The kernel chosen at start-up: `SELFPLAY_GEMM_KERNEL` if set (capped by the hardware), else the best.
fn default_kernel() -> Kernel {
    static CHOSEN: OnceLock<Kernel> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let hw = hardware_kernel();
        match std::env::var("SELFPLAY_GEMM_KERNEL").as_deref() {
            Ok("portable") => Kernel::Portable,
            Ok("avx2") => Kernel::Avx2.min(hw),
            _ => hw,
        }
    })
}

/// 0: no override; else `1 + Kernel as u8`.
static FORCED: AtomicU8 = AtomicU8::new(0);

/// The kernel products use now. Never one the CPU lacks (the kernels' safety rests on this).
pub(crate) fn active_kernel() -> Kernel {
    let chosen = match FORCED.load(Ordering::Relaxed) {
        1 => Kernel::Portable,
        2 => Kernel::Avx2,
        3 => Kernel::Avx512,
        _ => return default_kernel(),
    };
    chosen.min(hardware_kernel())
}

/// Forces every following product in this process onto `kernel` (capped by the hardware), or back to
/// the default with `None`. For tests: since all kernels give the same bits, concurrent products in
/// other tests are unaffected.
#[cfg(test)]
pub(crate) fn force_kernel(kernel: Option<Kernel>) {
    let code = match kernel {
        None => 0,
        Some(Kernel::Portable) => 1,
        Some(Kernel::Avx2) => 2,
        Some(Kernel::Avx512) => 3,
    };
    FORCED.store(code, Ordering::Relaxed);
}

/// The order of arithmetic of one product, decided from its shape and strides as gemm 0.19 decided it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Blocked(Chunks),
    Horizontal,
    GemvRow,
    GemvCol { beta_on: Side },
    Gevv { beta_on: Side },
}

/// The strides a product's operands had when they were handed to gemm (the output's columns are
/// always contiguous).
#[derive(Debug, Clone, Copy)]
struct Layout {
    a_rs: isize,
    a_cs: isize,
    b_rs: isize,
    b_cs: isize,
    dst_rs: isize,
}

/// gemm 0.19's choice of path for `c[m, n] (+)= β·a[m, k]·b[k, n]` (k ≥ 1, strides non-negative).
/// `gemm::gemm` first transposes the whole problem when the output's rows are longer than one element
/// apart (`c` row-major ⇒ `cᵀ = bᵀaᵀ`, so its "lhs" is `bᵀ`); the conditions below are its own, on
/// its transposed view (`m2, n2, lhs, rhs`).
fn plan(m: usize, n: usize, k: usize, l: Layout) -> Path {
    let t = l.dst_rs > 1;
    // (lhs_rs, lhs_cs), (rhs_rs, rhs_cs), (dst_rs, dst_cs) in gemm's view, and which of our operands its rhs is.
    let (m2, n2, lhs, rhs, dst, rhs_is) = if t {
        (n, m, (l.b_cs, l.b_rs), (l.a_cs, l.a_rs), (1, l.dst_rs), Side::A)
    } else {
        (m, n, (l.a_rs, l.a_cs), (l.b_rs, l.b_cs), (l.dst_rs, 1), Side::B)
    };
    let lhs_is = if rhs_is == Side::A { Side::B } else { Side::A };
    if lhs.1 == 1 && rhs.0 == 1 && m2.saturating_mul(n2) <= 16 * 16 {
        return Path::Horizontal;
    }
    if k <= 2 {
        return Path::Gevv { beta_on: rhs_is };
    }
    if n2 <= 1 && lhs.0 == 1 && dst.0 == 1 {
        return Path::GemvCol { beta_on: rhs_is };
    }
    if n2 <= 1 && lhs.1 == 1 && rhs.0 == 1 {
        return Path::GemvRow;
    }
    if m2 <= 1 && rhs.1 == 1 && dst.1 == 1 {
        return Path::GemvCol { beta_on: lhs_is };
    }
    if m2 <= 1 && rhs.0 == 1 && lhs.1 == 1 {
        return Path::GemvRow;
    }
    if m2 <= 64 && n2 <= 64 { Path::Blocked(Chunks::Fixed512) } else { Path::Blocked(Chunks::Balanced1024) }
}

/// `dst[m, n] (+)= scale · a[m, k] · b[k, n]` over strided operands; `dst` rows are `dst_rs` apart.
///
/// # Safety
/// Every element addressed through `a`, `b` (for `i < m`/`k`, `j < k`/`n`) must be readable and every
/// `dst` element `(i, j)` at `dst + i*dst_rs + j` writable, with no other thread writing them; strides
/// must be non-negative.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_strided<T: Element>(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut T,
    dst_rs: isize,
    accumulate: bool,
    a: MatRef<T>,
    b: MatRef<T>,
    scale: T,
    threads: Threads,
) {
    let layout = Layout { a_rs: a.rs, a_cs: a.cs, b_rs: b.rs, b_cs: b.cs, dst_rs };
    let prod = Prod { m, n, k, dst, dst_rs, accumulate, a, b, beta: scale };
    // SAFETY: the caller's contract; the layout is the operands' own.
    unsafe { run_planned(prod, layout, threads, active_kernel()) }
}

/// Zero-size cases, then [`plan`] and the product on `kernel`.
///
/// # Safety
/// As [`gemm_strided`]; `layout` may differ from the operands' strides only where the path chosen
/// does not need it to match (see [`gemm_dense`]).
unsafe fn run_planned<T: Element>(p: Prod<T>, layout: Layout, threads: Threads, kernel: Kernel) {
    if p.m == 0 || p.n == 0 {
        return;
    }
    if p.k == 0 {
        if !p.accumulate {
            for i in 0..p.m {
                // SAFETY: row i of dst holds n writable elements (caller's contract).
                unsafe { core::slice::from_raw_parts_mut(p.out(i, 0), p.n) }.fill(T::ZERO);
            }
        }
        return;
    }
    let path = plan(p.m, p.n, p.k, layout);
    // SAFETY: the caller's contract.
    unsafe { dispatch(p, path, threads, kernel) }
}

/// Runs `p` on the element type's implementation.
///
/// # Safety
/// As [`gemm_strided`]; `kernel` must be one the CPU has.
unsafe fn dispatch<T: Element>(p: Prod<T>, path: Path, threads: Threads, kernel: Kernel) {
    /// # Safety
    /// `T` must be `F`.
    unsafe fn cast<T: Copy, F: Copy>(p: Prod<T>) -> Prod<F> {
        // SAFETY: T and F are the same type (the caller's contract).
        unsafe { core::mem::transmute_copy(&p) }
    }
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        // SAFETY: T is f32; the rest is the caller's contract.
        unsafe { run::<f32>(&cast(p), path, threads, kernel) }
    } else if TypeId::of::<T>() == TypeId::of::<f64>() {
        // SAFETY: T is f64; the rest is the caller's contract.
        unsafe { run::<f64>(&cast(p), path, threads, kernel) }
    } else {
        panic!("the CPU backend multiplies f32 and f64 matrices only");
    }
}

/// # Safety
/// As [`dispatch`].
unsafe fn run<F: Float>(p: &Prod<F>, path: Path, threads: Threads, kernel: Kernel) {
    // SAFETY (all arms): the caller's contract; `plan` chose the small paths only for operands laid
    // out as they need (contiguous along k for the horizontal and row paths).
    unsafe {
        match path {
            Path::Blocked(chunks) => blocked::blocked(p, chunks, threads, select::micro::<F>(kernel)),
            Path::Horizontal => small::horizontal(p, kernel),
            Path::GemvRow => small::gemv_row(p, kernel),
            Path::GemvCol { beta_on } => small::gemv_col(p, beta_on, kernel),
            Path::Gevv { beta_on } => small::gevv(p, beta_on),
        }
    }
}

/// A whole-buffer product as described by [`Gemm`], spread over the current rayon pool.
pub(super) fn gemm_dense<T: Element>(g: Gemm, a: &[T], b: &[T], c: &mut [T]) {
    let threads = if rayon::current_num_threads() > 1 { Threads::Pool } else { Threads::One };
    gemm_dense_on(g, a, b, c, threads, active_kernel());
}

/// [`gemm_dense`] on a given kernel.
fn gemm_dense_on<T: Element>(g: Gemm, a: &[T], b: &[T], c: &mut [T], threads: Threads, kernel: Kernel) {
    let Gemm { m, n, k, trans_a, trans_b, accumulate } = g;
    assert!(a.len() == m * k && b.len() == k * n && c.len() == m * n, "gemm operand sizes do not match {g:?}");
    let a = if trans_a {
        MatRef { ptr: a.as_ptr(), rs: 1, cs: m as isize }
    } else {
        MatRef { ptr: a.as_ptr(), rs: k as isize, cs: 1 }
    };
    let b_ref = if trans_b {
        MatRef { ptr: b.as_ptr(), rs: 1, cs: k as isize }
    } else {
        MatRef { ptr: b.as_ptr(), rs: n as isize, cs: 1 }
    };
    // Our gemm 0.19 wrapper copied a row-major `[k, n]` right operand to `[n, k]` when it ran on two or
    // more threads and `m·n·k ≥ 2¹⁵`, `m ≥ 4·min(k, n)` (gemm split such products over threads only in
    // that layout). Strides pick between gemm's paths, so the path is planned on that layout, at any
    // thread count. Only the horizontal and row paths need the copy to exist.
    let copied = !trans_b && m * n * k >= 1 << 15 && m >= 4 * k.min(n);
    let b_planned = if copied { MatRef { rs: 1, cs: k as isize, ..b_ref } } else { b_ref };
    let layout = Layout { a_rs: a.rs, a_cs: a.cs, b_rs: b_planned.rs, b_cs: b_planned.cs, dst_rs: n as isize };
    let needs_copy = copied && k > 0 && matches!(plan(m, n, k, layout), Path::Horizontal | Path::GemvRow);
    let dst = c.as_mut_ptr();
    let product = |b: MatRef<T>| {
        let prod = Prod { m, n, k, dst, dst_rs: n as isize, accumulate, a, b, beta: T::ONE };
        // SAFETY: the assert above makes every addressed element of a, b and c in bounds (a copy of b
        // holds the same k·n elements); c is borrowed mutably, so nothing else writes it; the layout
        // differs from b's strides only when the path does not read b through them as contiguous runs.
        unsafe { run_planned(prod, layout, threads, kernel) }
    };
    if needs_copy {
        // The copy lives in this thread's scratch; the small paths never borrow that slot.
        with_scratch::<T, _>(Slot::GemmTransposed, k * n, |transposed| {
            transpose(b, k, n, transposed);
            product(MatRef { ptr: transposed.as_ptr(), rs: 1, cs: k as isize })
        })
    } else {
        product(b_ref)
    }
}

/// `[rows, cols]` row-major to `[cols, rows]` row-major in `out`, in cache-sized tiles.
fn transpose<T: Element>(x: &[T], rows: usize, cols: usize, out: &mut [T]) {
    const TILE: usize = 32;
    for r0 in (0..rows).step_by(TILE) {
        for c0 in (0..cols).step_by(TILE) {
            for r in r0..(r0 + TILE).min(rows) {
                for c in c0..(c0 + TILE).min(cols) {
                    out[c * rows + r] = x[r * cols + c];
                }
            }
        }
    }
}
