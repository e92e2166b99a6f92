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
use head::{HeadActs, HeadGrads};
use layer::{KvSource, LayerActs, LayerGradScratch};
use params::Params;
use selfplay_tensor::Float;

/// Every buffer a forward pass writes, owned by the backend.
#[derive(Debug)]
pub struct Activations<O> {
    /// One set per layer when training; a single reused set for inference.
    pub layers: Vec<LayerActs<O>>,
    pub head: HeadActs<O>,
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
        Ok(Activations { layers: vec![LayerActs::new(b, cfg, rows)?], head: HeadActs::new(b, cfg, head_rows)?, rows })
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
    p: &Params<&B::Buf>,
    batch: &PackedBatch,
    acts: &mut Activations<B::Owned>,
    cache: Option<CacheStep<'_, B::Owned>>,
) -> Result<(), ModelError> {
    let x = decoder(b, cfg, p, batch, acts, cache)?;
    Ok(head::forward(b, cfg, p, batch.rows(), x.borrow(), &mut acts.head)?)
}

/// [`forward`] with the head (final norm, logits, values) run only on the packed rows `head_rows`,
/// in that order (e.g. each sequence's last row when decoding): `acts` comes from
/// [`Activations::for_head_rows`] and `acts.head` holds `head_rows.len()` rows.
pub fn forward_rows<T: Float, B: Backend<T>>(
    b: &B,
    cfg: &ModelConfig,
    p: &Params<&B::Buf>,
    batch: &PackedBatch,
    acts: &mut Activations<B::Owned>,
    cache: Option<CacheStep<'_, B::Owned>>,
    head_rows: &[u32],
) -> Result<(), ModelError> {
    if head_rows.iter().any(|&r| r as usize >= batch.rows()) {
        return Err(ModelError::value("head rows", "outside the batch"));
    }
    let x = decoder(b, cfg, p, batch, acts, cache)?;
    let h = cfg.hidden_size;
    // Gathering rows is an embedding lookup with the residual stream as the table.
    let mut picked = b.zeros(head_rows.len() * h)?;
    b.embedding(x.borrow(), head_rows, h, picked.borrow_mut())?;
    Ok(head::forward(b, cfg, p, head_rows.len(), picked.borrow(), &mut acts.head)?)
}

/// The embedding and every decoder layer: the residual stream after the last layer, `[rows, hidden]`.
fn decoder<T: Float, B: Backend<T>>(
    b: &B,
    cfg: &ModelConfig,
    p: &Params<&B::Buf>,
    batch: &PackedBatch,
    acts: &mut Activations<B::Owned>,
    mut cache: Option<CacheStep<'_, B::Owned>>,
) -> Result<B::Owned, ModelError> {
    let layers = p.layers.len();
    if acts.layers.is_empty() || (acts.layers.len() > 1 && acts.layers.len() != layers) {
        return Err(ModelError::length("activation layers", layers, acts.layers.len()));
    }
    if let Some(step) = &cache
        && step.layers.len() != layers
    {
        return Err(ModelError::CacheMismatch { what: "layers", expected: layers, got: step.layers.len() });
    }
    let rows = batch.rows();
    let mut x = b.zeros(rows * cfg.hidden_size)?;
    b.embedding(p.embed_tokens, &batch.ids, cfg.hidden_size, x.borrow_mut())?;
    let last_set = acts.layers.len().saturating_sub(1);
    for (l, lp) in p.layers.iter().enumerate() {
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
        layer::forward(b, cfg, lp, batch, x.borrow_mut(), a, kv)?;
    }
    Ok(x)
}

/// Back-propagates per-row gradients of (chosen-token log-probability, entropy, value) through a
/// training forward pass (`acts` built with `for_backward`; any other is refused), adding every
/// parameter's gradient into `g`.
pub fn backward<T: Float, B: Backend<T>>(
    b: &B,
    cfg: &ModelConfig,
    p: &Params<&B::Buf>,
    batch: &PackedBatch,
    acts: &Activations<B::Owned>,
    d: HeadGrads<'_, B::Buf>,
    g: &mut Params<&mut B::Buf>,
) -> Result<(), ModelError> {
    if acts.layers.len() != p.layers.len() || g.layers.len() != p.layers.len() {
        return Err(ModelError::NoActivations);
    }
    let rows = batch.rows();
    let mut dx = b.zeros(rows * cfg.hidden_size)?;
    head::backward(b, cfg, p, rows, &acts.head, d, dx.borrow_mut(), g)?;
    let mut scratch = LayerGradScratch::new(b, cfg, rows)?;
    for ((lp, a), lg) in p.layers.iter().zip(&acts.layers).zip(g.layers.iter_mut()).rev() {
        layer::backward(b, cfg, lp, batch, a, dx.borrow_mut(), lg, &mut scratch)?;
    }
    Ok(b.embedding_backward(dx.borrow(), &batch.ids, cfg.hidden_size, g.embed_tokens)?)
}

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
pub(crate) mod tests;
