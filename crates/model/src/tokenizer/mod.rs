//! Text to token ids and back.
//!
//! [`Tokenizer`] is the seam; [`CharTokenizer`] is the built-in character-level tokenizer for the
//! synthetic tasks, and `HfTokenizer` (feature `hf-tokenizers`) loads any Hugging Face
//! `tokenizer.json` through the `tokenizers` crate, and [`train_bpe`] (same feature) trains a byte-level BPE on a
//! task's corpus. Both serialise to a `tokenizer.json` that
//! transformers' `PreTrainedTokenizerFast` loads and that yields the same ids.
//!
//! `encode` never adds BOS/EOS: callers add [`Tokenizer::bos_id`] themselves, so prompts and
//! training traces are built the same way whichever tokenizer is in use.

#[cfg(feature = "hf-tokenizers")]
mod bpe_training;
mod char_level;
#[cfg(feature = "hf-tokenizers")]
mod hf;

use std::path::Path;

use serde_json::Value;

#[cfg(feature = "hf-tokenizers")]
pub use bpe_training::{MAX_BPE_VOCAB, MIN_BPE_VOCAB, train_bpe};
pub use char_level::CharTokenizer;
#[cfg(feature = "hf-tokenizers")]
pub use hf::HfTokenizer;

use crate::io_error::{IoError, IoResult};

/// The tokenizer file name transformers uses.
pub const TOKENIZER_FILE: &str = "tokenizer.json";
/// The file naming the special tokens and the tokenizer class for `AutoTokenizer`.
pub const TOKENIZER_CONFIG_FILE: &str = "tokenizer_config.json";

/// Converts between text and token ids.
pub trait Tokenizer: std::fmt::Debug + Send + Sync {
    /// The ids of `text`, without any added BOS/EOS. Special-token strings in `text` map to their ids.
    fn encode(&self, text: &str) -> IoResult<Vec<u32>>;
    /// The text of `ids`; special tokens appear as their strings. An id outside the vocabulary is an error.
    fn decode(&self, ids: &[u32]) -> IoResult<String>;
    /// Number of ids, special tokens included.
    fn vocab_size(&self) -> usize;
    /// The string of one id (`None` outside the vocabulary).
    fn id_to_token(&self, id: u32) -> Option<String>;
    /// Beginning-of-sequence, end-of-sequence and padding ids.
    fn special_ids(&self) -> SpecialIds;
    /// The contents of a Hugging Face `tokenizer.json` describing this tokenizer.
    fn to_hf_json(&self) -> IoResult<String>;

    /// Beginning-of-sequence id, if the tokenizer has one.
    fn bos_id(&self) -> Option<u32> {
        self.special_ids().bos
    }
    /// End-of-sequence id, if the tokenizer has one.
    fn eos_id(&self) -> Option<u32> {
        self.special_ids().eos
    }
    /// Padding id, if the tokenizer has one.
    fn pad_id(&self) -> Option<u32> {
        self.special_ids().pad
    }
}

/// Which ids play the special roles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpecialIds {
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub pad: Option<u32>,
}

/// The `tokenizer_config.json` transformers' `AutoTokenizer` needs to load `tokenizer.json` as a
/// `PreTrainedTokenizerFast` with the right special tokens (and no text clean-up on decode, which
/// would otherwise rewrite `" ,"` into `","`).
pub fn hf_tokenizer_config(tokenizer: &dyn Tokenizer) -> Value {
    let ids = tokenizer.special_ids();
    let token = |id: Option<u32>| id.and_then(|id| tokenizer.id_to_token(id)).map_or(Value::Null, Value::String);
    serde_json::json!({
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": token(ids.bos),
        "eos_token": token(ids.eos),
        "pad_token": token(ids.pad),
        "clean_up_tokenization_spaces": false,
        "add_bos_token": false,
        "add_eos_token": false,
    })
}

/// Loads `dir/tokenizer.json`, resolving the special ids from `dir/tokenizer_config.json` when it
/// names them, else from `fallback` (the model config's BOS/EOS).
///
/// A character-level `tokenizer.json` (as [`CharTokenizer`] writes it) loads without any feature;
/// any other needs the `hf-tokenizers` feature.
pub fn load_tokenizer(dir: &Path, fallback: SpecialIds) -> IoResult<Box<dyn Tokenizer>> {
    let path = dir.join(TOKENIZER_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| IoError::file(&path, e))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| IoError::json(TOKENIZER_FILE, e))?;
    let names = special_names(dir)?;
    if let Some(char_tokenizer) = CharTokenizer::from_hf_json(&json, &names, fallback)? {
        return Ok(Box::new(char_tokenizer));
    }
    load_general(&text, &names, fallback)
}

#[cfg(feature = "hf-tokenizers")]
fn load_general(text: &str, names: &SpecialNames, fallback: SpecialIds) -> IoResult<Box<dyn Tokenizer>> {
    Ok(Box::new(HfTokenizer::from_json(text, names, fallback)?))
}

#[cfg(not(feature = "hf-tokenizers"))]
fn load_general(_text: &str, _names: &SpecialNames, _fallback: SpecialIds) -> IoResult<Box<dyn Tokenizer>> {
    Err(IoError::Tokenizer(
        "tokenizer.json is not character-level; rebuild with the `hf-tokenizers` feature to load it".into(),
    ))
}

/// Special-token strings named by `tokenizer_config.json` (absent file: none named).
#[derive(Debug, Default)]
pub(crate) struct SpecialNames {
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub pad: Option<String>,
}

impl SpecialNames {
    /// Ids for the named tokens via `lookup`, each falling back to `fallback` when not named.
    /// A name the vocabulary lacks is an error rather than a silently missing EOS.
    pub(crate) fn resolve(&self, fallback: SpecialIds, lookup: impl Fn(&str) -> Option<u32>) -> IoResult<SpecialIds> {
        let one = |name: &Option<String>, fallback: Option<u32>| match name {
            None => Ok(fallback),
            Some(name) => lookup(name)
                .map(Some)
                .ok_or_else(|| IoError::Tokenizer(format!("special token {name:?} is not in the vocabulary"))),
        };
        Ok(SpecialIds {
            bos: one(&self.bos, fallback.bos)?,
            eos: one(&self.eos, fallback.eos)?,
            pad: one(&self.pad, fallback.pad)?,
        })
    }
}

fn special_names(dir: &Path) -> IoResult<SpecialNames> {
    let path = dir.join(TOKENIZER_CONFIG_FILE);
    if !path.is_file() {
        return Ok(SpecialNames::default());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| IoError::file(&path, e))?;
    let json: Value = serde_json::from_str(&text).map_err(|e| IoError::json(TOKENIZER_CONFIG_FILE, e))?;
    // Each entry is a string or an AddedToken object `{"content": ...}`.
    let name = |key: &str| match json.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => o.get("content").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    Ok(SpecialNames { bos: name("bos_token"), eos: name("eos_token"), pad: name("pad_token") })
}
