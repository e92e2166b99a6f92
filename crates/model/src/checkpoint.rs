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
/// checkpoint adds its optimizer and trainer state, and must never appear without them). A name may sit in
/// one subdirectory (`stage_model/config.json`), which is created.
pub fn save_model_dir_with(
    dir: &Path,
    config: &ModelConfig,
    weights: &ModelWeights,
    tokenizer: Option<&dyn Tokenizer>,
    dtype: DType,
    extra: &[(&str, &[u8])],
) -> IoResult<()> {
    let files = model_dir_files(config, weights, tokenizer, dtype)?;
    replace_dir_atomic(dir, |tmp| {
        let named = files.iter().map(|(name, bytes)| (*name, bytes.as_slice()));
        for (name, bytes) in named.chain(extra.iter().copied()) {
            let path = tmp.join(name);
            if let Some(parent) = path.parent().filter(|p| *p != tmp) {
                std::fs::create_dir_all(parent).map_err(|e| IoError::file(parent, e))?;
            }
            write_file_synced(&path, bytes)?;
        }
        Ok(())
    })
}

/// The files of a model directory, in memory, as `(name, bytes)`: what [`save_model_dir`] writes (a checkpoint
/// nests a second model's files in a subdirectory this way).
pub fn model_dir_files(
    config: &ModelConfig,
    weights: &ModelWeights,
    tokenizer: Option<&dyn Tokenizer>,
    dtype: DType,
) -> IoResult<Vec<(&'static str, Vec<u8>)>> {
    config.validate()?;
    let json = |value: &serde_json::Value, what: &str| {
        serde_json::to_string_pretty(value).map(|s| s + "\n").map_err(|e| IoError::json(what, e))
    };
    let mut files = vec![
        (CONFIG_FILE, json(&config.to_hf_json(dtype), CONFIG_FILE)?.into_bytes()),
        (WEIGHTS_FILE, serialize_weights(weights, dtype)?),
    ];
    if let Some(t) = tokenizer {
        files.push((TOKENIZER_FILE, t.to_hf_json()?.into_bytes()));
        files.push((TOKENIZER_CONFIG_FILE, json(&hf_tokenizer_config(t), TOKENIZER_CONFIG_FILE)?.into_bytes()));
    }
    Ok(files)
}
