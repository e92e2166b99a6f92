//! Rollouts on the GPU: a continuous-batching generation loop over the model's own forward
//! (`selfplay_model::Model<CudaBackend>` with its paged KV cache). Prefill joins decode steps as
//! queued prompts are admitted, finished sequences leave, and when the pool runs out of blocks the
//! newest sequence is preempted and requeued; each token is drawn by the GPU sampler from the logits
//! of each sequence's last position, which never leave the device.
//!
//! This module only schedules: block bookkeeping and copy-on-write are the model's `KvCache`
//! (`selfplay_kvcache::PagedKvCache` underneath), every number is the model's forward.

use std::collections::VecDeque;

use selfplay_kvcache::{KvCacheError, SeqId};
use selfplay_model::{KvCache, Model, ModelConfig, ModelError, ModelWeights, SamplingParams};

use crate::backend::CudaBackend;
use crate::device::GpuContext;
use crate::error::{Result, invalid};
use crate::ops::SampleRequest;

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
    /// Whether it ended on the end-of-sequence token (otherwise on `max_new_tokens` or the context
    /// length).
    pub stopped_by_eos: bool,
}

#[derive(Debug)]
struct Live {
    request: usize,
    seq: SeqId,
    /// Tokens to feed at the next step (the whole prompt at first, then the last sampled token).
    pending: Vec<u32>,
    completion: Completion,
}

/// A GPU generator: the model on the GPU and its paged KV cache.
#[derive(Debug)]
pub struct GpuGenerator {
    model: Model<CudaBackend>,
    cache: KvCache<f32, CudaBackend>,
}

impl GpuGenerator {
    /// Opens device `ordinal`, checks and uploads the model, and allocates a KV cache of `num_blocks`
    /// blocks of `block_size` tokens.
    pub fn new(
        ordinal: usize,
        config: &ModelConfig,
        weights: &ModelWeights,
        num_blocks: usize,
        block_size: usize,
    ) -> Result<Self> {
        let model = Model::with_backend(config.clone(), weights.clone(), CudaBackend::new(ordinal)?)?;
        Self::from_model(model, num_blocks, block_size)
    }

    /// Generates with `model` and a KV cache of `num_blocks` blocks of `block_size` tokens.
    pub fn from_model(model: Model<CudaBackend>, num_blocks: usize, block_size: usize) -> Result<Self> {
        let cache = KvCache::new(model.backend(), model.config(), num_blocks, block_size)?;
        Ok(Self { model, cache })
    }

    /// The model.
    pub fn model(&self) -> &Model<CudaBackend> {
        &self.model
    }

    /// The device context.
    pub fn gpu(&self) -> &GpuContext {
        self.model.backend().gpu()
    }

    /// Completes every request, at most `max_batch` at a time, stopping each at `eos` (kept in its
    /// tokens), `max_new_tokens`, or the model's context length. When the pool runs out of blocks the
    /// most recently admitted live sequence is dropped and requeued; per-request streams make its
    /// redo draw the same tokens.
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
        let limit = self.model.config().max_position_embeddings;
        for (i, r) in requests.iter().enumerate() {
            r.params.validate().map_err(|e| invalid(OP, format!("request {i}: {e}")))?;
            if r.prompt.is_empty() {
                return Err(invalid(OP, format!("request {i}: empty prompt")));
            }
            if r.prompt.len() > limit {
                return Err(invalid(
                    OP,
                    format!("request {i}: a prompt of {} tokens, the limit is {limit}", r.prompt.len()),
                ));
            }
        }
        let mut results: Vec<Option<Completion>> = vec![None; requests.len()];
        let mut queue: VecDeque<usize> = VecDeque::new();
        for (i, r) in requests.iter().enumerate() {
            if r.max_new_tokens == 0 {
                results[i] = Some(Completion::default());
            } else {
                queue.push_back(i);
            }
        }
        let vocab = self.model.config().vocab_size;
        let mut live: Vec<Live> = Vec::new();
        while !queue.is_empty() || !live.is_empty() {
            self.admit(requests, &mut queue, &mut live, max_batch)?;
            // One step for every live sequence; when the pool is short, preempt the newest and retry
            // (a refused step leaves the cache as it was).
            let step = loop {
                let seqs: Vec<SeqId> = live.iter().map(|l| l.seq).collect();
                let tokens: Vec<&[u32]> = live.iter().map(|l| l.pending.as_slice()).collect();
                match self.model.forward_cached_last(&mut self.cache, &seqs, &tokens) {
                    Ok(step) => break step,
                    Err(ModelError::KvCache(KvCacheError::OutOfBlocks { .. })) if live.len() > 1 => {
                        if let Some(dropped) = live.pop() {
                            self.cache.release(dropped.seq)?;
                            queue.push_front(dropped.request);
                        }
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            let rows: Vec<SampleRequest> = live
                .iter()
                .map(|l| {
                    let r = &requests[l.request];
                    SampleRequest { params: r.params, seed: r.seed, step: l.completion.tokens.len() as u64 }
                })
                .collect();
            let drawn = self.gpu().sample(&step.logits, vocab, &rows)?;
            let mut still = Vec::with_capacity(live.len());
            for (mut l, d) in live.drain(..).zip(drawn) {
                l.completion.tokens.push(d.token);
                l.completion.logprobs.push(d.logprob);
                l.completion.model_logprobs.push(d.model_logprob);
                let r = &requests[l.request];
                let eos_hit = eos == Some(d.token);
                let full = r.prompt.len() + l.completion.tokens.len() >= limit;
                if eos_hit || full || l.completion.tokens.len() >= r.max_new_tokens {
                    l.completion.stopped_by_eos = eos_hit;
                    self.cache.release(l.seq)?;
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

    /// Starts queued requests while the batch has room and the pool has blocks for their prompts
    /// beyond what the live sequences' next tokens need (the first always, when nothing is live).
    fn admit(
        &mut self,
        requests: &[GenerationRequest],
        queue: &mut VecDeque<usize>,
        live: &mut Vec<Live>,
        max_batch: usize,
    ) -> Result<()> {
        let bs = self.cache.block_size().max(1);
        let mut needed = 0usize;
        for l in live.iter() {
            let len = self.cache.len(l.seq)?;
            needed += (len + l.pending.len()).div_ceil(bs) - len.div_ceil(bs) + 1;
        }
        while live.len() < max_batch {
            let Some(&request) = queue.front() else { break };
            let prompt = &requests[request].prompt;
            let blocks = prompt.len().div_ceil(bs);
            if !live.is_empty() && needed + blocks > self.cache.free_blocks() {
                break;
            }
            queue.pop_front();
            needed += blocks;
            live.push(Live {
                request,
                seq: self.cache.add_sequence()?,
                pending: prompt.clone(),
                completion: Completion::default(),
            });
        }
        Ok(())
    }
}
