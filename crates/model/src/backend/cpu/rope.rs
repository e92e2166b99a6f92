//! Rotary position embedding, Hugging Face `rotate_half` convention: for each head, the first and
//! second halves are rotated pairwise, `(x1, x2) -> (x1·cos − x2·sin, x2·cos + x1·sin)` with angle
//! `pos · theta^(−2i/head_dim)`. Angles and their sines are computed in `f64` and rounded to `T` once.
//!
//! A `(cos, sin)` table is shared by all heads, in one of two forms:
//! * **Dense** (a batch that repeats positions: training, prefill): one row per position `0..=max`,
//!   kept between calls in a per-thread cache keyed by what determines it (`theta`, `head_dim`, the
//!   element type). The forward and inverse rotations, and every layer, read the same table; it grows
//!   (to a power of two of positions) only when a batch reaches a position it does not cover.
//! * **Per row** (decode steps deep into a cache: fewer rows than positions): one row per input row,
//!   computed on each call into scratch, so a decode step's cost does not depend on how deep it is.
//!
//! Either way an entry's bits are the same: `T::from_f64(cos)` and `T::from_f64(sin)`, the inverse
//! rotation negating the sine after rounding (rounding to nearest is symmetric, so this equals
//! rounding the negated sine).

use std::any::Any;
use std::cell::RefCell;

use rayon::prelude::*;

use super::rows::ROW_CHUNK;
use super::scratch::{Slot, with_scratch};
use crate::backend::RopeDirection;
use selfplay_tensor::Float;

/// The dense table of one `(theta, head_dim)` and element type: `(cos, sin)` of position `p`,
/// frequency `i` at `p · half + i`, for positions `0..positions`.
struct Table<T> {
    theta_bits: u64,
    head_dim: usize,
    positions: usize,
    cos_sin: Vec<(T, T)>,
}

thread_local! {
    /// This thread's dense table (a `Table<T>` for the element type that last used it).
    static DENSE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Writes `theta^(−2i/head_dim)` for `i < freqs.len()`.
fn inverse_frequencies(theta: f64, head_dim: usize, freqs: &mut [f64]) {
    for (i, f) in freqs.iter_mut().enumerate() {
        *f = theta.powf(-((2 * i) as f64) / head_dim as f64);
    }
}

/// `(cos, sin)` of `pos · f` for each frequency, rounded to `T`.
fn angles<T: Float>(pos: u32, freqs: &[f64]) -> impl Iterator<Item = (T, T)> + '_ {
    freqs.iter().map(move |&f| {
        let (s, c) = (pos as f64 * f).sin_cos();
        (T::from_f64(c), T::from_f64(s))
    })
}

/// Runs `f` on the dense table covering positions `0..=max_pos`, building or growing this thread's
/// cached one first if it does not.
fn with_dense_table<T: Float, R>(theta: f64, head_dim: usize, max_pos: u32, f: impl FnOnce(&[(T, T)]) -> R) -> R {
    let half = head_dim / 2;
    DENSE.with(|cell| {
        let mut held = cell.borrow_mut();
        let fits = |t: &Table<T>| t.theta_bits == theta.to_bits() && t.head_dim == head_dim;
        if !held.as_ref().and_then(|t| t.downcast_ref::<Table<T>>()).is_some_and(fits) {
            let fresh = Table::<T> { theta_bits: theta.to_bits(), head_dim, positions: 0, cos_sin: Vec::new() };
            *held = Some(Box::new(fresh));
        }
        let Some(table) = held.as_mut().and_then(|t| t.downcast_mut::<Table<T>>()) else {
            unreachable!("the cache was just set to a Table<T>")
        };
        let need = max_pos as usize + 1;
        if table.positions < need {
            // Whole powers of two of positions: a run whose sequences grow regrows the table rarely.
            let grown = need.next_power_of_two();
            table.cos_sin.reserve_exact((grown - table.positions) * half);
            with_scratch::<f64, _>(Slot::RopeFreqs, half, |freqs| {
                inverse_frequencies(theta, head_dim, freqs);
                for pos in table.positions..grown {
                    table.cos_sin.extend(angles::<T>(pos as u32, freqs));
                }
            });
            table.positions = grown;
        }
        f(&table.cos_sin)
    })
}

pub(super) fn rope<T: Float>(
    x: &mut [T],
    positions: &[u32],
    heads: usize,
    head_dim: usize,
    theta: f64,
    direction: RopeDirection,
) {
    let half = head_dim / 2;
    let sign = match direction {
        RopeDirection::Forward => T::ONE,
        RopeDirection::Inverse => -T::ONE,
    };
    let max_pos = positions.iter().copied().max().unwrap_or(0);
    let dense = positions.len() > max_pos as usize;
    // Rotates every row with its angles: row `r` reads table row `pos` (dense) or `r` (per row).
    let mut rotate = |table: &[(T, T)]| {
        x.par_chunks_mut(heads * head_dim).zip(positions.par_iter()).enumerate().with_min_len(ROW_CHUNK).for_each(
            |(r, (row, &pos))| {
                let at = if dense { pos as usize } else { r };
                let angles = &table[at * half..(at + 1) * half];
                for head in row.chunks_exact_mut(head_dim) {
                    let (x1, x2) = head.split_at_mut(half);
                    for ((a, b), &(c, s)) in x1.iter_mut().zip(x2.iter_mut()).zip(angles) {
                        let (u, v, s) = (*a, *b, s * sign);
                        *a = u * c - v * s;
                        *b = v * c + u * s;
                    }
                }
            },
        );
    };
    if dense {
        with_dense_table(theta, head_dim, max_pos, rotate);
    } else {
        with_scratch::<f64, _>(Slot::RopeFreqs, half, |freqs| {
            inverse_frequencies(theta, head_dim, freqs);
            with_scratch::<(T, T), _>(Slot::RopeRows, positions.len() * half, |table| {
                for (row, &pos) in table.chunks_exact_mut(half.max(1)).zip(positions) {
                    row.iter_mut().zip(angles::<T>(pos, freqs)).for_each(|(e, a)| *e = a);
                }
                rotate(table);
            })
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rotation as first written: a table built on every call, the sign applied before rounding.
    fn direct(x: &mut [f32], positions: &[u32], heads: usize, head_dim: usize, theta: f64, sign: f64) {
        let half = head_dim / 2;
        for (row, &pos) in x.chunks_exact_mut(heads * head_dim).zip(positions) {
            for head in row.chunks_exact_mut(head_dim) {
                let (x1, x2) = head.split_at_mut(half);
                for (i, (a, b)) in x1.iter_mut().zip(x2.iter_mut()).enumerate() {
                    let f = theta.powf(-((2 * i) as f64) / head_dim as f64);
                    let (s, c) = (pos as f64 * f).sin_cos();
                    let (c, s) = (c as f32, (sign * s) as f32);
                    let (u, v) = (*a, *b);
                    *a = u * c - v * s;
                    *b = v * c + u * s;
                }
            }
        }
    }

    /// Dense batches (before and after the cached table grows, with another theta in between) and
    /// per-row decode calls, in both directions, give the direct evaluation's bits.
    #[test]
    fn cached_and_per_row_tables_give_the_direct_bits() {
        let (heads, head_dim) = (3, 8);
        let cases: [(Vec<u32>, f64); 5] = [
            ((0..20).chain(0..7).collect(), 10000.0),
            ((0..5).collect(), 500.0),
            ((0..40).chain(0..40).collect(), 10000.0),
            (vec![77, 3, 1000], 10000.0),
            (vec![5, 5, 6], 10000.0),
        ];
        for (positions, theta) in &cases {
            for (direction, sign) in [(RopeDirection::Forward, 1.0), (RopeDirection::Inverse, -1.0)] {
                let x: Vec<f32> =
                    (0..positions.len() * heads * head_dim).map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0).collect();
                let (mut got, mut want) = (x.clone(), x);
                rope(&mut got, positions, heads, head_dim, *theta, direction);
                direct(&mut want, positions, heads, head_dim, *theta, sign);
                assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{positions:?} {direction:?}");
            }
        }
    }
}
