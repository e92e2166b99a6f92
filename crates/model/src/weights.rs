//! The model's parameters as named, typed tensors in Hugging Face layout.
//!
//! Linear weights are `[out_features, in_features]` row-major, exactly as `torch.nn.Linear` stores
//! them, so loading and saving never transposes. The same struct holds gradients (see
//! [`ModelWeights::zeros_like`]), which lets the optimiser walk parameters and gradients in step.

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

    /// `(suffix, tensor)` pairs; the suffix follows `model.layers.{i}.`.
    fn named(&self) -> Vec<(&'static str, &Tensor<f32>)> {
        let mut out = vec![
            ("input_layernorm.weight", &self.input_layernorm),
            ("self_attn.q_proj.weight", &self.q_proj),
            ("self_attn.k_proj.weight", &self.k_proj),
            ("self_attn.v_proj.weight", &self.v_proj),
        ];
        for (name, bias) in [
            ("self_attn.q_proj.bias", &self.q_bias),
            ("self_attn.k_proj.bias", &self.k_bias),
            ("self_attn.v_proj.bias", &self.v_bias),
        ] {
            if let Some(b) = bias {
                out.push((name, b));
            }
        }
        out.push(("self_attn.o_proj.weight", &self.o_proj));
        if let Some(b) = &self.o_bias {
            out.push(("self_attn.o_proj.bias", b));
        }
        out.extend([
            ("post_attention_layernorm.weight", &self.post_attention_layernorm),
            ("mlp.gate_proj.weight", &self.gate_proj),
            ("mlp.up_proj.weight", &self.up_proj),
            ("mlp.down_proj.weight", &self.down_proj),
        ]);
        out
    }

    fn named_mut(&mut self) -> Vec<(&'static str, &mut Tensor<f32>)> {
        let mut out = vec![
            ("input_layernorm.weight", &mut self.input_layernorm),
            ("self_attn.q_proj.weight", &mut self.q_proj),
            ("self_attn.k_proj.weight", &mut self.k_proj),
            ("self_attn.v_proj.weight", &mut self.v_proj),
        ];
        for (name, bias) in [
            ("self_attn.q_proj.bias", &mut self.q_bias),
            ("self_attn.k_proj.bias", &mut self.k_bias),
            ("self_attn.v_proj.bias", &mut self.v_bias),
        ] {
            if let Some(b) = bias {
                out.push((name, b));
            }
        }
        out.push(("self_attn.o_proj.weight", &mut self.o_proj));
        if let Some(b) = &mut self.o_bias {
            out.push(("self_attn.o_proj.bias", b));
        }
        out.extend([
            ("post_attention_layernorm.weight", &mut self.post_attention_layernorm),
            ("mlp.gate_proj.weight", &mut self.gate_proj),
            ("mlp.up_proj.weight", &mut self.up_proj),
            ("mlp.down_proj.weight", &mut self.down_proj),
        ]);
        out
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
        out.visit_mut(|_, t| t.data_mut().fill(0.0));
        out
    }

    /// Every parameter with its Hugging Face name, in a fixed order (the order of `safetensors` files
    /// we write and of the optimiser's state).
    pub fn named(&self) -> Vec<(String, &Tensor<f32>)> {
        let mut out = vec![("model.embed_tokens.weight".to_string(), &self.embed_tokens)];
        for (i, layer) in self.layers.iter().enumerate() {
            out.extend(layer.named().into_iter().map(|(s, t)| (format!("model.layers.{i}.{s}"), t)));
        }
        out.push(("model.norm.weight".to_string(), &self.norm));
        if let Some(head) = &self.lm_head {
            out.push(("lm_head.weight".to_string(), head));
        }
        out.push(("value_head.weight".to_string(), &self.value_head));
        out.push(("value_head.bias".to_string(), &self.value_bias));
        out
    }

    /// Like [`ModelWeights::named`], mutably.
    pub fn named_mut(&mut self) -> Vec<(String, &mut Tensor<f32>)> {
        let mut out = vec![("model.embed_tokens.weight".to_string(), &mut self.embed_tokens)];
        for (i, layer) in self.layers.iter_mut().enumerate() {
            out.extend(layer.named_mut().into_iter().map(|(s, t)| (format!("model.layers.{i}.{s}"), t)));
        }
        out.push(("model.norm.weight".to_string(), &mut self.norm));
        if let Some(head) = &mut self.lm_head {
            out.push(("lm_head.weight".to_string(), head));
        }
        out.push(("value_head.weight".to_string(), &mut self.value_head));
        out.push(("value_head.bias".to_string(), &mut self.value_bias));
        out
    }

    /// Calls `f` on every parameter, mutably, in [`ModelWeights::named`] order.
    pub fn visit_mut(&mut self, mut f: impl FnMut(&str, &mut Tensor<f32>)) {
        for (name, t) in self.named_mut() {
            f(&name, t);
        }
    }

    /// Total number of scalars.
    pub fn num_params(&self) -> usize {
        self.named().iter().map(|(_, t)| t.numel()).sum()
    }

    /// The output projection: `lm_head`, or the embeddings when tied.
    pub fn output_projection(&self) -> &Tensor<f32> {
        self.lm_head.as_ref().unwrap_or(&self.embed_tokens)
    }
}
