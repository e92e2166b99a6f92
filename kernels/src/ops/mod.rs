//! Typed launches of the custom kernels. Every wrapper checks sizes, ids and slots on the host before
//! it launches, so caller mistakes become [`KernelError::Invalid`](crate::KernelError::Invalid) instead of
//! out-of-bounds device reads.

mod paged;
mod sampling;

pub use paged::{DeviceKvPool, KvGeometry, PagedBatch};
pub use sampling::SampleRequest;

use cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits};
use half::{bf16, f16};
use selfplay_model::backend::{AttnShape, AttnSpan, RopeDirection};

use crate::device::GpuContext;
use crate::error::{Result, invalid};
use crate::sources::MAX_HEAD_DIM;

/// A storage type the templated kernels are instantiated for.
pub trait Element: DeviceRepr + ValidAsZeroBits + Copy + Default + Unpin + Send + Sync + 'static {
    /// Kernel-name suffix.
    const SUFFIX: &'static str;
    /// Widens to f32.
    fn to_f32(self) -> f32;
    /// Rounds from f32 (to nearest even).
    fn from_f32(v: f32) -> Self;
}

impl Element for f32 {
    const SUFFIX: &'static str = "f32";
    fn to_f32(self) -> f32 {
        self
    }
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl Element for bf16 {
    const SUFFIX: &'static str = "bf16";
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
    fn from_f32(v: f32) -> Self {
        bf16::from_f32(v)
    }
}

impl Element for f16 {
    const SUFFIX: &'static str = "f16";
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    fn from_f32(v: f32) -> Self {
        f16::from_f32(v)
    }
}

/// Threads per block of the row-wise and element-wise kernels.
pub(crate) const THREADS: u32 = 256;
/// Threads per block of the attention kernels (`WARPS * 32` in attention.cu).
pub(crate) const ATTENTION_THREADS: u32 = 128;
/// Queries per prefill CTA (`Q_TILE`) and query heads per decode CTA (`MAX_GROUP`).
pub(crate) const Q_TILE: usize = 16;
pub(crate) const MAX_GROUP: usize = 8;
/// Threads of the sampling kernel (`SAMPLE_THREADS`).
pub(crate) const SAMPLE_THREADS: u32 = 1024;

pub(crate) fn to_i32(op: &'static str, what: &str, v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| invalid(op, format!("{what} = {v} does not fit a 32-bit kernel argument")))
}

pub(crate) fn to_u32(op: &'static str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| invalid(op, format!("{what} = {v} does not fit a 32-bit grid")))
}

pub(crate) fn need(op: &'static str, what: &str, have: usize, want: usize) -> Result<()> {
    if have < want {
        return Err(invalid(op, format!("{what} holds {have} elements, needs {want}")));
    }
    Ok(())
}

/// One block per row.
pub(crate) fn per_row(op: &'static str, rows: usize, threads: u32) -> Result<LaunchConfig> {
    Ok(LaunchConfig {
        grid_dim: (to_u32(op, "rows", rows.max(1))?, 1, 1),
        block_dim: (threads, 1, 1),
        shared_mem_bytes: 0,
    })
}

/// A grid-stride launch over `n` elements.
pub(crate) fn elementwise(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(THREADS as usize).clamp(1, 1 << 16) as u32;
    LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (THREADS, 1, 1), shared_mem_bytes: 0 }
}

/// Checks a head geometry against what the kernels support.
pub(crate) fn check_shape(op: &'static str, shape: AttnShape) -> Result<()> {
    if shape.heads == 0 || shape.kv_heads == 0 || !shape.heads.is_multiple_of(shape.kv_heads) {
        return Err(invalid(op, format!("{} heads cannot share {} key/value heads", shape.heads, shape.kv_heads)));
    }
    if shape.head_dim == 0 || shape.head_dim > MAX_HEAD_DIM {
        return Err(invalid(op, format!("head_dim {} is outside 1..={MAX_HEAD_DIM}", shape.head_dim)));
    }
    Ok(())
}

/// Validates spans against the row counts and flattens them to the kernels' i32 table.
pub(crate) fn span_table(
    op: &'static str,
    spans: &[AttnSpan],
    q_rows: usize,
    kv_rows: Option<usize>,
) -> Result<Vec<i32>> {
    let mut table = Vec::with_capacity(spans.len() * 4);
    for (i, s) in spans.iter().enumerate() {
        if s.kv_len < s.q_len
            || s.q_start + s.q_len > q_rows
            || kv_rows.is_some_and(|rows| s.kv_start + s.kv_len > rows)
        {
            return Err(invalid(op, format!("span {i} {s:?} does not fit {q_rows} query rows / {kv_rows:?} key rows")));
        }
        for v in [s.q_start, s.q_len, s.kv_start, s.kv_len] {
            table.push(to_i32(op, "span field", v)?);
        }
    }
    Ok(table)
}

impl GpuContext {
    pub(crate) fn kernel(&self, base: &str, suffix: &str) -> Result<&cudarc::driver::CudaFunction> {
        self.function(&format!("{base}_{suffix}"))
    }

    /// `out[t] = table[ids[t]]`, rows of width `dim`.
    pub fn embedding<E: Element>(
        &self,
        table: &CudaSlice<E>,
        ids: &[u32],
        dim: usize,
        out: &mut CudaSlice<E>,
    ) -> Result<()> {
        const OP: &str = "embedding";
        let vocab = table.len().checked_div(dim).unwrap_or(0);
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(invalid(OP, format!("token id {bad} outside a vocabulary of {vocab}")));
        }
        need(OP, "out", out.len(), ids.len() * dim)?;
        if ids.is_empty() {
            return Ok(());
        }
        let ids_dev = self.stream().clone_htod(ids)?;
        let (n, d, v) = (to_i32(OP, "tokens", ids.len())?, to_i32(OP, "dim", dim)?, to_i32(OP, "vocab", vocab)?);
        let mut b = self.stream().launch_builder(self.kernel(OP, E::SUFFIX)?);
        b.arg(&ids_dev).arg(table).arg(out).arg(&n).arg(&d).arg(&v);
        // SAFETY: arguments match embedding_<E>(ids, table, out, n, dim, vocab); ids < vocab and out holds n * dim.
        unsafe { b.launch(per_row(OP, ids.len(), THREADS)?) }?;
        Ok(())
    }

    /// RMSNorm over rows of width `dim`; stores each row's inverse RMS in `inv_rms` when given.
    pub fn rms_norm<E: Element>(
        &self,
        x: &CudaSlice<E>,
        weight: &CudaSlice<E>,
        eps: f32,
        dim: usize,
        out: &mut CudaSlice<E>,
        inv_rms: Option<&mut CudaSlice<f32>>,
    ) -> Result<()> {
        const OP: &str = "rms_norm";
        if dim == 0 || !x.len().is_multiple_of(dim) {
            return Err(invalid(OP, format!("{} elements are not rows of {dim}", x.len())));
        }
        let rows = x.len() / dim;
        need(OP, "weight", weight.len(), dim)?;
        need(OP, "out", out.len(), x.len())?;
        let (r, d) = (to_i32(OP, "rows", rows)?, to_i32(OP, "dim", dim)?);
        let null = 0u64;
        let mut b = self.stream().launch_builder(self.kernel(OP, E::SUFFIX)?);
        b.arg(x).arg(weight).arg(out);
        match inv_rms {
            Some(buf) => {
                need(OP, "inv_rms", buf.len(), rows)?;
                b.arg(buf)
            }
            None => b.arg(&null),
        };
        b.arg(&r).arg(&d).arg(&eps);
        // SAFETY: arguments match rms_norm_<E>(x, w, out, inv_rms or null, rows, dim, eps); sizes checked above.
        unsafe { b.launch(per_row(OP, rows, THREADS)?) }?;
        Ok(())
    }

    /// Rotary embedding in place on rows of `heads * head_dim` that are `row_stride` elements apart.
    #[allow(clippy::too_many_arguments)]
    pub fn rope<E: Element>(
        &self,
        x: &mut CudaSlice<E>,
        positions: &[u32],
        heads: usize,
        head_dim: usize,
        row_stride: usize,
        theta: f32,
        direction: RopeDirection,
    ) -> Result<()> {
        const OP: &str = "rope";
        if !head_dim.is_multiple_of(2) || heads * head_dim > row_stride {
            return Err(invalid(OP, format!("{heads} heads of {head_dim} in rows of {row_stride}")));
        }
        if positions.is_empty() {
            return Ok(());
        }
        need(OP, "x", x.len(), (positions.len() - 1) * row_stride + heads * head_dim)?;
        let pos = self.stream().clone_htod(positions)?;
        let sign: f32 = match direction {
            RopeDirection::Forward => 1.0,
            RopeDirection::Inverse => -1.0,
        };
        self.launch_rope(x, &pos, positions.len(), heads, head_dim, row_stride, theta, sign)
    }

    /// Launches rope_<E> on `n` rows whose positions are already on the device (sizes checked by callers).
    #[allow(clippy::too_many_arguments)]
    fn launch_rope<E: Element>(
        &self,
        x: &mut CudaSlice<E>,
        positions: &CudaSlice<u32>,
        n: usize,
        heads: usize,
        head_dim: usize,
        row_stride: usize,
        theta: f32,
        sign: f32,
    ) -> Result<()> {
        const OP: &str = "rope";
        let (nt, h, d, s) = (
            to_i32(OP, "tokens", n)?,
            to_i32(OP, "heads", heads)?,
            to_i32(OP, "head_dim", head_dim)?,
            to_i32(OP, "row_stride", row_stride)?,
        );
        let mut b = self.stream().launch_builder(self.kernel(OP, E::SUFFIX)?);
        b.arg(x).arg(positions).arg(&nt).arg(&h).arg(&d).arg(&s).arg(&theta).arg(&sign);
        // SAFETY: arguments match rope_<E>(x, positions, n, heads, head_dim, stride, theta, sign); callers
        // checked that x covers n rows of `row_stride` and that `positions` holds n entries.
        unsafe { b.launch(per_row(OP, n, THREADS)?) }?;
        Ok(())
    }

    /// `out[r, c] = silu(gate[r, c]) * up[r, c]` for `rows` rows of `cols`; inputs' rows are `in_stride` apart.
    pub fn swiglu<E: Element>(
        &self,
        gate: &CudaSlice<E>,
        up: &CudaSlice<E>,
        out: &mut CudaSlice<E>,
        rows: usize,
        cols: usize,
        in_stride: usize,
    ) -> Result<()> {
        const OP: &str = "swiglu";
        if rows == 0 || cols == 0 {
            return Ok(());
        }
        let span = (rows - 1) * in_stride + cols;
        need(OP, "gate", gate.len(), span)?;
        need(OP, "up", up.len(), span)?;
        need(OP, "out", out.len(), rows * cols)?;
        let (r, c, s) = (to_i32(OP, "rows", rows)?, to_i32(OP, "cols", cols)?, to_i32(OP, "in_stride", in_stride)?);
        let mut b = self.stream().launch_builder(self.kernel(OP, E::SUFFIX)?);
        b.arg(gate).arg(up).arg(out).arg(&r).arg(&c).arg(&s);
        // SAFETY: arguments match swiglu_<E>(gate, up, out, rows, cols, stride); sizes checked above.
        unsafe { b.launch(elementwise(rows * cols)) }?;
        Ok(())
    }

    /// `x += y`.
    pub fn add_assign<E: Element>(&self, x: &mut CudaSlice<E>, y: &CudaSlice<E>) -> Result<()> {
        const OP: &str = "add_assign";
        if x.len() != y.len() {
            return Err(invalid(OP, format!("lengths {} and {}", x.len(), y.len())));
        }
        let (n, launch) = (x.len() as u64, elementwise(x.len()));
        let mut b = self.stream().launch_builder(self.kernel(OP, E::SUFFIX)?);
        b.arg(x).arg(y).arg(&n);
        // SAFETY: arguments match add_assign_<E>(x, y, n); both hold n elements.
        unsafe { b.launch(launch) }?;
        Ok(())
    }

    /// `x[r, :] += bias` for rows of width `bias.len()`.
    pub fn add_bias<E: Element>(&self, x: &mut CudaSlice<E>, bias: &CudaSlice<E>) -> Result<()> {
        const OP: &str = "add_bias";
        let cols = bias.len();
        if cols == 0 || !x.len().is_multiple_of(cols) {
            return Err(invalid(OP, format!("{} elements are not rows of {cols}", x.len())));
        }
        let (n, c) = (x.len() as u64, to_i32(OP, "cols", cols)?);
        let launch = elementwise(x.len());
        let mut b = self.stream().launch_builder(self.kernel(OP, E::SUFFIX)?);
        b.arg(x).arg(bias).arg(&n).arg(&c);
        // SAFETY: arguments match add_bias_<E>(x, bias, n, cols); x holds whole rows.
        unsafe { b.launch(launch) }?;
        Ok(())
    }

    /// Widens `x` into the f32 buffer `out`.
    pub fn to_f32<E: Element>(&self, x: &CudaSlice<E>, out: &mut CudaSlice<f32>) -> Result<()> {
        const OP: &str = "to_f32";
        need(OP, "out", out.len(), x.len())?;
        let (n, launch) = (x.len() as u64, elementwise(x.len()));
        let mut b = self.stream().launch_builder(self.kernel(OP, E::SUFFIX)?);
        b.arg(x).arg(out).arg(&n);
        // SAFETY: arguments match to_f32_<E>(x, out, n); out holds at least n elements.
        unsafe { b.launch(launch) }?;
        Ok(())
    }

    /// Causal GQA attention over contiguous packed K/V (see [`AttnSpan`]); scale `1/sqrt(head_dim)`.
    /// Rows are `heads * head_dim` (queries, output) and `kv_heads * head_dim` (keys, values) wide.
    /// `lse` receives `[q_rows, heads]` log-sum-exps for the backward pass when given.
    #[allow(clippy::too_many_arguments)]
    pub fn attention<E: Element>(
        &self,
        q: &CudaSlice<E>,
        k: &CudaSlice<E>,
        v: &CudaSlice<E>,
        spans: &[AttnSpan],
        shape: AttnShape,
        out: &mut CudaSlice<E>,
        lse: Option<&mut CudaSlice<f32>>,
    ) -> Result<()> {
        const OP: &str = "attention";
        check_shape(OP, shape)?;
        let (q_width, kv_width) = (shape.heads * shape.head_dim, shape.kv_heads * shape.head_dim);
        let (q_rows, kv_rows) = (q.len() / q_width, k.len() / kv_width);
        need(OP, "v", v.len(), k.len())?;
        need(OP, "out", out.len(), q.len())?;
        let table = span_table(OP, spans, q_rows, Some(kv_rows))?;
        let max_q = spans.iter().map(|s| s.q_len).max().unwrap_or(0);
        if max_q == 0 {
            return Ok(());
        }
        let spans_dev = self.stream().clone_htod(&table)?;
        let null = 0u64;
        let (h, kvh, d) = (
            to_i32(OP, "heads", shape.heads)?,
            to_i32(OP, "kv_heads", shape.kv_heads)?,
            to_i32(OP, "head_dim", shape.head_dim)?,
        );
        let (qs, ks) = (to_i32(OP, "q width", q_width)?, to_i32(OP, "kv width", kv_width)?);
        let scale = 1.0 / (shape.head_dim as f32).sqrt();
        let mut b = self.stream().launch_builder(self.kernel("attention_prefill", E::SUFFIX)?);
        b.arg(q).arg(k).arg(v).arg(out);
        match lse {
            Some(buf) => {
                need(OP, "lse", buf.len(), q_rows * shape.heads)?;
                b.arg(buf)
            }
            None => b.arg(&null),
        };
        b.arg(&spans_dev).arg(&h).arg(&kvh).arg(&d).arg(&qs).arg(&ks).arg(&scale);
        let cfg = LaunchConfig {
            grid_dim: (
                to_u32(OP, "query tiles", max_q.div_ceil(Q_TILE))?,
                to_u32(OP, "heads", shape.heads)?,
                to_u32(OP, "spans", spans.len())?,
            ),
            block_dim: (ATTENTION_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: arguments match attention_prefill_<E>; every span lies inside q/k/v/out (checked above).
        unsafe { b.launch(cfg) }?;
        Ok(())
    }
}
