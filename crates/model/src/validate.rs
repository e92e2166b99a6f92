//! Checks that a config is usable and that a set of weights matches it, before any allocation or
//! arithmetic depends on either. Every failure is a typed [`ModelError`], never a panic.

use crate::config::ModelConfig;
use crate::error::ModelError;
use crate::io_error::IoError;
use crate::weights::{ModelWeights, ParamName};

/// Upper bound on parameters we accept (2^36 ≈ 69 billion): catches absurd sizes before allocating.
const MAX_PARAMS: usize = 1 << 36;

/// Every parameter the config calls for with its shape, in [`ModelWeights::for_each`] order.
pub type Shapes = Vec<(ParamName, Vec<usize>)>;

/// Rejects configs with zero or contradictory sizes, non-finite constants or absurd totals:
/// [`ModelConfig::validate`] plus the limits of this implementation (32-bit ids, total parameters).
pub fn config(cfg: &ModelConfig) -> Result<Shapes, ModelError> {
    let bad = |msg: String| Err(ModelError::InvalidConfig(msg));
    cfg.validate().map_err(|err| match err {
        IoError::InvalidConfig(msg) => ModelError::InvalidConfig(msg),
        other => ModelError::InvalidConfig(other.to_string()),
    })?;
    if cfg.vocab_size > u32::MAX as usize || cfg.max_position_embeddings > u32::MAX as usize {
        return bad("vocab_size and max_position_embeddings must fit in 32 bits".into());
    }
    let Some(shapes) = shapes(cfg) else { return bad("sizes overflow".into()) };
    let total = shapes.iter().try_fold(0usize, |acc, (_, d)| acc.checked_add(d.iter().product::<usize>()));
    match total {
        Some(n) if n <= MAX_PARAMS => Ok(shapes),
        _ => bad(format!("the model would have more than {MAX_PARAMS} parameters")),
    }
}

/// The name and shape of every parameter the config calls for; `None` if a size overflows.
fn shapes(cfg: &ModelConfig) -> Option<Shapes> {
    let (v, h, i) = (cfg.vocab_size, cfg.hidden_size, cfg.intermediate_size);
    let q = cfg.num_attention_heads.checked_mul(cfg.head_dim)?;
    let kv = cfg.num_key_value_heads.checked_mul(cfg.head_dim)?;
    for (a, b) in [(v, h), (q, h), (kv, h), (i, h)] {
        a.checked_mul(b)?;
    }
    let mut out = vec![(ParamName::top("model.embed_tokens.weight"), vec![v, h])];
    for l in 0..cfg.num_hidden_layers {
        let mut push = |name, dims| out.push((ParamName::layer(l, name), dims));
        push("input_layernorm.weight", vec![h]);
        push("self_attn.q_proj.weight", vec![q, h]);
        push("self_attn.k_proj.weight", vec![kv, h]);
        push("self_attn.v_proj.weight", vec![kv, h]);
        if cfg.attention_bias {
            push("self_attn.q_proj.bias", vec![q]);
            push("self_attn.k_proj.bias", vec![kv]);
            push("self_attn.v_proj.bias", vec![kv]);
        }
        push("self_attn.o_proj.weight", vec![h, q]);
        if cfg.o_proj_bias {
            push("self_attn.o_proj.bias", vec![h]);
        }
        push("post_attention_layernorm.weight", vec![h]);
        push("mlp.gate_proj.weight", vec![i, h]);
        push("mlp.up_proj.weight", vec![i, h]);
        push("mlp.down_proj.weight", vec![h, i]);
    }
    out.push((ParamName::top("model.norm.weight"), vec![h]));
    if !cfg.tie_word_embeddings {
        out.push((ParamName::top("lm_head.weight"), vec![v, h]));
    }
    out.push((ParamName::top("value_head.weight"), vec![1, h]));
    out.push((ParamName::top("value_head.bias"), vec![1]));
    Some(out)
}

/// Checks every tensor's presence and shape against the config, and that all values are finite;
/// returns the expected shapes for later [`matches`] checks.
pub fn weights(cfg: &ModelConfig, w: &ModelWeights) -> Result<Shapes, ModelError> {
    let shapes = config(cfg)?;
    if w.layers.len() != cfg.num_hidden_layers {
        return Err(ModelError::length("decoder layers", cfg.num_hidden_layers, w.layers.len()));
    }
    matches(&shapes, w)?;
    let mut non_finite = None;
    w.for_each(|name, t| {
        if non_finite.is_none() && t.data().iter().any(|x| !x.is_finite()) {
            non_finite = Some(name);
        }
    });
    non_finite.map_or(Ok(shapes), |name| Err(ModelError::NonFiniteParameter(name)))
}

/// Checks that `w` holds exactly the tensors of `shapes` (names and shapes, in order), allocating
/// nothing unless it does not: the cheap check every pass runs, on weights or a gradient buffer.
pub fn matches(shapes: &Shapes, w: &ModelWeights) -> Result<(), ModelError> {
    let mut want = shapes.iter();
    let mut err = None;
    w.for_each(|name, t| {
        if err.is_some() {
            return;
        }
        err = match want.next() {
            Some((n, dims)) if *n == name && t.dims() == dims.as_slice() => None,
            Some((n, dims)) if *n == name => {
                Some(ModelError::WrongShape { name, expected: dims.clone(), got: t.dims().to_vec() })
            }
            // The config calls for `n` where `w` has `name`: `n` is missing or `name` is extra.
            Some((n, dims)) if shapes.iter().any(|(s, _)| *s == name) => {
                Some(ModelError::WrongShape { name: *n, expected: dims.clone(), got: Vec::new() })
            }
            _ => Some(ModelError::WrongShape { name, expected: Vec::new(), got: t.dims().to_vec() }),
        };
    });
    match (err, want.next()) {
        (Some(err), _) => Err(err),
        (None, Some((n, dims))) => Err(ModelError::WrongShape { name: *n, expected: dims.clone(), got: Vec::new() }),
        (None, None) => Ok(()),
    }
}
