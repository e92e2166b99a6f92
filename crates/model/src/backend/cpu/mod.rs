//! [`CpuBackend`]: the reference implementation of [`Backend`] on host memory, parallel with rayon,
//! its matrix products in a fixed order of arithmetic (see `gemm`) so that results do not depend on
//! the CPU model or the thread count. It is the oracle the GPU backend is tested against, so each op
//! is written for clarity first and speed second.

mod attention;
#[cfg(test)]
mod determinism_tests;
mod elementwise;
mod gemm;
mod norm;
mod rope;
mod rows;
mod scratch;
mod softmax;

use crate::backend::{AttnShape, AttnSpan, Backend, BackendResult, Gemm, PagedSpan, RopeDirection};
use selfplay_tensor::Float;

/// Runs every op on the CPU over host slices (`Buf = [T]`, `Owned = Vec<T>`), on rayon's global pool.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuBackend;

impl<T: Float> Backend<T> for CpuBackend {
    type Buf = [T];
    type Owned = Vec<T>;

    fn zeros(&self, len: usize) -> BackendResult<Vec<T>> {
        Ok(vec![T::ZERO; len])
    }

    fn upload(&self, data: &[T]) -> BackendResult<Vec<T>> {
        Ok(data.to_vec())
    }

    fn download(&self, buf: &[T], out: &mut [T]) -> BackendResult {
        out.copy_from_slice(buf);
        Ok(())
    }

    fn fill_zero(&self, buf: &mut [T]) -> BackendResult {
        buf.fill(T::ZERO);
        Ok(())
    }

    fn copy_rows(
        &self,
        src: &[T],
        src_row: usize,
        dst: &mut [T],
        dst_row: usize,
        rows: usize,
        cols: usize,
    ) -> BackendResult {
        dst[dst_row * cols..(dst_row + rows) * cols].copy_from_slice(&src[src_row * cols..(src_row + rows) * cols]);
        Ok(())
    }

    fn embedding(&self, table: &[T], ids: &[u32], dim: usize, out: &mut [T]) -> BackendResult {
        for (row, &id) in out.chunks_exact_mut(dim).zip(ids) {
            let id = id as usize;
            row.copy_from_slice(&table[id * dim..(id + 1) * dim]);
        }
        Ok(())
    }

    fn embedding_backward(&self, d_out: &[T], ids: &[u32], dim: usize, d_table: &mut [T]) -> BackendResult {
        for (row, &id) in d_out.chunks_exact(dim).zip(ids) {
            let id = id as usize;
            d_table[id * dim..(id + 1) * dim].iter_mut().zip(row).for_each(|(a, &d)| *a += d);
        }
        Ok(())
    }

    fn gemm(&self, g: Gemm, a: &[T], b: &[T], c: &mut [T]) -> BackendResult {
        gemm::gemm_dense(g, a, b, c);
        Ok(())
    }

    fn add_bias(&self, x: &mut [T], bias: &[T], _cols: usize) -> BackendResult {
        elementwise::add_bias(x, bias);
        Ok(())
    }

    fn bias_backward(&self, d_y: &[T], cols: usize, d_bias: &mut [T]) -> BackendResult {
        elementwise::bias_backward(d_y, cols, d_bias);
        Ok(())
    }

    fn add(&self, x: &mut [T], y: &[T]) -> BackendResult {
        elementwise::add(x, y);
        Ok(())
    }

    fn rms_norm(&self, x: &[T], w: &[T], eps: f64, cols: usize, out: &mut [T], inv_rms: &mut [T]) -> BackendResult {
        norm::rms_norm(x, w, eps, cols, out, inv_rms);
        Ok(())
    }

    fn rms_norm_backward(
        &self,
        d_out: &[T],
        x: &[T],
        w: &[T],
        inv_rms: &[T],
        cols: usize,
        d_x: &mut [T],
        d_w: &mut [T],
    ) -> BackendResult {
        norm::rms_norm_backward(d_out, x, w, inv_rms, cols, d_x, d_w);
        Ok(())
    }

    fn rope(
        &self,
        x: &mut [T],
        positions: &[u32],
        heads: usize,
        head_dim: usize,
        theta: f64,
        direction: RopeDirection,
    ) -> BackendResult {
        rope::rope(x, positions, heads, head_dim, theta, direction);
        Ok(())
    }

    fn attention(
        &self,
        q: &[T],
        k: &[T],
        v: &[T],
        spans: &[AttnSpan],
        shape: AttnShape,
        out: &mut [T],
        lse: Option<&mut [T]>,
    ) -> BackendResult {
        attention::attention(q, k, v, spans, shape, out, lse);
        Ok(())
    }

    fn paged_attention(
        &self,
        q: &[T],
        k_pool: &[T],
        v_pool: &[T],
        spans: &[PagedSpan<'_>],
        block_size: usize,
        shape: AttnShape,
        out: &mut [T],
        lse: Option<&mut [T]>,
    ) -> BackendResult {
        attention::paged_attention(q, k_pool, v_pool, spans, block_size, shape, out, lse);
        Ok(())
    }

    fn copy_rows_within(
        &self,
        buf: &mut [T],
        src_row: usize,
        dst_row: usize,
        rows: usize,
        cols: usize,
    ) -> BackendResult {
        buf.copy_within(src_row * cols..(src_row + rows) * cols, dst_row * cols);
        Ok(())
    }

    fn attention_backward(
        &self,
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
    ) -> BackendResult {
        attention::attention_backward(q, k, v, out, d_out, lse, spans, shape, d_q, d_k, d_v);
        Ok(())
    }

    fn swiglu(&self, gate: &[T], up: &[T], out: &mut [T]) -> BackendResult {
        elementwise::swiglu(gate, up, out);
        Ok(())
    }

    fn swiglu_backward(&self, gate: &[T], up: &[T], d_out: &[T], d_gate: &mut [T], d_up: &mut [T]) -> BackendResult {
        elementwise::swiglu_backward(gate, up, d_out, d_gate, d_up);
        Ok(())
    }

    fn log_softmax_stats(&self, logits: &[T], vocab: usize, lse: &mut [T], entropy: &mut [T]) -> BackendResult {
        softmax::log_softmax_stats(logits, vocab, lse, entropy);
        Ok(())
    }

    fn log_softmax_backward(
        &self,
        logits: &[T],
        lse: &[T],
        entropy: &[T],
        targets: &[u32],
        d_logprob: &[T],
        d_entropy: &[T],
        d_logits: &mut [T],
    ) -> BackendResult {
        softmax::log_softmax_backward(logits, lse, entropy, targets, d_logprob, d_entropy, d_logits);
        Ok(())
    }
}
