//! The model's parameters as named, typed tensors in Hugging Face layout.
//!
//! Linear weights are `[out_features, in_features]` row-major, exactly as `torch.nn.Linear` stores
//! them, so loading and saving never transposes. The same struct holds gradients (see
//! [`ModelWeights::zeros_like`]), which lets the optimiser walk parameters and gradients in step.

use std::fmt;

use selfplay_tensor::{Tensor, TensorError};

use crate::config::ModelConfig;

/// One decoder layer's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerWeights {
    /// RMSNorm before attention, `[hidden]`.
    pub input_layernorm: Tensor<f32>,
    /// `[q_dim, hidden]`.
    pub q_proj: Tensor<f32>,
    /// `[kv_dim, hidden]`.
    pub k_proj: Tensor<f32>,
    /// `[kv_dim, hidden]`.
    pub v_proj: Tensor<f32>,
    /// `[q_dim]`, present when the config has attention biases.
    pub q_bias: Option<Tensor<f32>>,
    /// `[kv_dim]`.
    pub k_bias: Option<Tensor<f32>>,
    /// `[kv_dim]`.
    pub v_bias: Option<Tensor<f32>>,
    /// `[hidden, q_dim]`.
    pub o_proj: Tensor<f32>,
    /// `[hidden]`, present when the config has an o_proj bias (Llama with `attention_bias`).
    pub o_bias: Option<Tensor<f32>>,
    /// RMSNorm before the MLP, `[hidden]`.
    pub post_attention_layernorm: Tensor<f32>,
    /// `[intermediate, hidden]`.
    pub gate_proj: Tensor<f32>,
    /// `[intermediate, hidden]`.
    pub up_proj: Tensor<f32>,
    /// `[hidden, intermediate]`.
    pub down_proj: Tensor<f32>,
}

/// All of a model's parameters, including the scalar value head.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelWeights {
    /// `[vocab, hidden]`.
    pub embed_tokens: Tensor<f32>,
    pub layers: Vec<LayerWeights>,
    /// Final RMSNorm, `[hidden]`.
    pub norm: Tensor<f32>,
    /// `[vocab, hidden]`; `None` when the embeddings are tied.
    pub lm_head: Option<Tensor<f32>>,
    /// Value head on the final normed hidden state, `[1, hidden]` (`value_head.weight`).
    pub value_head: Tensor<f32>,
    /// `[1]` (`value_head.bias`).
    pub value_bias: Tensor<f32>,
}

/// A parameter's Hugging Face name without allocating: a static name, or a static suffix after
/// `model.layers.{layer}.`. `Display` writes the full name (`model.layers.3.mlp.up_proj.weight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ParamName {
    /// The decoder layer, for a layer's parameter.
    pub layer: Option<usize>,
    /// The whole name, or the suffix after `model.layers.{layer}.`.
    pub name: &'static str,
}

impl ParamName {
    /// A parameter outside the decoder layers (`model.norm.weight`).
    pub const fn top(name: &'static str) -> Self {
        ParamName { layer: None, name }
    }

    /// Layer `layer`'s parameter with suffix `name` (`mlp.up_proj.weight`).
    pub const fn layer(layer: usize, name: &'static str) -> Self {
        ParamName { layer: Some(layer), name }
    }
}

impl fmt::Display for ParamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.layer {
            Some(l) => write!(f, "model.layers.{l}.{}", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// Calls `$f(suffix, tensor)` for every tensor of a [`LayerWeights`] in [`ModelWeights::named`] order;
/// `$l` is the layer (`&` or `&mut` borrow of its fields).
macro_rules! each_layer_tensor {
    ($l:expr, $f:expr, $($m:tt)*) => {{
        let l = $l;
        let mut f = $f;
        f("input_layernorm.weight", $($m)* l.input_layernorm);
        f("self_attn.q_proj.weight", $($m)* l.q_proj);
        f("self_attn.k_proj.weight", $($m)* l.k_proj);
        f("self_attn.v_proj.weight", $($m)* l.v_proj);
        if let Some(b) = $($m)* l.q_bias {
            f("self_attn.q_proj.bias", b);
        }
        if let Some(b) = $($m)* l.k_bias {
            f("self_attn.k_proj.bias", b);
        }
        if let Some(b) = $($m)* l.v_bias {
            f("self_attn.v_proj.bias", b);
        }
        f("self_attn.o_proj.weight", $($m)* l.o_proj);
        if let Some(b) = $($m)* l.o_bias {
            f("self_attn.o_proj.bias", b);
        }
        f("post_attention_layernorm.weight", $($m)* l.post_attention_layernorm);
        f("mlp.gate_proj.weight", $($m)* l.gate_proj);
        f("mlp.up_proj.weight", $($m)* l.up_proj);
        f("mlp.down_proj.weight", $($m)* l.down_proj);
    }};
}

impl LayerWeights {
    fn zeros(cfg: &ModelConfig) -> Result<Self, TensorError> {
        let (h, q, kv, i) = (cfg.hidden_size, cfg.q_dim(), cfg.kv_dim(), cfg.intermediate_size);
        let bias = |n: usize| if cfg.attention_bias { Tensor::zeros([n]).map(Some) } else { Ok(None) };
        let o_bias = if cfg.o_proj_bias { Some(Tensor::zeros([h])?) } else { None };
        Ok(LayerWeights {
            input_layernorm: Tensor::zeros([h])?,
            q_proj: Tensor::zeros([q, h])?,
            k_proj: Tensor::zeros([kv, h])?,
            v_proj: Tensor::zeros([kv, h])?,
            q_bias: bias(q)?,
            k_bias: bias(kv)?,
            v_bias: bias(kv)?,
            o_proj: Tensor::zeros([h, q])?,
            o_bias,
            post_attention_layernorm: Tensor::zeros([h])?,
            gate_proj: Tensor::zeros([i, h])?,
            up_proj: Tensor::zeros([i, h])?,
            down_proj: Tensor::zeros([h, i])?,
        })
    }
}

impl ModelWeights {
    /// All-zero parameters of the config's shapes (the starting point of a gradient buffer).
    pub fn zeros(cfg: &ModelConfig) -> Result<Self, TensorError> {
        let (v, h) = (cfg.vocab_size, cfg.hidden_size);
        Ok(ModelWeights {
            embed_tokens: Tensor::zeros([v, h])?,
            layers: (0..cfg.num_hidden_layers).map(|_| LayerWeights::zeros(cfg)).collect::<Result<_, _>>()?,
            norm: Tensor::zeros([h])?,
            lm_head: if cfg.tie_word_embeddings { None } else { Some(Tensor::zeros([v, h])?) },
            value_head: Tensor::zeros([1, h])?,
            value_bias: Tensor::zeros([1])?,
        })
    }

    /// Zeros shaped like `self` (a gradient buffer for these parameters).
    pub fn zeros_like(&self) -> Self {
        let mut out = self.clone();
        out.for_each_mut(|_, t| t.data_mut().fill(0.0));
        out
    }

    /// Sets every value to zero in place (a gradient buffer reused from step to step; allocates
    /// nothing, unlike [`ModelWeights::zeros_like`]).
    pub fn fill_zero(&mut self) {
        self.for_each_mut(|_, t| t.data_mut().fill(0.0));
    }

    /// Calls `f` on every parameter with its name, in a fixed order (the order of `safetensors`
    /// files we write and of the optimiser's state). Allocates nothing.
    pub fn for_each<'a>(&'a self, mut f: impl FnMut(ParamName, &'a Tensor<f32>)) {
        f(ParamName::top("model.embed_tokens.weight"), &self.embed_tokens);
        for (i, layer) in self.layers.iter().enumerate() {
            each_layer_tensor!(layer, |s, t| f(ParamName::layer(i, s), t), &);
        }
        f(ParamName::top("model.norm.weight"), &self.norm);
        if let Some(head) = &self.lm_head {
            f(ParamName::top("lm_head.weight"), head);
        }
        f(ParamName::top("value_head.weight"), &self.value_head);
        f(ParamName::top("value_head.bias"), &self.value_bias);
    }

    /// Like [`ModelWeights::for_each`], mutably.
    pub fn for_each_mut<'a>(&'a mut self, mut f: impl FnMut(ParamName, &'a mut Tensor<f32>)) {
        f(ParamName::top("model.embed_tokens.weight"), &mut self.embed_tokens);
        for (i, layer) in self.layers.iter_mut().enumerate() {
            each_layer_tensor!(layer, |s, t| f(ParamName::layer(i, s), t), &mut);
        }
        f(ParamName::top("model.norm.weight"), &mut self.norm);
        if let Some(head) = &mut self.lm_head {
            f(ParamName::top("lm_head.weight"), head);
        }
        f(ParamName::top("value_head.weight"), &mut self.value_head);
        f(ParamName::top("value_head.bias"), &mut self.value_bias);
    }

    /// The parameter `name` names, if the model has it.
    pub fn get(&self, name: ParamName) -> Option<&Tensor<f32>> {
        let Some(i) = name.layer else {
            return match name.name {
                "model.embed_tokens.weight" => Some(&self.embed_tokens),
                "model.norm.weight" => Some(&self.norm),
                "lm_head.weight" => self.lm_head.as_ref(),
                "value_head.weight" => Some(&self.value_head),
                "value_head.bias" => Some(&self.value_bias),
                _ => None,
            };
        };
        let mut found = None;
        let layer = self.layers.get(i)?;
        each_layer_tensor!(layer, |s: &'static str, t| if s == name.name { found = Some(t) }, &);
        found
    }

    /// Calls `f` on every parameter of `self` (mutably) with the same-named one of `other`, in
    /// [`ModelWeights::for_each`] order: an optimizer walks weights and gradients together this way,
    /// allocating nothing. Parameters `other` lacks are skipped (the caller's count shows it).
    pub fn for_each_pair_mut(&mut self, other: &ModelWeights, mut f: impl FnMut(&mut Tensor<f32>, &Tensor<f32>)) {
        self.for_each_mut(|name, t| {
            if let Some(o) = other.get(name) {
                f(t, o);
            }
        });
    }

    /// Every parameter with its Hugging Face name, in [`ModelWeights::for_each`] order.
    pub fn named(&self) -> Vec<(String, &Tensor<f32>)> {
        let mut out = Vec::new();
        self.for_each(|name, t| out.push((name.to_string(), t)));
        out
    }

    /// Like [`ModelWeights::named`], mutably.
    pub fn named_mut(&mut self) -> Vec<(String, &mut Tensor<f32>)> {
        let mut out = Vec::new();
        self.for_each_mut(|name, t| out.push((name.to_string(), t)));
        out
    }

    /// Every parameter in [`ModelWeights::for_each`] order, without names.
    pub fn tensors(&self) -> Vec<&Tensor<f32>> {
        let mut out = Vec::new();
        self.for_each(|_, t| out.push(t));
        out
    }

    /// Like [`ModelWeights::tensors`], mutably (what an optimiser step walks).
    pub fn tensors_mut(&mut self) -> Vec<&mut Tensor<f32>> {
        let mut out = Vec::new();
        self.for_each_mut(|_, t| out.push(t));
        out
    }

    /// Calls `f` on every parameter with its full name, mutably, in [`ModelWeights::named`] order.
    pub fn visit_mut(&mut self, mut f: impl FnMut(&str, &mut Tensor<f32>)) {
        let mut name = String::new();
        self.for_each_mut(|n, t| {
            use std::fmt::Write;
            name.clear();
            let _ = write!(name, "{n}");
            f(&name, t);
        });
    }

    /// Total number of scalars.
    pub fn num_params(&self) -> usize {
        let mut n = 0;
        self.for_each(|_, t| n += t.numel());
        n
    }

    /// The output projection: `lm_head`, or the embeddings when tied.
    pub fn output_projection(&self) -> &Tensor<f32> {
        self.lm_head.as_ref().unwrap_or(&self.embed_tokens)
    }
}
