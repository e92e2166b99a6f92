//! [`GpuModel`]: the transformer's forward pass written directly against this crate's kernels, with
//! the weights and the KV pool stored in `E` (f32, or bf16/f16 with f32 accumulation).
//!
//! This is a second forward beside the model's own (`selfplay_model::Model<CudaBackend>`, which the
//! generator runs). It stays only for what `Model<CudaBackend>` cannot do yet: 16-bit weight and KV
//! storage, measured by the bf16 decode benchmark (`benches/kernels.rs`). Once `CudaBackend` stores
//! bf16 weights it goes; do not build on it.

use cudarc::cublas::{CudaBlas, Gemm as BlasGemm};
use cudarc::driver::CudaSlice;
use selfplay_kvcache::BlockId;
use selfplay_model::backend::{AttnShape, AttnSpan, Gemm};
use selfplay_model::{ModelConfig, ModelWeights};

use crate::blas::Blas;
use crate::device::GpuContext;
use crate::error::{Result, invalid};
use crate::ops::{DeviceKvPool, Element, KvGeometry};

#[derive(Debug)]
struct GpuLayer<E: Element> {
    input_norm: CudaSlice<E>,
    q: CudaSlice<E>,
    k: CudaSlice<E>,
    v: CudaSlice<E>,
    q_bias: Option<CudaSlice<E>>,
    k_bias: Option<CudaSlice<E>>,
    v_bias: Option<CudaSlice<E>>,
    o: CudaSlice<E>,
    o_bias: Option<CudaSlice<E>>,
    post_norm: CudaSlice<E>,
    gate: CudaSlice<E>,
    up: CudaSlice<E>,
    down: CudaSlice<E>,
}

/// Model weights resident on the device in storage type `E` (f32, or bf16/f16 with f32 accumulation).
#[derive(Debug)]
pub struct GpuModel<E: Element> {
    config: ModelConfig,
    embed: CudaSlice<E>,
    layers: Vec<GpuLayer<E>>,
    norm: CudaSlice<E>,
    lm_head: Option<CudaSlice<E>>,
}

/// One sequence's part of a forward step: new tokens, how many tokens of it the cache already holds,
/// where the new tokens' keys/values go and the block table to read the whole context through.
#[derive(Debug, Clone, Copy)]
pub struct SeqStep<'a> {
    pub tokens: &'a [u32],
    pub context: usize,
    pub slots: &'a [u32],
    pub block_table: &'a [BlockId],
}

fn upload<E: Element>(gpu: &GpuContext, t: &[f32]) -> Result<CudaSlice<E>> {
    let data: Vec<E> = t.iter().map(|&v| E::from_f32(v)).collect();
    Ok(gpu.stream().clone_htod(&data)?)
}

fn upload_opt<E: Element>(gpu: &GpuContext, t: Option<&[f32]>) -> Result<Option<CudaSlice<E>>> {
    t.map(|t| upload(gpu, t)).transpose()
}

impl<E: Element> GpuModel<E>
where
    CudaBlas: BlasGemm<E>,
{
    /// Copies (and rounds) the weights to the device. The config must match the weights.
    pub fn new(gpu: &GpuContext, config: &ModelConfig, weights: &ModelWeights) -> Result<Self> {
        config.validate().map_err(|e| invalid("GpuModel::new", e.to_string()))?;
        let expected = [
            (weights.embed_tokens().len(), config.vocab_size * config.hidden_size, "embed_tokens"),
            (weights.num_layers(), config.num_hidden_layers, "layers"),
            (weights.norm().len(), config.hidden_size, "norm"),
            (weights.output_projection().len(), config.vocab_size * config.hidden_size, "output projection"),
        ];
        for (have, want, what) in expected {
            if have != want {
                return Err(invalid("GpuModel::new", format!("{what}: {have} elements, config says {want}")));
            }
        }
        let layers = (0..weights.num_layers())
            .filter_map(|l| weights.layer(l))
            .map(|l| {
                Ok(GpuLayer {
                    input_norm: upload(gpu, l.input_layernorm)?,
                    q: upload(gpu, l.q_proj)?,
                    k: upload(gpu, l.k_proj)?,
                    v: upload(gpu, l.v_proj)?,
                    q_bias: upload_opt(gpu, l.q_bias)?,
                    k_bias: upload_opt(gpu, l.k_bias)?,
                    v_bias: upload_opt(gpu, l.v_bias)?,
                    o: upload(gpu, l.o_proj)?,
                    o_bias: upload_opt(gpu, l.o_bias)?,
                    post_norm: upload(gpu, l.post_attention_layernorm)?,
                    gate: upload(gpu, l.gate_proj)?,
                    up: upload(gpu, l.up_proj)?,
                    down: upload(gpu, l.down_proj)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config: config.clone(),
            embed: upload(gpu, weights.embed_tokens())?,
            layers,
            norm: upload(gpu, weights.norm())?,
            lm_head: upload_opt(gpu, weights.lm_head())?,
        })
    }

    /// The model's shape.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The device KV pool shape this model needs for `num_blocks` blocks of `block_size` tokens.
    pub fn kv_geometry(&self, num_blocks: usize, block_size: usize) -> KvGeometry {
        let c = &self.config;
        KvGeometry {
            layers: c.num_hidden_layers,
            num_blocks,
            block_size,
            kv_heads: c.num_key_value_heads,
            head_dim: c.head_dim,
        }
    }

    /// Runs every step's new tokens through the model, writing their keys/values into their slots, and
    /// returns the f32 logits of each step's last token, `[steps, vocab]`.
    pub fn forward(
        &self,
        gpu: &GpuContext,
        blas: &Blas,
        pool: &mut DeviceKvPool<E>,
        steps: &[SeqStep<'_>],
    ) -> Result<CudaSlice<f32>> {
        const OP: &str = "GpuModel::forward";
        let c = &self.config;
        let (h, qd, kd, inter, vocab) = (c.hidden_size, c.q_dim(), c.kv_dim(), c.intermediate_size, c.vocab_size);
        let shape = AttnShape { heads: c.num_attention_heads, kv_heads: c.num_key_value_heads, head_dim: c.head_dim };
        let (eps, theta) = (c.rms_norm_eps as f32, c.rope_theta as f32);
        let (mut ids, mut positions, mut slots, mut spans) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, s) in steps.iter().enumerate() {
            if s.tokens.is_empty() || s.slots.len() != s.tokens.len() {
                return Err(invalid(OP, format!("step {i}: {} tokens, {} slots", s.tokens.len(), s.slots.len())));
            }
            if s.context + s.tokens.len() > c.max_position_embeddings {
                return Err(invalid(OP, format!("step {i}: position past max_position_embeddings")));
            }
            spans.push(AttnSpan {
                q_start: ids.len(),
                q_len: s.tokens.len(),
                kv_start: 0,
                kv_len: s.context + s.tokens.len(),
            });
            ids.extend_from_slice(s.tokens);
            positions.extend((s.context..s.context + s.tokens.len()).map(|p| p as u32));
            slots.extend_from_slice(s.slots);
        }
        if steps.is_empty() {
            return Err(invalid(OP, "no sequences"));
        }
        let tables: Vec<&[BlockId]> = steps.iter().map(|s| s.block_table).collect();
        let mut batch = gpu.paged_batch(pool, &spans, &tables, &slots, &positions, shape)?;
        let rows = ids.len();
        let st = gpu.stream();
        let mut x = st.alloc_zeros::<E>(rows * h)?;
        let mut hn = st.alloc_zeros::<E>(rows * h)?;
        let (mut q, mut k, mut v) =
            (st.alloc_zeros::<E>(rows * qd)?, st.alloc_zeros::<E>(rows * kd)?, st.alloc_zeros::<E>(rows * kd)?);
        let (mut att, mut o) = (st.alloc_zeros::<E>(rows * qd)?, st.alloc_zeros::<E>(rows * h)?);
        let (mut g, mut u, mut a) = (
            st.alloc_zeros::<E>(rows * inter)?,
            st.alloc_zeros::<E>(rows * inter)?,
            st.alloc_zeros::<E>(rows * inter)?,
        );
        gpu.embedding(&self.embed, &ids, h, &mut x)?;
        for (li, l) in self.layers.iter().enumerate() {
            gpu.rms_norm(&x, &l.input_norm, eps, h, &mut hn, None)?;
            for (w, bias, out, width) in
                [(&l.q, &l.q_bias, &mut q, qd), (&l.k, &l.k_bias, &mut k, kd), (&l.v, &l.v_bias, &mut v, kd)]
            {
                blas.gemm(Gemm::linear(rows, h, width), &hn, w, out)?;
                if let Some(b) = bias {
                    gpu.add_bias(out, b)?;
                }
            }
            gpu.rope_batch(&mut q, &batch, shape.heads, qd, theta)?;
            gpu.rope_batch(&mut k, &batch, shape.kv_heads, kd, theta)?;
            gpu.kv_append_batch(pool, li, &k, &v, kd, &batch)?;
            gpu.attention_paged(&q, pool, li, &mut batch, &mut att)?;
            blas.gemm(Gemm::linear(rows, qd, h), &att, &l.o, &mut o)?;
            if let Some(b) = &l.o_bias {
                gpu.add_bias(&mut o, b)?;
            }
            gpu.add_assign(&mut x, &o)?;
            gpu.rms_norm(&x, &l.post_norm, eps, h, &mut hn, None)?;
            blas.gemm(Gemm::linear(rows, h, inter), &hn, &l.gate, &mut g)?;
            blas.gemm(Gemm::linear(rows, h, inter), &hn, &l.up, &mut u)?;
            gpu.swiglu(&g, &u, &mut a, rows, inter, inter)?;
            blas.gemm(Gemm::linear(rows, inter, h), &a, &l.down, &mut o)?;
            gpu.add_assign(&mut x, &o)?;
        }
        // Only each sequence's last position needs logits: gather those rows (an embedding lookup into x).
        let last: Vec<u32> = spans.iter().map(|s| (s.q_start + s.q_len - 1) as u32).collect();
        let batch = steps.len();
        let (mut xl, mut xn) = (st.alloc_zeros::<E>(batch * h)?, st.alloc_zeros::<E>(batch * h)?);
        gpu.embedding(&x, &last, h, &mut xl)?;
        gpu.rms_norm(&xl, &self.norm, eps, h, &mut xn, None)?;
        let mut logits = st.alloc_zeros::<E>(batch * vocab)?;
        blas.gemm(Gemm::linear(batch, h, vocab), &xn, self.lm_head.as_ref().unwrap_or(&self.embed), &mut logits)?;
        let mut out = st.alloc_zeros::<f32>(batch * vocab)?;
        gpu.to_f32(&logits, &mut out)?;
        Ok(out)
    }
}
