//! The paged KV cache on the device: the pool, per-step metadata, KV append, block copies and paged attention.

use cudarc::driver::{CudaSlice, CudaView, LaunchConfig, PushKernelArg};
use selfplay_kvcache::{BlockCopy, BlockId};
use selfplay_model::backend::{AttnShape, AttnSpan};

use super::{
    ATTENTION_THREADS, Element, MAX_GROUP, Q_TILE, THREADS, check_shape, need, per_row, span_table, to_i32, to_u32,
};
use crate::device::GpuContext;
use crate::error::{Result, invalid};
use crate::sources::MAX_HEAD_DIM;

/// Shape of a paged key/value pool on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvGeometry {
    /// Transformer layers (one K and one V region each).
    pub layers: usize,
    /// Blocks per layer (the host block pool's size).
    pub num_blocks: usize,
    /// Tokens per block.
    pub block_size: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Head dimension.
    pub head_dim: usize,
}

impl KvGeometry {
    /// Elements per token slot.
    pub fn slot_elems(&self) -> usize {
        self.kv_heads * self.head_dim
    }
    /// Elements per block.
    pub fn block_elems(&self) -> usize {
        self.block_size * self.slot_elems()
    }
    /// Elements per layer.
    pub fn layer_elems(&self) -> usize {
        self.num_blocks * self.block_elems()
    }
}

/// The device side of the paged KV cache: K and V for every layer, `[layers, blocks, block_size,
/// kv_heads, head_dim]`. Which block belongs to whom is decided by `selfplay_kvcache::PagedKvCache`.
#[derive(Debug)]
pub struct DeviceKvPool<E: Element> {
    /// Keys.
    pub k: CudaSlice<E>,
    /// Values.
    pub v: CudaSlice<E>,
    geometry: KvGeometry,
}

impl<E: Element> DeviceKvPool<E> {
    /// Allocates a zeroed pool.
    pub fn new(gpu: &GpuContext, geometry: KvGeometry) -> Result<Self> {
        let elems = geometry
            .layers
            .checked_mul(geometry.layer_elems())
            .filter(|&n| n > 0)
            .ok_or_else(|| invalid("DeviceKvPool::new", format!("{geometry:?} is empty or too large")))?;
        Ok(Self { k: gpu.stream().alloc_zeros(elems)?, v: gpu.stream().alloc_zeros(elems)?, geometry })
    }

    /// The pool's shape.
    pub fn geometry(&self) -> KvGeometry {
        self.geometry
    }

    fn layer_range(&self, op: &'static str, layer: usize) -> Result<std::ops::Range<usize>> {
        if layer >= self.geometry.layers {
            return Err(invalid(op, format!("layer {layer} of {}", self.geometry.layers)));
        }
        let n = self.geometry.layer_elems();
        Ok(layer * n..(layer + 1) * n)
    }
}

/// Flattens per-sequence block tables to `[batch, max_blocks]` i32, checking every id and that each
/// table covers its sequence's length.
fn block_table_arg(
    op: &'static str,
    tables: &[&[BlockId]],
    lens: &[usize],
    g: KvGeometry,
) -> Result<(Vec<i32>, usize)> {
    if tables.len() != lens.len() {
        return Err(invalid(op, format!("{} block tables for {} sequences", tables.len(), lens.len())));
    }
    let max_blocks = tables.iter().map(|t| t.len()).max().unwrap_or(0).max(1);
    let mut flat = vec![0i32; tables.len() * max_blocks];
    for (b, (table, &len)) in tables.iter().zip(lens).enumerate() {
        if table.len() * g.block_size < len {
            return Err(invalid(op, format!("sequence {b}: {} blocks cannot hold {len} tokens", table.len())));
        }
        for (j, block) in table.iter().enumerate() {
            if block.index() >= g.num_blocks {
                return Err(invalid(op, format!("sequence {b}: {block:?} outside a pool of {}", g.num_blocks)));
            }
            flat[b * max_blocks + j] = to_i32(op, "block id", block.index())?;
        }
    }
    Ok((flat, max_blocks))
}

/// Device copies of one forward step's paged-attention metadata (see [`GpuContext::paged_batch`]),
/// uploaded once and reused by every layer.
#[derive(Debug)]
pub struct PagedBatch {
    spans: CudaSlice<i32>,
    blocks: CudaSlice<i32>,
    slots: CudaSlice<u32>,
    positions: CudaSlice<u32>,
    partial: CudaSlice<f32>,
    n_new: usize,
    rows: usize,
    max_blocks: usize,
    batch: usize,
    max_q: usize,
    decode: bool,
    splits: usize,
    shape: AttnShape,
    geometry: KvGeometry,
}

impl GpuContext {
    /// Uploads the metadata of one forward step over the paged cache once, for every layer to reuse:
    /// spans (`q_start`, `q_len`, ignored `kv_start`, `kv_len`), block tables, and the new tokens' slots
    /// and positions (empty when only attention runs). Checks every id, slot and table against `pool`.
    pub fn paged_batch<E: Element>(
        &self,
        pool: &DeviceKvPool<E>,
        spans: &[AttnSpan],
        block_tables: &[&[BlockId]],
        slots: &[u32],
        positions: &[u32],
        shape: AttnShape,
    ) -> Result<PagedBatch> {
        self.paged_batch_for(pool.geometry(), spans, block_tables, slots, positions, shape)
    }

    /// [`GpuContext::paged_batch`] for a pool of geometry `g`, wherever it is held.
    fn paged_batch_for(
        &self,
        g: KvGeometry,
        spans: &[AttnSpan],
        block_tables: &[&[BlockId]],
        slots: &[u32],
        positions: &[u32],
        shape: AttnShape,
    ) -> Result<PagedBatch> {
        const OP: &str = "paged_batch";
        check_shape(OP, shape)?;
        if g.kv_heads != shape.kv_heads || g.head_dim != shape.head_dim {
            return Err(invalid(OP, format!("pool {g:?} does not match {shape:?}")));
        }
        let rows = spans.iter().map(|s| s.q_start + s.q_len).max().unwrap_or(0);
        let table = span_table(OP, spans, rows, None)?;
        let lens: Vec<usize> = spans.iter().map(|s| s.kv_len).collect();
        let (blocks, max_blocks) = block_table_arg(OP, block_tables, &lens, g)?;
        let capacity = g.num_blocks * g.block_size;
        if let Some(bad) = slots.iter().find(|&&s| s as usize >= capacity) {
            return Err(invalid(OP, format!("slot {bad} outside a pool of {capacity} slots")));
        }
        if positions.len() != slots.len() {
            return Err(invalid(OP, format!("{} positions for {} slots", positions.len(), slots.len())));
        }
        let batch = spans.len();
        let max_q = spans.iter().map(|s| s.q_len).max().unwrap_or(0);
        let decode = spans.iter().all(|s| s.q_len == 1);
        let chunks = (shape.heads / shape.kv_heads).div_ceil(MAX_GROUP);
        let ctas = (batch * shape.kv_heads * chunks).max(1);
        let max_ctx = lens.iter().copied().max().unwrap_or(0);
        // Enough CTAs to fill a large GPU, but at least 128 keys per split.
        let splits = if decode { max_ctx.div_ceil(128).min(512usize.div_ceil(ctas)).clamp(1, 32) } else { 1 };
        let partial_len = if splits > 1 { batch * shape.heads * splits * (shape.head_dim + 2) } else { 1 };
        let s = self.stream();
        let upload_or_dummy = |v: &[u32]| if v.is_empty() { s.clone_htod(&[0u32]) } else { s.clone_htod(v) };
        Ok(PagedBatch {
            spans: s.clone_htod(&if table.is_empty() { vec![0; 4] } else { table })?,
            blocks: s.clone_htod(&if blocks.is_empty() { vec![0] } else { blocks })?,
            slots: upload_or_dummy(slots)?,
            positions: upload_or_dummy(positions)?,
            partial: s.alloc_zeros(partial_len)?,
            n_new: slots.len(),
            rows,
            max_blocks,
            batch,
            max_q,
            decode,
            splits,
            shape,
            geometry: g,
        })
    }

    /// Rotary embedding of a paged batch's new tokens (rows `row_stride` apart) at their positions.
    pub fn rope_batch<E: Element>(
        &self,
        x: &mut CudaSlice<E>,
        batch: &PagedBatch,
        heads: usize,
        row_stride: usize,
        theta: f32,
    ) -> Result<()> {
        const OP: &str = "rope";
        let head_dim = batch.shape.head_dim;
        if !head_dim.is_multiple_of(2) || heads * head_dim > row_stride {
            return Err(invalid(OP, format!("{heads} heads of {head_dim} in rows of {row_stride}")));
        }
        if batch.n_new == 0 {
            return Ok(());
        }
        need(OP, "x", x.len(), (batch.n_new - 1) * row_stride + heads * head_dim)?;
        self.launch_rope(x, &batch.positions, batch.n_new, heads, head_dim, row_stride, theta, 1.0)
    }

    /// Writes a paged batch's new keys and values (rows `in_stride` apart in `k` and `v`) into their slots of `layer`.
    pub fn kv_append_batch<E: Element>(
        &self,
        pool: &mut DeviceKvPool<E>,
        layer: usize,
        k: &CudaSlice<E>,
        v: &CudaSlice<E>,
        in_stride: usize,
        batch: &PagedBatch,
    ) -> Result<()> {
        const OP: &str = "kv_append";
        let row = pool.geometry().slot_elems();
        if batch.geometry != pool.geometry() {
            return Err(invalid(OP, "batch prepared for another pool"));
        }
        if batch.n_new == 0 {
            return Ok(());
        }
        if in_stride < row {
            return Err(invalid(OP, format!("input stride {in_stride} below the row width {row}")));
        }
        let span = (batch.n_new - 1) * in_stride + row;
        need(OP, "k", k.len(), span)?;
        need(OP, "v", v.len(), span)?;
        let range = pool.layer_range(OP, layer)?;
        let (n, r, s) =
            (to_i32(OP, "tokens", batch.n_new)?, to_i32(OP, "row", row)?, to_i32(OP, "in_stride", in_stride)?);
        let mut kc = pool.k.slice_mut(range.clone());
        let mut vc = pool.v.slice_mut(range);
        let mut b = self.stream().launch_builder(self.kernel(OP, E::SUFFIX)?);
        b.arg(k).arg(v).arg(&mut kc).arg(&mut vc).arg(&batch.slots).arg(&n).arg(&r).arg(&s);
        // SAFETY: arguments match kv_append_<E>; slots were checked against this pool's capacity and the
        // inputs cover every new row (checked above).
        unsafe { b.launch(per_row(OP, batch.n_new, THREADS)?) }?;
        Ok(())
    }

    /// Attention of a paged batch against `layer`: the decode kernel (split over long contexts) when
    /// every span has one query, the paged prefill kernel otherwise. `q` and `out` are
    /// `[rows, heads * head_dim]`; the new keys/values must already be appended.
    pub fn attention_paged<E: Element>(
        &self,
        q: &CudaSlice<E>,
        pool: &DeviceKvPool<E>,
        layer: usize,
        batch: &mut PagedBatch,
        out: &mut CudaSlice<E>,
    ) -> Result<()> {
        const OP: &str = "attention_paged";
        if batch.geometry != pool.geometry() {
            return Err(invalid(OP, "batch prepared for another pool"));
        }
        let range = pool.layer_range(OP, layer)?;
        let (kc, vc) = (pool.k.slice(range.clone()), pool.v.slice(range));
        self.launch_attention_paged(q, &kc, &vc, batch, out)
    }

    /// Paged attention against one layer's key and value pools held in buffers of their own, each
    /// `[num_blocks · block_size, kv_heads · head_dim]` (the layout of `selfplay_model::KvCache`'s
    /// pools): span `i`'s queries are its last `q_len` positions of `kv_len`, whose keys and values
    /// (the new ones already written) are read through `block_tables[i]`; `kv_start` is ignored.
    /// The decode kernel when every span has one query, the paged prefill kernel otherwise. Writes
    /// `out` only (no log-sum-exp).
    #[allow(clippy::too_many_arguments)]
    pub fn attention_paged_pools(
        &self,
        q: &CudaSlice<f32>,
        k_pool: &CudaSlice<f32>,
        v_pool: &CudaSlice<f32>,
        spans: &[AttnSpan],
        block_tables: &[&[BlockId]],
        block_size: usize,
        shape: AttnShape,
        out: &mut CudaSlice<f32>,
    ) -> Result<()> {
        const OP: &str = "attention_paged_pools";
        let block_elems = block_size * shape.kv_heads * shape.head_dim;
        if block_elems == 0 || k_pool.len() != v_pool.len() || !k_pool.len().is_multiple_of(block_elems) {
            let reason = format!("pools of {} and {} elements, blocks of {block_elems}", k_pool.len(), v_pool.len());
            return Err(invalid(OP, reason));
        }
        let geometry = KvGeometry {
            layers: 1,
            num_blocks: k_pool.len() / block_elems,
            block_size,
            kv_heads: shape.kv_heads,
            head_dim: shape.head_dim,
        };
        let mut batch = self.paged_batch_for(geometry, spans, block_tables, &[], &[], shape)?;
        self.launch_attention_paged(q, &k_pool.slice(..), &v_pool.slice(..), &mut batch, out)
    }

    /// Launches the paged attention kernels of `batch` on one layer's pools `kc`, `vc`.
    fn launch_attention_paged<E: Element>(
        &self,
        q: &CudaSlice<E>,
        kc: &CudaView<'_, E>,
        vc: &CudaView<'_, E>,
        batch: &mut PagedBatch,
        out: &mut CudaSlice<E>,
    ) -> Result<()> {
        const OP: &str = "attention_paged";
        let (shape, g) = (batch.shape, batch.geometry);
        if batch.max_q == 0 {
            return Ok(());
        }
        let q_width = shape.heads * shape.head_dim;
        need(OP, "q", q.len(), batch.rows * q_width)?;
        need(OP, "out", out.len(), batch.rows * q_width)?;
        let (mb, bs) = (to_i32(OP, "max blocks", batch.max_blocks)?, to_i32(OP, "block size", g.block_size)?);
        let (h, kvh, d) = (
            to_i32(OP, "heads", shape.heads)?,
            to_i32(OP, "kv_heads", shape.kv_heads)?,
            to_i32(OP, "head_dim", shape.head_dim)?,
        );
        let qs = to_i32(OP, "q width", q_width)?;
        let scale = 1.0 / (shape.head_dim as f32).sqrt();
        let n_batch = to_u32(OP, "spans", batch.batch)?;
        if !batch.decode {
            let mut b = self.stream().launch_builder(self.kernel("attention_prefill_paged", E::SUFFIX)?);
            b.arg(q).arg(kc).arg(vc).arg(out).arg(&batch.spans).arg(&batch.blocks);
            b.arg(&mb).arg(&bs).arg(&h).arg(&kvh).arg(&d).arg(&qs).arg(&scale);
            let cfg = LaunchConfig {
                grid_dim: (
                    to_u32(OP, "query tiles", batch.max_q.div_ceil(Q_TILE))?,
                    to_u32(OP, "heads", shape.heads)?,
                    n_batch,
                ),
                block_dim: (ATTENTION_THREADS, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: arguments match attention_prefill_paged_<E>; spans, block ids and table coverage were
            // checked when the batch was prepared, and q/out cover every span's rows (checked above).
            unsafe { b.launch(cfg) }?;
            return Ok(());
        }
        let chunks = (shape.heads / shape.kv_heads).div_ceil(MAX_GROUP);
        let mut b = self.stream().launch_builder(self.kernel("attention_decode", E::SUFFIX)?);
        b.arg(q).arg(kc).arg(vc).arg(&mut *out).arg(&mut batch.partial).arg(&batch.spans).arg(&batch.blocks);
        b.arg(&mb).arg(&bs).arg(&h).arg(&kvh).arg(&d).arg(&qs).arg(&scale);
        let cfg = LaunchConfig {
            grid_dim: (to_u32(OP, "kv heads", shape.kv_heads * chunks)?, n_batch, batch.splits as u32),
            block_dim: (ATTENTION_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: arguments match attention_decode_<E>; block tables cover every context (checked when the
        // batch was prepared) and `partial` holds batch * heads * splits * (head_dim + 2) floats when splits > 1.
        unsafe { b.launch(cfg) }?;
        if batch.splits > 1 {
            let n_splits = batch.splits as i32;
            let mut m = self.stream().launch_builder(self.kernel("attention_decode_merge", E::SUFFIX)?);
            m.arg(&batch.partial).arg(out).arg(&batch.spans).arg(&h).arg(&d).arg(&n_splits);
            let cfg = LaunchConfig {
                grid_dim: (to_u32(OP, "heads", shape.heads)?, n_batch, 1),
                block_dim: (MAX_HEAD_DIM as u32, 1, 1),
                shared_mem_bytes: 0,
            };
            // SAFETY: arguments match attention_decode_merge_<E>; `partial` was sized for these splits.
            unsafe { m.launch(cfg) }?;
        }
        Ok(())
    }

    /// Prefill that continues a paged cache: span `i`'s queries are its last `q_len` positions of
    /// `kv_len`, whose keys/values (the new ones already appended) are read from `layer` of `pool`
    /// through `block_tables[i]`. `kv_start` is ignored.
    #[allow(clippy::too_many_arguments)]
    pub fn attention_prefill_paged<E: Element>(
        &self,
        q: &CudaSlice<E>,
        pool: &DeviceKvPool<E>,
        layer: usize,
        spans: &[AttnSpan],
        block_tables: &[&[BlockId]],
        shape: AttnShape,
        out: &mut CudaSlice<E>,
    ) -> Result<()> {
        let mut batch = self.paged_batch(pool, spans, block_tables, &[], &[], shape)?;
        // A batch of single queries would take the decode kernel; this entry point always runs prefill.
        batch.decode = false;
        batch.splits = 1;
        self.attention_paged(q, pool, layer, &mut batch, out)
    }

    /// Decode attention: one query row per sequence (`q` is `[batch, heads * head_dim]`) against its
    /// `context_lens[b]` cached keys/values in `layer` of `pool`, reached through `block_tables[b]`.
    /// Long contexts are split across CTAs and merged (flash-decoding).
    #[allow(clippy::too_many_arguments)]
    pub fn attention_decode<E: Element>(
        &self,
        q: &CudaSlice<E>,
        pool: &DeviceKvPool<E>,
        layer: usize,
        context_lens: &[usize],
        block_tables: &[&[BlockId]],
        shape: AttnShape,
        out: &mut CudaSlice<E>,
    ) -> Result<()> {
        if let Some(b) = context_lens.iter().position(|&l| l == 0) {
            return Err(invalid("attention_decode", format!("sequence {b} has an empty context")));
        }
        let spans: Vec<AttnSpan> = context_lens
            .iter()
            .enumerate()
            .map(|(b, &len)| AttnSpan { q_start: b, q_len: 1, kv_start: 0, kv_len: len })
            .collect();
        let mut batch = self.paged_batch(pool, &spans, block_tables, &[], &[], shape)?;
        self.attention_paged(q, pool, layer, &mut batch, out)
    }

    /// Writes new tokens' keys and values (rows `in_stride` apart in `k` and `v`) into their `slots`
    /// of `layer` (slots come from `selfplay_kvcache` reservations).
    pub fn kv_append<E: Element>(
        &self,
        pool: &mut DeviceKvPool<E>,
        layer: usize,
        k: &CudaSlice<E>,
        v: &CudaSlice<E>,
        in_stride: usize,
        slots: &[u32],
    ) -> Result<()> {
        let shape = AttnShape {
            heads: pool.geometry().kv_heads,
            kv_heads: pool.geometry().kv_heads,
            head_dim: pool.geometry().head_dim,
        };
        let positions = vec![0; slots.len()];
        let batch = self.paged_batch(pool, &[], &[], slots, &positions, shape)?;
        self.kv_append_batch(pool, layer, k, v, in_stride, &batch)
    }

    /// Performs copy-on-write block copies in every layer.
    pub fn kv_copy_blocks<E: Element>(&self, pool: &mut DeviceKvPool<E>, copies: &[BlockCopy]) -> Result<()> {
        const OP: &str = "kv_copy_blocks";
        let g = pool.geometry();
        let mut pairs = Vec::with_capacity(copies.len() * 2);
        for c in copies {
            if c.src.index() >= g.num_blocks || c.dst.index() >= g.num_blocks || c.src == c.dst {
                return Err(invalid(OP, format!("{c:?} in a pool of {} blocks", g.num_blocks)));
            }
            pairs.extend([c.src.0, c.dst.0]);
        }
        if copies.is_empty() {
            return Ok(());
        }
        let pairs_dev = self.stream().clone_htod(&pairs)?;
        let (n, e, stride) = (
            to_i32(OP, "copies", copies.len())?,
            to_i32(OP, "block elements", g.block_elems())?,
            g.layer_elems() as u64,
        );
        let mut b = self.stream().launch_builder(self.kernel(OP, E::SUFFIX)?);
        b.arg(&mut pool.k).arg(&mut pool.v).arg(&pairs_dev).arg(&n).arg(&e).arg(&stride);
        let cfg = LaunchConfig {
            grid_dim: (to_u32(OP, "copies", copies.len())?, to_u32(OP, "layers", g.layers)?, 1),
            block_dim: (THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        // SAFETY: arguments match kv_copy_blocks_<E>; every block id is inside the pool (checked above).
        unsafe { b.launch(cfg) }?;
        Ok(())
    }
}
