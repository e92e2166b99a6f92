//! x86-64 micro-kernels for the blocked path: f32 on AVX2+FMA (6 rows × 16 columns, 12 accumulators)
//! and AVX-512F (6 × 32), f64 as the portable kernel compiled for AVX2+FMA. Every element still gets
//! one fma per step in order of p, so these agree bit for bit with the portable kernel.

use core::any::TypeId;
use core::arch::x86_64::*;

use super::blocked::{Micro, micro_body};
use super::float::Float;
use super::types::{Kernel, MatRef};

/// Rows of `a` per f32 tile (the `a` strip, `6·kc` floats, stays in L1).
const MR: usize = 6;

/// The x86 micro-kernel for `F` on `kernel`, if there is one.
pub(super) fn micro<F: Float>(kernel: Kernel) -> Option<Micro<F>> {
    if kernel == Kernel::Portable {
        return None;
    }
    if TypeId::of::<F>() == TypeId::of::<f32>() {
        let m: Micro<f32> = match kernel {
            Kernel::Avx512 => Micro { mr: MR, nr: 32, run: micro_f32_avx512, pack_bt: Some(pack_bt_f32) },
            _ => Micro { mr: MR, nr: 16, run: micro_f32_avx2, pack_bt: Some(pack_bt_f32) },
        };
        // SAFETY: F is f32.
        return Some(unsafe { core::mem::transmute_copy::<Micro<f32>, Micro<F>>(&m) });
    }
    Some(Micro { mr: 4, nr: 8, run: micro_fma::<F>, pack_bt: None })
}

/// The portable micro-kernel (4 × 8) built for AVX2+FMA.
///
/// # Safety
/// As [`Micro::run`]; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn micro_fma<F: Float>(
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
    unsafe { micro_body::<F, 4, 8>(kc, a, b, c, c_rs, rows, cols, overwrite, beta) }
}

/// Writes one tile row held in `acc` (columns past `cols` ignored): `β·s` or `fma(β, s, c)`.
///
/// # Safety
/// `c..c+cols` writable; the CPU has FMA.
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn store_row_tail(acc: &[f32], c: *mut f32, cols: usize, overwrite: bool, beta: f32) {
    for (j, &s) in acc.iter().enumerate().take(cols) {
        // SAFETY: j < cols (caller's contract).
        unsafe { *c.add(j) = if overwrite { beta * s } else { beta.mul_add(s, *c.add(j)) } };
    }
}

/// f32, AVX2+FMA, up to 6 × 16.
///
/// # Safety
/// As [`Micro::run`] with `mr = 6`, `nr = 16`; the CPU has AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn micro_f32_avx2(
    kc: usize,
    a: MatRef<f32>,
    b: *const f32,
    c: *mut f32,
    c_rs: isize,
    rows: usize,
    cols: usize,
    overwrite: bool,
    beta: f32,
) {
    // SAFETY (all arms): passed on; R = rows ≤ 6.
    unsafe {
        match rows {
            6 => avx2_rows::<6>(kc, a, b, c, c_rs, cols, overwrite, beta),
            5 => avx2_rows::<5>(kc, a, b, c, c_rs, cols, overwrite, beta),
            4 => avx2_rows::<4>(kc, a, b, c, c_rs, cols, overwrite, beta),
            3 => avx2_rows::<3>(kc, a, b, c, c_rs, cols, overwrite, beta),
            2 => avx2_rows::<2>(kc, a, b, c, c_rs, cols, overwrite, beta),
            _ => avx2_rows::<1>(kc, a, b, c, c_rs, cols, overwrite, beta),
        }
    }
}

/// [`micro_f32_avx2`] for exactly `R` rows (the strip's other rows are skipped, not computed).
///
/// # Safety
/// As [`micro_f32_avx2`].
#[target_feature(enable = "avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn avx2_rows<const R: usize>(
    kc: usize,
    a: MatRef<f32>,
    b: *const f32,
    c: *mut f32,
    c_rs: isize,
    cols: usize,
    overwrite: bool,
    beta: f32,
) {
    let mut lo = [_mm256_setzero_ps(); R];
    let mut hi = [_mm256_setzero_ps(); R];
    let off: [isize; R] = core::array::from_fn(|r| r as isize * a.rs);
    let mut ap = a.ptr;
    for p in 0..kc {
        // SAFETY: p < kc: the b strip holds 16 floats at p·16, the a strip its R rows at depth p.
        unsafe {
            let bp = b.add(p * 16);
            let (b0, b1) = (_mm256_loadu_ps(bp), _mm256_loadu_ps(bp.add(8)));
            for r in 0..R {
                let x = _mm256_broadcast_ss(&*ap.offset(off[r]));
                lo[r] = _mm256_fmadd_ps(x, b0, lo[r]);
                hi[r] = _mm256_fmadd_ps(x, b1, hi[r]);
            }
            ap = ap.offset(a.cs);
        }
    }
    let bv = _mm256_set1_ps(beta);
    for r in 0..R {
        // SAFETY: row r < R of the tile, columns below cols ≤ 16, is writable (caller's contract).
        unsafe {
            let cr = c.offset(r as isize * c_rs);
            if cols == 16 {
                let (v0, v1) = if overwrite {
                    (_mm256_mul_ps(bv, lo[r]), _mm256_mul_ps(bv, hi[r]))
                } else {
                    (
                        _mm256_fmadd_ps(bv, lo[r], _mm256_loadu_ps(cr)),
                        _mm256_fmadd_ps(bv, hi[r], _mm256_loadu_ps(cr.add(8))),
                    )
                };
                _mm256_storeu_ps(cr, v0);
                _mm256_storeu_ps(cr.add(8), v1);
            } else {
                let mut row = [0.0f32; 16];
                _mm256_storeu_ps(row.as_mut_ptr(), lo[r]);
                _mm256_storeu_ps(row.as_mut_ptr().add(8), hi[r]);
                store_row_tail(&row, cr, cols, overwrite, beta);
            }
        }
    }
}

/// f32, AVX-512F, up to 6 × 32.
///
/// # Safety
/// As [`Micro::run`] with `mr = 6`, `nr = 32`; the CPU has AVX-512F, AVX2 and FMA.
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn micro_f32_avx512(
    kc: usize,
    a: MatRef<f32>,
    b: *const f32,
    c: *mut f32,
    c_rs: isize,
    rows: usize,
    cols: usize,
    overwrite: bool,
    beta: f32,
) {
    // SAFETY (all arms): passed on; R = rows ≤ 6.
    unsafe {
        match rows {
            6 => avx512_rows::<6>(kc, a, b, c, c_rs, cols, overwrite, beta),
            5 => avx512_rows::<5>(kc, a, b, c, c_rs, cols, overwrite, beta),
            4 => avx512_rows::<4>(kc, a, b, c, c_rs, cols, overwrite, beta),
            3 => avx512_rows::<3>(kc, a, b, c, c_rs, cols, overwrite, beta),
            2 => avx512_rows::<2>(kc, a, b, c, c_rs, cols, overwrite, beta),
            _ => avx512_rows::<1>(kc, a, b, c, c_rs, cols, overwrite, beta),
        }
    }
}

/// [`micro_f32_avx512`] for exactly `R` rows.
///
/// # Safety
/// As [`micro_f32_avx512`].
#[target_feature(enable = "avx512f,avx2,fma")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn avx512_rows<const R: usize>(
    kc: usize,
    a: MatRef<f32>,
    b: *const f32,
    c: *mut f32,
    c_rs: isize,
    cols: usize,
    overwrite: bool,
    beta: f32,
) {
    let mut lo = [_mm512_setzero_ps(); R];
    let mut hi = [_mm512_setzero_ps(); R];
    let off: [isize; R] = core::array::from_fn(|r| r as isize * a.rs);
    let mut ap = a.ptr;
    for p in 0..kc {
        // SAFETY: p < kc: the b strip holds 32 floats at p·32, the a strip its R rows at depth p.
        unsafe {
            let bp = b.add(p * 32);
            let (b0, b1) = (_mm512_loadu_ps(bp), _mm512_loadu_ps(bp.add(16)));
            for r in 0..R {
                let x = _mm512_set1_ps(*ap.offset(off[r]));
                lo[r] = _mm512_fmadd_ps(x, b0, lo[r]);
                hi[r] = _mm512_fmadd_ps(x, b1, hi[r]);
            }
            ap = ap.offset(a.cs);
        }
    }
    let bv = _mm512_set1_ps(beta);
    for r in 0..R {
        // SAFETY: row r < R of the tile, columns below cols ≤ 32, is writable (caller's contract).
        unsafe {
            let cr = c.offset(r as isize * c_rs);
            if cols == 32 {
                let (v0, v1) = if overwrite {
                    (_mm512_mul_ps(bv, lo[r]), _mm512_mul_ps(bv, hi[r]))
                } else {
                    (
                        _mm512_fmadd_ps(bv, lo[r], _mm512_loadu_ps(cr)),
                        _mm512_fmadd_ps(bv, hi[r], _mm512_loadu_ps(cr.add(16))),
                    )
                };
                _mm512_storeu_ps(cr, v0);
                _mm512_storeu_ps(cr.add(16), v1);
            } else {
                let mut row = [0.0f32; 32];
                _mm512_storeu_ps(row.as_mut_ptr(), lo[r]);
                _mm512_storeu_ps(row.as_mut_ptr().add(16), hi[r]);
                store_row_tail(&row, cr, cols, overwrite, beta);
            }
        }
    }
}

/// `pack_b` for f32 when `b`'s rows run along k (`b.rs == 1`: a `[n, k]` buffer such as a Linear
/// weight): 8 × 8 blocks moved through AVX registers and transposed there (a plain element loop
/// spent three quarters of a 16-row product packing the weight).
///
/// # Safety
/// As `pack_b`; `b.rs == 1`; the CPU has AVX2.
#[target_feature(enable = "avx2,fma")]
unsafe fn pack_bt_f32(b: MatRef<f32>, k0: usize, j0: usize, cols: usize, nr: usize, out: &mut [f32]) {
    debug_assert_eq!(b.rs, 1);
    let kc = out.len() / nr;
    let (k8, c8) = (kc / 8 * 8, cols / 8 * 8);
    if cols < nr {
        out.fill(0.0);
    }
    // The ragged edges element by element: columns c8..cols at every depth, depths k8..kc below c8.
    for (p, row) in out.chunks_exact_mut(nr).enumerate() {
        let edge = if p < k8 { c8..cols } else { 0..cols };
        for j in edge {
            // SAFETY: (k0+p, j0+j) is an element of b (p < kc, j < cols; the caller's contract).
            row[j] = unsafe { b.at(k0 + p, j0 + j) };
        }
    }
    let dst = out.as_mut_ptr();
    for p0 in (0..k8).step_by(8) {
        for jb in (0..c8).step_by(8) {
            // SAFETY: rows j0+jb..+8 of the buffer hold depths k0+p0..+8 (caller's contract: they are
            // elements (k0+p, j0+j) of b, p < kc, j < cols); the stores land in rows p0..p0+8, columns
            // jb..jb+8 of the packed strip.
            unsafe {
                let src = b.ptr.offset((j0 + jb) as isize * b.cs + (k0 + p0) as isize);
                let r: [__m256; 8] = core::array::from_fn(|t| _mm256_loadu_ps(src.offset(t as isize * b.cs)));
                let t = transpose8(r);
                for (q, v) in t.into_iter().enumerate() {
                    _mm256_storeu_ps(dst.add((p0 + q) * nr + jb), v);
                }
            }
        }
    }
}

/// The transpose of an 8 × 8 block held as 8 rows.
#[target_feature(enable = "avx2,fma")]
#[inline]
fn transpose8(r: [__m256; 8]) -> [__m256; 8] {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ]
}
