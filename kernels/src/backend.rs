//! [`CudaBackend`]: the model's [`Backend`] seam on an NVIDIA GPU (f32), built from this crate's
//! kernels and cuBLAS.
//!
//! The trait's methods return nothing: its contract is that the transformer driver guarantees sizes and
//! ids, so a violation is a bug. A CUDA failure (device lost, out of memory) also has no way out through
//! the trait, so [`CudaBackend`] panics with the typed [`KernelError`] as the message in both cases, in
//! one place ([`fail`]). Code that wants recoverable errors calls the [`GpuContext`] methods directly.

use cudarc::driver::CudaSlice;
use selfplay_model::Backend;
use selfplay_model::backend::{AttnShape, AttnSpan, Gemm, RopeDirection};

use crate::blas::Blas;
use crate::device::GpuContext;
use crate::error::{KernelError, Result};

/// The GPU backend: one device, its compiled kernels and a cuBLAS handle. Buffers are `CudaSlice<f32>`.
#[derive(Debug)]
pub struct CudaBackend {
    gpu: GpuContext,
    blas: Blas,
}

#[track_caller]
fn fail(op: &str, err: KernelError) -> ! {
    panic!("CudaBackend::{op}: {err}")
}

#[track_caller]
fn check(op: &str, result: Result<()>) {
    if let Err(err) = result {
        fail(op, err);
    }
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

impl Backend<f32> for CudaBackend {
    type Buf = CudaSlice<f32>;
    type Owned = CudaSlice<f32>;

    fn zeros(&self, len: usize) -> CudaSlice<f32> {
        self.gpu.stream().alloc_zeros(len).unwrap_or_else(|e| fail("zeros", e.into()))
    }

    fn upload(&self, data: &[f32]) -> CudaSlice<f32> {
        self.gpu.stream().clone_htod(data).unwrap_or_else(|e| fail("upload", e.into()))
    }

    fn download(&self, buf: &CudaSlice<f32>, out: &mut [f32]) {
        if out.len() != buf.len() {
            fail("download", crate::error::invalid("download", format!("{} elements into {}", buf.len(), out.len())));
        }
        check("download", self.gpu.stream().memcpy_dtoh(buf, out).map_err(KernelError::from));
    }

    fn fill_zero(&self, buf: &mut CudaSlice<f32>) {
        check("fill_zero", self.gpu.stream().memset_zeros(buf).map_err(KernelError::from));
    }

    fn copy_rows(
        &self,
        src: &CudaSlice<f32>,
        src_row: usize,
        dst: &mut CudaSlice<f32>,
        dst_row: usize,
        rows: usize,
        cols: usize,
    ) {
        let n = rows * cols;
        if n == 0 {
            return;
        }
        let (s, d) = (src_row * cols, dst_row * cols);
        if s + n > src.len() || d + n > dst.len() {
            fail(
                "copy_rows",
                crate::error::invalid("copy_rows", format!("rows {src_row}+{rows} / {dst_row}+{rows} of width {cols}")),
            );
        }
        let from = src.slice(s..s + n);
        let mut to = dst.slice_mut(d..d + n);
        check("copy_rows", self.gpu.stream().memcpy_dtod(&from, &mut to).map_err(KernelError::from));
    }

    fn embedding(&self, table: &CudaSlice<f32>, ids: &[u32], dim: usize, out: &mut CudaSlice<f32>) {
        check("embedding", self.gpu.embedding(table, ids, dim, out));
    }

    fn embedding_backward(&self, d_out: &CudaSlice<f32>, ids: &[u32], dim: usize, d_table: &mut CudaSlice<f32>) {
        check("embedding_backward", self.gpu.embedding_backward(d_out, ids, dim, d_table));
    }

    fn gemm(&self, g: Gemm, a: &CudaSlice<f32>, b: &CudaSlice<f32>, c: &mut CudaSlice<f32>) {
        check("gemm", self.blas.gemm(g, a, b, c));
    }

    fn add_bias(&self, x: &mut CudaSlice<f32>, bias: &CudaSlice<f32>, cols: usize) {
        if bias.len() != cols {
            fail("add_bias", crate::error::invalid("add_bias", format!("bias of {} for {cols} columns", bias.len())));
        }
        check("add_bias", self.gpu.add_bias(x, bias));
    }

    fn bias_backward(&self, d_y: &CudaSlice<f32>, cols: usize, d_bias: &mut CudaSlice<f32>) {
        if d_bias.len() != cols {
            fail(
                "bias_backward",
                crate::error::invalid("bias_backward", format!("bias of {} for {cols} columns", d_bias.len())),
            );
        }
        check("bias_backward", self.gpu.bias_backward(d_y, d_bias));
    }

    fn add(&self, x: &mut CudaSlice<f32>, y: &CudaSlice<f32>) {
        check("add", self.gpu.add_assign(x, y));
    }

    fn rms_norm(
        &self,
        x: &CudaSlice<f32>,
        w: &CudaSlice<f32>,
        eps: f64,
        cols: usize,
        out: &mut CudaSlice<f32>,
        inv_rms: &mut CudaSlice<f32>,
    ) {
        check("rms_norm", self.gpu.rms_norm(x, w, eps as f32, cols, out, Some(inv_rms)));
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
    ) {
        check("rms_norm_backward", self.gpu.rms_norm_backward(d_out, x, w, inv_rms, cols, d_x, d_w));
    }

    fn rope(
        &self,
        x: &mut CudaSlice<f32>,
        positions: &[u32],
        heads: usize,
        head_dim: usize,
        theta: f64,
        direction: RopeDirection,
    ) {
        check("rope", self.gpu.rope(x, positions, heads, head_dim, heads * head_dim, theta as f32, direction));
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
    ) {
        check("attention", self.gpu.attention(q, k, v, spans, shape, out, lse));
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
    ) {
        check("attention_backward", self.gpu.attention_backward(q, k, v, out, d_out, lse, spans, shape, d_q, d_k, d_v));
    }

    fn swiglu(&self, gate: &CudaSlice<f32>, up: &CudaSlice<f32>, out: &mut CudaSlice<f32>) {
        let n = gate.len();
        check("swiglu", self.gpu.swiglu(gate, up, out, 1, n, n));
    }

    fn swiglu_backward(
        &self,
        gate: &CudaSlice<f32>,
        up: &CudaSlice<f32>,
        d_out: &CudaSlice<f32>,
        d_gate: &mut CudaSlice<f32>,
        d_up: &mut CudaSlice<f32>,
    ) {
        check("swiglu_backward", self.gpu.swiglu_backward(gate, up, d_out, d_gate, d_up));
    }

    fn log_softmax_stats(
        &self,
        logits: &CudaSlice<f32>,
        vocab: usize,
        lse: &mut CudaSlice<f32>,
        entropy: &mut CudaSlice<f32>,
    ) {
        check("log_softmax_stats", self.gpu.log_softmax_stats(logits, vocab, lse, entropy));
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
    ) {
        check(
            "log_softmax_backward",
            self.gpu.log_softmax_backward(logits, lse, entropy, targets, d_logprob, d_entropy, d_logits),
        );
    }
}
