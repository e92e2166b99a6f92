//! Rollouts on the GPU: the transformer forward over the paged KV cache, and a continuous-batching
//! generation loop (prefill, then decode steps for every live sequence; finished sequences leave and
//! queued prompts join as blocks free up).
//!
//! Host bookkeeping (block tables, copy-on-write, prefix reuse) is `selfplay_kvcache::PagedKvCache`;
//! this module only moves data: embeddings, cuBLAS projections, RoPE, KV append, paged attention,
//! SwiGLU, the LM head and batched sampling.

use std::collections::VecDeque;

use cudarc::cublas::{CudaBlas, Gemm as BlasGemm};
use cudarc::driver::CudaSlice;
use selfplay_kvcache::{BlockId, KvCacheConfig, KvCacheError, PagedKvCache, SeqId};
use selfplay_model::backend::{AttnShape, AttnSpan, Gemm};
use selfplay_model::{ModelConfig, ModelWeights, SamplingParams};
use selfplay_tensor::Tensor;

use crate::blas::Blas;
use crate::device::GpuContext;
use crate::error::{Result, invalid};
use crate::ops::{DeviceKvPool, Element, KvGeometry, SampleRequest};

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

fn upload<E: Element>(gpu: &GpuContext, t: &Tensor<f32>) -> Result<CudaSlice<E>> {
    let data: Vec<E> = t.data().iter().map(|&v| E::from_f32(v)).collect();
    Ok(gpu.stream().clone_htod(&data)?)
}

fn upload_opt<E: Element>(gpu: &GpuContext, t: &Option<Tensor<f32>>) -> Result<Option<CudaSlice<E>>> {
    t.as_ref().map(|t| upload(gpu, t)).transpose()
}

impl<E: Element> GpuModel<E>
where
    CudaBlas: BlasGemm<E>,
{
    /// Copies (and rounds) the weights to the device. The config must match the weights.
    pub fn new(gpu: &GpuContext, config: &ModelConfig, weights: &ModelWeights) -> Result<Self> {
        config.validate().map_err(|e| invalid("GpuModel::new", e.to_string()))?;
        let expected = [
            (weights.embed_tokens.numel(), config.vocab_size * config.hidden_size, "embed_tokens"),
            (weights.layers.len(), config.num_hidden_layers, "layers"),
            (weights.norm.numel(), config.hidden_size, "norm"),
            (weights.output_projection().numel(), config.vocab_size * config.hidden_size, "output projection"),
        ];
        for (have, want, what) in expected {
            if have != want {
                return Err(invalid("GpuModel::new", format!("{what}: {have} elements, config says {want}")));
            }
        }
        let layers = weights
            .layers
            .iter()
            .map(|l| {
                Ok(GpuLayer {
                    input_norm: upload(gpu, &l.input_layernorm)?,
                    q: upload(gpu, &l.q_proj)?,
                    k: upload(gpu, &l.k_proj)?,
                    v: upload(gpu, &l.v_proj)?,
                    q_bias: upload_opt(gpu, &l.q_bias)?,
                    k_bias: upload_opt(gpu, &l.k_bias)?,
                    v_bias: upload_opt(gpu, &l.v_bias)?,
                    o: upload(gpu, &l.o_proj)?,
                    o_bias: upload_opt(gpu, &l.o_bias)?,
                    post_norm: upload(gpu, &l.post_attention_layernorm)?,
                    gate: upload(gpu, &l.gate_proj)?,
                    up: upload(gpu, &l.up_proj)?,
                    down: upload(gpu, &l.down_proj)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config: config.clone(),
            embed: upload(gpu, &weights.embed_tokens)?,
            layers,
            norm: upload(gpu, &weights.norm)?,
            lm_head: upload_opt(gpu, &weights.lm_head)?,
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

/// One prompt to complete.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    pub prompt: Vec<u32>,
    pub params: SamplingParams,
    /// The request's random stream (its draws depend on nothing else in the batch).
    pub seed: u64,
    pub max_new_tokens: usize,
}

/// A finished completion.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    pub tokens: Vec<u32>,
    /// Log-probabilities under the distribution sampled from.
    pub logprobs: Vec<f32>,
    /// Log-probabilities under the model at temperature 1.
    pub model_logprobs: Vec<f32>,
    /// Whether it ended on the end-of-sequence token (otherwise on `max_new_tokens`).
    pub stopped_by_eos: bool,
}

#[derive(Debug)]
struct Live {
    request: usize,
    seq: SeqId,
    /// Tokens to feed at the next step (the whole uncached prompt at first, then the last sampled token).
    pending: Vec<u32>,
    /// Context length and slots already reserved for `pending` (set at admission).
    reserved: Option<(usize, Vec<u32>)>,
    completion: Completion,
}

/// A GPU generator: device, model, device KV pool and its host bookkeeping.
#[derive(Debug)]
pub struct GpuGenerator<E: Element> {
    gpu: GpuContext,
    blas: Blas,
    model: GpuModel<E>,
    pool: DeviceKvPool<E>,
    cache: PagedKvCache,
}

impl<E: Element> GpuGenerator<E>
where
    CudaBlas: BlasGemm<E>,
{
    /// Opens device `ordinal`, uploads the model and allocates a KV pool of `kv.num_blocks` blocks.
    pub fn new(ordinal: usize, config: &ModelConfig, weights: &ModelWeights, kv: KvCacheConfig) -> Result<Self> {
        let gpu = GpuContext::new(ordinal)?;
        let blas = Blas::new(&gpu)?;
        let model = GpuModel::new(&gpu, config, weights)?;
        let pool = DeviceKvPool::new(&gpu, model.kv_geometry(kv.num_blocks as usize, kv.block_size as usize))?;
        let cache = PagedKvCache::new(kv).map_err(|e| invalid("GpuGenerator::new", e.to_string()))?;
        Ok(Self { gpu, blas, model, pool, cache })
    }

    /// The device context.
    pub fn gpu(&self) -> &GpuContext {
        &self.gpu
    }

    /// Completes every request, at most `max_batch` at a time, stopping each at `eos` (kept in its
    /// tokens) or `max_new_tokens`. When the pool runs out of blocks the most recently admitted live
    /// sequence is dropped and requeued; per-request streams make its redo draw the same tokens.
    pub fn generate(
        &mut self,
        requests: &[GenerationRequest],
        max_batch: usize,
        eos: Option<u32>,
    ) -> Result<Vec<Completion>> {
        const OP: &str = "GpuGenerator::generate";
        if max_batch == 0 {
            return Err(invalid(OP, "max_batch must be positive"));
        }
        for (i, r) in requests.iter().enumerate() {
            r.params.validate().map_err(|e| invalid(OP, format!("request {i}: {e}")))?;
            if r.prompt.is_empty() {
                return Err(invalid(OP, format!("request {i}: empty prompt")));
            }
        }
        let mut results: Vec<Option<Completion>> = vec![None; requests.len()];
        let mut queue: VecDeque<usize> = (0..requests.len()).filter(|&i| requests[i].max_new_tokens > 0).collect();
        for i in 0..requests.len() {
            if requests[i].max_new_tokens == 0 {
                results[i] = Some(Completion::default());
            }
        }
        let mut live: Vec<Live> = Vec::new();
        while !queue.is_empty() || !live.is_empty() {
            self.admit(requests, &mut queue, &mut live, max_batch)?;
            let mut reservations = Vec::with_capacity(live.len());
            let mut i = 0;
            while i < live.len() {
                if let Some(reserved) = live[i].reserved.take() {
                    reservations.push(reserved);
                    i += 1;
                    continue;
                }
                let seq = live[i].seq;
                let context = self.len(seq)?;
                match self.cache.append(seq, &live[i].pending) {
                    Ok(r) => {
                        self.gpu.kv_copy_blocks(&mut self.pool, &r.copies)?;
                        reservations.push((context, r.slots));
                        i += 1;
                    }
                    Err(KvCacheError::OutOfBlocks { .. }) if live.len() > 1 => {
                        // Preempt the newest sequence: the last, never one this step has already reserved for.
                        let dropped = live.remove(live.len() - 1);
                        self.cache.release(dropped.seq).map_err(|e| invalid(OP, e.to_string()))?;
                        queue.push_front(dropped.request);
                    }
                    Err(e) => return Err(invalid(OP, e.to_string())),
                }
            }
            if live.is_empty() {
                continue;
            }
            let tables: Vec<Vec<BlockId>> = live
                .iter()
                .map(|l| self.cache.block_table(l.seq).map(<[BlockId]>::to_vec))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| invalid(OP, e.to_string()))?;
            let steps: Vec<SeqStep<'_>> = live
                .iter()
                .zip(&reservations)
                .zip(&tables)
                .map(|((l, (context, slots)), table)| SeqStep {
                    tokens: &l.pending,
                    context: *context,
                    slots,
                    block_table: table,
                })
                .collect();
            let logits = self.model.forward(&self.gpu, &self.blas, &mut self.pool, &steps)?;
            let rows: Vec<SampleRequest> = live
                .iter()
                .map(|l| {
                    let r = &requests[l.request];
                    SampleRequest { params: r.params, seed: r.seed, step: l.completion.tokens.len() as u64 }
                })
                .collect();
            let drawn = self.gpu.sample(&logits, self.model.config().vocab_size, &rows)?;
            let mut still = Vec::with_capacity(live.len());
            for (mut l, d) in live.drain(..).zip(drawn) {
                self.cache.commit(l.seq).map_err(|e| invalid(OP, e.to_string()))?;
                l.completion.tokens.push(d.token);
                l.completion.logprobs.push(d.logprob);
                l.completion.model_logprobs.push(d.model_logprob);
                let eos_hit = eos == Some(d.token);
                if eos_hit || l.completion.tokens.len() >= requests[l.request].max_new_tokens {
                    l.completion.stopped_by_eos = eos_hit;
                    self.cache.release(l.seq).map_err(|e| invalid(OP, e.to_string()))?;
                    results[l.request] = Some(l.completion);
                } else {
                    l.pending = vec![d.token];
                    still.push(l);
                }
            }
            live = still;
        }
        results.into_iter().map(|r| r.ok_or_else(|| invalid(OP, "a request was lost"))).collect()
    }

    fn len(&self, seq: SeqId) -> Result<usize> {
        self.cache.len(seq).map_err(|e| invalid("GpuGenerator", e.to_string()))
    }

    /// Starts queued requests while there is room (a prompt that does not fit waits for blocks), each
    /// reusing its longest cached prefix; their first step is the rest of the prompt.
    fn admit(
        &mut self,
        requests: &[GenerationRequest],
        queue: &mut VecDeque<usize>,
        live: &mut Vec<Live>,
        max_batch: usize,
    ) -> Result<()> {
        const OP: &str = "GpuGenerator::admit";
        while live.len() < max_batch {
            let Some(&request) = queue.front() else { break };
            let prompt = &requests[request].prompt;
            let admission = match self.cache.admit(prompt) {
                Ok(a) => a,
                Err(KvCacheError::OutOfBlocks { .. }) if !live.is_empty() => break,
                Err(e) => return Err(invalid(OP, format!("request {request}: {e}"))),
            };
            queue.pop_front();
            self.gpu.kv_copy_blocks(&mut self.pool, &admission.reservation.copies)?;
            let cached = admission.cached_tokens;
            live.push(Live {
                request,
                seq: admission.seq,
                pending: prompt.get(cached..).unwrap_or_default().to_vec(),
                reserved: Some((cached, admission.reservation.slots)),
                completion: Completion::default(),
            });
        }
        Ok(())
    }
}
