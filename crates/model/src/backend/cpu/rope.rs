//! Rotary position embedding, Hugging Face `rotate_half` convention: for each head, the first and
//! second halves are rotated pairwise, `(x1, x2) -> (x1·cos − x2·sin, x2·cos + x1·sin)` with angle
//! `pos · theta^(−2i/head_dim)`. Angles and their sines are computed in `f64`, once per distinct position.

use rayon::prelude::*;

use super::rows::ROW_CHUNK;
use crate::backend::RopeDirection;
use selfplay_tensor::Float;

pub(super) fn rope<T: Float>(
    x: &mut [T],
    positions: &[u32],
    heads: usize,
    head_dim: usize,
    theta: f64,
    direction: RopeDirection,
) {
    let half = head_dim / 2;
    let inv_freq: Vec<f64> = (0..half).map(|i| theta.powf(-((2 * i) as f64) / head_dim as f64)).collect();
    let sign = match direction {
        RopeDirection::Forward => 1.0,
        RopeDirection::Inverse => -1.0,
    };
    // A (cos, sin) table shared by all heads: one row per position 0..=max when the batch repeats
    // positions (training batches), else one row per input row (decode steps deep into a cache).
    let max_pos = positions.iter().copied().max().unwrap_or(0);
    let dense = positions.len() > max_pos as usize;
    let table_positions: Vec<u32> = if dense { (0..=max_pos).collect() } else { positions.to_vec() };
    let table: Vec<(T, T)> = table_positions
        .iter()
        .flat_map(|&pos| {
            inv_freq.iter().map(move |&f| {
                let (s, c) = (pos as f64 * f).sin_cos();
                (T::from_f64(c), T::from_f64(sign * s))
            })
        })
        .collect();
    x.par_chunks_mut(heads * head_dim).zip(positions.par_iter()).enumerate().with_min_len(ROW_CHUNK).for_each(
        |(r, (row, &pos))| {
            let at = if dense { pos as usize } else { r };
            let angles = &table[at * half..(at + 1) * half];
            for head in row.chunks_exact_mut(head_dim) {
                let (x1, x2) = head.split_at_mut(half);
                for ((a, b), &(c, s)) in x1.iter_mut().zip(x2.iter_mut()).zip(angles) {
                    let (u, v) = (*a, *b);
                    *a = u * c - v * s;
                    *b = v * c + u * s;
                }
            }
        },
    );
}
