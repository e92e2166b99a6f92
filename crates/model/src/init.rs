//! Seeded random initialisation in the Hugging Face style: Linear weights and embeddings drawn from
//! `N(0, initializer_range²)` (0.02 by default), norms at one, biases at zero.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use crate::config::ModelConfig;
use crate::error::ModelError;
pub use crate::rng::{standard_normal, unit_open};
use crate::validate;
use crate::weights::ModelWeights;

/// The Hugging Face default `initializer_range`.
pub const DEFAULT_INIT_STD: f32 = 0.02;

/// Fresh weights for `cfg`; the same seed always gives the same weights.
pub fn init_weights(cfg: &ModelConfig, std: f32, seed: u64) -> Result<ModelWeights, ModelError> {
    validate::config(cfg)?;
    if !(std.is_finite() && std >= 0.0) {
        return Err(ModelError::value("initialisation std", "must be finite and non-negative"));
    }
    let mut weights = ModelWeights::zeros(cfg)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // A name's static part ends like the full name (`model.layers.{l}.` is only a prefix).
    for (e, t) in weights.iter_mut() {
        if e.name.name.ends_with("norm.weight") {
            t.fill(1.0);
        } else if !e.name.name.ends_with(".bias") {
            t.iter_mut().for_each(|x| *x = std * standard_normal(&mut rng));
        }
    }
    Ok(weights)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Architecture;

    pub(crate) fn cfg() -> ModelConfig {
        ModelConfig {
            architecture: Architecture::Llama,
            vocab_size: 50,
            hidden_size: 32,
            intermediate_size: 48,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            head_dim: 8,
            rms_norm_eps: 1e-6,
            rope_theta: 10000.0,
            max_position_embeddings: 64,
            tie_word_embeddings: false,
            attention_bias: true,
            o_proj_bias: true,
            bos_token_id: None,
            eos_token_id: None,
        }
    }

    #[test]
    fn seeded_and_hf_shaped() {
        let a = init_weights(&cfg(), DEFAULT_INIT_STD, 7).unwrap();
        assert_eq!(a, init_weights(&cfg(), DEFAULT_INIT_STD, 7).unwrap());
        assert_ne!(a, init_weights(&cfg(), DEFAULT_INIT_STD, 8).unwrap());
        assert!(a.norm().iter().all(|&x| x == 1.0));
        assert!(a.layer(0).unwrap().q_bias.unwrap().iter().all(|&x| x == 0.0));
        assert!(a.layer(0).unwrap().o_bias.unwrap().iter().all(|&x| x == 0.0));
        let e = a.embed_tokens();
        let mean = e.iter().sum::<f32>() / e.len() as f32;
        let std = (e.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / e.len() as f32).sqrt();
        assert!(mean.abs() < 0.002 && (std - 0.02).abs() < 0.002, "mean {mean} std {std}");
    }
}
