//! Elementwise ops: residual add, bias add and its gradient, SwiGLU and its gradient.

use rayon::prelude::*;

use super::rows::add_column_sums;
use selfplay_tensor::Float;

/// Elements per parallel task for elementwise work.
const ELEM_CHUNK: usize = 1 << 14;

pub(super) fn add<T: Float>(x: &mut [T], y: &[T]) {
    x.par_chunks_mut(ELEM_CHUNK).zip(y.par_chunks(ELEM_CHUNK)).for_each(|(x, y)| {
        x.iter_mut().zip(y).for_each(|(a, &b)| *a += b);
    });
}

pub(super) fn add_bias<T: Float>(x: &mut [T], bias: &[T]) {
    x.par_chunks_mut(bias.len()).with_min_len(64).for_each(|row| {
        row.iter_mut().zip(bias).for_each(|(a, &b)| *a += b);
    });
}

pub(super) fn bias_backward<T: Float>(d_y: &[T], cols: usize, d_bias: &mut [T]) {
    let row_of = |row: usize, acc: &mut [T]| {
        acc.iter_mut().zip(&d_y[row * cols..(row + 1) * cols]).for_each(|(a, &d)| *a += d);
    };
    add_column_sums(d_y.len() / cols, cols, row_of, d_bias);
}

#[inline]
fn sigmoid<T: Float>(x: T) -> T {
    T::ONE / (T::ONE + (-x).exp())
}

pub(super) fn swiglu<T: Float>(gate: &[T], up: &[T], out: &mut [T]) {
    out.par_chunks_mut(ELEM_CHUNK).zip(gate.par_chunks(ELEM_CHUNK)).zip(up.par_chunks(ELEM_CHUNK)).for_each(
        |((out, gate), up)| {
            for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
                *o = g * sigmoid(g) * u;
            }
        },
    );
}

/// `d_up = d_out·silu(g)`, `d_gate = d_out·u·σ(g)·(1 + g·(1 − σ(g)))`.
pub(super) fn swiglu_backward<T: Float>(gate: &[T], up: &[T], d_out: &[T], d_gate: &mut [T], d_up: &mut [T]) {
    d_gate
        .par_chunks_mut(ELEM_CHUNK)
        .zip(d_up.par_chunks_mut(ELEM_CHUNK))
        .zip(gate.par_chunks(ELEM_CHUNK).zip(up.par_chunks(ELEM_CHUNK)).zip(d_out.par_chunks(ELEM_CHUNK)))
        .for_each(|((d_gate, d_up), ((gate, up), d_out))| {
            for ((((dg, du), &g), &u), &d) in d_gate.iter_mut().zip(d_up.iter_mut()).zip(gate).zip(up).zip(d_out) {
                let s = sigmoid(g);
                *du = d * g * s;
                *dg = d * u * s * (T::ONE + g * (T::ONE - s));
            }
        });
}
