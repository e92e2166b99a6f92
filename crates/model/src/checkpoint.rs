//! A model directory in Hugging Face layout: `config.json`, `model.safetensors` (or shards with an
//! index) and, optionally, `tokenizer.json` with its `tokenizer_config.json`.
//!
//! What [`ModelDir::save`] writes, transformers' `AutoModelForCausalLM.from_pretrained` and
//! `AutoTokenizer.from_pretrained` load (checked by `tools/make_model_fixtures.py verify`); what
//! transformers saves for Llama and Qwen2, [`ModelDir::load`] reads.

use std::path::Path;

use selfplay_tensor::DType;

use crate::atomic::{replace_dir_atomic, write_file_synced};
use crate::config::ModelConfig;
use crate::io_error::{IoError, IoResult};
use crate::safetensors_io::{WEIGHTS_FILE, load_weights, serialize_weights};
use crate::tokenizer::{
    SpecialIds, TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, Tokenizer, hf_tokenizer_config, load_tokenizer,
};
use crate::weights::ModelWeights;

/// The config file name transformers uses.
pub const CONFIG_FILE: &str = "config.json";

/// Everything in a model directory.
#[derive(Debug)]
pub struct ModelDir {
    pub config: ModelConfig,
    pub weights: ModelWeights,
    /// `None` when the directory has no `tokenizer.json` (token ids then come from the caller).
    pub tokenizer: Option<Box<dyn Tokenizer>>,
}

impl ModelDir {
    /// Loads config, weights and (if present) tokenizer from `dir`.
    pub fn load(dir: &Path) -> IoResult<Self> {
        let config = ModelConfig::from_hf_file(&dir.join(CONFIG_FILE))?;
        let weights = load_weights(dir, &config)?;
        let tokenizer = if dir.join(TOKENIZER_FILE).is_file() {
            let fallback = SpecialIds { bos: config.bos_token_id, eos: config.eos_token_id, pad: None };
            let tokenizer = load_tokenizer(dir, fallback)?;
            if tokenizer.vocab_size() > config.vocab_size {
                return Err(IoError::Tokenizer(format!(
                    "tokenizer has {} ids but the model's vocabulary is {}",
                    tokenizer.vocab_size(),
                    config.vocab_size
                )));
            }
            Some(tokenizer)
        } else {
            None
        };
        Ok(ModelDir { config, weights, tokenizer })
    }

    /// Writes the directory atomically (built in a temporary directory, fsynced, then renamed into place), weights stored in `dtype`:
    /// an existing `dir` is replaced as a whole, so no stale shard or tokenizer file survives.
    pub fn save(&self, dir: &Path, dtype: DType) -> IoResult<()> {
        save_model_dir(dir, &self.config, &self.weights, self.tokenizer.as_deref(), dtype)
    }
}

/// [`ModelDir::save`] for parts held separately (a trainer owns its weights, not a `ModelDir`).
pub fn save_model_dir(
    dir: &Path,
    config: &ModelConfig,
    weights: &ModelWeights,
    tokenizer: Option<&dyn Tokenizer>,
    dtype: DType,
) -> IoResult<()> {
    save_model_dir_with(dir, config, weights, tokenizer, dtype, &[])
}

/// [`save_model_dir`] plus `extra` files `(name, bytes)` published in the same atomic step (a training
/// checkpoint adds its optimizer and trainer state, and must never appear without them).
pub fn save_model_dir_with(
    dir: &Path,
    config: &ModelConfig,
    weights: &ModelWeights,
    tokenizer: Option<&dyn Tokenizer>,
    dtype: DType,
    extra: &[(&str, &[u8])],
) -> IoResult<()> {
    config.validate()?;
    let json = |value: &serde_json::Value, what: &str| {
        serde_json::to_string_pretty(value).map(|s| s + "\n").map_err(|e| IoError::json(what, e))
    };
    let config_text = json(&config.to_hf_json(dtype), CONFIG_FILE)?;
    let weights_bytes = serialize_weights(weights, dtype)?;
    let tokenizer_files = match tokenizer {
        Some(t) => Some((t.to_hf_json()?, json(&hf_tokenizer_config(t), TOKENIZER_CONFIG_FILE)?)),
        None => None,
    };
    replace_dir_atomic(dir, |tmp| {
        write_file_synced(&tmp.join(CONFIG_FILE), config_text.as_bytes())?;
        write_file_synced(&tmp.join(WEIGHTS_FILE), &weights_bytes)?;
        if let Some((tokenizer_json, tokenizer_config)) = &tokenizer_files {
            write_file_synced(&tmp.join(TOKENIZER_FILE), tokenizer_json.as_bytes())?;
            write_file_synced(&tmp.join(TOKENIZER_CONFIG_FILE), tokenizer_config.as_bytes())?;
        }
        for (name, bytes) in extra {
            write_file_synced(&tmp.join(name), bytes)?;
        }
        Ok(())
    })
}
