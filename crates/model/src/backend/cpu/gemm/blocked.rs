//! The blocked path: per output element, chunks of the depth each summed from zero by one fma chain,
//! then added to the output (`c = β·S₁`, or `c = fma(β, Sⱼ, c)`).
//!
//! Cache blocking follows the order's chunks: for each chunk, `b` is packed into strips of `nr`
//! columns (`[kc][nr]`, zero-padded), then tasks — (a block of `b` strips sized for L2) × (a group of
//! `a` row strips) — pack one `[kc][mr]` strip of `a` at a time (kept in L1) and run the micro-kernel on
//! it against each `b` strip of their block. Tasks write disjoint output tiles, so they may run on any
//! number of threads; the chunks run one after another. Neither the tile sizes nor the split change
//! the arithmetic of an element.

use rayon::prelude::*;

use super::float::{Float, Slot, with_scratch};
use super::{Chunks, Kernel, MatRef, Prod, Threads};

/// A micro-kernel: `c[rows, cols] = β·S` (when `overwrite`) or `fma(β, S, c)`, where `S = Σ_p a_p b_p`
/// (one fma chain per element from zero, p in order) over `kc` steps of a packed `[kc][mr]` strip of `a`
/// and a packed `[kc][nr]` strip of `b`; `rows ≤ mr`, `cols ≤ nr`.
#[derive(Clone, Copy)]
pub(super) struct Micro<F> {
    pub mr: usize,
    pub nr: usize,
    /// # Safety
    /// The strips hold `kc·mr` and `kc·nr` readable elements; the tile `c + r·c_rs + j` (r < rows,
    /// j < cols) is writable by this call alone; the CPU has the kernel's instructions.
    #[allow(clippy::type_complexity)]
    pub run: unsafe fn(usize, *const F, *const F, *mut F, isize, usize, usize, bool, F),
}

/// Portable tile: rows × columns.
const PORTABLE_MR: usize = 4;
const PORTABLE_NR: usize = 8;

/// The micro-kernel for `F` on `kernel`.
pub(super) fn micro<F: Float>(kernel: Kernel) -> Micro<F> {
    #[cfg(target_arch = "x86_64")]
    if let Some(m) = super::x86::micro::<F>(kernel) {
        return m;
    }
    let _ = kernel;
    Micro { mr: PORTABLE_MR, nr: PORTABLE_NR, run: micro_portable::<F, PORTABLE_MR, PORTABLE_NR> }
}

/// The portable micro-kernel (any `MR × NR`), a plain-Rust build of [`micro_body`].
///
/// # Safety
/// As [`Micro::run`].
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn micro_portable<F: Float, const MR: usize, const NR: usize>(
    kc: usize,
    a: *const F,
    b: *const F,
    c: *mut F,
    c_rs: isize,
    rows: usize,
    cols: usize,
    overwrite: bool,
    beta: F,
) {
    // SAFETY: passed on.
    unsafe { micro_body::<F, MR, NR>(kc, a, b, c, c_rs, rows, cols, overwrite, beta) }
}

/// The micro-kernel in plain Rust: `MR × NR` accumulators, one fma per element per step.
///
/// # Safety
/// As [`Micro::run`].
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn micro_body<F: Float, const MR: usize, const NR: usize>(
    kc: usize,
    a: *const F,
    b: *const F,
    c: *mut F,
    c_rs: isize,
    rows: usize,
    cols: usize,
    overwrite: bool,
    beta: F,
) {
    let mut acc = [[F::ZERO; NR]; MR];
    for p in 0..kc {
        // SAFETY: p < kc, so both strips hold these elements.
        let (ap, bp) = unsafe { (&*(a.add(p * MR) as *const [F; MR]), &*(b.add(p * NR) as *const [F; NR])) };
        for (row, &x) in acc.iter_mut().zip(ap) {
            for (s, &y) in row.iter_mut().zip(bp) {
                *s = x.fma(y, *s);
            }
        }
    }
    for (r, row) in acc.iter().enumerate().take(rows) {
        for (j, &s) in row.iter().enumerate().take(cols) {
            // SAFETY: (r, j) is inside the tile.
            unsafe {
                let out = c.offset(r as isize * c_rs + j as isize);
                *out = if overwrite { beta * s } else { beta.fma(s, *out) };
            }
        }
    }
}

/// Rows of `a` strips per task.
const ROW_GROUP_STRIPS: usize = 8;
/// The bytes of packed `b` one task sweeps per `a` strip (meant to stay in L2).
const B_BLOCK_BYTES: usize = 512 * 1024;
/// Products with fewer multiply-adds than this stay on one thread.
const PARALLEL_WORK: usize = 1 << 19;

/// `p` in the blocked order, its depth cut by `chunks`.
///
/// # Safety
/// `p`'s elements must be readable and its output writable by this call alone; `micro` must run on
/// this CPU.
pub(super) unsafe fn blocked<F: Float>(p: &Prod<F>, chunks: Chunks, threads: Threads, micro: Micro<F>) {
    let Micro { mr, nr, run } = micro;
    let kc_max = chunks.size(p.k);
    let (m_strips, n_strips) = (p.m.div_ceil(mr), p.n.div_ceil(nr));
    let parallel = threads == Threads::Pool
        && rayon::current_num_threads() > 1
        && p.m.saturating_mul(p.n).saturating_mul(p.k) >= PARALLEL_WORK;
    with_scratch::<F, _>(Slot::B, n_strips * nr * kc_max, |b_pack| {
        for (chunk, k0) in (0..p.k).step_by(kc_max).enumerate() {
            let kc = kc_max.min(p.k - k0);
            let overwrite = chunk == 0 && !p.accumulate;
            let strip_len = kc * nr;
            let b_pack = &mut b_pack[..n_strips * strip_len];
            let pack = |(s, strip): (usize, &mut [F])| {
                // SAFETY: rows k0..k0+kc and columns of strip s below n are inside b.
                unsafe { pack_b(p.b, k0, s * nr, nr.min(p.n - s * nr), nr, strip) }
            };
            if parallel {
                b_pack.par_chunks_mut(strip_len).enumerate().for_each(pack);
            } else {
                b_pack.chunks_mut(strip_len).enumerate().for_each(pack);
            }
            let b_pack = &*b_pack;
            let strips_per_block = (B_BLOCK_BYTES / (size_of::<F>() * strip_len)).max(1);
            let row_groups = m_strips.div_ceil(ROW_GROUP_STRIPS);
            let tasks = n_strips.div_ceil(strips_per_block) * row_groups;
            let task = |t: usize| {
                let (block, group) = (t / row_groups, t % row_groups);
                let b_strips = block * strips_per_block..((block + 1) * strips_per_block).min(n_strips);
                let a_strips = group * ROW_GROUP_STRIPS..((group + 1) * ROW_GROUP_STRIPS).min(m_strips);
                with_scratch::<F, _>(Slot::A, kc * mr, |a_pack| {
                    for sa in a_strips {
                        let (i0, rows) = (sa * mr, mr.min(p.m - sa * mr));
                        // SAFETY: rows i0..i0+rows and depth k0..k0+kc are inside a.
                        unsafe { pack_a(p.a, i0, rows, k0, mr, a_pack) };
                        for sb in b_strips.clone() {
                            let (j0, cols) = (sb * nr, nr.min(p.n - sb * nr));
                            // SAFETY: the strips hold kc·mr and kc·nr elements; the tile (i0.., j0..) of
                            // rows × cols is inside the output and belongs to this task alone (tasks
                            // cover disjoint (row group, strip block) pairs); `micro` runs on this CPU.
                            unsafe {
                                run(
                                    kc,
                                    a_pack.as_ptr(),
                                    b_pack[sb * strip_len..].as_ptr(),
                                    p.out(i0, j0),
                                    p.dst_rs,
                                    rows,
                                    cols,
                                    overwrite,
                                    p.beta,
                                )
                            };
                        }
                    }
                });
            };
            if parallel {
                (0..tasks).into_par_iter().for_each(task);
            } else {
                (0..tasks).for_each(task);
            }
        }
    });
}

/// Packs `b[k0..k0+kc, j0..j0+cols]` as `[kc][nr]` (`kc = out.len() / nr`; columns past `cols` zero).
///
/// # Safety
/// Those elements of `b` must be readable.
unsafe fn pack_b<F: Float>(b: MatRef<F>, k0: usize, j0: usize, cols: usize, nr: usize, out: &mut [F]) {
    if cols < nr {
        out.fill(F::ZERO);
    }
    if b.cs == 1 {
        for (p, row) in out.chunks_exact_mut(nr).enumerate() {
            // SAFETY: row k0+p, columns j0..j0+cols are readable (caller's contract).
            let src =
                unsafe { core::slice::from_raw_parts(b.ptr.offset((k0 + p) as isize * b.rs + j0 as isize), cols) };
            row[..cols].copy_from_slice(src);
        }
    } else {
        for j in 0..cols {
            for (p, row) in out.chunks_exact_mut(nr).enumerate() {
                // SAFETY: (k0+p, j0+j) is readable (caller's contract).
                row[j] = unsafe { b.at(k0 + p, j0 + j) };
            }
        }
    }
}

/// Packs `a[i0..i0+rows, k0..k0+kc]` as `[kc][mr]` (`kc = out.len() / mr`; rows past `rows` zero).
///
/// # Safety
/// Those elements of `a` must be readable.
unsafe fn pack_a<F: Float>(a: MatRef<F>, i0: usize, rows: usize, k0: usize, mr: usize, out: &mut [F]) {
    if rows < mr {
        out.fill(F::ZERO);
    }
    if a.rs == 1 {
        for (p, col) in out.chunks_exact_mut(mr).enumerate() {
            // SAFETY: rows i0..i0+rows at depth k0+p are readable (caller's contract).
            let src =
                unsafe { core::slice::from_raw_parts(a.ptr.offset((k0 + p) as isize * a.cs + i0 as isize), rows) };
            col[..rows].copy_from_slice(src);
        }
    } else {
        for r in 0..rows {
            for (p, col) in out.chunks_exact_mut(mr).enumerate() {
                // SAFETY: (i0+r, k0+p) is readable (caller's contract).
                col[r] = unsafe { a.at(i0 + r, k0 + p) };
            }
        }
    }
}
