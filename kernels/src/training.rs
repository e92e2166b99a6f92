//! Launches of the f32 backward and loss-statistics kernels (training.cu).

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use selfplay_model::backend::{AttnShape, AttnSpan};

use crate::device::GpuContext;
use crate::error::{Result, invalid};
use crate::ops::{check_shape, elementwise, need, span_table, to_i32};

const THREADS: u32 = 256;

fn rows_config(rows: usize) -> Result<LaunchConfig> {
    let rows = u32::try_from(rows.max(1)).map_err(|_| invalid("training", "too many rows"))?;
    Ok(LaunchConfig { grid_dim: (rows, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 })
}

fn rows_of(op: &'static str, len: usize, cols: usize) -> Result<usize> {
    if cols == 0 || !len.is_multiple_of(cols) {
        return Err(invalid(op, format!("{len} elements are not rows of {cols}")));
    }
    Ok(len / cols)
}

impl GpuContext {
    /// `d_table[ids[t]] += d_out[t]`.
    pub fn embedding_backward(
        &self,
        d_out: &CudaSlice<f32>,
        ids: &[u32],
        dim: usize,
        d_table: &mut CudaSlice<f32>,
    ) -> Result<()> {
        const OP: &str = "embedding_backward";
        let vocab = d_table.len().checked_div(dim).unwrap_or(0);
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(invalid(OP, format!("token id {bad} outside a vocabulary of {vocab}")));
        }
        need(OP, "d_out", d_out.len(), ids.len() * dim)?;
        if ids.is_empty() {
            return Ok(());
        }
        let ids_dev = self.stream().clone_htod(ids)?;
        let (n, d, v) = (to_i32(OP, "tokens", ids.len())?, to_i32(OP, "dim", dim)?, to_i32(OP, "vocab", vocab)?);
        let mut b = self.stream().launch_builder(self.function("embedding_backward_f32")?);
        b.arg(d_out).arg(&ids_dev).arg(d_table).arg(&n).arg(&d).arg(&v);
        // SAFETY: arguments match embedding_backward_f32; ids < vocab and d_out holds n * dim.
        unsafe { b.launch(rows_config(ids.len())?) }?;
        Ok(())
    }

    /// Adds RMSNorm's input gradient into `d_x` and weight gradient into `d_w`.
    #[allow(clippy::too_many_arguments)]
    pub fn rms_norm_backward(
        &self,
        d_out: &CudaSlice<f32>,
        x: &CudaSlice<f32>,
        w: &CudaSlice<f32>,
        inv_rms: &CudaSlice<f32>,
        dim: usize,
        d_x: &mut CudaSlice<f32>,
        d_w: &mut CudaSlice<f32>,
    ) -> Result<()> {
        const OP: &str = "rms_norm_backward";
        let rows = rows_of(OP, x.len(), dim)?;
        need(OP, "d_out", d_out.len(), x.len())?;
        need(OP, "w", w.len(), dim)?;
        need(OP, "inv_rms", inv_rms.len(), rows)?;
        need(OP, "d_x", d_x.len(), x.len())?;
        need(OP, "d_w", d_w.len(), dim)?;
        let (r, d) = (to_i32(OP, "rows", rows)?, to_i32(OP, "dim", dim)?);
        let mut b = self.stream().launch_builder(self.function("rms_norm_backward_f32")?);
        b.arg(d_out).arg(x).arg(w).arg(inv_rms).arg(&r).arg(&d).arg(d_x).arg(d_w);
        // SAFETY: arguments match rms_norm_backward_f32; every buffer covers rows * dim (checked above).
        unsafe { b.launch(rows_config(rows)?) }?;
        Ok(())
    }

    /// Writes SwiGLU's gradients into `d_gate` and `d_up`.
    pub fn swiglu_backward(
        &self,
        gate: &CudaSlice<f32>,
        up: &CudaSlice<f32>,
        d_out: &CudaSlice<f32>,
        d_gate: &mut CudaSlice<f32>,
        d_up: &mut CudaSlice<f32>,
    ) -> Result<()> {
        const OP: &str = "swiglu_backward";
        let n = gate.len();
        for (what, len) in [("up", up.len()), ("d_out", d_out.len()), ("d_gate", d_gate.len()), ("d_up", d_up.len())] {
            need(OP, what, len, n)?;
        }
        let count = n as u64;
        let mut b = self.stream().launch_builder(self.function("swiglu_backward_f32")?);
        b.arg(gate).arg(up).arg(d_out).arg(d_gate).arg(d_up).arg(&count);
        // SAFETY: arguments match swiglu_backward_f32; all five buffers hold n elements.
        unsafe { b.launch(elementwise(n)) }?;
        Ok(())
    }

    /// `d_bias += column sums of d_y` (rows of width `d_bias.len()`).
    pub fn bias_backward(&self, d_y: &CudaSlice<f32>, d_bias: &mut CudaSlice<f32>) -> Result<()> {
        const OP: &str = "bias_backward";
        let cols = d_bias.len();
        let rows = rows_of(OP, d_y.len(), cols)?;
        let (r, c) = (to_i32(OP, "rows", rows)?, to_i32(OP, "cols", cols)?);
        let cfg = LaunchConfig {
            grid_dim: ((cols as u32).div_ceil(THREADS), 1, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = self.stream().launch_builder(self.function("bias_backward_f32")?);
        b.arg(d_y).arg(&r).arg(&c).arg(d_bias);
        // SAFETY: arguments match bias_backward_f32; d_y holds rows * cols.
        unsafe { b.launch(cfg) }?;
        Ok(())
    }

    /// Per row of `vocab` logits: log-sum-exp and entropy.
    pub fn log_softmax_stats(
        &self,
        logits: &CudaSlice<f32>,
        vocab: usize,
        lse: &mut CudaSlice<f32>,
        entropy: &mut CudaSlice<f32>,
    ) -> Result<()> {
        const OP: &str = "log_softmax_stats";
        let rows = rows_of(OP, logits.len(), vocab)?;
        need(OP, "lse", lse.len(), rows)?;
        need(OP, "entropy", entropy.len(), rows)?;
        let (r, v) = (to_i32(OP, "rows", rows)?, to_i32(OP, "vocab", vocab)?);
        let mut b = self.stream().launch_builder(self.function("log_softmax_stats_f32")?);
        b.arg(logits).arg(&r).arg(&v).arg(lse).arg(entropy);
        // SAFETY: arguments match log_softmax_stats_f32; sizes checked above.
        unsafe { b.launch(rows_config(rows)?) }?;
        Ok(())
    }

    /// Writes the logits' gradient of `Σ d_logprob·log p(target) + d_entropy·H` per row.
    #[allow(clippy::too_many_arguments)]
    pub fn log_softmax_backward(
        &self,
        logits: &CudaSlice<f32>,
        lse: &CudaSlice<f32>,
        entropy: &CudaSlice<f32>,
        targets: &[u32],
        d_logprob: &CudaSlice<f32>,
        d_entropy: &CudaSlice<f32>,
        d_logits: &mut CudaSlice<f32>,
    ) -> Result<()> {
        const OP: &str = "log_softmax_backward";
        let rows = targets.len();
        if rows == 0 {
            return Ok(());
        }
        let vocab = rows_of(OP, logits.len(), rows)?;
        for (what, len) in [
            ("lse", lse.len()),
            ("entropy", entropy.len()),
            ("d_logprob", d_logprob.len()),
            ("d_entropy", d_entropy.len()),
        ] {
            need(OP, what, len, rows)?;
        }
        need(OP, "d_logits", d_logits.len(), logits.len())?;
        let targets_dev = self.stream().clone_htod(targets)?;
        let (r, v) = (to_i32(OP, "rows", rows)?, to_i32(OP, "vocab", vocab)?);
        let mut b = self.stream().launch_builder(self.function("log_softmax_backward_f32")?);
        b.arg(logits)
            .arg(lse)
            .arg(entropy)
            .arg(&targets_dev)
            .arg(d_logprob)
            .arg(d_entropy)
            .arg(&r)
            .arg(&v)
            .arg(d_logits);
        // SAFETY: arguments match log_softmax_backward_f32; every per-row buffer holds `rows` entries.
        unsafe { b.launch(rows_config(rows)?) }?;
        Ok(())
    }

    /// Adds attention's gradients into `d_q`, `d_k`, `d_v` (contiguous spans, as [`GpuContext::attention`]).
    #[allow(clippy::too_many_arguments)]
    pub fn attention_backward(
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
    ) -> Result<()> {
        const OP: &str = "attention_backward";
        check_shape(OP, shape)?;
        let (q_width, kv_width) = (shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim);
        let (q_rows, kv_rows) = (q.len() / q_width, k.len() / kv_width);
        let table = span_table(OP, spans, q_rows, Some(kv_rows))?;
        for (what, len) in [("out", out.len()), ("d_out", d_out.len()), ("d_q", d_q.len())] {
            need(OP, what, len, q.len())?;
        }
        for (what, len) in [("v", v.len()), ("d_k", d_k.len()), ("d_v", d_v.len())] {
            need(OP, what, len, k.len())?;
        }
        need(OP, "lse", lse.len(), q_rows * shape.heads)?;
        let max_q = spans.iter().map(|s| s.q_len).max().unwrap_or(0);
        if max_q == 0 {
            return Ok(());
        }
        let spans_dev = self.stream().clone_htod(&table)?;
        let (h, kvh, d) = (
            to_i32(OP, "heads", shape.heads)?,
            to_i32(OP, "kv_heads", shape.kv_heads)?,
            to_i32(OP, "head_dim", shape.head_dim)?,
        );
        let scale = 1.0 / (shape.head_dim as f32).sqrt();
        let warps_per_block = 4;
        let items = max_q * shape.heads;
        let cfg = LaunchConfig {
            grid_dim: (
                u32::try_from(items.div_ceil(warps_per_block)).map_err(|_| invalid(OP, "too many queries"))?,
                u32::try_from(spans.len()).map_err(|_| invalid(OP, "too many spans"))?,
                1,
            ),
            block_dim: (32 * warps_per_block as u32, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = self.stream().launch_builder(self.function("attention_backward_f32")?);
        b.arg(q).arg(k).arg(v).arg(out).arg(d_out).arg(lse).arg(&spans_dev).arg(&h).arg(&kvh).arg(&d).arg(&scale);
        b.arg(d_q).arg(d_k).arg(d_v);
        // SAFETY: arguments match attention_backward_f32; spans lie inside every buffer (checked above).
        unsafe { b.launch(cfg) }?;
        Ok(())
    }
}
