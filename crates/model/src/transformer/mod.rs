//! The Llama/Qwen2 decoder as forward/backward pairs over a [`Backend`], generic over the scalar so
//! the same code runs in `f32` (the model) and `f64` (finite-difference gradient checks).
//!
//! Data flow: token ids → embedding → `num_hidden_layers` × [`layer`] → [`head`] (final norm,
//! logits, values, log-softmax statistics). [`forward`] keeps every layer's activations when asked
//! to (training), or reuses one set of buffers (inference); [`backward`] walks them in reverse.

pub mod batch;
pub mod head;
pub mod layer;
pub mod params;

use std::borrow::{Borrow, BorrowMut};

use crate::backend::{Backend, BackendResult, PagedSpan};
use crate::config::ModelConfig;
use crate::error::ModelError;
use batch::PackedBatch;
use head::{HeadActs, HeadGradScratch, HeadGrads};
use layer::{KvSource, LayerActs, LayerGradScratch};
use params::{ParamSink, ParamSource};
use selfplay_tensor::Float;

/// Every buffer a forward pass writes, owned by the backend.
#[derive(Debug)]
pub struct Activations<O> {
    /// One set per layer when training; a single reused set for inference.
    pub layers: Vec<LayerActs<O>>,
    pub head: HeadActs<O>,
    /// The residual stream, `[rows, hidden]`: after the last layer it is the head's input.
    pub residual: O,
    /// The rows the head reads, `[head rows, hidden]`, when it runs on some rows only
    /// ([`Activations::for_head_rows`]).
    pub head_input: Option<O>,
    /// The packed rows the buffers hold.
    pub rows: usize,
}

impl<O> Activations<O> {
    /// Buffers for `rows` packed tokens; `for_backward` keeps every layer's activations.
    pub fn new<T: Float, B: Backend<T, Owned = O>>(
        b: &B,
        cfg: &ModelConfig,
        rows: usize,
        for_backward: bool,
    ) -> BackendResult<Self> {
        let sets = if for_backward { cfg.num_hidden_layers } else { 1 };
        Ok(Activations {
            layers: (0..sets).map(|_| LayerActs::new(b, cfg, rows)).collect::<BackendResult<_>>()?,
            head: HeadActs::new(b, cfg, rows)?,
            residual: b.zeros(rows * cfg.hidden_size)?,
            head_input: None,
            rows,
        })
    }

    /// Inference buffers for `rows` packed tokens whose head runs on `head_rows` of them only
    /// (see [`forward_rows`]).
    pub fn for_head_rows<T: Float, B: Backend<T, Owned = O>>(
        b: &B,
        cfg: &ModelConfig,
        rows: usize,
        head_rows: usize,
    ) -> BackendResult<Self> {
        Ok(Activations {
            layers: vec![LayerActs::new(b, cfg, rows)?],
            head: HeadActs::new(b, cfg, head_rows)?,
            residual: b.zeros(rows * cfg.hidden_size)?,
            head_input: Some(b.zeros(head_rows * cfg.hidden_size)?),
            rows,
        })
    }
}

/// Gradient buffers of one backward pass over `rows` packed tokens, reusable by the next pass of
/// the same size (every buffer is overwritten before it is read).
#[derive(Debug)]
pub struct GradScratch<O> {
    /// The gradient of the residual stream, `[rows, hidden]`.
    dx: O,
    head: HeadGradScratch<O>,
    layer: LayerGradScratch<O>,
    /// The packed rows the buffers hold.
    pub rows: usize,
}

impl<O> GradScratch<O> {
    pub fn new<T: Float, B: Backend<T, Owned = O>>(b: &B, cfg: &ModelConfig, rows: usize) -> BackendResult<Self> {
        Ok(GradScratch {
            dx: b.zeros(rows * cfg.hidden_size)?,
            head: HeadGradScratch::new(b, cfg, rows)?,
            layer: LayerGradScratch::new(b, cfg, rows)?,
            rows,
        })
    }
}

/// A paged KV cache's buffers for one forward step: per layer `(keys, values)` pools of `kv_dim`
/// rows, the pool row each packed row's new key/value goes to, and each sequence's paged span.
#[derive(Debug)]
pub struct CacheStep<'c, O> {
    pub layers: &'c mut [(O, O)],
    pub slots: &'c [u32],
    pub spans: &'c [PagedSpan<'c>],
    pub block_size: usize,
}

/// Runs the model over a packed batch; outputs end up in `acts.head`. Activations (and a cache
/// step) with fewer layers than `p` are refused; sizes are otherwise the caller's to keep consistent.
pub fn forward<T: Float, B: Backend<T>>(
    b: &B,
    cfg: &ModelConfig,
    p: &(impl ParamSource<B::Buf> + ?Sized),
    batch: &PackedBatch,
    acts: &mut Activations<B::Owned>,
    cache: Option<CacheStep<'_, B::Owned>>,
) -> Result<(), ModelError> {
    decoder(b, cfg, p, batch, acts, cache)?;
    Ok(head::forward(b, cfg, &p.head()?, batch.rows(), acts.residual.borrow(), &mut acts.head)?)
}

/// [`forward`] with the head (final norm, logits, values) run only on the packed rows `head_rows`,
/// in that order (e.g. each sequence's last row when decoding): `acts` comes from
/// [`Activations::for_head_rows`] and `acts.head` holds `head_rows.len()` rows.
pub fn forward_rows<T: Float, B: Backend<T>>(
    b: &B,
    cfg: &ModelConfig,
    p: &(impl ParamSource<B::Buf> + ?Sized),
    batch: &PackedBatch,
    acts: &mut Activations<B::Owned>,
    cache: Option<CacheStep<'_, B::Owned>>,
    head_rows: &[u32],
) -> Result<(), ModelError> {
    if head_rows.iter().any(|&r| r as usize >= batch.rows()) {
        return Err(ModelError::value("head rows", "outside the batch"));
    }
    decoder(b, cfg, p, batch, acts, cache)?;
    let h = cfg.hidden_size;
    let Some(picked) = acts.head_input.as_mut() else {
        return Err(ModelError::value("activations", "made without head rows"));
    };
    // Gathering rows is an embedding lookup with the residual stream as the table.
    b.embedding(acts.residual.borrow(), head_rows, h, (*picked).borrow_mut())?;
    Ok(head::forward(b, cfg, &p.head()?, head_rows.len(), (*picked).borrow(), &mut acts.head)?)
}

/// The embedding and every decoder layer: leaves the residual stream after the last layer in
/// `acts.residual`, `[rows, hidden]`.
fn decoder<T: Float, B: Backend<T>>(
    b: &B,
    cfg: &ModelConfig,
    p: &(impl ParamSource<B::Buf> + ?Sized),
    batch: &PackedBatch,
    acts: &mut Activations<B::Owned>,
    mut cache: Option<CacheStep<'_, B::Owned>>,
) -> Result<(), ModelError> {
    let layers = p.num_layers();
    if acts.layers.is_empty() || (acts.layers.len() > 1 && acts.layers.len() != layers) {
        return Err(ModelError::length("activation layers", layers, acts.layers.len()));
    }
    if let Some(step) = &cache
        && step.layers.len() != layers
    {
        return Err(ModelError::CacheMismatch { what: "layers", expected: layers, got: step.layers.len() });
    }
    let x = &mut acts.residual;
    b.embedding(p.embed_tokens()?, &batch.ids, cfg.hidden_size, x.borrow_mut())?;
    let last_set = acts.layers.len().saturating_sub(1);
    for l in 0..layers {
        let lp = p.layer(l)?;
        let a = &mut acts.layers[l.min(last_set)];
        let kv = match cache.as_mut() {
            None => KvSource::Fresh,
            Some(step) => {
                let Some((k, v)) = step.layers.get_mut(l) else {
                    return Err(ModelError::CacheMismatch { what: "layers", expected: layers, got: l });
                };
                KvSource::Paged {
                    k: k.borrow_mut(),
                    v: v.borrow_mut(),
                    slots: step.slots,
                    spans: step.spans,
                    block_size: step.block_size,
                }
            }
        };
        layer::forward(b, cfg, &lp, batch, x.borrow_mut(), a, kv)?;
    }
    Ok(())
}

/// Back-propagates per-row gradients of (chosen-token log-probability, entropy, value) through a
/// training forward pass (`acts` built with `for_backward`; any other is refused), adding every
/// parameter's gradient into `g`.
pub fn backward<T: Float, B: Backend<T>>(
    b: &B,
    cfg: &ModelConfig,
    p: &(impl ParamSource<B::Buf> + ?Sized),
    batch: &PackedBatch,
    acts: &Activations<B::Owned>,
    d: HeadGrads<'_, B::Buf>,
    g: &mut (impl ParamSink<B::Buf> + ?Sized),
) -> Result<(), ModelError> {
    let mut scratch = GradScratch::new(b, cfg, batch.rows())?;
    backward_with(b, cfg, p, batch, acts, d, g, &mut scratch)
}

/// [`backward`] in caller-owned gradient buffers for `batch.rows()` rows (refused otherwise), so a
/// training loop reuses them from step to step. The numbers are the same as [`backward`]'s.
#[allow(clippy::too_many_arguments)]
pub fn backward_with<T: Float, B: Backend<T>>(
    b: &B,
    cfg: &ModelConfig,
    p: &(impl ParamSource<B::Buf> + ?Sized),
    batch: &PackedBatch,
    acts: &Activations<B::Owned>,
    d: HeadGrads<'_, B::Buf>,
    g: &mut (impl ParamSink<B::Buf> + ?Sized),
    scratch: &mut GradScratch<B::Owned>,
) -> Result<(), ModelError> {
    let layers = p.num_layers();
    if acts.layers.len() != layers || g.num_layers() != layers {
        return Err(ModelError::NoActivations);
    }
    let rows = batch.rows();
    if scratch.rows != rows {
        return Err(ModelError::length("gradient scratch rows", rows, scratch.rows));
    }
    let GradScratch { dx, head: head_scratch, layer: layer_scratch, .. } = scratch;
    head::backward(b, cfg, &p.head()?, rows, &acts.head, d, (*dx).borrow_mut(), &mut g.head_mut()?, head_scratch)?;
    for (l, a) in acts.layers.iter().enumerate().rev() {
        let mut lg = g.layer_mut(l)?;
        layer::backward(b, cfg, &p.layer(l)?, batch, a, (*dx).borrow_mut(), &mut lg, layer_scratch)?;
    }
    Ok(b.embedding_backward((*dx).borrow(), &batch.ids, cfg.hidden_size, g.embed_tokens_mut()?)?)
}

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
pub(crate) mod tests;
