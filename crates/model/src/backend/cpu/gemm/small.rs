//! The small-shape paths, each in gemm 0.19's order of arithmetic (FMA kernel family):
//!
//! * [`horizontal`]: per element, chunks of 1024 along k; in each, 8 lanes (`lane = p mod 8`, a short
//!   last vector padded with zeros) accumulate `fma(a_p, b_p, lane)`; the lanes reduce as
//!   `((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))`; then `c = β·r` (first chunk, overwriting) or `fma(β, r, c)`.
//! * [`gemv_row`]: per element, 8 vectors of 8 lanes over the first `⌊k/64⌋·64` terms, summed
//!   `((v0+v1)+(v2+v3)) + ((v4+v5)+(v6+v7))`, then one vector over the next multiple of 8, its lanes
//!   added in order, then `fma` over the last `k mod 8` terms; `c = s·β` or `s·β + c`.
//! * [`gemv_col`]: per element, one chain in order of p with the scalar operand pre-scaled,
//!   `c = x₀·(β·y₀)` (overwriting) or `fma(x₀, β·y₀, c)`, then `c = fma(x_p, β·y_p, c)`.
//! * [`gevv`] (k ≤ 2): unfused, `c = x₁·y₁' + (x₀·y₀' (+ c))` with `y' = β·y`.
//!
//! Each body is `#[inline(always)]` and instantiated twice: plain (portable; `mul_add` may be a library
//! call) and inside an AVX2+FMA function, where the compiler vectorises it. Vectorising never reorders
//! floating-point operations, so both give the same bits.

use super::float::Float;
use super::types::{Kernel, Prod, Side};

/// Chunk length of the horizontal path.
const H_CHUNK: usize = 1024;

macro_rules! two_builds {
    ($(#[$doc:meta])* $name:ident, $body:ident, $fma:ident ($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// `p`'s elements must be readable and its output writable by this call alone; `kernel` must be
        /// one the CPU has.
        pub(super) unsafe fn $name<F: Float>(p: &Prod<F>, $($arg: $ty,)* kernel: Kernel) {
            match kernel {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU has AVX2 and FMA (the caller's contract); the rest is passed on.
                Kernel::Avx2 | Kernel::Avx512 => unsafe { $fma(p, $($arg),*) },
                // SAFETY: passed on.
                _ => unsafe { $body(p, $($arg),*) },
            }
        }

        /// # Safety
        /// As the dispatching function; the CPU must have AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $fma<F: Float>(p: &Prod<F>, $($arg: $ty),*) {
            // SAFETY: passed on.
            unsafe { $body(p, $($arg),*) }
        }
    };
}

two_builds!(
    /// The horizontal path (both operands contiguous along k: `a.cs == 1`, `b.rs == 1`).
    horizontal, horizontal_body, horizontal_fma()
);
two_builds!(
    /// The row matrix-vector path (both operands contiguous along k).
    gemv_row, gemv_row_body, gemv_row_fma()
);
two_builds!(
    /// The column matrix-vector path; `beta_on` names the operand with a unit output dimension.
    gemv_col, gemv_col_body, gemv_col_fma(beta_on: Side)
);

/// `((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))`: gemm's `reduce_sum` of an AVX register.
#[inline(always)]
fn reduce8<F: Float>(l: [F; 8]) -> F {
    ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

/// # Safety
/// As [`horizontal`].
#[inline(always)]
unsafe fn horizontal_body<F: Float>(p: &Prod<F>) {
    debug_assert!(p.a.cs == 1 && p.b.rs == 1, "the horizontal path reads contiguous runs");
    for i in 0..p.m {
        let mut j = 0;
        // Four outputs at a time: four independent chains hide the fma latency.
        while j + 4 <= p.n {
            // SAFETY: passed on; columns j..j+4 exist.
            unsafe { horizontal_outputs::<F, 4>(p, i, j) };
            j += 4;
        }
        while j < p.n {
            // SAFETY: passed on; column j exists.
            unsafe { horizontal_outputs::<F, 1>(p, i, j) };
            j += 1;
        }
    }
}

/// Outputs `(i, j..j+N)` of the horizontal path (each element's arithmetic is its own).
///
/// # Safety
/// As [`horizontal`]; `i < m`, `j + N ≤ n`.
#[inline(always)]
unsafe fn horizontal_outputs<F: Float, const N: usize>(p: &Prod<F>, i: usize, j: usize) {
    // Row i of a and columns j.. of b, read below within k elements each.
    let x = p.a.ptr.wrapping_offset(i as isize * p.a.rs);
    let y: [*const F; N] = core::array::from_fn(|c| p.b.ptr.wrapping_offset((j + c) as isize * p.b.cs));
    let mut first = !p.accumulate;
    for k0 in (0..p.k).step_by(H_CHUNK) {
        let k1 = (k0 + H_CHUNK).min(p.k);
        let mut lanes = [[F::ZERO; 8]; N];
        let mut q = k0;
        while q + 8 <= k1 {
            for (yc, lc) in y.iter().zip(lanes.iter_mut()) {
                for (l, lane) in lc.iter_mut().enumerate() {
                    // SAFETY: q + l < k, inside row i of a and column j + c of b.
                    *lane = unsafe { (*x.add(q + l)).fma(*yc.add(q + l), *lane) };
                }
            }
            q += 8;
        }
        if q < k1 {
            for (yc, lc) in y.iter().zip(lanes.iter_mut()) {
                for (l, lane) in lc.iter_mut().enumerate() {
                    // SAFETY: read only below k1 ≤ k; the padding is zeros, as a masked load gives.
                    let (xv, yv) =
                        if q + l < k1 { unsafe { (*x.add(q + l), *yc.add(q + l)) } } else { (F::ZERO, F::ZERO) };
                    *lane = xv.fma(yv, *lane);
                }
            }
        }
        for (c, lc) in lanes.into_iter().enumerate() {
            let r = reduce8(lc);
            let out = p.out(i, j + c);
            // SAFETY: out is this product's output element (i, j + c).
            unsafe { *out = if first { p.beta * r } else { p.beta.fma(r, *out) } };
        }
        first = false;
    }
}

/// # Safety
/// As [`gemv_row`].
#[inline(always)]
unsafe fn gemv_row_body<F: Float>(p: &Prod<F>) {
    debug_assert!(p.a.cs == 1 && p.b.rs == 1, "the row path reads contiguous runs");
    let (k, k8, k64) = (p.k, p.k / 8 * 8, p.k / 64 * 64);
    for i in 0..p.m {
        let x = p.a.ptr.wrapping_offset(i as isize * p.a.rs);
        for j in 0..p.n {
            let y = p.b.ptr.wrapping_offset(j as isize * p.b.cs);
            // SAFETY (every read below): indices stay below k, inside row i of a and column j of b.
            let at = |q: usize| unsafe { (*x.add(q), *y.add(q)) };
            let mut v = [[F::ZERO; 8]; 8];
            let mut q = 0;
            while q < k64 {
                for (r, vr) in v.iter_mut().enumerate() {
                    for (l, lane) in vr.iter_mut().enumerate() {
                        let (xv, yv) = at(q + 8 * r + l);
                        *lane = xv.fma(yv, *lane);
                    }
                }
                q += 64;
            }
            let add = |a: [F; 8], b: [F; 8]| core::array::from_fn::<F, 8, _>(|l| a[l] + b[l]);
            let mut acc = add(add(add(v[0], v[1]), add(v[2], v[3])), add(add(v[4], v[5]), add(v[6], v[7])));
            while q < k8 {
                for (l, lane) in acc.iter_mut().enumerate() {
                    let (xv, yv) = at(q + l);
                    *lane = xv.fma(yv, *lane);
                }
                q += 8;
            }
            let mut s = acc[0];
            for &lane in &acc[1..] {
                s = s + lane;
            }
            while q < k {
                let (xv, yv) = at(q);
                s = xv.fma(yv, s);
                q += 1;
            }
            let out = p.out(i, j);
            // SAFETY: out is this product's output element (i, j).
            unsafe { *out = if p.accumulate { s * p.beta + *out } else { s * p.beta } };
        }
    }
}

/// # Safety
/// As [`gemv_col`].
#[inline(always)]
unsafe fn gemv_col_body<F: Float>(p: &Prod<F>, beta_on: Side) {
    // The output runs along the operand that is not scaled: j (b's columns) when a is the scaled
    // vector (m = 1), i (a's rows) when b is (n = 1).
    let outputs = if beta_on == Side::A { p.n } else { p.m };
    for q in 0..p.k {
        // SAFETY (reads): q < k and the indices below address a's row 0 / b's column 0 and the outputs.
        let s = p.beta * unsafe { if beta_on == Side::A { p.a.at(0, q) } else { p.b.at(q, 0) } };
        for o in 0..outputs {
            let (x, out) =
                unsafe { if beta_on == Side::A { (p.b.at(q, o), p.out(0, o)) } else { (p.a.at(o, q), p.out(o, 0)) } };
            // SAFETY: out is this product's output element.
            unsafe { *out = if q == 0 && !p.accumulate { x * s } else { x.fma(s, *out) } };
        }
    }
}

/// The gevv path (k ≤ 2): unfused multiply and add, β applied to the `beta_on` operand.
///
/// # Safety
/// `p`'s elements must be readable and its output writable by this call alone; `p.k` is 1 or 2.
pub(super) unsafe fn gevv<F: Float>(p: &Prod<F>, beta_on: Side) {
    for i in 0..p.m {
        for j in 0..p.n {
            // SAFETY: q < k ≤ 2, inside row i of a and column j of b.
            let term = |q: usize| unsafe {
                let (x, y) = (p.a.at(i, q), p.b.at(q, j));
                if beta_on == Side::A { y * (p.beta * x) } else { x * (p.beta * y) }
            };
            let out = p.out(i, j);
            // SAFETY: out is this product's output element (i, j).
            unsafe {
                let base = if p.accumulate { term(0) + *out } else { term(0) };
                *out = if p.k == 2 { term(1) + base } else { base };
            }
        }
    }
}
