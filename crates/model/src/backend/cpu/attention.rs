//! Causal attention over packed variable-length sequences with grouped-query heads.
//!
//! Forward runs one task per (span, query head); backward one task per (span, key/value head), so
//! that the query heads sharing a key/value head add their key/value gradients in one task (no
//! races, fixed summation order). Scores are formed with strided GEMMs straight out of the packed
//! `[rows, heads·head_dim]` buffers; the backward pass recomputes the probabilities from the saved
//! log-sum-exp instead of storing `len²` probabilities per head (as FlashAttention does).

use rayon::prelude::*;

use super::gemm::{MatRef, Threads, gemm_strided};
use super::rows::SharedMut;
use super::scratch::{Slot, with_scratch};

use crate::backend::{AttnShape, AttnSpan, PagedSpan};
use selfplay_tensor::Float;

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
    (0..span.q_len.div_ceil(QUERY_BLOCK)).map(move |b| query_block(span, b))
}

/// The `b`-th query block of `span` (see [`query_blocks`]).
fn query_block(span: &AttnSpan, b: usize) -> AttnSpan {
    let (i0, i1) = (b * QUERY_BLOCK, ((b + 1) * QUERY_BLOCK).min(span.q_len));
    AttnSpan {
        q_start: span.q_start + i0,
        q_len: i1 - i0,
        kv_start: span.kv_start,
        kv_len: span.kv_len - span.q_len + i1,
    }
}

/// The largest score matrix (`q_len × kv_len`) of any query block of `spans`: the length every task
/// of one call asks of its scratch, so a thread's scratch reaches its final size on its first task.
fn max_block_scores(spans: impl Iterator<Item = (usize, usize)>) -> usize {
    spans.map(|(q_len, kv_len)| q_len.min(QUERY_BLOCK) * kv_len).max().unwrap_or(0)
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
fn scores<T: Float>(
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
            Threads::One,
        );
    }
}

/// Turns each row of `s` (`[q_len, kv_len]` scaled scores of `span`'s queries at query head `h`) into
/// causal softmax probabilities (zero beyond the keys a query sees) and stores each row's log-sum-exp
/// at `(q_start + i, h)` of `lse` (`[rows, heads]`) when given.
///
/// # Safety
/// `lse`, when given, must address those elements, with no other thread writing them.
unsafe fn causal_softmax<T: Float>(s: &mut [T], span: &AttnSpan, h: usize, heads: usize, lse: Option<SharedMut<T>>) {
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
        if let Some(lp) = lse {
            // SAFETY: the caller's contract.
            unsafe { *lp.get().add((span.q_start + i) * heads + h) = max + sum.ln() };
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn attention<T: Float>(
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
    let AttnShape { heads, head_dim, .. } = shape;
    let out_ptr = SharedMut(out.as_mut_ptr());
    let lse_ptr = lse.map(|l| {
        assert!(l.len() * head_dim == q.len(), "lse must be [rows, heads]");
        SharedMut(l.as_mut_ptr())
    });
    let max_scores = max_block_scores(spans.iter().map(|s| (s.q_len, s.kv_len)));
    for_each_block_head(
        spans.len(),
        |s| spans[s].q_len,
        heads,
        |s, b, h| attention_task(q, k, v, &query_block(&spans[s], b), h, shape, max_scores, out_ptr, lse_ptr),
    );
}

/// Runs `task(span, query block, head)` for every query block of every span (`q_len(span)` queries
/// each) and every query head: one flat parallel loop over the tasks in span, block, head order, the
/// order and splitting a collected task list would have, without collecting one. The index of each
/// span's first task is kept in this thread's scratch (the tasks borrow other slots), and a task
/// finds its span by binary search.
fn for_each_block_head(
    spans: usize,
    q_len: impl Fn(usize) -> usize,
    heads: usize,
    task: impl Fn(usize, usize, usize) + Sync,
) {
    with_scratch::<usize, _>(Slot::TaskStarts, spans, |starts| {
        let mut tasks = 0;
        for (s, start) in starts.iter_mut().enumerate() {
            *start = tasks;
            tasks += q_len(s).div_ceil(QUERY_BLOCK) * heads;
        }
        let starts = &*starts;
        (0..tasks).into_par_iter().for_each(|t| {
            // The last span starting at or before t (a span with no queries shares its start with the
            // next one, which owns the task).
            let s = starts.partition_point(|&first| first <= t) - 1;
            let local = t - starts[s];
            task(s, local / heads, local % heads)
        });
    });
}

/// One (query block, query head) task of [`attention`]: its scores in this thread's scratch, their
/// softmax, and the head's output rows of the block.
#[allow(clippy::too_many_arguments)]
fn attention_task<T: Float>(
    q: &[T],
    k: &[T],
    v: &[T],
    span: &AttnSpan,
    h: usize,
    shape: AttnShape,
    max_scores: usize,
    out_ptr: SharedMut<T>,
    lse_ptr: Option<SharedMut<T>>,
) {
    let AttnShape { heads, kv_heads, head_dim } = shape;
    let (qw, kw) = (heads * head_dim, kv_heads * head_dim);
    let g = h / (heads / kv_heads);
    let scale = T::from_f64(1.0 / (head_dim as f64).sqrt());
    let qb = HeadBlock { row_start: span.q_start, row_width: qw, col: h * head_dim };
    let kb = HeadBlock { row_start: span.kv_start, row_width: kw, col: g * head_dim };
    // The scores are written whole by `scores` before anything reads them. The task's GEMMs borrow
    // only the GEMM slots.
    with_scratch::<T, _>(Slot::Scores, max_scores, |s| {
        let s = &mut s[..span.q_len * span.kv_len];
        scores(q, k, span, qb, kb, head_dim, scale, s);
        // SAFETY: this (span, head) task is the only writer of lse's rows of the span at head h.
        unsafe { causal_softmax(s, span, h, heads, lse_ptr) };
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
                Threads::One,
            );
        }
    });
}

/// `a · b` with eight independent partial sums, so the loop vectorises (a single running sum would
/// pin the order of every addition).
#[inline]
fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let mut lanes = [T::ZERO; 8];
    let (a8, b8) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: T = a8.remainder().iter().zip(b8.remainder()).map(|(&x, &y)| x * y).sum();
    for (x, y) in a8.zip(b8) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    lanes.into_iter().sum::<T>() + tail
}

/// [`attention`] with each span's keys and values read in place from paged pools through its block
/// table; nothing is gathered. One task per (query block, query head), as in [`attention`]. Rows are
/// visited directly rather than through GEMM calls: a decode step has one query and a few blocks per
/// head, where a GEMM call per block would cost more in dispatch than in arithmetic.
#[allow(clippy::too_many_arguments)]
pub(super) fn paged_attention<T: Float>(
    q: &[T],
    k_pool: &[T],
    v_pool: &[T],
    spans: &[PagedSpan<'_>],
    block_size: usize,
    shape: AttnShape,
    out: &mut [T],
    lse: Option<&mut [T]>,
) {
    let AttnShape { heads, kv_heads, head_dim } = shape;
    let (qw, kw) = (heads * head_dim, kv_heads * head_dim);
    assert!(kv_heads > 0 && heads.is_multiple_of(kv_heads) && block_size > 0, "bad geometry {shape:?}");
    assert!(out.len() == q.len(), "attention output must match the query buffer");
    let pool_rows = k_pool.len().min(v_pool.len()) / kw.max(1);
    for s in spans {
        assert!(s.q_len <= s.kv_len && (s.q_start + s.q_len) * qw <= q.len(), "span {s:?} outside the queries");
        let used = s.kv_len.div_ceil(block_size);
        assert!(s.blocks.len() >= used, "block table of {s:?} too short");
        assert!(s.blocks[..used].iter().all(|b| (b.index() + 1) * block_size <= pool_rows), "block outside the pool");
    }
    let group = heads / kv_heads;
    let scale = T::from_f64(1.0 / (head_dim as f64).sqrt());
    let out_ptr = SharedMut(out.as_mut_ptr());
    let lse_ptr = lse.map(|l| {
        assert!(l.len() * head_dim == q.len(), "lse must be [rows, heads]");
        SharedMut(l.as_mut_ptr())
    });
    let max_scores = max_block_scores(spans.iter().map(|s| (s.q_len, s.kv_len)));
    // One task per (query block, query head) of every span.
    for_each_block_head(
        spans.len(),
        |s| spans[s].q_len,
        heads,
        |si, b, h| {
            let paged = &spans[si];
            // The span's queries as an `AttnSpan` (`kv_start` is unused: keys go through the block table).
            let whole = AttnSpan { q_start: paged.q_start, q_len: paged.q_len, kv_start: 0, kv_len: paged.kv_len };
            let (span, table) = (&query_block(&whole, b), paged.blocks);
            let (ql, kl, col) = (span.q_len, span.kv_len, (h / group) * head_dim);
            // Pool row of key j: its block's first row plus its offset in the block.
            let pool_row = |j: usize| table[j / block_size].index() * block_size + j % block_size;
            let query = |i: usize| &q[(span.q_start + i) * qw + h * head_dim..][..head_dim];
            with_scratch::<T, _>(Slot::Scores, max_scores, |s| {
                // Every score a query sees is written here; `causal_softmax` zeroes the rest.
                let s = &mut s[..ql * kl];
                for j in 0..kl {
                    let key = &k_pool[pool_row(j) * kw + col..][..head_dim];
                    for i in (0..ql).filter(|&i| j < visible(span, i)) {
                        s[i * kl + j] = scale * dot(query(i), key);
                    }
                }
                // SAFETY: this (query block, head) task is the only writer of lse's rows of the block at head h.
                unsafe { causal_softmax(s, span, h, heads, lse_ptr) };
                for i in 0..ql {
                    // SAFETY: row q_start + i, columns of head h of `out` belong to this task alone (query
                    // blocks are disjoint rows, heads distinct columns), inside `out` by the span checks above.
                    let o = unsafe {
                        std::slice::from_raw_parts_mut(
                            out_ptr.get().add((span.q_start + i) * qw + h * head_dim),
                            head_dim,
                        )
                    };
                    o.fill(T::ZERO);
                    for (j, &p) in s[i * kl..i * kl + visible(span, i)].iter().enumerate() {
                        let value = &v_pool[pool_row(j) * kw + col..][..head_dim];
                        o.iter_mut().zip(value).for_each(|(o, &x)| *o += p * x);
                    }
                }
            });
        },
    );
}

/// Gradients of [`attention`]. Spans' query rows and key/value rows must be disjoint (each span's
/// key/value gradients are added by one task).
#[allow(clippy::too_many_arguments)]
pub(super) fn attention_backward<T: Float>(
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
    let max_scores = max_block_scores(spans.iter().map(|s| (s.q_len, s.kv_len)));
    (0..spans.len() * kv_heads).into_par_iter().for_each(|t| {
        let (si, g) = (t / kv_heads, t % kv_heads);
        // The probabilities and their gradients in this thread's scratch: both are written whole (by
        // `scores` and the dP product) before they are read. The GEMMs below borrow only the GEMM slots.
        with_scratch::<T, _>(Slot::Scores, max_scores, |p_all| {
            with_scratch::<T, _>(Slot::ScoreGrads, max_scores, |dp_all| {
                // One span's query blocks run in turn: they share key rows, whose gradients they add into.
                for block in query_blocks(&spans[si]) {
                    let span = &block;
                    let (ql, kl) = (span.q_len, span.kv_len);
                    let kb = HeadBlock { row_start: span.kv_start, row_width: kw, col: g * head_dim };
                    let (p, dp) = (&mut p_all[..ql * kl], &mut dp_all[..ql * kl]);
                    for h in g * group..(g + 1) * group {
                        let qb = HeadBlock { row_start: span.q_start, row_width: qw, col: h * head_dim };
                        scores(q, k, span, qb, kb, head_dim, scale, p);
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
                                Threads::One,
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
                                Threads::One,
                            );
                        }
                        // dS = P ⊙ (dP − rowsum(dO ⊙ O)), kept in dp.
                        for (i, (dp_row, p_row)) in
                            dp.chunks_exact_mut(kl.max(1)).zip(p.chunks_exact(kl.max(1))).enumerate()
                        {
                            let at = (span.q_start + i) * qw + h * head_dim;
                            let delta: T = d_out[at..at + head_dim]
                                .iter()
                                .zip(&out[at..at + head_dim])
                                .map(|(&a, &b)| a * b)
                                .sum();
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
                                Threads::One,
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
                                Threads::One,
                            );
                        }
                    }
                }
            })
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfplay_kvcache::BlockId;

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

    /// Keys and values scattered into a pool through shuffled block tables (block size 5, so spans end
    /// mid-block) give the direct evaluation's outputs, and the dense kernel's log-sum-exps: a prefill
    /// longer than a query block, a chunk after a cached context, and single-query decode steps.
    #[test]
    fn paged_attention_reads_through_block_tables() {
        let shape = AttnShape { heads: 4, kv_heads: 2, head_dim: 4 };
        let (qw, kw, bs) = (16, 8, 5);
        let spans = [
            AttnSpan { q_start: 0, q_len: 37, kv_start: 0, kv_len: 37 },
            AttnSpan { q_start: 37, q_len: 9, kv_start: 37, kv_len: 23 },
            AttnSpan { q_start: 46, q_len: 1, kv_start: 60, kv_len: 11 },
            AttnSpan { q_start: 47, q_len: 1, kv_start: 71, kv_len: 1 },
        ];
        let (rows, kv_rows) = (48, 72);
        let (q, k, v) = (filled(rows * qw, 8), filled(kv_rows * kw, 9), filled(kv_rows * kw, 10));
        let pool_blocks = 20;
        // Block b of the pool is handed out in a shuffled order (7 is coprime with 20).
        let mut next = (0..pool_blocks).map(|i| BlockId((i * 7 % pool_blocks) as u32));
        let tables: Vec<Vec<BlockId>> =
            spans.iter().map(|s| next.by_ref().take(s.kv_len.div_ceil(bs)).collect()).collect();
        let (mut k_pool, mut v_pool) = (vec![f64::NAN; pool_blocks * bs * kw], vec![f64::NAN; pool_blocks * bs * kw]);
        for (s, table) in spans.iter().zip(&tables) {
            for j in 0..s.kv_len {
                let row = table[j / bs].index() * bs + j % bs;
                k_pool[row * kw..(row + 1) * kw].copy_from_slice(&k[(s.kv_start + j) * kw..][..kw]);
                v_pool[row * kw..(row + 1) * kw].copy_from_slice(&v[(s.kv_start + j) * kw..][..kw]);
            }
        }
        let paged: Vec<PagedSpan<'_>> = spans
            .iter()
            .zip(&tables)
            .map(|(s, t)| PagedSpan { q_start: s.q_start, q_len: s.q_len, kv_len: s.kv_len, blocks: t })
            .collect();
        let (mut out, mut lse) = (vec![0.0; rows * qw], vec![0.0; rows * 4]);
        paged_attention(&q, &k_pool, &v_pool, &paged, bs, shape, &mut out, Some(&mut lse));
        let want = naive(&q, &k, &v, &spans, shape);
        assert!(out.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12));
        let (mut dense_out, mut dense_lse) = (vec![0.0; rows * qw], vec![0.0; rows * 4]);
        attention(&q, &k, &v, &spans, shape, &mut dense_out, Some(&mut dense_lse));
        assert!(lse.iter().zip(&dense_lse).all(|(a, b)| (a - b).abs() < 1e-12));
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
