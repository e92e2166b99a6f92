//! The blocked path: per output element, chunks of the depth each summed from zero by one fma chain,
//! then added to the output (`c = β·S₁`, or `c = fma(β, Sⱼ, c)`).
//!
//! Cache blocking follows the order's chunks: for each chunk, `b` is packed into strips of `nr`
//! columns (`[kc][nr]`, zero-padded), then tasks — (a block of `b` strips sized for L2) × (a group of
//! `a` strips of `mr` rows) — run the micro-kernel on each `a` strip (read in place, kept in L1)
//! against each `b` strip of their block. Tasks write disjoint output tiles, so they may run on any
//! number of threads; the chunks run one after another. Neither the tile sizes nor the split change
//! the arithmetic of an element.

use rayon::prelude::*;

use super::float::Float;
use super::types::{Chunks, MatRef, Prod, Threads};
use crate::backend::cpu::scratch::{Slot, with_scratch};

/// A micro-kernel: `c[rows, cols] = β·S` (when `overwrite`) or `fma(β, S, c)`, where `S = Σ_p a_p b_p`
/// (one fma chain per element from zero, p in order) over `kc` steps of a strip of `a` (`rows × kc`,
/// element `(r, p)` at `ptr + r·rs + p·cs`: packed `[kc][mr]`, or `a` itself when its rows are
/// contiguous) and a packed `[kc][nr]` strip of `b`; `rows ≤ mr`, `cols ≤ nr`.
#[derive(Clone, Copy)]
pub(super) struct Micro<F> {
    pub mr: usize,
    pub nr: usize,
    /// # Safety
    /// The `a` strip's `rows × kc` elements and the `b` strip's `kc·nr` are readable; the tile
    /// `c + r·c_rs + j` (r < rows, j < cols) is writable by this call alone; the CPU has the kernel's
    /// instructions.
    #[allow(clippy::type_complexity)]
    pub run: unsafe fn(usize, MatRef<F>, *const F, *mut F, isize, usize, usize, bool, F),
    /// A faster [`pack_b`] for a `b` whose rows run along k (`b.rs == 1`), if the kernel has one.
    ///
    /// # Safety
    /// As [`pack_b`]; the CPU has the kernel's instructions.
    pub pack_bt: Option<PackFn<F>>,
}

/// A packing function with [`pack_b`]'s arguments.
pub(super) type PackFn<F> = unsafe fn(MatRef<F>, usize, usize, usize, usize, &mut [F]);

/// Portable tile: rows × columns.
pub(super) const PORTABLE_MR: usize = 4;
pub(super) const PORTABLE_NR: usize = 8;

/// The portable micro-kernel (any `MR × NR`), a plain-Rust build of [`micro_body`].
///
/// # Safety
/// As [`Micro::run`].
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn micro_portable<F: Float, const MR: usize, const NR: usize>(
    kc: usize,
    a: MatRef<F>,
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
    a: MatRef<F>,
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
        // SAFETY: p < kc, so the b strip holds these elements.
        let bp = unsafe { &*(b.add(p * NR) as *const [F; NR]) };
        for (r, row) in acc.iter_mut().enumerate().take(rows) {
            // SAFETY: r < rows and p < kc: inside the a strip.
            let x = unsafe { a.at(r, p) };
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
    let Micro { mr, nr, run, pack_bt } = micro;
    let kc_max = chunks.size(p.k);
    let (m_strips, n_strips) = (p.m.div_ceil(mr), p.n.div_ceil(nr));
    let parallel = threads == Threads::Pool
        && rayon::current_num_threads() > 1
        && p.m.saturating_mul(p.n).saturating_mul(p.k) >= PARALLEL_WORK;
    let group_rows = ROW_GROUP_STRIPS * mr;
    // `a` is read in place when one of its strides is 1 (a strip's rows contiguous along k, or its
    // columns contiguous: then each depth's `mr` elements are adjacent), else packed per chunk. Packing
    // a transposed `a` cost more than it saved (the weight gradient ran 15-25 % faster unpacked on
    // AVX-512, the same on AVX2).
    let direct_a = p.a.cs == 1 || p.a.rs == 1;
    let a_pack_len = if direct_a { 0 } else { m_strips * mr * kc_max };
    with_scratch::<F, _>(Slot::GemmB, n_strips * nr * kc_max, |b_pack| {
        with_scratch::<F, _>(Slot::GemmA, a_pack_len, |a_pack| {
            for (chunk, k0) in (0..p.k).step_by(kc_max).enumerate() {
                let kc = kc_max.min(p.k - k0);
                let overwrite = chunk == 0 && !p.accumulate;
                let (a_strip_len, b_strip_len) = (kc * mr, kc * nr);
                // The chunk of `b` (and of a strided `a`) packed once, then shared read-only by the tasks.
                let b_pack = &mut b_pack[..n_strips * b_strip_len];
                let pack = |(s, strip): (usize, &mut [F])| {
                    let packer = match pack_bt {
                        Some(f) if p.b.rs == 1 => f,
                        _ => pack_b,
                    };
                    // SAFETY: rows k0..k0+kc and columns of strip s below n are inside b; a kernel's
                    // packer runs on this CPU (as its micro-kernel does).
                    unsafe { packer(p.b, k0, s * nr, nr.min(p.n - s * nr), nr, strip) }
                };
                let a_pack = &mut a_pack[..if direct_a { 0 } else { m_strips * a_strip_len }];
                let pack_group = |(g, strips): (usize, &mut [F])| {
                    let i0 = g * group_rows;
                    // SAFETY: rows i0..i0+rows (below m) and depth k0..k0+kc are inside a.
                    unsafe { pack_a(p.a, i0, group_rows.min(p.m - i0), k0, mr, strips) }
                };
                if parallel {
                    b_pack.par_chunks_mut(b_strip_len).enumerate().for_each(pack);
                } else {
                    b_pack.chunks_mut(b_strip_len).enumerate().for_each(pack);
                }
                if !direct_a {
                    a_pack.chunks_mut(ROW_GROUP_STRIPS * a_strip_len).enumerate().for_each(pack_group);
                }
                let (a_pack, b_pack) = (&*a_pack, &*b_pack);
                let strips_per_block = (B_BLOCK_BYTES / (size_of::<F>() * b_strip_len)).max(1);
                let row_groups = m_strips.div_ceil(ROW_GROUP_STRIPS);
                let tasks = n_strips.div_ceil(strips_per_block) * row_groups;
                let a_strip = |sa: usize| {
                    if direct_a {
                        let ptr = p.a.ptr.wrapping_offset((sa * mr) as isize * p.a.rs + k0 as isize * p.a.cs);
                        MatRef { ptr, rs: p.a.rs, cs: p.a.cs }
                    } else {
                        MatRef { ptr: a_pack[sa * a_strip_len..].as_ptr(), rs: 1, cs: mr as isize }
                    }
                };
                let task = |t: usize| {
                    let (block, group) = (t / row_groups, t % row_groups);
                    let b_strips = block * strips_per_block..((block + 1) * strips_per_block).min(n_strips);
                    let a_strips = group * ROW_GROUP_STRIPS..((group + 1) * ROW_GROUP_STRIPS).min(m_strips);
                    for sa in a_strips {
                        let (i0, rows) = (sa * mr, mr.min(p.m - sa * mr));
                        for sb in b_strips.clone() {
                            let (j0, cols) = (sb * nr, nr.min(p.n - sb * nr));
                            // SAFETY: the strips hold kc·mr and kc·nr elements; the tile (i0.., j0..) of
                            // rows × cols is inside the output and belongs to this task alone (tasks
                            // cover disjoint (row group, strip block) pairs); `micro` runs on this CPU.
                            unsafe {
                                run(
                                    kc,
                                    a_strip(sa),
                                    b_pack[sb * b_strip_len..].as_ptr(),
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
                };
                if parallel {
                    (0..tasks).into_par_iter().for_each(task);
                } else {
                    (0..tasks).for_each(task);
                }
            }
        })
    });
}

/// Packs `b[k0..k0+kc, j0..j0+cols]` as `[kc][nr]` (`kc = out.len() / nr`; columns past `cols` zero).
///
/// # Safety
/// Those elements of `b` must be readable.
pub(super) unsafe fn pack_b<F: Float>(b: MatRef<F>, k0: usize, j0: usize, cols: usize, nr: usize, out: &mut [F]) {
    if cols < nr {
        out.fill(F::ZERO);
    }
    if b.cs == 1 {
        for (p, row) in out.chunks_exact_mut(nr).enumerate() {
            // SAFETY: row k0+p, columns j0..j0+cols are readable (caller's contract).
            unsafe { copy_run(b.ptr.offset((k0 + p) as isize * b.rs + j0 as isize), &mut row[..cols]) };
        }
    } else {
        // A transposed view (rows of the buffer run along k): tiles of 16 depths, so the packed rows
        // being filled stay in L1 while each column's run of 16 is read.
        let kc = out.len() / nr;
        for p0 in (0..kc).step_by(16) {
            let p1 = (p0 + 16).min(kc);
            for j in 0..cols {
                for p in p0..p1 {
                    // SAFETY: (k0+p, j0+j) is readable (caller's contract).
                    out[p * nr + j] = unsafe { b.at(k0 + p, j0 + j) };
                }
            }
        }
    }
}

/// Packs `a[i0..i0+rows, k0..k0+kc]` as strips of `mr` rows, each `[kc][mr]` (`kc = out.len() /
/// (strips · mr)`; rows past `rows` in the last strip zero), for any strides (the layouts with a unit
/// stride are read in place).
///
/// # Safety
/// Those elements of `a` must be readable.
unsafe fn pack_a<F: Float>(a: MatRef<F>, i0: usize, rows: usize, k0: usize, mr: usize, out: &mut [F]) {
    let strips = rows.div_ceil(mr);
    let kc = out.len() / (strips * mr);
    for (s, strip) in out.chunks_exact_mut(kc * mr).enumerate() {
        for (p, col) in strip.chunks_exact_mut(mr).enumerate() {
            for (r, x) in col.iter_mut().enumerate() {
                let i = s * mr + r;
                // SAFETY: (i0+i, k0+p) is readable when i < rows (caller's contract).
                *x = if i < rows { unsafe { a.at(i0 + i, k0 + p) } } else { F::ZERO };
            }
        }
    }
}

/// Copies `dst.len()` elements from `src`: fixed-size moves for the tile widths (a `memcpy` call per
/// run of 6 or 16 elements cost a fifth of a weight-gradient product).
///
/// # Safety
/// `src..src+dst.len()` must be readable.
#[inline(always)]
unsafe fn copy_run<F: Float>(src: *const F, dst: &mut [F]) {
    /// # Safety
    /// `src..src+N` readable, `dst.len() == N`.
    #[inline(always)]
    unsafe fn fixed<F: Float, const N: usize>(src: *const F, dst: &mut [F]) {
        // SAFETY: the caller's contract; both are N elements.
        unsafe { (dst.as_mut_ptr() as *mut [F; N]).write_unaligned((src as *const [F; N]).read_unaligned()) };
    }
    // SAFETY (all arms): the caller's contract, with the length matched.
    unsafe {
        match dst.len() {
            4 => fixed::<F, 4>(src, dst),
            6 => fixed::<F, 6>(src, dst),
            8 => fixed::<F, 8>(src, dst),
            16 => fixed::<F, 16>(src, dst),
            32 => fixed::<F, 32>(src, dst),
            _ => {
                for (j, d) in dst.iter_mut().enumerate() {
                    *d = *src.add(j);
                }
            }
        }
    }
}
