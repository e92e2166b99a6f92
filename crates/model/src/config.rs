//! The transformer's hyper-parameters, as read from (and written to) a Hugging Face `config.json`
//! (the JSON side lives in [`crate::hf_config`]).

use crate::io_error::IoError;

/// The largest parameter matrix we accept (2^34 elements, 64 GiB of f32): a bound that rejects
/// corrupt or absurd configs before they turn into an allocation failure.
const MAX_TENSOR_ELEMENTS: usize = 1 << 34;

/// Which Hugging Face architecture a checkpoint declares. Both share one forward pass; they differ
/// in defaults (Qwen2 always has q/k/v biases) and in the `architectures` name written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Architecture {
    /// `LlamaForCausalLM`.
    Llama,
    /// `Qwen2ForCausalLM`.
    Qwen2,
}

/// Everything the forward pass needs to know about a model's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub architecture: Architecture,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Grouped-query attention: each key/value head serves `num_attention_heads / num_key_value_heads` query heads.
    pub num_key_value_heads: usize,
    /// Per-head width; Hugging Face defaults it to `hidden_size / num_attention_heads`.
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub max_position_embeddings: usize,
    /// The output projection reuses `embed_tokens` (no `lm_head.weight` in the checkpoint).
    pub tie_word_embeddings: bool,
    /// q/k/v projections carry biases (always for Qwen2; `attention_bias` for Llama).
    pub attention_bias: bool,
    /// o_proj carries a bias too: transformers' Llama `attention_bias` biases all four attention
    /// projections, while Qwen2 biases q/k/v only. So true exactly for Llama with `attention_bias`.
    pub o_proj_bias: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

impl ModelConfig {
    /// Checks that the sizes are non-zero and consistent, so that every tensor shape derived from the
    /// config is valid. [`ModelConfig::from_hf_json`](crate::hf_config) calls it; call it yourself on
    /// a config built in code.
    pub fn validate(&self) -> Result<(), IoError> {
        let bad = |msg: String| Err(IoError::InvalidConfig(msg));
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("head_dim", self.head_dim),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if value == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        // Only the bias layouts a Hugging Face config can express: Llama's one `attention_bias` flag
        // covers q/k/v and o together, Qwen2 always biases q/k/v and never o.
        match (self.architecture, self.attention_bias, self.o_proj_bias) {
            (Architecture::Llama, qkv, o) if qkv != o => {
                return bad(format!("Llama biases q/k/v and o_proj together (q/k/v {qkv}, o_proj {o})"));
            }
            (Architecture::Qwen2, false, _) => return bad("Qwen2 always has q/k/v biases".into()),
            (Architecture::Qwen2, _, true) => return bad("Qwen2 has no o_proj bias".into()),
            _ => {}
        }
        if !self.num_attention_heads.is_multiple_of(self.num_key_value_heads) {
            return bad(format!(
                "num_attention_heads ({}) is not a multiple of num_key_value_heads ({})",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return bad(format!("head_dim ({}) must be even for rotary embeddings", self.head_dim));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return bad(format!("rms_norm_eps ({}) must be positive and finite", self.rms_norm_eps));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad(format!("rope_theta ({}) must be positive and finite", self.rope_theta));
        }
        // Every parameter matrix must be addressable; reject absurd sizes before allocating anything.
        let widest = self.q_dim_checked().max(self.intermediate_size).max(self.vocab_size);
        if widest.checked_mul(self.hidden_size).is_none_or(|n| n > MAX_TENSOR_ELEMENTS) {
            return bad(format!("sizes too large: a {widest} x {} matrix", self.hidden_size));
        }
        for (name, id) in [("bos_token_id", self.bos_token_id), ("eos_token_id", self.eos_token_id)] {
            if let Some(id) = id
                && id as usize >= self.vocab_size
            {
                return bad(format!("{name} {id} is outside the vocabulary of {}", self.vocab_size));
            }
        }
        Ok(())
    }

    /// `q_dim` without overflow (saturating: validation then rejects it as too large).
    fn q_dim_checked(&self) -> usize {
        self.num_attention_heads.saturating_mul(self.head_dim)
    }

    /// Width of all query heads together.
    pub fn q_dim(&self) -> usize {
        self.num_attention_heads * self.head_dim
    }

    /// Width of all key (or value) heads together.
    pub fn kv_dim(&self) -> usize {
        self.num_key_value_heads * self.head_dim
    }
}
