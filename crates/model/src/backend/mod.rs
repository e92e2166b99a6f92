//! The [`Backend`] seam: every numerical operation the transformer performs, forward and backward.
//!
//! # Why it looks like this
//!
//! * **Buffers are the backend's.** Each backend names its buffer type ([`Backend::Buf`]) and the
//!   owning handle that allocates one ([`Backend::Owned`]). [`CpuBackend`] uses `[T]` and `Vec<T>`,
//!   so model weights in host memory are used in place with no copy; a CUDA backend uses a device
//!   buffer type for both (`Owned = Buf`, through the blanket `BorrowMut<T> for T`). The transformer
//!   driver only ever holds `&Buf`/`&mut Buf` and never reads elements, so it runs unchanged on a
//!   device; host data crosses only through [`Backend::upload`] and [`Backend::download`].
//! * **Whole packed buffers, never sub-slices.** A batch of sequences of different lengths is packed
//!   row-wise (`[total_tokens, width]`, no padding), and ops that care about sequence boundaries
//!   (attention, RoPE positions, embedding ids) take the boundaries as host-side metadata
//!   ([`AttnSpan`], position lists). Device buffers cannot be cheaply sub-sliced on every backend;
//!   offsets are easy everywhere.
//! * **Generic over the scalar.** `Backend<T>` for a [`Float`](selfplay_tensor::Float) `T`: the CPU backend implements both
//!   `f32` (production) and `f64` (finite-difference gradient checks run the very same forward and
//!   backward code in double precision). A GPU backend implements `Backend<f32>` only.
//! * **Parameter gradients accumulate.** Backward ops add into gradient outputs that collect
//!   contributions from several uses (parameters, tied embeddings, the residual stream); the few
//!   that produce a fresh intermediate (`swiglu_backward`, `log_softmax_backward`) say they write.
//! * **Every op is fallible.** A device backend can fail for reasons no caller controls (a launch
//!   error, out of memory, a lost device), so each op returns a [`BackendResult`]; the driver
//!   propagates it with `?` and [`crate::Model`] reports it as [`ModelError::Backend`]. The CPU backend
//!   never fails (its `Err` arm is unreachable in practice), which costs nothing on its hot path.
//! * **Sampling** has a host default ([`Backend::sample`]) so a backend need not implement it
//!   first; a GPU backend overrides it to avoid downloading logits.
//! * **A model on any backend.** [`crate::Model<B>`] runs on a `B: Backend<f32>` that also says, in
//!   [`HostAccess`], whether its buffers are host memory: the CPU's are, so weights and gradients
//!   are used in place; a device backend implements it empty and the model uploads and downloads.

pub mod counting;
mod cpu;
pub(crate) mod error;
mod host;

pub use counting::CountingBackend;
pub use cpu::CpuBackend;
pub use error::{BackendError, BackendResult};
pub use host::HostAccess;

use std::borrow::{Borrow, BorrowMut};

use rand_chacha::ChaCha8Rng;
use selfplay_kvcache::BlockId;

use crate::error::ModelError;
use crate::sampler::{Sampled, SamplingParams};

/// One matrix product `c = op(a) · op(b)` (or `c += …` when `accumulate`), all row-major.
/// `op(a)` is `[m, k]`: `a` is stored `[m, k]`, or `[k, m]` when `trans_a`. `op(b)` is `[k, n]`:
/// `b` is stored `[k, n]`, or `[n, k]` when `trans_b` (the layout of a `torch.nn.Linear` weight).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gemm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub accumulate: bool,
}

impl Gemm {
    /// `y[rows, out] (+)= x[rows, in] · wᵀ` for a Linear weight `w[out, in]`.
    pub fn linear(rows: usize, d_in: usize, d_out: usize) -> Self {
        Gemm { m: rows, n: d_out, k: d_in, trans_a: false, trans_b: true, accumulate: false }
    }

    /// `dx[rows, in] (+)= dy[rows, out] · w` (the input gradient of a Linear layer).
    pub fn linear_input_grad(rows: usize, d_in: usize, d_out: usize) -> Self {
        Gemm { m: rows, n: d_in, k: d_out, trans_a: false, trans_b: false, accumulate: false }
    }

    /// `dw[out, in] += dyᵀ · x` (the weight gradient of a Linear layer; always accumulates).
    pub fn linear_weight_grad(rows: usize, d_in: usize, d_out: usize) -> Self {
        Gemm { m: d_out, n: d_in, k: rows, trans_a: true, trans_b: false, accumulate: true }
    }

    /// The same product, adding into `c` instead of overwriting it.
    pub fn accumulating(self) -> Self {
        Gemm { accumulate: true, ..self }
    }
}

/// Where one sequence's queries and keys/values sit in packed buffers. Query `i` (of `q_len`) has
/// absolute position `kv_len - q_len + i` and attends to keys `0..=kv_len - q_len + i`: a full
/// causal forward has `q_len == kv_len` and `kv_start == q_start`; a decode step against a cache has
/// `q_len == 1` and the keys in the cache's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnSpan {
    pub q_start: usize,
    pub q_len: usize,
    pub kv_start: usize,
    pub kv_len: usize,
}

/// One sequence's queries against keys/values held in a paged pool (`[blocks · block_size, kv_width]`
/// rows per layer, as `selfplay-kvcache` lays them out): key `j` of the sequence is pool row
/// `blocks[j / block_size] · block_size + j % block_size`. Query `i` (of `q_len`, packed from row
/// `q_start`) has position `kv_len - q_len + i` and attends to keys `0..=kv_len - q_len + i`, as in
/// [`AttnSpan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagedSpan<'a> {
    pub q_start: usize,
    pub q_len: usize,
    pub kv_len: usize,
    /// The sequence's block table; it covers at least `kv_len` keys.
    pub blocks: &'a [BlockId],
}

/// Head geometry of an attention op. Query rows are `heads * head_dim` wide, key/value rows
/// `kv_heads * head_dim`; query head `h` reads key/value head `h / (heads / kv_heads)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnShape {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// Whether [`Backend::rope`] rotates forward (the model) or backward (its gradient, the inverse rotation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeDirection {
    Forward,
    Inverse,
}

/// Every op of the Llama/Qwen2 forward and backward passes. Row counts are implied by buffer
/// lengths divided by the stated widths; callers (the transformer driver) guarantee consistent sizes.
/// A device backend reports a size mismatch, like any device failure, as a [`BackendError`]; the CPU
/// reference may panic on one (a bug in the driver, never user input).
pub trait Backend<T: selfplay_tensor::Float>: Send + Sync {
    /// The element storage the ops read and write (`[T]` on the CPU, a device buffer on a GPU).
    type Buf: ?Sized + Send + Sync;
    /// An owned, allocated buffer.
    type Owned: BorrowMut<Self::Buf> + Send + Sync;

    /// A zero-filled buffer of `len` elements.
    fn zeros(&self, len: usize) -> BackendResult<Self::Owned>;
    /// A buffer holding a copy of host data.
    fn upload(&self, data: &[T]) -> BackendResult<Self::Owned>;
    /// Copies a whole buffer to host memory; `out.len()` is the buffer's length.
    fn download(&self, buf: &Self::Buf, out: &mut [T]) -> BackendResult;
    /// Sets every element to zero.
    fn fill_zero(&self, buf: &mut Self::Buf) -> BackendResult;
    /// Copies `rows` rows of width `cols` from `src` (starting at row `src_row`) into `dst` (at `dst_row`).
    fn copy_rows(
        &self,
        src: &Self::Buf,
        src_row: usize,
        dst: &mut Self::Buf,
        dst_row: usize,
        rows: usize,
        cols: usize,
    ) -> BackendResult;

    /// `out[i] = table[ids[i]]`, rows of width `dim`. Ids are validated by the caller.
    fn embedding(&self, table: &Self::Buf, ids: &[u32], dim: usize, out: &mut Self::Buf) -> BackendResult;
    /// `d_table[ids[i]] += d_out[i]`.
    fn embedding_backward(&self, d_out: &Self::Buf, ids: &[u32], dim: usize, d_table: &mut Self::Buf) -> BackendResult;

    /// A matrix product, see [`Gemm`].
    fn gemm(&self, g: Gemm, a: &Self::Buf, b: &Self::Buf, c: &mut Self::Buf) -> BackendResult;
    /// `x[r] += bias` for every row `r` (rows of width `bias.len()`).
    fn add_bias(&self, x: &mut Self::Buf, bias: &Self::Buf, cols: usize) -> BackendResult;
    /// `d_bias += Σ_r d_y[r]` (the column sums).
    fn bias_backward(&self, d_y: &Self::Buf, cols: usize, d_bias: &mut Self::Buf) -> BackendResult;
    /// `x += y` elementwise (residual connections).
    fn add(&self, x: &mut Self::Buf, y: &Self::Buf) -> BackendResult;

    /// RMSNorm as Hugging Face: `out = x · rsqrt(mean(x²) + eps) · w` per row of width `cols`;
    /// stores each row's `rsqrt(mean(x²) + eps)` in `inv_rms` for the backward pass.
    #[allow(clippy::too_many_arguments)]
    fn rms_norm(
        &self,
        x: &Self::Buf,
        w: &Self::Buf,
        eps: f64,
        cols: usize,
        out: &mut Self::Buf,
        inv_rms: &mut Self::Buf,
    ) -> BackendResult;
    /// Adds the input gradient into `d_x` and the weight gradient into `d_w`.
    #[allow(clippy::too_many_arguments)]
    fn rms_norm_backward(
        &self,
        d_out: &Self::Buf,
        x: &Self::Buf,
        w: &Self::Buf,
        inv_rms: &Self::Buf,
        cols: usize,
        d_x: &mut Self::Buf,
        d_w: &mut Self::Buf,
    ) -> BackendResult;

    /// Rotary embedding in place (Hugging Face `rotate_half` convention) on rows of `heads` heads of
    /// `head_dim`; row `r` sits at position `positions[r]`. The inverse rotation is the gradient.
    fn rope(
        &self,
        x: &mut Self::Buf,
        positions: &[u32],
        heads: usize,
        head_dim: usize,
        theta: f64,
        direction: RopeDirection,
    ) -> BackendResult;

    /// Causal softmax attention with scale `1/sqrt(head_dim)` for every span; writes each query row's
    /// per-head log-sum-exp of the scaled scores into `lse` (`[q_rows, heads]`) when given.
    #[allow(clippy::too_many_arguments)]
    fn attention(
        &self,
        q: &Self::Buf,
        k: &Self::Buf,
        v: &Self::Buf,
        spans: &[AttnSpan],
        shape: AttnShape,
        out: &mut Self::Buf,
        lse: Option<&mut Self::Buf>,
    ) -> BackendResult;
    /// [`Backend::attention`] with each span's keys and values read from paged pools through its block
    /// table (see [`PagedSpan`]). The default gathers every span's rows into contiguous buffers with
    /// [`Backend::copy_rows`] and runs [`Backend::attention`]; a backend overrides it to read the
    /// blocks in place.
    #[allow(clippy::too_many_arguments)]
    fn paged_attention(
        &self,
        q: &Self::Buf,
        k_pool: &Self::Buf,
        v_pool: &Self::Buf,
        spans: &[PagedSpan<'_>],
        block_size: usize,
        shape: AttnShape,
        out: &mut Self::Buf,
        lse: Option<&mut Self::Buf>,
    ) -> BackendResult {
        gathered_paged_attention(self, q, k_pool, v_pool, spans, block_size, shape, out, lse)
    }

    /// Copies `rows` rows of width `cols` from row `src_row` to row `dst_row` of the same buffer (the
    /// ranges do not overlap): a copy-on-write block copy inside a KV pool. The default goes through a
    /// scratch buffer with [`Backend::copy_rows`].
    fn copy_rows_within(
        &self,
        buf: &mut Self::Buf,
        src_row: usize,
        dst_row: usize,
        rows: usize,
        cols: usize,
    ) -> BackendResult {
        let mut scratch = self.zeros(rows * cols)?;
        self.copy_rows(buf, src_row, scratch.borrow_mut(), 0, rows, cols)?;
        self.copy_rows(scratch.borrow(), 0, buf, dst_row, rows, cols)
    }

    /// Gradients of [`Backend::attention`] with respect to `q`, `k` and `v`, added into `d_q`, `d_k`, `d_v`.
    #[allow(clippy::too_many_arguments)]
    fn attention_backward(
        &self,
        q: &Self::Buf,
        k: &Self::Buf,
        v: &Self::Buf,
        out: &Self::Buf,
        d_out: &Self::Buf,
        lse: &Self::Buf,
        spans: &[AttnSpan],
        shape: AttnShape,
        d_q: &mut Self::Buf,
        d_k: &mut Self::Buf,
        d_v: &mut Self::Buf,
    ) -> BackendResult;

    /// SwiGLU: `out = silu(gate) · up`.
    fn swiglu(&self, gate: &Self::Buf, up: &Self::Buf, out: &mut Self::Buf) -> BackendResult;
    /// Gradients of [`Backend::swiglu`], written (not added) into `d_gate` and `d_up`.
    fn swiglu_backward(
        &self,
        gate: &Self::Buf,
        up: &Self::Buf,
        d_out: &Self::Buf,
        d_gate: &mut Self::Buf,
        d_up: &mut Self::Buf,
    ) -> BackendResult;

    /// Per row of logits (width `vocab`): `lse = log Σ exp(z)` and the entropy `H = lse - Σ p·z`.
    fn log_softmax_stats(
        &self,
        logits: &Self::Buf,
        vocab: usize,
        lse: &mut Self::Buf,
        entropy: &mut Self::Buf,
    ) -> BackendResult;
    /// Writes `d_logits` for `L = Σ_r d_logprob[r]·log p_r(targets[r]) + d_entropy[r]·H_r`:
    /// `d_logprob·(onehot − p) − d_entropy·p·(log p + H)`. Rows whose gradients are zero may have any target.
    #[allow(clippy::too_many_arguments)]
    fn log_softmax_backward(
        &self,
        logits: &Self::Buf,
        lse: &Self::Buf,
        entropy: &Self::Buf,
        targets: &[u32],
        d_logprob: &Self::Buf,
        d_entropy: &Self::Buf,
        d_logits: &mut Self::Buf,
    ) -> BackendResult;

    /// Samples one token per logits row (width `vocab`), row `r` from its own stream `rngs[r]`.
    /// The default downloads the logits and runs [`crate::sampler::sample`] on the host; a GPU
    /// backend overrides it with a device kernel that must draw the same tokens.
    fn sample(
        &self,
        logits: &Self::Buf,
        vocab: usize,
        params: &SamplingParams,
        rngs: &mut [ChaCha8Rng],
    ) -> Result<Vec<Sampled>, ModelError> {
        let mut host = vec![T::ZERO; rngs.len() * vocab];
        self.download(logits, &mut host)?;
        let mut row = vec![0.0f32; vocab];
        host.chunks_exact(vocab.max(1))
            .zip(rngs.iter_mut())
            .map(|(z, rng)| {
                row.iter_mut().zip(z).for_each(|(r, &v)| *r = v.to_f64() as f32);
                crate::sampler::sample(&row, params, rng)
            })
            .collect()
    }
}

/// [`Backend::paged_attention`] by gathering every span's keys and values into contiguous buffers
/// with [`Backend::copy_rows`] and running [`Backend::attention`]: the trait's default, and the
/// fallback of a backend whose own paged kernels do not cover a case (e.g. writing `lse`).
#[allow(clippy::too_many_arguments)]
pub fn gathered_paged_attention<T: selfplay_tensor::Float, B: Backend<T> + ?Sized>(
    b: &B,
    q: &B::Buf,
    k_pool: &B::Buf,
    v_pool: &B::Buf,
    spans: &[PagedSpan<'_>],
    block_size: usize,
    shape: AttnShape,
    out: &mut B::Buf,
    lse: Option<&mut B::Buf>,
) -> BackendResult {
    let width = shape.kv_heads * shape.head_dim;
    let total: usize = spans.iter().map(|s| s.kv_len).sum();
    let (mut k, mut v) = (b.zeros(total * width)?, b.zeros(total * width)?);
    let mut dense = Vec::with_capacity(spans.len());
    let mut start = 0;
    for s in spans {
        for (i, block) in s.blocks.iter().take(s.kv_len.div_ceil(block_size.max(1))).enumerate() {
            let rows = block_size.min(s.kv_len - i * block_size);
            let (from, to) = (block.index() * block_size, start + i * block_size);
            b.copy_rows(k_pool, from, k.borrow_mut(), to, rows, width)?;
            b.copy_rows(v_pool, from, v.borrow_mut(), to, rows, width)?;
        }
        dense.push(AttnSpan { q_start: s.q_start, q_len: s.q_len, kv_start: start, kv_len: s.kv_len });
        start += s.kv_len;
    }
    b.attention(q, k.borrow(), v.borrow(), &dense, shape, out, lse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::{row_rng, sample};

    /// The backend's batched op draws exactly what per-row sampling draws.
    #[test]
    fn backend_sample_matches_rows() {
        let logits: Vec<f32> = (0..15).map(|i| ((i * 7) % 5) as f32 * 0.3).collect();
        let params = SamplingParams { temperature: 0.8, top_k: 4, ..Default::default() };
        let mut rngs: Vec<_> = (0..3).map(row_rng).collect();
        let batched = Backend::<f32>::sample(&CpuBackend, &logits, 5, &params, &mut rngs).unwrap();
        for (r, got) in batched.iter().enumerate() {
            let want = sample(&logits[r * 5..(r + 1) * 5], &params, &mut row_rng(r as u64)).unwrap();
            assert_eq!(*got, want);
        }
    }
}
