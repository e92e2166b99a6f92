//! [`CudaBackend`]: the model's [`Backend`] seam on an NVIDIA GPU (f32), built from this crate's
//! kernels and cuBLAS. `selfplay_model::Model<CudaBackend>` (made with `Model::with_backend`) runs
//! the model's own forward, cached decode and backward on the GPU.
//!
//! Every op returns the model's [`BackendResult`]: a CUDA failure (launch error, out of memory, lost
//! device) or arguments a kernel refuses become a [`BackendError`] naming the op, with the typed
//! [`KernelError`] as its source (reach it with [`BackendError::downcast_ref`]). The transformer
//! driver propagates it with `?`, so a failing GPU surfaces as `ModelError::Backend`, never a panic.

use cudarc::driver::CudaSlice;
use selfplay_kvcache::BlockId;
use selfplay_model::backend::{
    AttnShape, AttnSpan, BackendError, BackendResult, Gemm, PagedSpan, RopeDirection, gathered_paged_attention,
};
use selfplay_model::{Backend, HostAccess};

use crate::blas::Blas;
use crate::device::GpuContext;
use crate::error::{KernelError, Result, invalid};

/// The GPU backend: one device, its compiled kernels and a cuBLAS handle. Buffers are `CudaSlice<f32>`.
#[derive(Debug)]
pub struct CudaBackend {
    gpu: GpuContext,
    blas: Blas,
}

/// Tags a kernel result with the trait op it served.
fn op<T>(name: &'static str, result: Result<T>) -> BackendResult<T> {
    result.map_err(|err| BackendError::new(name, err))
}

/// Tags a CUDA driver result (allocation, copy) with the trait op it served.
fn driver<T>(name: &'static str, result: std::result::Result<T, cudarc::driver::DriverError>) -> BackendResult<T> {
    op(name, result.map_err(KernelError::from))
}

impl CudaBackend {
    /// Opens device `ordinal`, compiles the kernels for it and creates the cuBLAS handle.
    pub fn new(ordinal: usize) -> Result<Self> {
        let gpu = GpuContext::new(ordinal)?;
        let blas = Blas::new(&gpu)?;
        Ok(Self { gpu, blas })
    }

    /// The device context, for the ops outside the trait (paged attention, KV cache, sampling).
    pub fn gpu(&self) -> &GpuContext {
        &self.gpu
    }

    /// The cuBLAS handle.
    pub fn blas(&self) -> &Blas {
        &self.blas
    }
}

/// Device buffers are not host memory: a `Model<CudaBackend>` uploads its weights once (again after
/// `weights_mut`), downloads its outputs and gradients.
impl HostAccess for CudaBackend {}

impl Backend<f32> for CudaBackend {
    type Buf = CudaSlice<f32>;
    type Owned = CudaSlice<f32>;

    fn zeros(&self, len: usize) -> BackendResult<CudaSlice<f32>> {
        driver("zeros", self.gpu.stream().alloc_zeros(len))
    }

    fn upload(&self, data: &[f32]) -> BackendResult<CudaSlice<f32>> {
        driver("upload", self.gpu.stream().clone_htod(data))
    }

    fn download(&self, buf: &CudaSlice<f32>, out: &mut [f32]) -> BackendResult {
        if out.len() != buf.len() {
            return op("download", Err(invalid("download", format!("{} elements into {}", buf.len(), out.len()))));
        }
        driver("download", self.gpu.stream().memcpy_dtoh(buf, out))
    }

    fn fill_zero(&self, buf: &mut CudaSlice<f32>) -> BackendResult {
        driver("fill_zero", self.gpu.stream().memset_zeros(buf))
    }

    fn copy_rows(
        &self,
        src: &CudaSlice<f32>,
        src_row: usize,
        dst: &mut CudaSlice<f32>,
        dst_row: usize,
        rows: usize,
        cols: usize,
    ) -> BackendResult {
        let n = rows * cols;
        if n == 0 {
            return Ok(());
        }
        let (s, d) = (src_row * cols, dst_row * cols);
        if s + n > src.len() || d + n > dst.len() {
            let reason = format!("rows {src_row}+{rows} / {dst_row}+{rows} of width {cols}");
            return op("copy_rows", Err(invalid("copy_rows", reason)));
        }
        let from = src.slice(s..s + n);
        let mut to = dst.slice_mut(d..d + n);
        driver("copy_rows", self.gpu.stream().memcpy_dtod(&from, &mut to))
    }

    fn embedding(&self, table: &CudaSlice<f32>, ids: &[u32], dim: usize, out: &mut CudaSlice<f32>) -> BackendResult {
        op("embedding", self.gpu.embedding(table, ids, dim, out))
    }

    fn embedding_backward(
        &self,
        d_out: &CudaSlice<f32>,
        ids: &[u32],
        dim: usize,
        d_table: &mut CudaSlice<f32>,
    ) -> BackendResult {
        op("embedding_backward", self.gpu.embedding_backward(d_out, ids, dim, d_table))
    }

    fn gemm(&self, g: Gemm, a: &CudaSlice<f32>, b: &CudaSlice<f32>, c: &mut CudaSlice<f32>) -> BackendResult {
        op("gemm", self.blas.gemm(g, a, b, c))
    }

    fn add_bias(&self, x: &mut CudaSlice<f32>, bias: &CudaSlice<f32>, cols: usize) -> BackendResult {
        if bias.len() != cols {
            return op("add_bias", Err(invalid("add_bias", format!("bias of {} for {cols} columns", bias.len()))));
        }
        op("add_bias", self.gpu.add_bias(x, bias))
    }

    fn bias_backward(&self, d_y: &CudaSlice<f32>, cols: usize, d_bias: &mut CudaSlice<f32>) -> BackendResult {
        if d_bias.len() != cols {
            let reason = format!("bias of {} for {cols} columns", d_bias.len());
            return op("bias_backward", Err(invalid("bias_backward", reason)));
        }
        op("bias_backward", self.gpu.bias_backward(d_y, d_bias))
    }

    fn add(&self, x: &mut CudaSlice<f32>, y: &CudaSlice<f32>) -> BackendResult {
        op("add", self.gpu.add_assign(x, y))
    }

    fn rms_norm(
        &self,
        x: &CudaSlice<f32>,
        w: &CudaSlice<f32>,
        eps: f64,
        cols: usize,
        out: &mut CudaSlice<f32>,
        inv_rms: &mut CudaSlice<f32>,
    ) -> BackendResult {
        op("rms_norm", self.gpu.rms_norm(x, w, eps as f32, cols, out, Some(inv_rms)))
    }

    fn rms_norm_backward(
        &self,
        d_out: &CudaSlice<f32>,
        x: &CudaSlice<f32>,
        w: &CudaSlice<f32>,
        inv_rms: &CudaSlice<f32>,
        cols: usize,
        d_x: &mut CudaSlice<f32>,
        d_w: &mut CudaSlice<f32>,
    ) -> BackendResult {
        op("rms_norm_backward", self.gpu.rms_norm_backward(d_out, x, w, inv_rms, cols, d_x, d_w))
    }

    fn rope(
        &self,
        x: &mut CudaSlice<f32>,
        positions: &[u32],
        heads: usize,
        head_dim: usize,
        theta: f64,
        direction: RopeDirection,
    ) -> BackendResult {
        op("rope", self.gpu.rope(x, positions, heads, head_dim, heads * head_dim, theta as f32, direction))
    }

    fn attention(
        &self,
        q: &CudaSlice<f32>,
        k: &CudaSlice<f32>,
        v: &CudaSlice<f32>,
        spans: &[AttnSpan],
        shape: AttnShape,
        out: &mut CudaSlice<f32>,
        lse: Option<&mut CudaSlice<f32>>,
    ) -> BackendResult {
        op("attention", self.gpu.attention(q, k, v, spans, shape, out, lse))
    }

    /// The device's paged kernels (flash-decoding when every span has one query), reading the model's
    /// per-layer pools through the block tables in place. They write no log-sum-exp: a call that asks
    /// for one gathers the keys and runs dense attention instead (the model's cached steps never do).
    fn paged_attention(
        &self,
        q: &CudaSlice<f32>,
        k_pool: &CudaSlice<f32>,
        v_pool: &CudaSlice<f32>,
        spans: &[PagedSpan<'_>],
        block_size: usize,
        shape: AttnShape,
        out: &mut CudaSlice<f32>,
        lse: Option<&mut CudaSlice<f32>>,
    ) -> BackendResult {
        if lse.is_some() {
            return gathered_paged_attention(self, q, k_pool, v_pool, spans, block_size, shape, out, lse);
        }
        let dense: Vec<AttnSpan> = spans
            .iter()
            .map(|s| AttnSpan { q_start: s.q_start, q_len: s.q_len, kv_start: 0, kv_len: s.kv_len })
            .collect();
        let tables: Vec<&[BlockId]> = spans.iter().map(|s| s.blocks).collect();
        let result = self.gpu.attention_paged_pools(q, k_pool, v_pool, &dense, &tables, block_size, shape, out);
        op("paged_attention", result)
    }

    fn attention_backward(
        &self,
        q: &CudaSlice<f32>,
        k: &CudaSlice<f32>,
        v: &CudaSlice<f32>,
        out: &CudaSlice<f32>,
        d_out: &CudaSlice<f32>,
        lse: &CudaSlice<f32>,
        spans: &[AttnSpan],
        shape: AttnShape,
        d_q: &mut CudaSlice<f32>,
        d_k: &mut CudaSlice<f32>,
        d_v: &mut CudaSlice<f32>,
    ) -> BackendResult {
        op("attention_backward", self.gpu.attention_backward(q, k, v, out, d_out, lse, spans, shape, d_q, d_k, d_v))
    }

    fn swiglu(&self, gate: &CudaSlice<f32>, up: &CudaSlice<f32>, out: &mut CudaSlice<f32>) -> BackendResult {
        let n = gate.len();
        op("swiglu", self.gpu.swiglu(gate, up, out, 1, n, n))
    }

    fn swiglu_backward(
        &self,
        gate: &CudaSlice<f32>,
        up: &CudaSlice<f32>,
        d_out: &CudaSlice<f32>,
        d_gate: &mut CudaSlice<f32>,
        d_up: &mut CudaSlice<f32>,
    ) -> BackendResult {
        op("swiglu_backward", self.gpu.swiglu_backward(gate, up, d_out, d_gate, d_up))
    }

    fn log_softmax_stats(
        &self,
        logits: &CudaSlice<f32>,
        vocab: usize,
        lse: &mut CudaSlice<f32>,
        entropy: &mut CudaSlice<f32>,
    ) -> BackendResult {
        op("log_softmax_stats", self.gpu.log_softmax_stats(logits, vocab, lse, entropy))
    }

    fn log_softmax_backward(
        &self,
        logits: &CudaSlice<f32>,
        lse: &CudaSlice<f32>,
        entropy: &CudaSlice<f32>,
        targets: &[u32],
        d_logprob: &CudaSlice<f32>,
        d_entropy: &CudaSlice<f32>,
        d_logits: &mut CudaSlice<f32>,
    ) -> BackendResult {
        op(
            "log_softmax_backward",
            self.gpu.log_softmax_backward(logits, lse, entropy, targets, d_logprob, d_entropy, d_logits),
        )
    }
}
