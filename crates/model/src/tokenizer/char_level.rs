//! One token per character: the tokenizer of the synthetic tasks (Countdown, arithmetic), whose
//! traces are short ASCII strings such as `"12+7=19\n<answer>(12+7)*3</answer>"`.
//!
//! As a Hugging Face `tokenizer.json` it is a byte-level BPE (the GPT-2/Qwen2 layout) whose
//! vocabulary is the single characters, written in the byte-level alphabet (`' '` is `Ġ`, `'\n'` is
//! `Ċ`), with an empty merge list, so every character stays its own token. Byte-level rather than a
//! plain character vocabulary because transformers 5 loads any `model_type: qwen2` directory with
//! its own byte-level `Qwen2Tokenizer` pipeline, whatever `tokenizer_config.json` says; this layout
//! gives the same ids under that pipeline and under the generic one. The special tokens are added
//! tokens, matched in text before characters, as in transformers.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::{SpecialIds, SpecialNames, Tokenizer};
use crate::io_error::{IoError, IoResult};

/// The built-in character-level tokenizer.
#[derive(Debug, Clone, PartialEq)]
pub struct CharTokenizer {
    /// The string of each id.
    tokens: Vec<String>,
    /// Ids of ordinary (single-character) tokens.
    char_ids: HashMap<char, u32>,
    /// Added tokens matched in text, longest first so that the longest match wins.
    specials: Vec<(String, u32)>,
    ids: SpecialIds,
}

const PAD: &str = "<pad>";
const BOS: &str = "<bos>";
const EOS: &str = "<eos>";

impl CharTokenizer {
    /// `<pad>` = 0, `<bos>` = 1, `<eos>` = 2, `\n` = 3, then printable ASCII `' '..='~'` = 4..=98:
    /// 99 ids, enough for every synthetic task's prompts and traces.
    pub fn ascii() -> Self {
        let tokens: Vec<String> = [PAD, BOS, EOS]
            .into_iter()
            .map(str::to_string)
            .chain(std::iter::once('\n').chain(' '..='~').map(String::from))
            .collect();
        let ids = SpecialIds { pad: Some(0), bos: Some(1), eos: Some(2) };
        Self::build(tokens, 3).with_ids(ids)
    }

    /// `tokens[..num_specials]` are added tokens, the rest single characters.
    fn build(tokens: Vec<String>, num_specials: usize) -> Self {
        let mut specials: Vec<(String, u32)> =
            tokens.iter().take(num_specials).zip(0u32..).map(|(t, id)| (t.clone(), id)).collect();
        specials.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        let char_ids = tokens
            .iter()
            .zip(0u32..)
            .skip(num_specials)
            .filter_map(|(t, id)| t.chars().next().map(|c| (c, id)))
            .collect();
        CharTokenizer { tokens, char_ids, specials, ids: SpecialIds::default() }
    }

    fn with_ids(mut self, ids: SpecialIds) -> Self {
        self.ids = ids;
        self
    }

    /// Recognises a `tokenizer.json` of the shape [`Tokenizer::to_hf_json`] writes for this type.
    /// `Ok(None)`: some other kind of tokenizer. `Err`: the right shape but inconsistent contents.
    pub(crate) fn from_hf_json(json: &Value, names: &SpecialNames, fallback: SpecialIds) -> IoResult<Option<Self>> {
        let model = &json["model"];
        let is_char_level = model["type"] == "BPE"
            && model["merges"].as_array().is_some_and(Vec::is_empty)
            && json["normalizer"].is_null()
            && json["pre_tokenizer"]["type"] == "ByteLevel"
            && json["pre_tokenizer"]["add_prefix_space"] == false
            && (json["post_processor"].is_null() || json["post_processor"]["type"] == "ByteLevel")
            && json["decoder"]["type"] == "ByteLevel";
        let Some(vocab) = model["vocab"].as_object().filter(|_| is_char_level) else {
            return Ok(None);
        };
        let bad = |msg: String| IoError::Tokenizer(format!("character-level tokenizer.json: {msg}"));
        let added: BTreeMap<u32, &str> = json["added_tokens"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| match (t["id"].as_u64().and_then(|id| u32::try_from(id).ok()), t["content"].as_str()) {
                (Some(id), Some(content)) => Ok((id, content)),
                _ => Err(bad(format!("malformed added token {t}"))),
            })
            .collect::<IoResult<_>>()?;
        let mut tokens = vec![None; vocab.len()];
        for (token, id) in vocab {
            let id = id.as_u64().and_then(|id| usize::try_from(id).ok()).filter(|&id| id < vocab.len());
            let slot = id.and_then(|id| tokens.get_mut(id)).ok_or_else(|| bad(format!("bad id for {token:?}")))?;
            if slot.replace(token.clone()).is_some() {
                return Err(bad(format!("two tokens share the id of {token:?}")));
            }
        }
        let mut tokens: Vec<String> = tokens.into_iter().map(|t| t.unwrap_or_default()).collect();
        // Added tokens come first (ids 0..k), characters after: the layout `ascii` and `to_hf_json` use.
        let num_specials = added.len();
        for (position, (&id, &content)) in added.iter().enumerate() {
            if id as usize != position || tokens.get(position).map(String::as_str) != Some(content) {
                return Err(bad(format!("added token {content:?} must have id {position} in the vocabulary")));
            }
        }
        for token in tokens.iter_mut().skip(num_specials) {
            let mut chars = token.chars();
            let ascii = match (chars.next(), chars.next()) {
                (Some(glyph), None) => ascii_from_byte_level(glyph),
                _ => None,
            };
            *token =
                ascii.map(String::from).ok_or_else(|| bad(format!("token {token:?} is not one ASCII character")))?;
        }
        let tokenizer = Self::build(tokens, num_specials);
        let ids =
            names.resolve(fallback, |name| tokenizer.specials.iter().find(|(t, _)| t == name).map(|&(_, id)| id))?;
        Ok(Some(tokenizer.with_ids(ids)))
    }

    fn special_at(&self, rest: &str) -> Option<(usize, u32)> {
        self.specials.iter().find(|(t, _)| rest.starts_with(t.as_str())).map(|(t, id)| (t.len(), *id))
    }
}

impl Tokenizer for CharTokenizer {
    fn encode(&self, text: &str) -> IoResult<Vec<u32>> {
        let mut ids = Vec::with_capacity(text.len());
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            let (len, id) = match self.special_at(rest) {
                Some(hit) => hit,
                None => (c.len_utf8(), *self.char_ids.get(&c).ok_or(IoError::UnknownChar(c))?),
            };
            ids.push(id);
            rest = rest.get(len..).unwrap_or_default();
        }
        Ok(ids)
    }

    fn decode(&self, ids: &[u32]) -> IoResult<String> {
        ids.iter()
            .map(|&id| {
                self.tokens
                    .get(id as usize)
                    .map(String::as_str)
                    .ok_or(IoError::TokenOutOfRange { id, vocab_size: self.tokens.len() })
            })
            .collect()
    }

    fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        self.tokens.get(id as usize).cloned()
    }

    fn special_ids(&self) -> SpecialIds {
        self.ids
    }

    fn to_hf_json(&self) -> IoResult<String> {
        let mut added: Vec<&(String, u32)> = self.specials.iter().collect();
        added.sort_by_key(|(_, id)| *id);
        let added_tokens: Vec<Value> = added
            .into_iter()
            .map(|(content, id)| {
                json!({"id": id, "content": content, "single_word": false, "lstrip": false, "rstrip": false,
                       "normalized": false, "special": true})
            })
            .collect();
        let num_specials = self.specials.len();
        let vocab: serde_json::Map<String, Value> = self
            .tokens
            .iter()
            .zip(0u32..)
            .enumerate()
            .map(|(i, (t, id))| {
                let key = if i < num_specials { t.clone() } else { t.chars().map(byte_level_glyph).collect() };
                (key, Value::from(id))
            })
            .collect();
        let byte_level =
            json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
        let json = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added_tokens,
            "normalizer": null,
            "pre_tokenizer": byte_level,
            "post_processor": null,
            "decoder": byte_level,
            "model": {
                "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": []
            }
        });
        serde_json::to_string_pretty(&json).map_err(|e| IoError::json(super::TOKENIZER_FILE, e))
    }
}

/// The GPT-2 byte-level alphabet for ASCII: printable `'!'..='~'` stand for themselves; the
/// bytes 0..=32 are shifted to U+0100..=U+0120 and DEL (127) to U+0121, so no token is whitespace
/// or a control character.
fn byte_level_glyph(c: char) -> char {
    match c as u32 {
        0x21..=0x7e => c,
        b @ 0..=0x20 => char::from_u32(0x100 + b).unwrap_or(c),
        0x7f => '\u{121}',
        _ => c,
    }
}

/// The inverse of [`byte_level_glyph`] on ASCII; `None` for glyphs of other bytes.
fn ascii_from_byte_level(glyph: char) -> Option<char> {
    match glyph as u32 {
        0x21..=0x7e => Some(glyph),
        g @ 0x100..=0x120 => char::from_u32(g - 0x100),
        0x121 => Some('\u{7f}'),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_task_traces() {
        let tok = CharTokenizer::ascii();
        assert_eq!(tok.vocab_size(), 99);
        let text = "12+7=19\n<answer>(12+7)*3</answer>";
        let ids = tok.encode(text).unwrap();
        assert_eq!(ids.len(), text.len());
        assert_eq!(tok.decode(&ids).unwrap(), text);
        assert_eq!(tok.encode("\n ~").unwrap(), vec![3, 4, 98]);
    }

    #[test]
    fn specials_in_text_map_to_their_ids() {
        let tok = CharTokenizer::ascii();
        assert_eq!(tok.encode("<bos>a<eos>").unwrap(), vec![1, tok.encode("a").unwrap()[0], 2]);
        assert_eq!(tok.decode(&[1, 2, 0]).unwrap(), "<bos><eos><pad>");
        assert_eq!((tok.bos_id(), tok.eos_id(), tok.pad_id()), (Some(1), Some(2), Some(0)));
    }

    #[test]
    fn rejects_unknown_text_and_ids() {
        let tok = CharTokenizer::ascii();
        assert!(matches!(tok.encode("a\tb"), Err(IoError::UnknownChar('\t'))));
        assert!(matches!(tok.encode("é"), Err(IoError::UnknownChar('é'))));
        assert!(matches!(tok.decode(&[99]), Err(IoError::TokenOutOfRange { id: 99, vocab_size: 99 })));
    }

    #[test]
    fn hf_json_round_trip() {
        let tok = CharTokenizer::ascii();
        let json: Value = serde_json::from_str(&tok.to_hf_json().unwrap()).unwrap();
        let names = SpecialNames { bos: Some(BOS.into()), eos: Some(EOS.into()), pad: Some(PAD.into()) };
        let back = CharTokenizer::from_hf_json(&json, &names, SpecialIds::default()).unwrap().unwrap();
        assert_eq!(back, tok);
        assert_eq!(json["model"]["vocab"]["\u{120}"], 4, "space is written as the byte-level glyph");
        let mut other = json.clone();
        other["decoder"] = json!({"type": "Fuse"});
        assert!(CharTokenizer::from_hf_json(&other, &names, SpecialIds::default()).unwrap().is_none());
        let mut broken = json;
        broken["model"]["vocab"]["ab"] = json!(99);
        assert!(CharTokenizer::from_hf_json(&broken, &names, SpecialIds::default()).is_err());
    }
}
