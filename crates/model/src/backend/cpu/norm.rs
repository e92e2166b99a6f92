//! RMSNorm forward and backward on rows.

use rayon::prelude::*;

use super::rows::{ROW_CHUNK, add_column_sums};
use selfplay_tensor::Float;

pub(super) fn rms_norm<T: Float>(x: &[T], w: &[T], eps: f64, cols: usize, out: &mut [T], inv_rms: &mut [T]) {
    let eps = T::from_f64(eps);
    let n = T::from_f64(cols as f64);
    out.par_chunks_mut(cols).zip(inv_rms.par_iter_mut()).zip(x.par_chunks(cols)).with_min_len(ROW_CHUNK).for_each(
        |((out, inv), x)| {
            let mean_sq = x.iter().map(|&v| v * v).sum::<T>() / n;
            let r = T::ONE / (mean_sq + eps).sqrt();
            *inv = r;
            for ((o, &xv), &wv) in out.iter_mut().zip(x).zip(w) {
                *o = xv * r * wv;
            }
        },
    );
}

/// With `g = d_out·w`: `d_x += r·g − x·r³·mean(g·x)`, `d_w += Σ_rows d_out·x·r`.
#[allow(clippy::too_many_arguments)]
pub(super) fn rms_norm_backward<T: Float>(
    d_out: &[T],
    x: &[T],
    w: &[T],
    inv_rms: &[T],
    cols: usize,
    d_x: &mut [T],
    d_w: &mut [T],
) {
    let n = T::from_f64(cols as f64);
    d_x.par_chunks_mut(cols)
        .zip(d_out.par_chunks(cols))
        .zip(x.par_chunks(cols))
        .zip(inv_rms.par_iter())
        .with_min_len(ROW_CHUNK)
        .for_each(|(((dx, dy), x), &r)| {
            let dot = dy.iter().zip(w).zip(x).map(|((&d, &wv), &xv)| d * wv * xv).sum::<T>() / n;
            let coef = dot * r * r * r;
            for (((dxv, &d), &wv), &xv) in dx.iter_mut().zip(dy).zip(w).zip(x) {
                *dxv += r * d * wv - xv * coef;
            }
        });
    let rows = inv_rms.len();
    let d_w_row = |row: usize, acc: &mut [T]| {
        let r = inv_rms[row];
        let (dy, x) = (&d_out[row * cols..(row + 1) * cols], &x[row * cols..(row + 1) * cols]);
        for ((a, &d), &xv) in acc.iter_mut().zip(dy).zip(x) {
            *a += d * xv * r;
        }
    };
    add_column_sums(rows, cols, d_w_row, d_w);
}
