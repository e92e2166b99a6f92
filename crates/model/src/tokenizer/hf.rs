//! Any Hugging Face `tokenizer.json` (BPE, byte-level BPE, Unigram, WordPiece, ...) through the
//! `tokenizers` crate, the same engine transformers' fast tokenizers run.

use std::str::FromStr;

use super::{SpecialIds, SpecialNames, Tokenizer};
use crate::io_error::{IoError, IoResult};

/// A tokenizer loaded from a Hugging Face `tokenizer.json`.
#[derive(Debug)]
pub struct HfTokenizer {
    inner: tokenizers::Tokenizer,
    ids: SpecialIds,
}

impl HfTokenizer {
    /// Parses the text of a `tokenizer.json`; special ids come from `names` (from
    /// `tokenizer_config.json`), else from `fallback`.
    pub(crate) fn from_json(text: &str, names: &SpecialNames, fallback: SpecialIds) -> IoResult<Self> {
        let inner = tokenizers::Tokenizer::from_str(text).map_err(|e| IoError::Tokenizer(e.to_string()))?;
        let ids = names.resolve(fallback, |name| inner.token_to_id(name))?;
        Ok(HfTokenizer { inner, ids })
    }

    /// Wraps a built `tokenizers` tokenizer whose special ids are `ids`.
    pub(crate) fn from_inner(inner: tokenizers::Tokenizer, ids: SpecialIds) -> Self {
        HfTokenizer { inner, ids }
    }

    /// Parses a `tokenizer.json` with explicitly given special ids.
    pub fn from_json_with_ids(text: &str, ids: SpecialIds) -> IoResult<Self> {
        Self::from_json(text, &SpecialNames::default(), ids)
    }
}

impl Tokenizer for HfTokenizer {
    fn encode(&self, text: &str) -> IoResult<Vec<u32>> {
        // No post-processor specials: callers add BOS themselves (see the module docs).
        let encoding = self.inner.encode(text, false).map_err(|e| IoError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    fn decode(&self, ids: &[u32]) -> IoResult<String> {
        let vocab_size = self.vocab_size();
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab_size) {
            return Err(IoError::TokenOutOfRange { id, vocab_size });
        }
        self.inner.decode(ids, false).map_err(|e| IoError::Tokenizer(e.to_string()))
    }

    fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    fn special_ids(&self) -> SpecialIds {
        self.ids
    }

    fn to_hf_json(&self) -> IoResult<String> {
        self.inner.to_string(true).map_err(|e| IoError::Tokenizer(e.to_string()))
    }
}
