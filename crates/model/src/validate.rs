//! Checks that a config is usable and that a set of weights matches it, before any allocation or
//! arithmetic depends on either. Every failure is a typed [`ModelError`], never a panic.

use std::sync::Arc;

use crate::config::ModelConfig;
use crate::error::ModelError;
use crate::io_error::IoError;
use crate::weights::{ModelWeights, ParamLayout};

/// Upper bound on parameters we accept (2^36 ≈ 69 billion): catches absurd sizes before allocating.
const MAX_PARAMS: usize = 1 << 36;

/// Every parameter the config calls for with its shape and place, in [`ModelWeights::iter`] order.
pub type Shapes = Arc<ParamLayout>;

/// Rejects configs with zero or contradictory sizes, non-finite constants or absurd totals:
/// [`ModelConfig::validate`] plus the limits of this implementation (32-bit ids, total parameters).
pub fn config(cfg: &ModelConfig) -> Result<ParamLayout, ModelError> {
    let bad = |msg: String| Err(ModelError::InvalidConfig(msg));
    cfg.validate().map_err(|err| match err {
        IoError::InvalidConfig(msg) => ModelError::InvalidConfig(msg),
        other => ModelError::InvalidConfig(other.to_string()),
    })?;
    if cfg.vocab_size > u32::MAX as usize || cfg.max_position_embeddings > u32::MAX as usize {
        return bad("vocab_size and max_position_embeddings must fit in 32 bits".into());
    }
    match ParamLayout::new(cfg) {
        Err(_) => bad("sizes overflow".into()),
        Ok(layout) if layout.len() <= MAX_PARAMS => Ok(layout),
        Ok(_) => bad(format!("the model would have more than {MAX_PARAMS} parameters")),
    }
}

/// Checks every tensor's presence and shape against the config, and that all values are finite;
/// returns the expected layout (the weights' own, shared) for later [`matches`] checks.
pub fn weights(cfg: &ModelConfig, w: &ModelWeights) -> Result<Shapes, ModelError> {
    let layout = config(cfg)?;
    if w.num_layers() != cfg.num_hidden_layers {
        return Err(ModelError::length("decoder layers", cfg.num_hidden_layers, w.num_layers()));
    }
    let shapes = Arc::clone(w.shared_layout());
    if *shapes != layout {
        matches(&Arc::new(layout), w)?;
    }
    match w.iter().find(|(_, t)| t.iter().any(|x| !x.is_finite())) {
        Some((e, _)) => Err(ModelError::NonFiniteParameter(e.name)),
        None => Ok(shapes),
    }
}

/// Checks that `w` holds exactly the tensors of `shapes` (names and shapes, in order), allocating
/// nothing unless it does not: the cheap check every pass runs, on weights or a gradient buffer
/// (one pointer comparison when they share the layout, as a model's weights and the gradients made by
/// [`ModelWeights::zeros_like`] do).
pub fn matches(shapes: &Shapes, w: &ModelWeights) -> Result<(), ModelError> {
    if Arc::ptr_eq(shapes, w.shared_layout()) || **shapes == *w.layout() {
        return Ok(());
    }
    let expected = shapes.entries();
    let mut want = expected.iter();
    for (e, _) in w.iter() {
        let (name, got) = (e.name, e.dims());
        match want.next() {
            Some(n) if n.name == name && n.dims() == got => {}
            Some(n) if n.name == name => {
                return Err(ModelError::WrongShape { name, expected: n.dims().to_vec(), got: got.to_vec() });
            }
            // The config calls for `n` where `w` has `name`: `n` is missing or `name` is extra.
            Some(n) if expected.iter().any(|s| s.name == name) => {
                return Err(ModelError::WrongShape { name: n.name, expected: n.dims().to_vec(), got: Vec::new() });
            }
            _ => return Err(ModelError::WrongShape { name, expected: Vec::new(), got: got.to_vec() }),
        }
    }
    match want.next() {
        Some(n) => Err(ModelError::WrongShape { name: n.name, expected: n.dims().to_vec(), got: Vec::new() }),
        // Same names and shapes in the same order, so the same layout.
        None => Ok(()),
    }
}
