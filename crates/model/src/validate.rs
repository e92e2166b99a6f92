//! Checks that a config is usable and that a set of weights matches it, before any allocation or
//! arithmetic depends on either. Every failure is a typed [`ModelError`], never a panic.

use crate::config::ModelConfig;
use crate::error::ModelError;
use crate::io_error::IoError;
use crate::transformer::params::{LayerParams, Params};
use crate::weights::ModelWeights;

/// Upper bound on parameters we accept (2^36 ≈ 69 billion): catches absurd sizes before allocating.
const MAX_PARAMS: usize = 1 << 36;

/// Rejects configs with zero or contradictory sizes, non-finite constants or absurd totals:
/// [`ModelConfig::validate`] plus the limits of this implementation (32-bit ids, total parameters).
pub fn config(cfg: &ModelConfig) -> Result<(), ModelError> {
    let bad = |msg: String| Err(ModelError::InvalidConfig(msg));
    cfg.validate().map_err(|err| match err {
        IoError::InvalidConfig(msg) => ModelError::InvalidConfig(msg),
        other => ModelError::InvalidConfig(other.to_string()),
    })?;
    if cfg.vocab_size > u32::MAX as usize || cfg.max_position_embeddings > u32::MAX as usize {
        return bad("vocab_size and max_position_embeddings must fit in 32 bits".into());
    }
    let total = shapes(cfg)
        .and_then(|s| s.into_list().iter().try_fold(0usize, |acc, d| acc.checked_add(d.iter().product::<usize>())));
    match total {
        Some(n) if n <= MAX_PARAMS => Ok(()),
        _ => bad(format!("the model would have more than {MAX_PARAMS} parameters")),
    }
}

/// The shape of every parameter the config calls for; `None` if a size overflows.
pub fn shapes(cfg: &ModelConfig) -> Option<Params<Vec<usize>>> {
    let (v, h, i) = (cfg.vocab_size, cfg.hidden_size, cfg.intermediate_size);
    let q = cfg.num_attention_heads.checked_mul(cfg.head_dim)?;
    let kv = cfg.num_key_value_heads.checked_mul(cfg.head_dim)?;
    for (a, b) in [(v, h), (q, h), (kv, h), (i, h)] {
        a.checked_mul(b)?;
    }
    let bias = |n: usize| cfg.attention_bias.then(|| vec![n]);
    let layer = LayerParams {
        input_layernorm: vec![h],
        q_proj: vec![q, h],
        k_proj: vec![kv, h],
        v_proj: vec![kv, h],
        q_bias: bias(q),
        k_bias: bias(kv),
        v_bias: bias(kv),
        o_proj: vec![h, q],
        o_bias: cfg.o_proj_bias.then(|| vec![h]),
        post_attention_layernorm: vec![h],
        gate_proj: vec![i, h],
        up_proj: vec![i, h],
        down_proj: vec![h, i],
    };
    Some(Params {
        embed_tokens: vec![v, h],
        layers: vec![layer; cfg.num_hidden_layers],
        norm: vec![h],
        lm_head: (!cfg.tie_word_embeddings).then(|| vec![v, h]),
        value_head: vec![1, h],
        value_bias: vec![1],
    })
}

/// Checks every tensor's presence and shape against the config, and that all values are finite.
pub fn weights(cfg: &ModelConfig, w: &ModelWeights) -> Result<(), ModelError> {
    config(cfg)?;
    let expected = shapes(cfg).ok_or_else(|| ModelError::InvalidConfig("sizes overflow".into()))?;
    if w.layers.len() != cfg.num_hidden_layers {
        return Err(ModelError::length("decoder layers", cfg.num_hidden_layers, w.layers.len()));
    }
    let missing = |name: &str, expected: Option<&Vec<usize>>| ModelError::WrongShape {
        name: name.into(),
        expected: expected.cloned().unwrap_or_default(),
        got: Vec::new(),
    };
    if w.lm_head.is_some() == cfg.tie_word_embeddings {
        return Err(missing("lm_head.weight", expected.lm_head.as_ref()));
    }
    for (l, (layer, shape)) in w.layers.iter().zip(&expected.layers).enumerate() {
        for (bias, want) in [
            (&layer.q_bias, &shape.q_bias),
            (&layer.k_bias, &shape.k_bias),
            (&layer.v_bias, &shape.v_bias),
            (&layer.o_bias, &shape.o_bias),
        ] {
            if bias.is_some() != want.is_some() {
                return Err(missing(&format!("model.layers.{l} attention bias"), want.as_ref()));
            }
        }
    }
    for ((name, tensor), want) in w.named().into_iter().zip(expected.into_list()) {
        if tensor.dims() != want.as_slice() {
            return Err(ModelError::WrongShape { name, expected: want, got: tensor.dims().to_vec() });
        }
        if tensor.data().iter().any(|x| !x.is_finite()) {
            return Err(ModelError::NonFiniteParameter(name));
        }
    }
    Ok(())
}

/// Checks that a gradient buffer has exactly the tensors and shapes of the weights.
pub fn weights_like(weights: &ModelWeights, grads: &ModelWeights) -> Result<(), ModelError> {
    let (w, g) = (weights.named(), grads.named());
    if w.len() != g.len() {
        return Err(ModelError::length("gradient tensors", w.len(), g.len()));
    }
    for ((name, a), (other, b)) in w.into_iter().zip(g) {
        if name != other || a.dims() != b.dims() {
            return Err(ModelError::WrongShape { name, expected: a.dims().to_vec(), got: b.dims().to_vec() });
        }
    }
    Ok(())
}
