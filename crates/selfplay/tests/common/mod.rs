//! What several CLI test binaries need: a tiny model directory the binary can load.

use std::path::{Path, PathBuf};

use selfplay_model::init::init_weights;
use selfplay_model::{Architecture, CharTokenizer, ModelConfig, save_model_dir};
use selfplay_tensor::DType;

/// A random Qwen2-shaped model with the character tokenizer, saved under `dir/model`.
pub fn char_model(dir: &Path) -> PathBuf {
    let config = ModelConfig {
        architecture: Architecture::Qwen2,
        vocab_size: 99,
        hidden_size: 16,
        intermediate_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        num_key_value_heads: 1,
        head_dim: 8,
        rms_norm_eps: 1e-6,
        rope_theta: 10_000.0,
        max_position_embeddings: 64,
        tie_word_embeddings: true,
        attention_bias: true,
        o_proj_bias: false,
        bos_token_id: Some(1),
        eos_token_id: Some(2),
    };
    let weights = init_weights(&config, 0.5, 11).unwrap();
    let model = dir.join("model");
    save_model_dir(&model, &config, &weights, Some(&CharTokenizer::ascii()), DType::BF16).unwrap();
    model
}
