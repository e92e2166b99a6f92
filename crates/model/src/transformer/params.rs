//! Parameters (or their gradients) as one named field per tensor, generic over what a field holds:
//! where a tensor sits in the flat buffer of a `ModelWeights` (`Params<Range<usize>>`, its layout), a
//! borrowed slice of it (`Params<&[f32]>`), a mutable gradient view (`Params<&mut [f32]>`), a device
//! buffer, or owned `f64` copies for gradient checks (`Params<Vec<f64>>`). One struct for all of them
//! keeps forward and backward code free of offsets, and its field order (the order [`Params::map`]
//! visits) is the one order of parameters everywhere: the flat buffer, safetensors files, the
//! optimizer's state.
//!
//! The transformer reads parameters through [`ParamSource`] and writes gradients through
//! [`ParamSink`], one layer (or the head) at a time: a flat host buffer hands out views of its slices
//! on demand, so a pass builds no list of views and allocates nothing for them.

use std::borrow::{Borrow, BorrowMut};

use crate::error::ModelError;

/// One decoder layer's parameters (Hugging Face layout: a Linear weight is `[out, in]`).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerParams<S> {
    pub input_layernorm: S,
    pub q_proj: S,
    pub k_proj: S,
    pub v_proj: S,
    pub q_bias: Option<S>,
    pub k_bias: Option<S>,
    pub v_bias: Option<S>,
    pub o_proj: S,
    pub o_bias: Option<S>,
    pub post_attention_layernorm: S,
    pub gate_proj: S,
    pub up_proj: S,
    pub down_proj: S,
}

/// All parameters (`lm_head` is `None` when the embeddings are tied).
#[derive(Debug, Clone, PartialEq)]
pub struct Params<S> {
    /// `[vocab, hidden]`.
    pub embed_tokens: S,
    pub layers: Vec<LayerParams<S>>,
    /// The final RMSNorm, `[hidden]`.
    pub norm: S,
    /// `[vocab, hidden]`.
    pub lm_head: Option<S>,
    /// The value head on the final normed hidden state, `[1, hidden]`.
    pub value_head: S,
    /// `[1]`.
    pub value_bias: S,
}

/// What the head reads: the final norm, the output projection (`lm_head`, or the embeddings when
/// tied) and the value head.
#[derive(Debug, Clone, PartialEq)]
pub struct HeadParams<S> {
    pub norm: S,
    pub output: S,
    pub value_head: S,
    pub value_bias: S,
}

impl<S> LayerParams<S> {
    /// Applies `f` to every field, in [`Params::map`] order.
    pub fn map<U>(self, mut f: impl FnMut(S) -> U) -> LayerParams<U> {
        self.map_with(&mut f)
    }

    fn map_with<U>(self, f: &mut impl FnMut(S) -> U) -> LayerParams<U> {
        LayerParams {
            input_layernorm: f(self.input_layernorm),
            q_proj: f(self.q_proj),
            k_proj: f(self.k_proj),
            v_proj: f(self.v_proj),
            q_bias: self.q_bias.map(&mut *f),
            k_bias: self.k_bias.map(&mut *f),
            v_bias: self.v_bias.map(&mut *f),
            o_proj: f(self.o_proj),
            o_bias: self.o_bias.map(&mut *f),
            post_attention_layernorm: f(self.post_attention_layernorm),
            gate_proj: f(self.gate_proj),
            up_proj: f(self.up_proj),
            down_proj: f(self.down_proj),
        }
    }

    /// Applies a fallible `f` to every field, in [`Params::map`] order, stopping at the first error.
    pub fn try_map<U, E>(self, mut f: impl FnMut(S) -> Result<U, E>) -> Result<LayerParams<U>, E> {
        self.try_map_with(&mut f)
    }

    fn try_map_with<U, E>(self, f: &mut impl FnMut(S) -> Result<U, E>) -> Result<LayerParams<U>, E> {
        Ok(LayerParams {
            input_layernorm: f(self.input_layernorm)?,
            q_proj: f(self.q_proj)?,
            k_proj: f(self.k_proj)?,
            v_proj: f(self.v_proj)?,
            q_bias: self.q_bias.map(&mut *f).transpose()?,
            k_bias: self.k_bias.map(&mut *f).transpose()?,
            v_bias: self.v_bias.map(&mut *f).transpose()?,
            o_proj: f(self.o_proj)?,
            o_bias: self.o_bias.map(&mut *f).transpose()?,
            post_attention_layernorm: f(self.post_attention_layernorm)?,
            gate_proj: f(self.gate_proj)?,
            up_proj: f(self.up_proj)?,
            down_proj: f(self.down_proj)?,
        })
    }

    /// A reference to every field.
    pub fn each_ref(&self) -> LayerParams<&S> {
        LayerParams {
            input_layernorm: &self.input_layernorm,
            q_proj: &self.q_proj,
            k_proj: &self.k_proj,
            v_proj: &self.v_proj,
            q_bias: self.q_bias.as_ref(),
            k_bias: self.k_bias.as_ref(),
            v_bias: self.v_bias.as_ref(),
            o_proj: &self.o_proj,
            o_bias: self.o_bias.as_ref(),
            post_attention_layernorm: &self.post_attention_layernorm,
            gate_proj: &self.gate_proj,
            up_proj: &self.up_proj,
            down_proj: &self.down_proj,
        }
    }

    /// A mutable reference to every field.
    pub fn each_mut(&mut self) -> LayerParams<&mut S> {
        LayerParams {
            input_layernorm: &mut self.input_layernorm,
            q_proj: &mut self.q_proj,
            k_proj: &mut self.k_proj,
            v_proj: &mut self.v_proj,
            q_bias: self.q_bias.as_mut(),
            k_bias: self.k_bias.as_mut(),
            v_bias: self.v_bias.as_mut(),
            o_proj: &mut self.o_proj,
            o_bias: self.o_bias.as_mut(),
            post_attention_layernorm: &mut self.post_attention_layernorm,
            gate_proj: &mut self.gate_proj,
            up_proj: &mut self.up_proj,
            down_proj: &mut self.down_proj,
        }
    }

    /// Every field in [`Params::map`] order (for walking all tensors, e.g. in tests).
    pub fn into_list(self) -> Vec<S> {
        let mut out = vec![self.input_layernorm, self.q_proj, self.k_proj, self.v_proj];
        out.extend([self.q_bias, self.k_bias, self.v_bias].into_iter().flatten());
        out.push(self.o_proj);
        out.extend(self.o_bias);
        out.extend([self.post_attention_layernorm, self.gate_proj, self.up_proj, self.down_proj]);
        out
    }
}

impl<S> Params<S> {
    /// Applies `f` to every field (e.g. to convert `f32` weights to `f64` copies), in the order of
    /// the parameters everywhere: `embed_tokens`, each layer's `input_layernorm`, `q_proj`, `k_proj`,
    /// `v_proj`, the q/k/v biases, `o_proj`, its bias, `post_attention_layernorm`, `gate_proj`,
    /// `up_proj`, `down_proj`, then `norm`, `lm_head`, `value_head`, `value_bias`.
    pub fn map<U>(self, mut f: impl FnMut(S) -> U) -> Params<U> {
        Params {
            embed_tokens: f(self.embed_tokens),
            layers: self.layers.into_iter().map(|l| l.map_with(&mut f)).collect(),
            norm: f(self.norm),
            lm_head: self.lm_head.map(&mut f),
            value_head: f(self.value_head),
            value_bias: f(self.value_bias),
        }
    }

    /// Applies a fallible `f` to every field in [`Params::map`] order, stopping at the first
    /// error (e.g. uploading every tensor to a device).
    pub fn try_map<U, E>(self, mut f: impl FnMut(S) -> Result<U, E>) -> Result<Params<U>, E> {
        Ok(Params {
            embed_tokens: f(self.embed_tokens)?,
            layers: self.layers.into_iter().map(|l| l.try_map_with(&mut f)).collect::<Result<_, E>>()?,
            norm: f(self.norm)?,
            lm_head: self.lm_head.map(&mut f).transpose()?,
            value_head: f(self.value_head)?,
            value_bias: f(self.value_bias)?,
        })
    }

    /// A reference to every field.
    pub fn each_ref(&self) -> Params<&S> {
        Params {
            embed_tokens: &self.embed_tokens,
            layers: self.layers.iter().map(LayerParams::each_ref).collect(),
            norm: &self.norm,
            lm_head: self.lm_head.as_ref(),
            value_head: &self.value_head,
            value_bias: &self.value_bias,
        }
    }

    /// A mutable reference to every field.
    pub fn each_mut(&mut self) -> Params<&mut S> {
        Params {
            embed_tokens: &mut self.embed_tokens,
            layers: self.layers.iter_mut().map(LayerParams::each_mut).collect(),
            norm: &mut self.norm,
            lm_head: self.lm_head.as_mut(),
            value_head: &mut self.value_head,
            value_bias: &mut self.value_bias,
        }
    }

    /// Every field in [`Params::map`] order.
    pub fn into_list(self) -> Vec<S> {
        let mut out = vec![self.embed_tokens];
        out.extend(self.layers.into_iter().flat_map(LayerParams::into_list));
        out.push(self.norm);
        out.extend(self.lm_head);
        out.extend([self.value_head, self.value_bias]);
        out
    }
}

/// An empty vector of element type `U` on `v`'s allocation when `T` and `U` have the same size and
/// alignment (types that differ only in lifetimes, e.g. views of two borrows), else an empty vector
/// that has allocated nothing: how a decode step reuses the vector of its paged spans, which borrow
/// the cache's block tables anew on every step.
pub fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    // An empty source collects in place (std's in-place iteration), or into `Vec::new()`.
    v.into_iter().filter_map(|_| None).collect()
}

/// Read access to every parameter as buffers `Buf` of a backend, one layer or the head at a time
/// (see the module docs). Implemented by [`Params`] of anything that borrows as `Buf` (per-tensor
/// host slices or device buffers) and by the model's view of its flat host weights.
pub trait ParamSource<Buf: ?Sized> {
    /// Number of decoder layers.
    fn num_layers(&self) -> usize;
    /// `[vocab, hidden]`.
    fn embed_tokens(&self) -> Result<&Buf, ModelError>;
    /// Layer `l`'s parameters.
    fn layer(&self, l: usize) -> Result<LayerParams<&Buf>, ModelError>;
    /// The head's parameters.
    fn head(&self) -> Result<HeadParams<&Buf>, ModelError>;
}

/// Write access to every parameter gradient, one layer or the head at a time: what the backward
/// pass adds into.
pub trait ParamSink<Buf: ?Sized> {
    /// Number of decoder layers.
    fn num_layers(&self) -> usize;
    /// `[vocab, hidden]`.
    fn embed_tokens_mut(&mut self) -> Result<&mut Buf, ModelError>;
    /// Layer `l`'s gradients.
    fn layer_mut(&mut self, l: usize) -> Result<LayerParams<&mut Buf>, ModelError>;
    /// The head's gradients (`output` is the embeddings' gradient when they are tied).
    fn head_mut(&mut self) -> Result<HeadParams<&mut Buf>, ModelError>;
}

/// The error for a layer `l` of a model with `layers` layers that does not exist.
pub(crate) fn no_layer(l: usize, layers: usize) -> ModelError {
    ModelError::length("parameter layers", layers, l)
}

impl<Buf: ?Sized, O: Borrow<Buf>> ParamSource<Buf> for Params<O> {
    fn num_layers(&self) -> usize {
        self.layers.len()
    }

    fn embed_tokens(&self) -> Result<&Buf, ModelError> {
        Ok(self.embed_tokens.borrow())
    }

    fn layer(&self, l: usize) -> Result<LayerParams<&Buf>, ModelError> {
        let layer = self.layers.get(l).ok_or_else(|| no_layer(l, self.layers.len()))?;
        Ok(layer.each_ref().map(|o| o.borrow()))
    }

    fn head(&self) -> Result<HeadParams<&Buf>, ModelError> {
        Ok(HeadParams {
            norm: self.norm.borrow(),
            output: self.lm_head.as_ref().unwrap_or(&self.embed_tokens).borrow(),
            value_head: self.value_head.borrow(),
            value_bias: self.value_bias.borrow(),
        })
    }
}

impl<Buf: ?Sized, O: BorrowMut<Buf>> ParamSink<Buf> for Params<O> {
    fn num_layers(&self) -> usize {
        self.layers.len()
    }

    fn embed_tokens_mut(&mut self) -> Result<&mut Buf, ModelError> {
        Ok(self.embed_tokens.borrow_mut())
    }

    fn layer_mut(&mut self, l: usize) -> Result<LayerParams<&mut Buf>, ModelError> {
        let layers = self.layers.len();
        let layer = self.layers.get_mut(l).ok_or_else(|| no_layer(l, layers))?;
        Ok(layer.each_mut().map(|o| o.borrow_mut()))
    }

    fn head_mut(&mut self) -> Result<HeadParams<&mut Buf>, ModelError> {
        Ok(HeadParams {
            norm: self.norm.borrow_mut(),
            output: self.lm_head.as_mut().unwrap_or(&mut self.embed_tokens).borrow_mut(),
            value_head: self.value_head.borrow_mut(),
            value_bias: self.value_bias.borrow_mut(),
        })
    }
}
