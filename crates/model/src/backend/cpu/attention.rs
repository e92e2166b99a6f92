//! Causal attention over packed variable-length sequences with grouped-query heads.
//!
//! Forward runs one task per (span, query head); backward one task per (span, key/value head), so
//! that the query heads sharing a key/value head add their key/value gradients in one task (no
//! races, fixed summation order). Scores are formed with strided GEMMs straight out of the packed
//! `[rows, heads·head_dim]` buffers; the backward pass recomputes the probabilities from the saved
//! log-sum-exp instead of storing `len²` probabilities per head (as FlashAttention does).

use gemm::Parallelism;
use rayon::prelude::*;

use super::gemm::{MatRef, gemm_strided};
use super::rows::SharedMut;
use crate::backend::{AttnShape, AttnSpan, Scalar};

/// Pointer geometry of one head's block inside a packed buffer.
#[derive(Clone, Copy)]
struct HeadBlock {
    row_start: usize,
    row_width: usize,
    col: usize,
}

impl HeadBlock {
    fn offset(self) -> usize {
        self.row_start * self.row_width + self.col
    }
    /// The block as a `[rows, head_dim]` matrix (or its transpose).
    fn mat<T>(self, base: *const T, transposed: bool) -> MatRef<T> {
        // SAFETY (pointer arithmetic only, no access): callers check blocks lie inside the buffer.
        let ptr = base.wrapping_add(self.offset());
        let (rs, cs) = if transposed { (1, self.row_width as isize) } else { (self.row_width as isize, 1) };
        MatRef { ptr, rs, cs }
    }
}

/// Query rows per block. A span's queries are processed in blocks, each against only the keys its
/// last query may see, which skips most of the masked upper triangle of a causal forward.
const QUERY_BLOCK: usize = 32;

/// A span cut into query blocks; each block is itself a span (its queries are the last of its keys).
fn query_blocks(span: &AttnSpan) -> impl Iterator<Item = AttnSpan> + '_ {
    (0..span.q_len).step_by(QUERY_BLOCK).map(move |i0| {
        let i1 = (i0 + QUERY_BLOCK).min(span.q_len);
        AttnSpan {
            q_start: span.q_start + i0,
            q_len: i1 - i0,
            kv_start: span.kv_start,
            kv_len: span.kv_len - span.q_len + i1,
        }
    })
}

/// The number of keys query `i` of a span may see.
#[inline]
fn visible(span: &AttnSpan, i: usize) -> usize {
    span.kv_len - span.q_len + i + 1
}

fn check_spans(spans: &[AttnSpan], shape: AttnShape, q_len: usize, kv_len: usize) {
    let (qw, kw) = (shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim);
    assert!(shape.kv_heads > 0 && shape.heads.is_multiple_of(shape.kv_heads), "bad head geometry {shape:?}");
    for s in spans {
        assert!(s.q_len <= s.kv_len, "span {s:?} has more queries than keys");
        assert!((s.q_start + s.q_len) * qw <= q_len, "span {s:?} outside the query buffer");
        assert!((s.kv_start + s.kv_len) * kw <= kv_len, "span {s:?} outside the key/value buffer");
    }
}

/// `s[i, j] = scale · q_i·k_j` for one span and (query head, key head) pair, `s` being `[q_len, kv_len]`.
#[allow(clippy::too_many_arguments)]
fn scores<T: Scalar>(
    q: &[T],
    k: &[T],
    span: &AttnSpan,
    qb: HeadBlock,
    kb: HeadBlock,
    head_dim: usize,
    scale: T,
    s: &mut [T],
) {
    // SAFETY: check_spans proved both blocks lie inside q and k; `s` is a local q_len×kv_len buffer.
    unsafe {
        gemm_strided(
            span.q_len,
            span.kv_len,
            head_dim,
            s.as_mut_ptr(),
            span.kv_len as isize,
            false,
            qb.mat(q.as_ptr(), false),
            kb.mat(k.as_ptr(), true),
            scale,
            Parallelism::None,
        );
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn attention<T: Scalar>(
    q: &[T],
    k: &[T],
    v: &[T],
    spans: &[AttnSpan],
    shape: AttnShape,
    out: &mut [T],
    lse: Option<&mut [T]>,
) {
    check_spans(spans, shape, q.len(), k.len().min(v.len()));
    assert!(out.len() == q.len(), "attention output must match the query buffer");
    let AttnShape { heads, kv_heads, head_dim } = shape;
    let (qw, kw) = (heads * head_dim, kv_heads * head_dim);
    let group = heads / kv_heads;
    let scale = T::from_f64(1.0 / (head_dim as f64).sqrt());
    let out_ptr = SharedMut(out.as_mut_ptr());
    let lse_ptr = lse.map(|l| {
        assert!(l.len() * head_dim == q.len(), "lse must be [rows, heads]");
        SharedMut(l.as_mut_ptr())
    });
    let blocks: Vec<AttnSpan> = spans.iter().flat_map(query_blocks).collect();
    let tasks: Vec<(usize, usize)> = (0..blocks.len()).flat_map(|b| (0..heads).map(move |h| (b, h))).collect();
    tasks.into_par_iter().for_each(|(bi, h)| {
        let span = &blocks[bi];
        let g = h / group;
        let qb = HeadBlock { row_start: span.q_start, row_width: qw, col: h * head_dim };
        let kb = HeadBlock { row_start: span.kv_start, row_width: kw, col: g * head_dim };
        let mut s = vec![T::ZERO; span.q_len * span.kv_len];
        scores(q, k, span, qb, kb, head_dim, scale, &mut s);
        for (i, row) in s.chunks_exact_mut(span.kv_len.max(1)).enumerate() {
            let (seen, hidden) = row.split_at_mut(visible(span, i));
            let max = seen.iter().fold(T::NEG_INFINITY, |m, &x| m.max(x));
            let mut sum = T::ZERO;
            for x in seen.iter_mut() {
                *x = (*x - max).exp();
                sum += *x;
            }
            let inv = T::ONE / sum;
            seen.iter_mut().for_each(|x| *x *= inv);
            hidden.fill(T::ZERO);
            if let Some(lp) = lse_ptr {
                // SAFETY: element (q_start + i, h) of lse belongs to this (span, head) task alone.
                unsafe { *lp.get().add((span.q_start + i) * heads + h) = max + sum.ln() };
            }
        }
        // SAFETY: rows q_start..q_start+q_len, columns of head h of `out` are written by this task
        // only (spans' query rows are disjoint, heads are distinct columns); check_spans bounds them.
        unsafe {
            gemm_strided(
                span.q_len,
                head_dim,
                span.kv_len,
                out_ptr.get().add(qb.offset()),
                qw as isize,
                false,
                MatRef { ptr: s.as_ptr(), rs: span.kv_len as isize, cs: 1 },
                HeadBlock { row_start: span.kv_start, row_width: kw, col: g * head_dim }.mat(v.as_ptr(), false),
                T::ONE,
                Parallelism::None,
            );
        }
    });
}

/// Gradients of [`attention`]. Spans' query rows and key/value rows must be disjoint (each span's
/// key/value gradients are added by one task).
#[allow(clippy::too_many_arguments)]
pub(super) fn attention_backward<T: Scalar>(
    q: &[T],
    k: &[T],
    v: &[T],
    out: &[T],
    d_out: &[T],
    lse: &[T],
    spans: &[AttnSpan],
    shape: AttnShape,
    d_q: &mut [T],
    d_k: &mut [T],
    d_v: &mut [T],
) {
    check_spans(spans, shape, q.len(), k.len().min(v.len()));
    assert!(out.len() == q.len() && d_out.len() == q.len() && d_q.len() == q.len(), "attention gradient sizes");
    assert!(d_k.len() == k.len() && d_v.len() == v.len(), "attention key/value gradient sizes");
    let AttnShape { heads, kv_heads, head_dim } = shape;
    let (qw, kw) = (heads * head_dim, kv_heads * head_dim);
    let group = heads / kv_heads;
    let scale = T::from_f64(1.0 / (head_dim as f64).sqrt());
    let (dq_ptr, dk_ptr, dv_ptr) =
        (SharedMut(d_q.as_mut_ptr()), SharedMut(d_k.as_mut_ptr()), SharedMut(d_v.as_mut_ptr()));
    let tasks: Vec<(usize, usize)> = (0..spans.len()).flat_map(|s| (0..kv_heads).map(move |g| (s, g))).collect();
    tasks.into_par_iter().for_each(|(si, g)| {
        let (mut p, mut dp) = (Vec::new(), Vec::new());
        // One span's query blocks run in turn: they share key rows, whose gradients they add into.
        for block in query_blocks(&spans[si]) {
            let span = &block;
            let (ql, kl) = (span.q_len, span.kv_len);
            let kb = HeadBlock { row_start: span.kv_start, row_width: kw, col: g * head_dim };
            p.resize(ql * kl, T::ZERO);
            dp.resize(ql * kl, T::ZERO);
            for h in g * group..(g + 1) * group {
                let qb = HeadBlock { row_start: span.q_start, row_width: qw, col: h * head_dim };
                scores(q, k, span, qb, kb, head_dim, scale, &mut p);
                for (i, row) in p.chunks_exact_mut(kl.max(1)).enumerate() {
                    let l = lse[(span.q_start + i) * heads + h];
                    let (seen, hidden) = row.split_at_mut(visible(span, i));
                    seen.iter_mut().for_each(|x| *x = (*x - l).exp());
                    hidden.fill(T::ZERO);
                }
                // SAFETY (all gemms below): blocks are inside their buffers (check_spans); d_k/d_v rows of
                // this span's kv head g and d_q rows of its query heads belong to this task alone.
                unsafe {
                    // dP = dO · Vᵀ
                    gemm_strided(
                        ql,
                        kl,
                        head_dim,
                        dp.as_mut_ptr(),
                        kl as isize,
                        false,
                        qb.mat(d_out.as_ptr(), false),
                        kb.mat(v.as_ptr(), true),
                        T::ONE,
                        Parallelism::None,
                    );
                    // dV += Pᵀ · dO
                    gemm_strided(
                        kl,
                        head_dim,
                        ql,
                        dv_ptr.get().add(kb.offset()),
                        kw as isize,
                        true,
                        MatRef { ptr: p.as_ptr(), rs: 1, cs: kl as isize },
                        qb.mat(d_out.as_ptr(), false),
                        T::ONE,
                        Parallelism::None,
                    );
                }
                // dS = P ⊙ (dP − rowsum(dO ⊙ O)), kept in dp.
                for (i, (dp_row, p_row)) in dp.chunks_exact_mut(kl.max(1)).zip(p.chunks_exact(kl.max(1))).enumerate() {
                    let at = (span.q_start + i) * qw + h * head_dim;
                    let delta: T =
                        d_out[at..at + head_dim].iter().zip(&out[at..at + head_dim]).map(|(&a, &b)| a * b).sum();
                    dp_row.iter_mut().zip(p_row).for_each(|(d, &pv)| *d = pv * (*d - delta));
                }
                unsafe {
                    // dQ += scale · dS · K
                    gemm_strided(
                        ql,
                        head_dim,
                        kl,
                        dq_ptr.get().add(qb.offset()),
                        qw as isize,
                        true,
                        MatRef { ptr: dp.as_ptr(), rs: kl as isize, cs: 1 },
                        kb.mat(k.as_ptr(), false),
                        scale,
                        Parallelism::None,
                    );
                    // dK += scale · dSᵀ · Q
                    gemm_strided(
                        kl,
                        head_dim,
                        ql,
                        dk_ptr.get().add(kb.offset()),
                        kw as isize,
                        true,
                        MatRef { ptr: dp.as_ptr(), rs: 1, cs: kl as isize },
                        qb.mat(q.as_ptr(), false),
                        scale,
                        Parallelism::None,
                    );
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct evaluation of causal softmax attention, one query at a time.
    fn naive(q: &[f64], k: &[f64], v: &[f64], spans: &[AttnSpan], shape: AttnShape) -> Vec<f64> {
        let AttnShape { heads, kv_heads, head_dim: d } = shape;
        let (qw, kw) = (heads * d, kv_heads * d);
        let mut out = vec![0.0; q.len()];
        for s in spans {
            for i in 0..s.q_len {
                for h in 0..heads {
                    let g = h / (heads / kv_heads);
                    let qi = &q[(s.q_start + i) * qw + h * d..][..d];
                    let keys = visible(s, i);
                    let scores: Vec<f64> = (0..keys)
                        .map(|j| {
                            let kj = &k[(s.kv_start + j) * kw + g * d..][..d];
                            qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f64>() / (d as f64).sqrt()
                        })
                        .collect();
                    let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = scores.iter().map(|x| (x - max).exp()).sum();
                    for (j, sc) in scores.iter().enumerate() {
                        let vj = &v[(s.kv_start + j) * kw + g * d..][..d];
                        let o = &mut out[(s.q_start + i) * qw + h * d..][..d];
                        o.iter_mut().zip(vj).for_each(|(o, x)| *o += (sc - max).exp() / z * x);
                    }
                }
            }
        }
        out
    }

    fn filled(n: usize, salt: u64) -> Vec<f64> {
        (0..n as u64).map(|i| ((i * 2_654_435_761 + salt * 97) % 1000) as f64 / 500.0 - 1.0).collect()
    }

    /// Spans longer than a query block, one of them attending to a longer cached context, agree with
    /// the direct evaluation; the blocked backward agrees with finite differences.
    #[test]
    fn blocked_attention_matches_direct_evaluation_and_finite_differences() {
        let shape = AttnShape { heads: 4, kv_heads: 2, head_dim: 4 };
        let (qw, kw) = (16, 8);
        // Forward with a cached context: 40 queries at the end of 75 keys.
        let spans = [
            AttnSpan { q_start: 0, q_len: 70, kv_start: 0, kv_len: 70 },
            AttnSpan { q_start: 70, q_len: 40, kv_start: 70, kv_len: 75 },
        ];
        let (rows, kv_rows) = (110, 145);
        let (q, k, v) = (filled(rows * qw, 1), filled(kv_rows * kw, 2), filled(kv_rows * kw, 3));
        let mut out = vec![0.0; rows * qw];
        attention(&q, &k, &v, &spans, shape, &mut out, None);
        let want = naive(&q, &k, &v, &spans, shape);
        assert!(out.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12));

        // Backward of L = Σ out·r on a full causal span of 70 (three query blocks).
        let spans = [AttnSpan { q_start: 0, q_len: 70, kv_start: 0, kv_len: 70 }];
        let (q, k, v) = (filled(70 * qw, 4), filled(70 * kw, 5), filled(70 * kw, 6));
        let r = filled(70 * qw, 7);
        let mut out = vec![0.0; 70 * qw];
        let mut lse = vec![0.0; 70 * 4];
        attention(&q, &k, &v, &spans, shape, &mut out, Some(&mut lse));
        let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
        attention_backward(&q, &k, &v, &out, &r, &lse, &spans, shape, &mut dq, &mut dk, &mut dv);
        let loss = |q: &[f64], k: &[f64], v: &[f64]| -> f64 {
            naive(q, k, v, &spans, shape).iter().zip(&r).map(|(a, b)| a * b).sum()
        };
        let h = 1e-6;
        for (which, grad) in [(0, &dq), (1, &dk), (2, &dv)] {
            for i in (0..grad.len()).step_by(7) {
                let mut bufs = [q.clone(), k.clone(), v.clone()];
                bufs[which][i] += h;
                let up = loss(&bufs[0], &bufs[1], &bufs[2]);
                bufs[which][i] -= 2.0 * h;
                let down = loss(&bufs[0], &bufs[1], &bufs[2]);
                let fd = (up - down) / (2.0 * h);
                assert!((fd - grad[i]).abs() < 1e-7 + 1e-6 * fd.abs(), "input {which}[{i}]: {fd} vs {}", grad[i]);
            }
        }
    }
}
