//! One decoder layer, forward and backward as a pair (llm.c style), over named activation buffers:
//!
//! ```text
//! xn1 = rms_norm(x_in)             q,k,v = xn1·Wᵀ (+ b), rope(q), rope(k)
//! attn = causal_attention(q,k,v)   x_mid = x_in + attn·Woᵀ (+ bo)
//! xn2 = rms_norm(x_mid)            act = silu(xn2·Wgᵀ) · (xn2·Wuᵀ)
//! x_out = x_mid + act·Wdᵀ
//! ```

use std::borrow::{Borrow, BorrowMut};

use crate::backend::{AttnShape, Backend, BackendResult, Gemm, PagedSpan, RopeDirection};
use crate::config::ModelConfig;
use crate::transformer::batch::PackedBatch;
use crate::transformer::params::LayerParams;
use selfplay_tensor::Float;

/// What one layer's forward pass keeps for its backward pass (all `[rows, ·]`, packed).
#[derive(Debug)]
pub struct LayerActs<O> {
    /// The residual stream entering the layer, `[rows, hidden]`.
    pub x_in: O,
    pub xn1: O,
    /// `rsqrt(mean(x²)+eps)` per row of the first norm, `[rows]`.
    pub inv1: O,
    /// Queries and keys after RoPE, values: `[rows, q_dim]`, `[rows, kv_dim]`, `[rows, kv_dim]`.
    pub q: O,
    pub k: O,
    pub v: O,
    /// Attention output before `o_proj`, `[rows, q_dim]`.
    pub attn: O,
    /// Per-row, per-head log-sum-exp of the attention scores, `[rows, heads]`.
    pub lse: O,
    /// The residual stream after attention, `[rows, hidden]`.
    pub x_mid: O,
    pub xn2: O,
    pub inv2: O,
    /// `[rows, intermediate]` each.
    pub gate: O,
    pub up: O,
    pub act: O,
}

impl<O> LayerActs<O> {
    /// Buffers for `rows` packed tokens.
    pub fn new<T: Float, B: Backend<T, Owned = O>>(b: &B, cfg: &ModelConfig, rows: usize) -> BackendResult<Self> {
        let (h, q, kv, i) = (cfg.hidden_size, cfg.q_dim(), cfg.kv_dim(), cfg.intermediate_size);
        Ok(LayerActs {
            x_in: b.zeros(rows * h)?,
            xn1: b.zeros(rows * h)?,
            inv1: b.zeros(rows)?,
            q: b.zeros(rows * q)?,
            k: b.zeros(rows * kv)?,
            v: b.zeros(rows * kv)?,
            attn: b.zeros(rows * q)?,
            lse: b.zeros(rows * cfg.num_attention_heads)?,
            x_mid: b.zeros(rows * h)?,
            xn2: b.zeros(rows * h)?,
            inv2: b.zeros(rows)?,
            gate: b.zeros(rows * i)?,
            up: b.zeros(rows * i)?,
            act: b.zeros(rows * i)?,
        })
    }
}

/// Where a layer's attention finds its keys and values.
#[derive(Debug)]
pub enum KvSource<'c, Buf: ?Sized> {
    /// The batch's own keys/values (a full causal forward).
    Fresh,
    /// A paged cache: packed row `r`'s new key/value is first written to pool row `slots[r]`, then
    /// attention reads each sequence's keys through its block table.
    Paged { k: &'c mut Buf, v: &'c mut Buf, slots: &'c [u32], spans: &'c [PagedSpan<'c>], block_size: usize },
}

/// Maximal runs of consecutive packed rows going to consecutive pool rows, as
/// `(first packed row, first pool row, length)`: a block's worth of new rows is one copy.
fn slot_runs(slots: &[u32]) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
    let mut row = 0;
    std::iter::from_fn(move || {
        let first = *slots.get(row)?;
        let next = slots[row + 1..].iter().zip(u64::from(first) + 1..);
        let len = 1 + next.take_while(|&(&s, want)| u64::from(s) == want).count();
        row += len;
        Some((row - len, first as usize, len))
    })
}

pub(crate) fn attn_shape(cfg: &ModelConfig) -> AttnShape {
    AttnShape { heads: cfg.num_attention_heads, kv_heads: cfg.num_key_value_heads, head_dim: cfg.head_dim }
}

/// `y = x·wᵀ (+ bias)`.
#[allow(clippy::too_many_arguments)]
fn linear<T: Float, B: Backend<T>>(
    b: &B,
    x: &B::Buf,
    w: &B::Buf,
    bias: Option<&B::Buf>,
    rows: usize,
    d_in: usize,
    d_out: usize,
    y: &mut B::Buf,
) -> BackendResult {
    b.gemm(Gemm::linear(rows, d_in, d_out), x, w, y)?;
    if let Some(bias) = bias {
        b.add_bias(y, bias, d_out)?;
    }
    Ok(())
}

/// Runs one layer on the residual stream `x` (`[rows, hidden]`, updated in place).
pub fn forward<T: Float, B: Backend<T>>(
    b: &B,
    cfg: &ModelConfig,
    p: &LayerParams<&B::Buf>,
    batch: &PackedBatch,
    x: &mut B::Buf,
    a: &mut LayerActs<B::Owned>,
    kv: KvSource<'_, B::Buf>,
) -> BackendResult {
    let (rows, h, qd, kvd, inter) = (batch.rows(), cfg.hidden_size, cfg.q_dim(), cfg.kv_dim(), cfg.intermediate_size);
    let eps = cfg.rms_norm_eps;
    b.copy_rows(x, 0, a.x_in.borrow_mut(), 0, rows, h)?;
    b.rms_norm(a.x_in.borrow(), p.input_layernorm, eps, h, a.xn1.borrow_mut(), a.inv1.borrow_mut())?;
    let xn1 = a.xn1.borrow();
    linear(b, xn1, p.q_proj, p.q_bias, rows, h, qd, a.q.borrow_mut())?;
    linear(b, xn1, p.k_proj, p.k_bias, rows, h, kvd, a.k.borrow_mut())?;
    linear(b, xn1, p.v_proj, p.v_bias, rows, h, kvd, a.v.borrow_mut())?;
    let (theta, hd) = (cfg.rope_theta, cfg.head_dim);
    b.rope(a.q.borrow_mut(), &batch.positions, cfg.num_attention_heads, hd, theta, RopeDirection::Forward)?;
    b.rope(a.k.borrow_mut(), &batch.positions, cfg.num_key_value_heads, hd, theta, RopeDirection::Forward)?;
    let shape = attn_shape(cfg);
    match kv {
        KvSource::Fresh => b.attention(
            a.q.borrow(),
            a.k.borrow(),
            a.v.borrow(),
            &batch.spans,
            shape,
            a.attn.borrow_mut(),
            Some(a.lse.borrow_mut()),
        )?,
        KvSource::Paged { k, v, slots, spans, block_size } => {
            for (row, slot, len) in slot_runs(slots) {
                b.copy_rows(a.k.borrow(), row, k, slot, len, kvd)?;
                b.copy_rows(a.v.borrow(), row, v, slot, len, kvd)?;
            }
            let (q, out) = (a.q.borrow(), a.attn.borrow_mut());
            if spans.iter().all(|s| s.kv_len == s.q_len) {
                // Nothing cached before this step: the batch's own rows are every key, as in a forward
                // without a cache (same op, same numbers).
                b.attention(q, a.k.borrow(), a.v.borrow(), &batch.spans, shape, out, Some(a.lse.borrow_mut()))?;
            } else {
                // A cached step is inference: nothing reads the log-sum-exp a backward pass would need.
                b.paged_attention(q, k, v, spans, block_size, shape, out, None)?;
            }
        }
    }
    b.gemm(Gemm::linear(rows, qd, h).accumulating(), a.attn.borrow(), p.o_proj, x)?;
    if let Some(bias) = p.o_bias {
        b.add_bias(x, bias, h)?;
    }
    b.copy_rows(x, 0, a.x_mid.borrow_mut(), 0, rows, h)?;
    b.rms_norm(a.x_mid.borrow(), p.post_attention_layernorm, eps, h, a.xn2.borrow_mut(), a.inv2.borrow_mut())?;
    linear(b, a.xn2.borrow(), p.gate_proj, None, rows, h, inter, a.gate.borrow_mut())?;
    linear(b, a.xn2.borrow(), p.up_proj, None, rows, h, inter, a.up.borrow_mut())?;
    b.swiglu(a.gate.borrow(), a.up.borrow(), a.act.borrow_mut())?;
    b.gemm(Gemm::linear(rows, inter, h).accumulating(), a.act.borrow(), p.down_proj, x)
}

/// Gradient scratch for one layer's backward pass, reused across layers.
#[derive(Debug)]
pub struct LayerGradScratch<O> {
    d_act: O,
    d_gate: O,
    d_up: O,
    d_xn: O,
    d_attn: O,
    d_q: O,
    d_k: O,
    d_v: O,
}

impl<O> LayerGradScratch<O> {
    pub fn new<T: Float, B: Backend<T, Owned = O>>(b: &B, cfg: &ModelConfig, rows: usize) -> BackendResult<Self> {
        let (h, q, kv, i) = (cfg.hidden_size, cfg.q_dim(), cfg.kv_dim(), cfg.intermediate_size);
        Ok(LayerGradScratch {
            d_act: b.zeros(rows * i)?,
            d_gate: b.zeros(rows * i)?,
            d_up: b.zeros(rows * i)?,
            d_xn: b.zeros(rows * h)?,
            d_attn: b.zeros(rows * q)?,
            d_q: b.zeros(rows * q)?,
            d_k: b.zeros(rows * kv)?,
            d_v: b.zeros(rows * kv)?,
        })
    }
}

/// `dx_in += dy·w`, `dw += dyᵀ·x_in`, `d_bias += Σ dy` for `y = x·wᵀ + bias`.
#[allow(clippy::too_many_arguments)]
fn linear_backward<T: Float, B: Backend<T>>(
    b: &B,
    x: &B::Buf,
    w: &B::Buf,
    dy: &B::Buf,
    rows: usize,
    d_in: usize,
    d_out: usize,
    dx: &mut B::Buf,
    dw: &mut B::Buf,
    d_bias: Option<&mut B::Buf>,
    accumulate_dx: bool,
) -> BackendResult {
    let g = Gemm::linear_input_grad(rows, d_in, d_out);
    b.gemm(if accumulate_dx { g.accumulating() } else { g }, dy, w, dx)?;
    b.gemm(Gemm::linear_weight_grad(rows, d_in, d_out), dy, x, dw)?;
    if let Some(db) = d_bias {
        b.bias_backward(dy, d_out, db)?;
    }
    Ok(())
}

/// Back-propagates `dx` (the gradient of the layer's output residual, updated in place to the
/// gradient of its input) and adds every parameter gradient into `g`.
#[allow(clippy::too_many_arguments)]
pub fn backward<T: Float, B: Backend<T>>(
    b: &B,
    cfg: &ModelConfig,
    p: &LayerParams<&B::Buf>,
    batch: &PackedBatch,
    a: &LayerActs<B::Owned>,
    dx: &mut B::Buf,
    g: &mut LayerParams<&mut B::Buf>,
    s: &mut LayerGradScratch<B::Owned>,
) -> BackendResult {
    let (rows, h, qd, kvd, inter) = (batch.rows(), cfg.hidden_size, cfg.q_dim(), cfg.kv_dim(), cfg.intermediate_size);
    // MLP block: x_out = x_mid + act·Wdᵀ.
    linear_backward(
        b,
        a.act.borrow(),
        p.down_proj,
        dx,
        rows,
        inter,
        h,
        s.d_act.borrow_mut(),
        g.down_proj,
        None,
        false,
    )?;
    b.swiglu_backward(a.gate.borrow(), a.up.borrow(), s.d_act.borrow(), s.d_gate.borrow_mut(), s.d_up.borrow_mut())?;
    let xn2 = a.xn2.borrow();
    linear_backward(
        b,
        xn2,
        p.gate_proj,
        s.d_gate.borrow(),
        rows,
        h,
        inter,
        s.d_xn.borrow_mut(),
        g.gate_proj,
        None,
        false,
    )?;
    linear_backward(b, xn2, p.up_proj, s.d_up.borrow(), rows, h, inter, s.d_xn.borrow_mut(), g.up_proj, None, true)?;
    b.rms_norm_backward(
        s.d_xn.borrow(),
        a.x_mid.borrow(),
        p.post_attention_layernorm,
        a.inv2.borrow(),
        h,
        dx,
        g.post_attention_layernorm,
    )?;
    // Attention block: x_mid = x_in + attn·Woᵀ (+ bo).
    let d_o_bias = g.o_bias.as_deref_mut();
    linear_backward(b, a.attn.borrow(), p.o_proj, dx, rows, qd, h, s.d_attn.borrow_mut(), g.o_proj, d_o_bias, false)?;
    b.fill_zero(s.d_q.borrow_mut())?;
    b.fill_zero(s.d_k.borrow_mut())?;
    b.fill_zero(s.d_v.borrow_mut())?;
    b.attention_backward(
        a.q.borrow(),
        a.k.borrow(),
        a.v.borrow(),
        a.attn.borrow(),
        s.d_attn.borrow(),
        a.lse.borrow(),
        &batch.spans,
        attn_shape(cfg),
        s.d_q.borrow_mut(),
        s.d_k.borrow_mut(),
        s.d_v.borrow_mut(),
    )?;
    let (theta, hd) = (cfg.rope_theta, cfg.head_dim);
    b.rope(s.d_q.borrow_mut(), &batch.positions, cfg.num_attention_heads, hd, theta, RopeDirection::Inverse)?;
    b.rope(s.d_k.borrow_mut(), &batch.positions, cfg.num_key_value_heads, hd, theta, RopeDirection::Inverse)?;
    let xn1 = a.xn1.borrow();
    let d_xn = s.d_xn.borrow_mut();
    linear_backward(b, xn1, p.q_proj, s.d_q.borrow(), rows, h, qd, d_xn, g.q_proj, g.q_bias.as_deref_mut(), false)?;
    linear_backward(b, xn1, p.k_proj, s.d_k.borrow(), rows, h, kvd, d_xn, g.k_proj, g.k_bias.as_deref_mut(), true)?;
    linear_backward(b, xn1, p.v_proj, s.d_v.borrow(), rows, h, kvd, d_xn, g.v_proj, g.v_bias.as_deref_mut(), true)?;
    b.rms_norm_backward(s.d_xn.borrow(), a.x_in.borrow(), p.input_layernorm, a.inv1.borrow(), h, dx, g.input_layernorm)
}
