//! Parameters (or their gradients) as one named field per tensor, generic over what a field holds:
//! a borrowed slice of a [`ModelWeights`] (`Params<&[f32]>`), a mutable gradient view
//! (`Params<&mut [f32]>`), a device buffer, or owned `f64` copies for gradient checks
//! (`Params<Vec<f64>>`). One struct for all of them keeps forward and backward code free of offsets.

use crate::weights::{LayerWeights, ModelWeights};

/// One decoder layer's parameters; field meanings and shapes as in [`LayerWeights`].
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

/// All parameters; field meanings and shapes as in [`ModelWeights`] (`lm_head` is `None` when tied).
#[derive(Debug, Clone, PartialEq)]
pub struct Params<S> {
    pub embed_tokens: S,
    pub layers: Vec<LayerParams<S>>,
    pub norm: S,
    pub lm_head: Option<S>,
    pub value_head: S,
    pub value_bias: S,
}

impl<S> LayerParams<S> {
    fn map<U>(self, f: &mut impl FnMut(S) -> U) -> LayerParams<U> {
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

    fn try_map<U, E>(self, f: &mut impl FnMut(S) -> Result<U, E>) -> Result<LayerParams<U>, E> {
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

    fn each_ref(&self) -> LayerParams<&S> {
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

    fn each_mut(&mut self) -> LayerParams<&mut S> {
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

    /// Every field in [`ModelWeights::named`] order (for walking all tensors, e.g. in tests).
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
    /// Applies `f` to every field (e.g. to convert `f32` weights to `f64` copies).
    pub fn map<U>(self, mut f: impl FnMut(S) -> U) -> Params<U> {
        Params {
            embed_tokens: f(self.embed_tokens),
            layers: self.layers.into_iter().map(|l| l.map(&mut f)).collect(),
            norm: f(self.norm),
            lm_head: self.lm_head.map(&mut f),
            value_head: f(self.value_head),
            value_bias: f(self.value_bias),
        }
    }

    /// Applies a fallible `f` to every field in [`ModelWeights::named`] order, stopping at the first
    /// error (e.g. uploading every tensor to a device).
    pub fn try_map<U, E>(self, mut f: impl FnMut(S) -> Result<U, E>) -> Result<Params<U>, E> {
        Ok(Params {
            embed_tokens: f(self.embed_tokens)?,
            layers: self.layers.into_iter().map(|l| l.try_map(&mut f)).collect::<Result<_, E>>()?,
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

    /// Every field in [`ModelWeights::named`] order.
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
/// that has allocated nothing: how a pass reuses the vectors of views it builds.
pub fn recycle<T, U>(mut v: Vec<T>) -> Vec<U> {
    v.clear();
    // An empty source collects in place (std's in-place iteration), or into `Vec::new()`.
    v.into_iter().filter_map(|_| None).collect()
}

impl<'a> Params<&'a [f32]> {
    /// Borrows every tensor of `w`.
    pub fn from_weights(w: &'a ModelWeights) -> Self {
        Self::from_weights_in(w, Vec::with_capacity(w.layers.len()))
    }

    /// [`Params::from_weights`] with the layer views in `layers`' allocation (cleared first).
    pub fn from_weights_in(w: &'a ModelWeights, mut layers: Vec<LayerParams<&'a [f32]>>) -> Self {
        let layer = |l: &'a LayerWeights| LayerParams {
            input_layernorm: l.input_layernorm.data(),
            q_proj: l.q_proj.data(),
            k_proj: l.k_proj.data(),
            v_proj: l.v_proj.data(),
            q_bias: l.q_bias.as_ref().map(|t| t.data()),
            k_bias: l.k_bias.as_ref().map(|t| t.data()),
            v_bias: l.v_bias.as_ref().map(|t| t.data()),
            o_proj: l.o_proj.data(),
            o_bias: l.o_bias.as_ref().map(|t| t.data()),
            post_attention_layernorm: l.post_attention_layernorm.data(),
            gate_proj: l.gate_proj.data(),
            up_proj: l.up_proj.data(),
            down_proj: l.down_proj.data(),
        };
        layers.clear();
        layers.extend(w.layers.iter().map(layer));
        Params {
            embed_tokens: w.embed_tokens.data(),
            layers,
            norm: w.norm.data(),
            lm_head: w.lm_head.as_ref().map(|t| t.data()),
            value_head: w.value_head.data(),
            value_bias: w.value_bias.data(),
        }
    }
}

impl<'a> Params<&'a mut [f32]> {
    /// Borrows every tensor of `w` mutably (a gradient buffer the backward pass adds into).
    pub fn from_weights_mut(w: &'a mut ModelWeights) -> Self {
        let n = w.layers.len();
        Self::from_weights_mut_in(w, Vec::with_capacity(n))
    }

    /// [`Params::from_weights_mut`] with the layer views in `layers`' allocation (cleared first).
    pub fn from_weights_mut_in(w: &'a mut ModelWeights, mut layers: Vec<LayerParams<&'a mut [f32]>>) -> Self {
        let layer = |l: &'a mut LayerWeights| LayerParams {
            input_layernorm: l.input_layernorm.data_mut(),
            q_proj: l.q_proj.data_mut(),
            k_proj: l.k_proj.data_mut(),
            v_proj: l.v_proj.data_mut(),
            q_bias: l.q_bias.as_mut().map(|t| t.data_mut()),
            k_bias: l.k_bias.as_mut().map(|t| t.data_mut()),
            v_bias: l.v_bias.as_mut().map(|t| t.data_mut()),
            o_proj: l.o_proj.data_mut(),
            o_bias: l.o_bias.as_mut().map(|t| t.data_mut()),
            post_attention_layernorm: l.post_attention_layernorm.data_mut(),
            gate_proj: l.gate_proj.data_mut(),
            up_proj: l.up_proj.data_mut(),
            down_proj: l.down_proj.data_mut(),
        };
        layers.clear();
        layers.extend(w.layers.iter_mut().map(layer));
        Params {
            embed_tokens: w.embed_tokens.data_mut(),
            layers,
            norm: w.norm.data_mut(),
            lm_head: w.lm_head.as_mut().map(|t| t.data_mut()),
            value_head: w.value_head.data_mut(),
            value_bias: w.value_bias.data_mut(),
        }
    }
}
