//! [`CountingBackend`]: a backend that counts every op it is asked for and delegates it to another
//! host-memory backend (the CPU's by default). It proves a model really runs on the backend it was given,
//! and it is the template of a user's own kernel: wrap, override one op, delegate the rest.
//!
//! While one of its ops runs, [`inside_op`] is true on the calling thread: a test's counting allocator tells
//! the kernels' allocations from the model's own with it.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use rand_chacha::ChaCha8Rng;

use super::{AttnShape, AttnSpan, Backend, BackendResult, CpuBackend, Gemm, HostAccess, PagedSpan, RopeDirection};
use crate::error::ModelError;
use crate::sampler::{Sampled, SamplingParams};

thread_local! {
    /// Nesting depth of [`CountingBackend`] ops running on this thread (const-initialised: reading it never
    /// allocates, so an allocator may).
    static OPS_RUNNING: Cell<u32> = const { Cell::new(0) };
}

/// Whether a [`CountingBackend`] op is running on this thread (false on a thread being torn down).
pub fn inside_op() -> bool {
    OPS_RUNNING.try_with(Cell::get).unwrap_or(0) > 0
}

/// Marks this thread as inside an op while alive.
struct RunningOp;

impl RunningOp {
    fn enter() -> Self {
        OPS_RUNNING.with(|d| d.set(d.get() + 1));
        RunningOp
    }
}

impl Drop for RunningOp {
    fn drop(&mut self) {
        OPS_RUNNING.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Counts calls per op name and runs each on the inner backend `B`. Clones share their counts, so every
/// model built from one backend (a policy, its reference, its value model) adds to the same tally.
#[derive(Debug, Clone, Default)]
pub struct CountingBackend<B = CpuBackend> {
    inner: B,
    counts: Arc<Mutex<BTreeMap<&'static str, u64>>>,
}

impl<B> CountingBackend<B> {
    /// Wraps `inner` with zeroed counts.
    pub fn new(inner: B) -> Self {
        CountingBackend { inner, counts: Arc::default() }
    }

    /// Calls of each op so far (ops never called are absent).
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Calls of all ops together.
    pub fn total(&self) -> u64 {
        self.counts().values().sum()
    }

    /// Counts a call of `op`; the thread is inside the op until the returned guard drops.
    #[must_use]
    fn tick(&self, op: &'static str) -> RunningOp {
        let running = RunningOp::enter();
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner).entry(op).or_default() += 1;
        running
    }
}

impl<B: HostAccess + Backend<f32, Buf = [f32], Owned = Vec<f32>>> HostAccess for CountingBackend<B> {
    fn as_host(buf: &[f32]) -> Option<&[f32]> {
        Some(buf)
    }
    fn from_host(data: &[f32]) -> Option<&[f32]> {
        Some(data)
    }
    fn from_host_mut(data: &mut [f32]) -> Option<&mut [f32]> {
        Some(data)
    }
}

impl<B: Backend<f32, Buf = [f32], Owned = Vec<f32>>> Backend<f32> for CountingBackend<B> {
    type Buf = [f32];
    type Owned = Vec<f32>;

    fn zeros(&self, len: usize) -> BackendResult<Vec<f32>> {
        let _op = self.tick("zeros");
        self.inner.zeros(len)
    }
    fn upload(&self, data: &[f32]) -> BackendResult<Vec<f32>> {
        let _op = self.tick("upload");
        self.inner.upload(data)
    }
    fn download(&self, buf: &[f32], out: &mut [f32]) -> BackendResult {
        let _op = self.tick("download");
        self.inner.download(buf, out)
    }
    fn fill_zero(&self, buf: &mut [f32]) -> BackendResult {
        let _op = self.tick("fill_zero");
        self.inner.fill_zero(buf)
    }
    fn copy_rows(&self, src: &[f32], sr: usize, dst: &mut [f32], dr: usize, rows: usize, cols: usize) -> BackendResult {
        let _op = self.tick("copy_rows");
        self.inner.copy_rows(src, sr, dst, dr, rows, cols)
    }
    fn embedding(&self, table: &[f32], ids: &[u32], dim: usize, out: &mut [f32]) -> BackendResult {
        let _op = self.tick("embedding");
        self.inner.embedding(table, ids, dim, out)
    }
    fn embedding_backward(&self, d_out: &[f32], ids: &[u32], dim: usize, d_table: &mut [f32]) -> BackendResult {
        let _op = self.tick("embedding_backward");
        self.inner.embedding_backward(d_out, ids, dim, d_table)
    }
    fn gemm(&self, g: Gemm, a: &[f32], b: &[f32], c: &mut [f32]) -> BackendResult {
        let _op = self.tick("gemm");
        self.inner.gemm(g, a, b, c)
    }
    fn add_bias(&self, x: &mut [f32], bias: &[f32], cols: usize) -> BackendResult {
        let _op = self.tick("add_bias");
        self.inner.add_bias(x, bias, cols)
    }
    fn bias_backward(&self, d_y: &[f32], cols: usize, d_bias: &mut [f32]) -> BackendResult {
        let _op = self.tick("bias_backward");
        self.inner.bias_backward(d_y, cols, d_bias)
    }
    fn add(&self, x: &mut [f32], y: &[f32]) -> BackendResult {
        let _op = self.tick("add");
        self.inner.add(x, y)
    }
    fn rms_norm(&self, x: &[f32], w: &[f32], eps: f64, cols: usize, out: &mut [f32], inv: &mut [f32]) -> BackendResult {
        let _op = self.tick("rms_norm");
        self.inner.rms_norm(x, w, eps, cols, out, inv)
    }
    #[allow(clippy::too_many_arguments)]
    fn rms_norm_backward(
        &self,
        d_out: &[f32],
        x: &[f32],
        w: &[f32],
        inv: &[f32],
        cols: usize,
        d_x: &mut [f32],
        d_w: &mut [f32],
    ) -> BackendResult {
        let _op = self.tick("rms_norm_backward");
        self.inner.rms_norm_backward(d_out, x, w, inv, cols, d_x, d_w)
    }
    fn rope(
        &self,
        x: &mut [f32],
        pos: &[u32],
        heads: usize,
        hd: usize,
        theta: f64,
        dir: RopeDirection,
    ) -> BackendResult {
        let _op = self.tick("rope");
        self.inner.rope(x, pos, heads, hd, theta, dir)
    }
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        spans: &[AttnSpan],
        shape: AttnShape,
        out: &mut [f32],
        lse: Option<&mut [f32]>,
    ) -> BackendResult {
        let _op = self.tick("attention");
        self.inner.attention(q, k, v, spans, shape, out, lse)
    }
    #[allow(clippy::too_many_arguments)]
    fn paged_attention(
        &self,
        q: &[f32],
        k_pool: &[f32],
        v_pool: &[f32],
        spans: &[PagedSpan<'_>],
        block_size: usize,
        shape: AttnShape,
        out: &mut [f32],
        lse: Option<&mut [f32]>,
    ) -> BackendResult {
        let _op = self.tick("paged_attention");
        self.inner.paged_attention(q, k_pool, v_pool, spans, block_size, shape, out, lse)
    }
    fn copy_rows_within(&self, buf: &mut [f32], sr: usize, dr: usize, rows: usize, cols: usize) -> BackendResult {
        let _op = self.tick("copy_rows_within");
        self.inner.copy_rows_within(buf, sr, dr, rows, cols)
    }
    #[allow(clippy::too_many_arguments)]
    fn attention_backward(
        &self,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        out: &[f32],
        d_out: &[f32],
        lse: &[f32],
        spans: &[AttnSpan],
        shape: AttnShape,
        d_q: &mut [f32],
        d_k: &mut [f32],
        d_v: &mut [f32],
    ) -> BackendResult {
        let _op = self.tick("attention_backward");
        self.inner.attention_backward(q, k, v, out, d_out, lse, spans, shape, d_q, d_k, d_v)
    }
    fn swiglu(&self, gate: &[f32], up: &[f32], out: &mut [f32]) -> BackendResult {
        let _op = self.tick("swiglu");
        self.inner.swiglu(gate, up, out)
    }
    fn swiglu_backward(
        &self,
        gate: &[f32],
        up: &[f32],
        d_out: &[f32],
        d_gate: &mut [f32],
        d_up: &mut [f32],
    ) -> BackendResult {
        let _op = self.tick("swiglu_backward");
        self.inner.swiglu_backward(gate, up, d_out, d_gate, d_up)
    }
    fn log_softmax_stats(&self, logits: &[f32], vocab: usize, lse: &mut [f32], entropy: &mut [f32]) -> BackendResult {
        let _op = self.tick("log_softmax_stats");
        self.inner.log_softmax_stats(logits, vocab, lse, entropy)
    }
    #[allow(clippy::too_many_arguments)]
    fn log_softmax_backward(
        &self,
        logits: &[f32],
        lse: &[f32],
        entropy: &[f32],
        targets: &[u32],
        d_logprob: &[f32],
        d_entropy: &[f32],
        d_logits: &mut [f32],
    ) -> BackendResult {
        let _op = self.tick("log_softmax_backward");
        self.inner.log_softmax_backward(logits, lse, entropy, targets, d_logprob, d_entropy, d_logits)
    }
    fn sample(
        &self,
        logits: &[f32],
        vocab: usize,
        params: &SamplingParams,
        rngs: &mut [ChaCha8Rng],
    ) -> Result<Vec<Sampled>, ModelError> {
        let _op = self.tick("sample");
        self.inner.sample(logits, vocab, params, rngs)
    }
}
