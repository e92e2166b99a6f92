//! [`Model`]: a validated config plus weights, with the entry points everything else calls.
//!
//! # Inference
//! * [`Model::forward`]: a batch of token sequences of any lengths → per position logits
//!   `[len, vocab]` and values `[len]`.
//! * [`Model::new_cache`] + [`Model::forward_cached`]: prefill then decode against a paged KV cache
//!   (the logits of a full forward); [`Model::generate`] drives it with sampling.
//!
//! # Training: forward → per-token statistics → your loss → backward
//! ```text
//! let pass  = model.forward_train(&batch)?;          // keeps activations
//! let stats = pass.token_stats();                    // logprobs of the actual next tokens, entropies, values
//! // any loss over those (SFT cross-entropy, PPO/GRPO, value regression) gives, per sequence,
//! // dL/dlogprob[t], optionally dL/dentropy[t] and dL/dvalue[t]:
//! let grads = vec![SequenceGrads { d_logprobs: &dlp, d_entropies: None, d_values: Some(&dv), d_logits: None }];
//! let mut g = model.weights().zeros_like();
//! model.backward(&pass, &grads, &mut g)?;             // adds dL/dθ into g (same layout as the weights)
//! ```
//! For a sequence of `len` tokens, position `t < len − 1` predicts token `t + 1`: logprobs and
//! entropies have `len − 1` entries, values `len` (one per prefix, including the whole sequence).
//! A loss over whole next-token distributions (cross-entropy to soft targets, as AlphaZero trains its
//! policy toward visit counts) reads [`TrainPass::seq_logits`] (`[len, vocab]`) and passes its
//! gradient as [`SequenceGrads::d_logits`], in the same layout.
//! [`Model::sft_loss_and_grads`] is the cross-entropy case in one call ([`crate::loss::weighted_nll`] its
//! formula, for training loops that run their own passes).

use std::borrow::Borrow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};

use selfplay_kvcache::SeqId;
use selfplay_tensor::Tensor;

use crate::backend::{Backend, CpuBackend, HostAccess};
use crate::config::ModelConfig;
use crate::error::ModelError;
use crate::kv_cache::StepScratch;
use crate::kv_cache::{DEFAULT_BLOCK_SIZE, KvCache};
use crate::loss::{check_loss_weights, weighted_nll};
pub use crate::token_stats::TokenStats;
use crate::transformer::batch::PackedBatch;
use crate::transformer::head::HeadGrads;
use crate::transformer::params::{HeadParams, LayerParams, ParamSink, ParamSource, Params, no_layer, recycle};
use crate::transformer::{self, Activations, GradScratch};
use crate::validate::{self, Shapes};
use crate::weights::ModelWeights;

/// Most activation values one pass may allocate (2^33 `f32`s, 32 GiB).
pub const MAX_ACTIVATIONS: usize = 1 << 33;

/// The KV cache type of a CPU [`Model`].
pub type CpuKvCache = KvCache<f32, CpuBackend>;

/// A transformer ready to run on backend `B` (the CPU unless said otherwise): config and weights
/// checked against each other.
///
/// The weights live on the host ([`Model::weights`], [`Model::weights_mut`]); a backend that computes
/// on host memory (see [`HostAccess`]) uses them in place, a device backend gets a copy uploaded on
/// the first pass and again after every [`Model::weights_mut`].
pub struct Model<B: HostAccess = CpuBackend> {
    config: ModelConfig,
    weights: ModelWeights,
    /// Every parameter's name and shape, as the config calls for them (checked on every pass).
    shapes: Shapes,
    backend: B,
    /// The weights on a backend that cannot read them from host memory; `None` until a pass needs
    /// them and after [`Model::weights_mut`].
    resident: Mutex<Option<Arc<Params<B::Owned>>>>,
    /// Buffers of finished passes, kept for the next ones of the same size (see [`Model::recycle`]):
    /// a training step then writes into warm memory instead of allocating and page-faulting
    /// ~100 MB per step.
    spare: Mutex<Workspace<B::Owned>>,
}

/// What a [`Model`] keeps between training passes.
#[derive(Debug)]
struct Workspace<O> {
    /// A finished training pass's activations and packed batch.
    pass: Option<(Activations<O>, PackedBatch)>,
    /// The backward pass's gradient buffers.
    grads: Option<GradScratch<O>>,
    /// The backward pass's host inputs.
    host: BackwardHost,
}

impl<O> Default for Workspace<O> {
    fn default() -> Self {
        Workspace { pass: None, grads: None, host: BackwardHost::default() }
    }
}

/// The loss gradients of a backward pass packed over rows, on the host.
#[derive(Debug, Default)]
struct BackwardHost {
    d_logprob: Vec<f32>,
    d_entropy: Vec<f32>,
    d_value: Vec<f32>,
    targets: Vec<u32>,
    d_logits: Vec<f32>,
}

impl<B: HostAccess + fmt::Debug> fmt::Debug for Model<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("config", &self.config)
            .field("weights", &self.weights)
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl<B: HostAccess + Clone> Clone for Model<B> {
    fn clone(&self) -> Self {
        Model {
            config: self.config.clone(),
            weights: self.weights.clone(),
            shapes: self.shapes.clone(),
            backend: self.backend.clone(),
            resident: Mutex::new(None),
            spare: Mutex::default(),
        }
    }
}

/// One sequence's outputs from [`Model::forward`].
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardOutput {
    /// `[len, vocab]`: row `t` scores the token after position `t`.
    pub logits: Tensor<f32>,
    /// `[len]`: the value head at every position.
    pub values: Vec<f32>,
}

/// The loss gradient for one sequence of `len` tokens with respect to its [`TokenStats`] and,
/// optionally, its whole logits. The terms add up: a loss may have any of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SequenceGrads<'a> {
    /// `[len − 1]`: `dL/d logprob[t]` (for cross-entropy with weights `w`: `−w_t / Σw`).
    pub d_logprobs: &'a [f32],
    /// `[len − 1]` when the loss has an entropy term.
    pub d_entropies: Option<&'a [f32]>,
    /// `[len]` when the loss has a value term.
    pub d_values: Option<&'a [f32]>,
    /// `[len, vocab]` row-major when the loss is written in the logits themselves: row `t` is
    /// `dL/d logits[t]`, the scores of the token after position `t` (the layout of
    /// [`TrainPass::seq_logits`]). Every row is used, the last one too: it scores what follows the
    /// whole sequence (a board game's policy at the current position). Cross-entropy to soft
    /// targets `π` (AlphaZero's visit counts) with weight `w` gives `w·(softmax(logits[t]) − π_t)`.
    pub d_logits: Option<&'a [f32]>,
}

/// The outputs of one [`Model::forward_cached_into`] step: every new position's logits and value,
/// packed sequence after sequence, in buffers reused by the next step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepOutputs {
    /// `[rows, vocab]` over the packed new positions.
    logits: Vec<f32>,
    /// `[rows]`.
    values: Vec<f32>,
    /// Each sequence's first packed row and number of rows.
    spans: Vec<(usize, usize)>,
    vocab: usize,
}

impl StepOutputs {
    /// Number of sequences stepped.
    pub fn num_seqs(&self) -> usize {
        self.spans.len()
    }

    /// Sequence `i`'s logits, `[new tokens, vocab]`: row `t` scores the token after its `t`-th new token.
    pub fn logits(&self, i: usize) -> Option<&[f32]> {
        let &(start, len) = self.spans.get(i)?;
        self.logits.get(start * self.vocab..(start + len) * self.vocab)
    }

    /// The logits after sequence `i`'s last new token (what a decoder samples from), `[vocab]`.
    pub fn last_logits(&self, i: usize) -> Option<&[f32]> {
        let &(start, len) = self.spans.get(i)?;
        let row = start + len.checked_sub(1)?;
        self.logits.get(row * self.vocab..(row + 1) * self.vocab)
    }

    /// Sequence `i`'s values, one per new token.
    pub fn values(&self, i: usize) -> Option<&[f32]> {
        let &(start, len) = self.spans.get(i)?;
        self.values.get(start..start + len)
    }
}

/// The outputs at each stepped sequence's last new position, left on the backend (see
/// [`Model::forward_cached_last`]).
#[derive(Debug)]
pub struct LastOutputs<O> {
    /// `[seqs, vocab]`: row `i` scores the token after sequence `i`'s last position.
    pub logits: O,
    /// `[seqs]`: the value head there.
    pub values: O,
}

/// The head's outputs of a training pass copied to the host, for a backend whose buffers are not
/// host memory.
#[derive(Debug)]
struct HostHead {
    logits: Vec<f32>,
    lse: Vec<f32>,
    entropy: Vec<f32>,
    values: Vec<f32>,
}

/// Borrowed views of the head's outputs, `[rows, vocab]` and `[rows]`.
struct HeadView<'a> {
    logits: &'a [f32],
    lse: &'a [f32],
    entropy: &'a [f32],
    values: &'a [f32],
}

/// A forward pass that kept its activations, ready for [`Model::backward`].
pub struct TrainPass<B: HostAccess = CpuBackend> {
    /// The config it ran under; backward refuses a pass from another model shape.
    config: ModelConfig,
    batch: PackedBatch,
    acts: Activations<B::Owned>,
    /// The head's outputs on the host when the backend's buffers are not host memory.
    host: Option<HostHead>,
}

impl<B: HostAccess> fmt::Debug for TrainPass<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrainPass").field("config", &self.config).field("batch", &self.batch).finish_non_exhaustive()
    }
}

impl<B: HostAccess> TrainPass<B> {
    /// Number of sequences.
    pub fn num_seqs(&self) -> usize {
        self.batch.spans.len()
    }

    fn head(&self) -> HeadView<'_> {
        match &self.host {
            Some(h) => HeadView { logits: &h.logits, lse: &h.lse, entropy: &h.entropy, values: &h.values },
            // `host` is `None` exactly when all four are host memory (see `Model::forward_train`).
            None => {
                let h = &self.acts.head;
                HeadView {
                    logits: host_view::<B>(&h.logits),
                    lse: host_view::<B>(&h.lse),
                    entropy: host_view::<B>(&h.entropy),
                    values: host_view::<B>(&h.values),
                }
            }
        }
    }

    /// Log-probabilities of each sequence's actual next tokens, entropies and values.
    pub fn token_stats(&self) -> Vec<TokenStats> {
        let mut out = Vec::with_capacity(self.num_seqs());
        self.token_stats_into(&mut out);
        out
    }

    /// [`TrainPass::token_stats`] into `out` (one entry per sequence), reusing its vectors: a
    /// training loop that keeps `out` allocates nothing here once warm.
    pub fn token_stats_into(&self, out: &mut Vec<TokenStats>) {
        let head = self.head();
        let vocab = self.config.vocab_size;
        out.truncate(self.num_seqs());
        out.resize_with(self.num_seqs(), || TokenStats {
            logprobs: Vec::new(),
            entropies: Vec::new(),
            values: Vec::new(),
        });
        for (s, stats) in self.batch.spans.iter().zip(out.iter_mut()) {
            let rows = s.q_start..s.q_start + s.q_len;
            let predicting = s.q_start..s.q_start + s.q_len - 1;
            stats.logprobs.clear();
            stats.logprobs.extend(
                predicting.clone().map(|r| head.logits[r * vocab + self.batch.ids[r + 1] as usize] - head.lse[r]),
            );
            stats.entropies.clear();
            stats.entropies.extend_from_slice(&head.entropy[predicting]);
            stats.values.clear();
            stats.values.extend_from_slice(&head.values[rows]);
        }
    }

    /// Sequence `i`'s logits, `[len, vocab]`, as a tensor (a copy; see [`TrainPass::seq_logits`]).
    pub fn logits(&self, i: usize) -> Result<Tensor<f32>, ModelError> {
        let s = self.batch.spans.get(i).ok_or(ModelError::UnknownSequence(i))?;
        Ok(Tensor::from_vec([s.q_len, self.config.vocab_size], self.seq_logits(i)?.to_vec())?)
    }

    /// Sequence `i`'s logits, `[len, vocab]` row-major, borrowed: row `t` scores the token after
    /// position `t`. A loss over whole distributions reads them here and hands its gradient back
    /// in the same layout as [`SequenceGrads::d_logits`].
    pub fn seq_logits(&self, i: usize) -> Result<&[f32], ModelError> {
        let s = self.batch.spans.get(i).ok_or(ModelError::UnknownSequence(i))?;
        let vocab = self.config.vocab_size;
        Ok(&self.head().logits[s.q_start * vocab..(s.q_start + s.q_len) * vocab])
    }
}

/// Host data as a buffer of `B`: borrowed when `B` computes on host memory, else uploaded.
enum Staged<'a, B: Backend<f32>> {
    Host(&'a B::Buf),
    Uploaded(B::Owned),
}

impl<B: HostAccess> Staged<'_, B> {
    fn new<'a>(b: &B, data: &'a [f32]) -> Result<Staged<'a, B>, ModelError> {
        Ok(match B::from_host(data) {
            Some(buf) => Staged::Host(buf),
            None => Staged::Uploaded(b.upload(data)?),
        })
    }

    fn buf(&self) -> &B::Buf {
        match self {
            Staged::Host(buf) => buf,
            Staged::Uploaded(owned) => owned.borrow(),
        }
    }
}

/// A buffer's elements when they are host memory (else empty).
fn host_view<'a, B: HostAccess>(buf: &'a B::Owned) -> &'a [f32]
where
    B::Buf: 'a,
{
    B::as_host(buf.borrow()).unwrap_or_default()
}

/// A host copy of a whole buffer of `len` elements (borrowed when it is host memory).
fn fetch<'a, B: HostAccess>(b: &B, buf: &'a B::Owned, len: usize) -> Result<std::borrow::Cow<'a, [f32]>, ModelError>
where
    B::Buf: 'a,
{
    if let Some(host) = B::as_host(buf.borrow()) {
        return Ok(std::borrow::Cow::Borrowed(host));
    }
    let mut out = vec![0.0f32; len];
    b.download(buf.borrow(), &mut out)?;
    Ok(std::borrow::Cow::Owned(out))
}

/// Copies a whole buffer of `len` elements into `out` (resized to it), without allocating once
/// `out` is large enough.
fn copy_to_host<B: HostAccess>(b: &B, buf: &B::Owned, len: usize, out: &mut Vec<f32>) -> Result<(), ModelError> {
    out.clear();
    match B::as_host(buf.borrow()) {
        Some(host) => out.extend_from_slice(host),
        None => {
            out.resize(len, 0.0);
            b.download(buf.borrow(), out)?;
        }
    }
    Ok(())
}

/// Flat host weights as buffers of a backend that computes on host memory (see [`HostAccess`]), cut
/// one layer (or the head) at a time: what a pass reads, with no list of views built.
struct HostParams<'a, B>(&'a ModelWeights, PhantomData<fn() -> B>);

/// A flat host gradient buffer as buffers of such a backend: what backward adds into in place.
struct HostGrads<'a, B>(&'a mut ModelWeights, PhantomData<fn() -> B>);

fn not_host() -> ModelError {
    ModelError::value("parameters", "the backend does not compute on host memory")
}

impl<B: HostAccess> ParamSource<B::Buf> for HostParams<'_, B> {
    fn num_layers(&self) -> usize {
        self.0.num_layers()
    }

    fn embed_tokens(&self) -> Result<&B::Buf, ModelError> {
        B::from_host(self.0.embed_tokens()).ok_or_else(not_host)
    }

    fn layer(&self, l: usize) -> Result<LayerParams<&B::Buf>, ModelError> {
        let layer = self.0.layer(l).ok_or_else(|| no_layer(l, self.0.num_layers()))?;
        layer.try_map(|s| B::from_host(s).ok_or_else(not_host))
    }

    fn head(&self) -> Result<HeadParams<&B::Buf>, ModelError> {
        let h = self.0.head();
        let buf = |s| B::from_host(s).ok_or_else(not_host);
        Ok(HeadParams {
            norm: buf(h.norm)?,
            output: buf(h.output)?,
            value_head: buf(h.value_head)?,
            value_bias: buf(h.value_bias)?,
        })
    }
}

impl<B: HostAccess> ParamSink<B::Buf> for HostGrads<'_, B> {
    fn num_layers(&self) -> usize {
        self.0.num_layers()
    }

    fn embed_tokens_mut(&mut self) -> Result<&mut B::Buf, ModelError> {
        B::from_host_mut(self.0.embed_tokens_mut()).ok_or_else(not_host)
    }

    fn layer_mut(&mut self, l: usize) -> Result<LayerParams<&mut B::Buf>, ModelError> {
        let layers = self.0.num_layers();
        let layer = self.0.layer_mut(l).ok_or_else(|| no_layer(l, layers))?;
        layer.try_map(|s| B::from_host_mut(s).ok_or_else(not_host))
    }

    fn head_mut(&mut self) -> Result<HeadParams<&mut B::Buf>, ModelError> {
        let h = self.0.head_mut();
        let buf = |s| B::from_host_mut(s).ok_or_else(not_host);
        Ok(HeadParams {
            norm: buf(h.norm)?,
            output: buf(h.output)?,
            value_head: buf(h.value_head)?,
            value_bias: buf(h.value_bias)?,
        })
    }
}

impl Model<CpuBackend> {
    /// Checks `weights` against `config` (every tensor's presence, shape and finiteness); the model
    /// runs on the CPU.
    pub fn new(config: ModelConfig, weights: ModelWeights) -> Result<Model, ModelError> {
        Model::with_backend(config, weights, CpuBackend)
    }
}

impl<B: HostAccess> Model<B> {
    /// Checks `weights` against `config` (every tensor's presence, shape and finiteness); the model
    /// runs every op on `backend`.
    pub fn with_backend(config: ModelConfig, weights: ModelWeights, backend: B) -> Result<Model<B>, ModelError> {
        let shapes = validate::weights(&config, &weights)?;
        Ok(Model { config, weights, shapes, backend, resident: Mutex::new(None), spare: Mutex::default() })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn weights(&self) -> &ModelWeights {
        &self.weights
    }

    /// The backend every op runs on.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Mutable access for optimisers. Replacing the weights with ones of another layout makes later
    /// calls fail with [`ModelError::WrongShape`] (the layout is re-checked on every pass). A device
    /// backend's copy of the weights is refreshed on the next pass.
    pub fn weights_mut(&mut self) -> &mut ModelWeights {
        *self.resident.get_mut().unwrap_or_else(PoisonError::into_inner) = None;
        &mut self.weights
    }

    /// Consumes the model, returning its weights.
    pub fn into_weights(self) -> ModelWeights {
        self.weights
    }

    /// Cheap per-call check that the weights still have the config's shapes (allocates nothing
    /// unless they do not).
    fn check_shapes(&self) -> Result<(), ModelError> {
        validate::matches(&self.shapes, &self.weights)
    }

    /// Runs `f` with the weights as buffers of the backend: slices of the host buffer itself when the
    /// backend computes on host memory (cut one layer at a time, so nothing is allocated), else its
    /// resident copy (uploaded now if there is none).
    fn with_params<R>(
        &self,
        f: impl FnOnce(&dyn ParamSource<B::Buf>) -> Result<R, ModelError>,
    ) -> Result<R, ModelError> {
        if B::from_host(&[]).is_some() {
            return f(&HostParams::<B>(&self.weights, PhantomData));
        }
        let resident = {
            let mut slot = self.resident.lock().unwrap_or_else(PoisonError::into_inner);
            match slot.as_ref() {
                Some(r) => Arc::clone(r),
                None => {
                    let uploaded = self.weights.params().try_map(|s| self.backend.upload(s))?;
                    Arc::clone(slot.insert(Arc::new(uploaded)))
                }
            }
        };
        f(&*resident)
    }

    /// Refuses a batch whose training activations would exceed [`MAX_ACTIVATIONS`] values, so an
    /// absurd request is a typed error rather than an allocation abort.
    fn check_batch_size(&self, tokens: usize) -> Result<(), ModelError> {
        let c = &self.config;
        let (h, q, kv, i) = (c.hidden_size, c.q_dim(), c.kv_dim(), c.intermediate_size);
        let per_layer =
            [4 * h, 2 * q, 2 * kv, 3 * i, c.num_attention_heads, 2].iter().fold(0usize, |a, &x| a.saturating_add(x));
        let per_token =
            per_layer.saturating_mul(c.num_hidden_layers).saturating_add(c.vocab_size).saturating_add(3 * h + 4);
        let elements = tokens.saturating_mul(per_token);
        if elements > MAX_ACTIVATIONS {
            return Err(ModelError::BatchTooLarge { tokens, elements, limit: MAX_ACTIVATIONS });
        }
        Ok(())
    }

    fn pack(&self, batch: &[&[u32]]) -> Result<PackedBatch, ModelError> {
        self.check_batch_size(batch.iter().map(|s| s.len()).sum())?;
        self.check_shapes()?;
        PackedBatch::new(batch, self.config.vocab_size, self.config.max_position_embeddings)
    }

    fn outputs(&self, batch: &PackedBatch, acts: &Activations<B::Owned>) -> Result<Vec<ForwardOutput>, ModelError> {
        let vocab = self.config.vocab_size;
        let logits = fetch(&self.backend, &acts.head.logits, batch.rows() * vocab)?;
        let values = fetch(&self.backend, &acts.head.values, batch.rows())?;
        batch
            .spans
            .iter()
            .map(|s| {
                let logits = logits[s.q_start * vocab..(s.q_start + s.q_len) * vocab].to_vec();
                Ok(ForwardOutput {
                    logits: Tensor::from_vec([s.q_len, vocab], logits)?,
                    values: values[s.q_start..s.q_start + s.q_len].to_vec(),
                })
            })
            .collect()
    }

    /// Logits and values at every position of every sequence (no cache, no stored activations).
    pub fn forward(&self, batch: &[&[u32]]) -> Result<Vec<ForwardOutput>, ModelError> {
        let packed = self.pack(batch)?;
        let mut acts = Activations::new(&self.backend, &self.config, packed.rows(), false)?;
        self.with_params(|params| transformer::forward(&self.backend, &self.config, params, &packed, &mut acts, None))?;
        self.outputs(&packed, &acts)
    }

    /// A paged KV cache of `num_blocks` blocks of [`DEFAULT_BLOCK_SIZE`] tokens; add sequences with
    /// [`KvCache::add_sequence`] or [`KvCache::fork`].
    pub fn new_cache(&self, num_blocks: usize) -> Result<KvCache<f32, B>, ModelError> {
        KvCache::new(&self.backend, &self.config, num_blocks, DEFAULT_BLOCK_SIZE)
    }

    /// A paged KV cache with prefix caching ([`KvCache::with_prefix_caching`]) of `num_blocks` blocks of
    /// `block_size` tokens, for [`Model::generate_in`] calls that share prefixes across calls.
    pub fn new_prefix_cache(&self, num_blocks: usize, block_size: usize) -> Result<KvCache<f32, B>, ModelError> {
        KvCache::with_prefix_caching(&self.backend, &self.config, num_blocks, block_size)
    }

    /// Appends `tokens[i]` to cached sequence `seqs[i]` and returns the logits and values of the new
    /// positions. Prefill is a call with whole prompts; decoding, calls with one token per sequence.
    /// Bad input (unknown or repeated sequences, token ids, lengths, too few free blocks) is refused
    /// before the cache changes.
    pub fn forward_cached(
        &self,
        cache: &mut KvCache<f32, B>,
        seqs: &[SeqId],
        tokens: &[&[u32]],
    ) -> Result<Vec<ForwardOutput>, ModelError> {
        self.cached_step(cache, seqs, tokens, |batch, acts| self.outputs(batch, acts))
    }

    /// [`Model::forward_cached`] with the outputs written into `out`, whose buffers (like the
    /// activations and step metadata the cache keeps) are reused from step to step: a decode loop
    /// that keeps `out` allocates nothing in the model once warm. Same numbers as
    /// [`Model::forward_cached`].
    pub fn forward_cached_into(
        &self,
        cache: &mut KvCache<f32, B>,
        seqs: &[SeqId],
        tokens: &[&[u32]],
        out: &mut StepOutputs,
    ) -> Result<(), ModelError> {
        self.cached_step(cache, seqs, tokens, |batch, acts| {
            let vocab = self.config.vocab_size;
            out.vocab = vocab;
            out.spans.clear();
            out.spans.extend(batch.spans.iter().map(|s| (s.q_start, s.q_len)));
            copy_to_host(&self.backend, &acts.head.logits, batch.rows() * vocab, &mut out.logits)?;
            copy_to_host(&self.backend, &acts.head.values, batch.rows(), &mut out.values)
        })
    }

    /// One forward step over the cache in the cache's reused buffers; `read` reads the outputs.
    fn cached_step<R>(
        &self,
        cache: &mut KvCache<f32, B>,
        seqs: &[SeqId],
        tokens: &[&[u32]],
        read: impl FnOnce(&PackedBatch, &Activations<B::Owned>) -> Result<R, ModelError>,
    ) -> Result<R, ModelError> {
        self.check_shapes()?;
        cache.check_fits(&self.config)?;
        if seqs.len() != tokens.len() {
            return Err(ModelError::length("token rows per sequence", seqs.len(), tokens.len()));
        }
        self.check_batch_size(tokens.iter().map(|t| t.len()).sum())?;
        let mut scratch = cache.take_scratch();
        let result = self.cached_step_in(cache, seqs, tokens, &mut scratch, read);
        cache.put_scratch(scratch);
        result
    }

    fn cached_step_in<R>(
        &self,
        cache: &mut KvCache<f32, B>,
        seqs: &[SeqId],
        tokens: &[&[u32]],
        s: &mut StepScratch<B::Owned>,
        read: impl FnOnce(&PackedBatch, &Activations<B::Owned>) -> Result<R, ModelError>,
    ) -> Result<R, ModelError> {
        s.context.clear();
        for &seq in seqs {
            s.context.push(cache.len(seq)?);
        }
        let c = &self.config;
        s.batch.refill(tokens, Some(&s.context), c.vocab_size, c.max_position_embeddings)?;
        // Every buffer a step reads is written first in that step, so the last step's are as good as new.
        let mut acts = match s.acts.take() {
            Some(acts) if acts.rows == s.batch.rows() && acts.layers.len() == 1 && acts.head_input.is_none() => acts,
            _ => Activations::new(&self.backend, c, s.batch.rows(), false)?,
        };
        let (batch, plan, spans) = (&s.batch, &mut s.plan, &mut s.spans);
        let stepped = self.with_params(|params| {
            cache.reserve_into(&self.backend, seqs, tokens, plan)?;
            let mut paged = recycle(std::mem::take(spans));
            plan.paged_spans_into(&batch.spans, &mut paged);
            let result =
                transformer::forward(&self.backend, c, params, batch, &mut acts, Some(cache.step(plan, &paged)));
            *spans = recycle(paged);
            result?;
            cache.commit(seqs)
        });
        let result = stepped.and_then(|()| read(batch, &acts));
        s.acts = Some(acts);
        result
    }

    /// [`Model::forward_cached`] for decoding: the same step, but the head (final norm, logits,
    /// values) runs only at each sequence's last new position and its outputs stay on the backend,
    /// for a sampler that runs there (a GPU's). A prefill of long prompts then computes and moves
    /// one row of logits per sequence instead of one per token.
    pub fn forward_cached_last(
        &self,
        cache: &mut KvCache<f32, B>,
        seqs: &[SeqId],
        tokens: &[&[u32]],
    ) -> Result<LastOutputs<B::Owned>, ModelError> {
        self.check_shapes()?;
        cache.check_fits(&self.config)?;
        if seqs.len() != tokens.len() {
            return Err(ModelError::length("token rows per sequence", seqs.len(), tokens.len()));
        }
        self.check_batch_size(tokens.iter().map(|t| t.len()).sum())?;
        let context = seqs.iter().map(|&s| cache.len(s)).collect::<Result<Vec<_>, _>>()?;
        let c = &self.config;
        let packed = PackedBatch::with_context(tokens, &context, c.vocab_size, c.max_position_embeddings)?;
        let last = packed
            .spans
            .iter()
            .map(|s| u32::try_from(s.q_start + s.q_len - 1).map_err(|_| ModelError::value("batch", "too many rows")))
            .collect::<Result<Vec<u32>, _>>()?;
        let mut acts = Activations::for_head_rows(&self.backend, c, packed.rows(), last.len())?;
        self.with_params(|params| {
            let plan = cache.reserve(&self.backend, seqs, tokens)?;
            let spans = plan.paged_spans(&packed.spans);
            let step = Some(cache.step(&plan, &spans));
            transformer::forward_rows(&self.backend, c, params, &packed, &mut acts, step, &last)?;
            cache.commit(seqs)
        })?;
        Ok(LastOutputs { logits: acts.head.logits, values: acts.head.values })
    }

    /// A forward pass that keeps what [`Model::backward`] needs.
    pub fn forward_train(&self, batch: &[&[u32]]) -> Result<TrainPass<B>, ModelError> {
        self.check_batch_size(batch.iter().map(|s| s.len()).sum())?;
        self.check_shapes()?;
        let (spare, mut packed) = match self.spare.lock().ok().and_then(|mut s| s.pass.take()) {
            Some((acts, packed)) => (Some(acts), packed),
            None => (None, PackedBatch::default()),
        };
        packed.refill(batch, None, self.config.vocab_size, self.config.max_position_embeddings)?;
        // Every buffer is fully overwritten by the forward pass, so a spare of the right size is as
        // good as a fresh one.
        let mut acts = match spare {
            Some(acts) if acts.rows == packed.rows() => acts,
            _ => Activations::new(&self.backend, &self.config, packed.rows(), true)?,
        };
        self.with_params(|params| transformer::forward(&self.backend, &self.config, params, &packed, &mut acts, None))?;
        let h = &acts.head;
        let on_host = [&h.logits, &h.lse, &h.entropy, &h.values].iter().all(|b| B::as_host((*b).borrow()).is_some());
        let host = if on_host {
            None
        } else {
            let rows = packed.rows();
            let fetch = |buf: &B::Owned, len| fetch(&self.backend, buf, len).map(|c| c.into_owned());
            Some(HostHead {
                logits: fetch(&h.logits, rows * self.config.vocab_size)?,
                lse: fetch(&h.lse, rows)?,
                entropy: fetch(&h.entropy, rows)?,
                values: fetch(&h.values, rows)?,
            })
        };
        Ok(TrainPass { config: self.config.clone(), batch: packed, acts, host })
    }

    /// Hands a finished training pass's buffers back for reuse by the next [`Model::forward_train`]
    /// (optional; a training loop calls it after `backward`).
    pub fn recycle(&self, pass: TrainPass<B>) {
        if pass.config == self.config
            && let Ok(mut spare) = self.spare.lock()
        {
            spare.pass = Some((pass.acts, pass.batch));
        }
    }

    /// Chosen-token log-probabilities, entropies and values of every sequence.
    pub fn token_logprobs(&self, batch: &[&[u32]]) -> Result<Vec<TokenStats>, ModelError> {
        Ok(self.forward_train(batch)?.token_stats())
    }

    /// Adds `dL/dθ` into `out` (shaped like the weights, e.g. `weights().zeros_like()`), given
    /// each sequence's loss gradient with respect to its [`TokenStats`] (and optionally its logits).
    /// The weights must not have changed since `pass` was computed (the gradient would mix two
    /// parameter sets).
    pub fn backward(
        &self,
        pass: &TrainPass<B>,
        grads: &[SequenceGrads<'_>],
        out: &mut ModelWeights,
    ) -> Result<(), ModelError> {
        self.check_shapes()?;
        validate::matches(&self.shapes, out)?;
        if pass.config != self.config {
            return Err(ModelError::ForeignPass);
        }
        let rows = pass.batch.rows();
        if grads.len() != pass.num_seqs() {
            return Err(ModelError::length("sequence gradients", pass.num_seqs(), grads.len()));
        }
        let (mut host, scratch) = {
            let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
            (std::mem::take(&mut spare.host), spare.grads.take())
        };
        let mut scratch = match scratch {
            Some(s) if s.rows == rows => s,
            _ => GradScratch::new(&self.backend, &self.config, rows)?,
        };
        let result = self.backward_in(pass, grads, out, &mut host, &mut scratch);
        let mut spare = self.spare.lock().unwrap_or_else(PoisonError::into_inner);
        spare.host = host;
        spare.grads = Some(scratch);
        result
    }

    /// [`Model::backward`] after its checks, in reused buffers.
    fn backward_in(
        &self,
        pass: &TrainPass<B>,
        grads: &[SequenceGrads<'_>],
        out: &mut ModelWeights,
        host: &mut BackwardHost,
        scratch: &mut GradScratch<B::Owned>,
    ) -> Result<(), ModelError> {
        let rows = pass.batch.rows();
        let vocab = self.config.vocab_size;
        let BackwardHost { d_logprob, d_entropy, d_value, targets, d_logits } = host;
        // Zeros where no sequence writes, as fresh buffers would be.
        for buf in [&mut *d_logprob, &mut *d_entropy, &mut *d_value] {
            buf.clear();
            buf.resize(rows, 0.0);
        }
        targets.clear();
        targets.resize(rows, 0);
        let with_logits = grads.iter().any(|g| g.d_logits.is_some());
        d_logits.clear();
        if with_logits {
            d_logits.resize(rows * vocab, 0.0);
        }
        for (i, (span, g)) in pass.batch.spans.iter().zip(grads).enumerate() {
            let (start, len) = (span.q_start, span.q_len);
            let pred = start..start + len - 1;
            copy_grad("d_logprobs", i, Some(g.d_logprobs), &mut d_logprob[pred.clone()])?;
            copy_grad("d_entropies", i, g.d_entropies, &mut d_entropy[pred.clone()])?;
            copy_grad("d_values", i, g.d_values, &mut d_value[start..start + len])?;
            if with_logits {
                copy_grad("d_logits", i, g.d_logits, &mut d_logits[start * vocab..(start + len) * vocab])?;
            }
            targets[pred].copy_from_slice(&pass.batch.ids[start + 1..start + len]);
        }
        let b = &self.backend;
        let (d_logprob, d_entropy, d_value) =
            (Staged::new(b, d_logprob)?, Staged::new(b, d_entropy)?, Staged::new(b, d_value)?);
        let d_logits = with_logits.then_some(d_logits.as_slice()).map(|d| Staged::new(b, d)).transpose()?;
        let targets = targets.as_slice();
        let d = || HeadGrads {
            targets,
            d_logprob: d_logprob.buf(),
            d_entropy: d_entropy.buf(),
            d_value: d_value.buf(),
            d_logits: d_logits.as_ref().map(Staged::buf),
        };
        self.with_params(|params| {
            let (cfg, batch, acts) = (&self.config, &pass.batch, &pass.acts);
            // The gradient buffer itself when the backend computes on host memory: backward adds into
            // it in place.
            if B::from_host_mut(&mut []).is_some() {
                let mut g = HostGrads::<B>(out, PhantomData);
                return transformer::backward_with(b, cfg, params, batch, acts, d(), &mut g, scratch);
            }
            // Otherwise into zeroed device buffers, then downloaded and added into `out`.
            let mut device = out.params().try_map(|s| b.zeros(s.len()))?;
            transformer::backward_with(b, cfg, params, batch, acts, d(), &mut device, scratch)?;
            let mut host = Vec::new();
            for ((_, dst), src) in out.iter_mut().zip(device.into_list()) {
                host.resize(dst.len(), 0.0);
                b.download(src.borrow(), &mut host)?;
                dst.iter_mut().zip(&host).for_each(|(a, &g)| *a += g);
            }
            Ok(())
        })
    }

    /// Weighted next-token cross-entropy `L = −Σ_t w_t·log p_t / Σ_t w_t` over all sequences
    /// (`loss_weights[i]` has `len_i − 1` entries, e.g. a 0/1 completion mask) and its gradient.
    pub fn sft_loss_and_grads(
        &self,
        batch: &[&[u32]],
        loss_weights: &[&[f32]],
    ) -> Result<(f32, ModelWeights), ModelError> {
        check_loss_weights(batch.len(), loss_weights)?;
        let pass = self.forward_train(batch)?;
        let (loss, d_logprobs) = weighted_nll(&pass.token_stats(), loss_weights)?;
        let grads: Vec<SequenceGrads<'_>> = d_logprobs
            .iter()
            .map(|d| SequenceGrads { d_logprobs: d, d_entropies: None, d_values: None, d_logits: None })
            .collect();
        let mut out = self.weights.zeros_like();
        self.backward(&pass, &grads, &mut out)?;
        self.recycle(pass);
        Ok((loss, out))
    }
}

/// Copies sequence `seq`'s gradient `what` into its rows of a packed buffer (zeros when absent),
/// checking its length and finiteness.
fn copy_grad(what: &'static str, seq: usize, src: Option<&[f32]>, dst: &mut [f32]) -> Result<(), ModelError> {
    let Some(src) = src else { return Ok(()) };
    if src.len() != dst.len() {
        return Err(ModelError::LengthMismatch { what, seq: Some(seq), expected: dst.len(), got: src.len() });
    }
    if src.iter().any(|x| !x.is_finite()) {
        return Err(ModelError::InvalidValue { what, seq: Some(seq), reason: "holds NaN or infinity" });
    }
    dst.copy_from_slice(src);
    Ok(())
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
