//! Training a byte-level BPE tokenizer on a task's own corpus with the `tokenizers` crate, with every byte in
//! the base alphabet, so any text still encodes, whatever the corpus held.
//!
//! A character-level tokenizer spends one token per character; a task whose traces repeat the same pieces
//! (` -> `, `<answer>`, `back`, `)</answer>`) writes them in fewer tokens once those pieces are merged, and a
//! transformer's cost grows with the tokens it reads. Two things are never merged:
//! - **digits**, each its own token, as Llama and Qwen2 split them. Merged numbers (GPT-2's pattern) make
//!   `12` in a prompt (` 12`) and in a step (`12`) two unrelated tokens and every sum a lookup over whole
//!   numbers: on 3-number Countdown with search streams that BPE's policy initialisation reached 0.152 greedy
//!   accuracy where characters reached 0.576;
//! - **the newline**, one token of its own, since step-level search ends a step at it.
//!
//! Everything between digits and newlines merges freely (no GPT-2 split of letters from punctuation), so a
//! piece such as `)</answer>` can become one token.
//!
//! The ids are `<pad>` = 0, `<bos>` = 1, `<eos>` = 2 (as [`super::CharTokenizer::ascii`]), then the 256 byte
//! glyphs, then the merges in the order they were learnt. Training is deterministic: the trainer breaks ties
//! between equally frequent pairs by their ids, and the alphabet is sorted, so the same corpus gives the same
//! `tokenizer.json` on any machine.

use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::Split;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, SplitDelimiterBehavior,
    TokenizerBuilder,
};

use super::{HfTokenizer, SpecialIds};
use crate::io_error::{IoError, IoResult};

/// The special tokens, in id order.
const SPECIALS: [&str; 3] = ["<pad>", "<bos>", "<eos>"];
/// Special tokens plus the 256 byte glyphs: the smallest vocabulary a byte-level BPE can have.
pub const MIN_BPE_VOCAB: usize = SPECIALS.len() + 256;
/// The largest vocabulary [`train_bpe`] accepts: far past what a synthetic task's corpus can fill.
pub const MAX_BPE_VOCAB: usize = 1 << 16;

/// Trains a byte-level BPE of at most `vocab_size` ids on `texts` (fewer when the corpus runs out of pairs
/// seen twice). `vocab_size` must lie in `MIN_BPE_VOCAB..=MAX_BPE_VOCAB`.
pub fn train_bpe<S: AsRef<str> + Send>(
    texts: impl Iterator<Item = S> + Send,
    vocab_size: usize,
) -> IoResult<HfTokenizer> {
    if !(MIN_BPE_VOCAB..=MAX_BPE_VOCAB).contains(&vocab_size) {
        return Err(IoError::Tokenizer(format!(
            "a byte-level BPE vocabulary must hold {MIN_BPE_VOCAB} to {MAX_BPE_VOCAB} ids, not {vocab_size}"
        )));
    }
    let failed = |e: tokenizers::Error| IoError::Tokenizer(format!("training the BPE: {e}"));
    let byte_level = ByteLevel::default().add_prefix_space(false).trim_offsets(false).use_regex(false);
    let newlines = Split::new("\n", SplitDelimiterBehavior::Isolated, false).map_err(failed)?;
    let pre_tokenizer = Sequence::new(vec![newlines.into(), Digits::new(true).into(), byte_level.into()]);
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab_size)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(SPECIALS.iter().map(|s| AddedToken::from(*s, true)).collect())
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut tokenizer = TokenizerBuilder::<
        ModelWrapper,
        NormalizerWrapper,
        PreTokenizerWrapper,
        PostProcessorWrapper,
        DecoderWrapper,
    >::new()
    .with_model(BPE::default().into())
    .with_normalizer(None)
    .with_pre_tokenizer(Some(pre_tokenizer.into()))
    .with_post_processor(Some(byte_level.into()))
    .with_decoder(Some(byte_level.into()))
    .build()
    .map_err(failed)?;
    tokenizer.train(&mut TrainerWrapper::BpeTrainer(trainer), texts).map_err(failed)?;
    let tokenizer = tokenizers::Tokenizer::from(tokenizer);
    let id = |name: &str| tokenizer.token_to_id(name);
    let ids = SpecialIds { pad: id(SPECIALS[0]), bos: id(SPECIALS[1]), eos: id(SPECIALS[2]) };
    debug_assert_eq!(ids, SpecialIds { pad: Some(0), bos: Some(1), eos: Some(2) });
    Ok(HfTokenizer::from_inner(tokenizer, ids))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::{Tokenizer, load_tokenizer};

    fn corpus() -> Vec<String> {
        (0..200)
            .map(|i| {
                format!(
                    "{} {} {} -> {}\n{}+{}={}\nback\n<answer>({}+{})</answer>",
                    i % 7,
                    i % 11,
                    24,
                    i,
                    3,
                    i,
                    i + 3,
                    3,
                    i
                )
            })
            .collect()
    }

    #[test]
    fn merges_the_corpus_pieces_and_round_trips() {
        let bpe = train_bpe(corpus().iter(), 300).unwrap();
        // The small corpus runs out of pairs seen twice before 300 ids.
        assert!((MIN_BPE_VOCAB + 10..=300).contains(&bpe.vocab_size()), "{}", bpe.vocab_size());
        assert_eq!(bpe.special_ids(), SpecialIds { pad: Some(0), bos: Some(1), eos: Some(2) });
        let text = "3 5 24 -> 17\n3+17=20\nback\n<answer>(3+17)</answer>";
        let ids = bpe.encode(text).unwrap();
        assert!(3 * ids.len() < 2 * text.len(), "{} tokens for {} characters", ids.len(), text.len());
        assert_eq!(bpe.decode(&ids).unwrap(), text);
        // A newline is one token of its own (step search splits completions at it), a digit too.
        let newline = bpe.encode("\n").unwrap();
        assert_eq!(newline.len(), 1);
        assert_eq!(bpe.encode("\nback\n").unwrap().len(), 3);
        let digits =
            |text: &str| bpe.encode(text).unwrap().iter().map(|&id| bpe.decode(&[id]).unwrap()).collect::<Vec<_>>();
        assert_eq!(digits("3+17=20\n"), ["3", "+", "1", "7", "=", "2", "0", "\n"]);
        assert_eq!(digits(" 17 -> 24"), [" ", "1", "7", " -> ", "2", "4"]);
        assert_eq!(digits(")</answer>"), [")</answer>"]);
        // Text the corpus never held still encodes, byte by byte.
        let unseen = "Zürich ✓";
        assert_eq!(bpe.decode(&bpe.encode(unseen).unwrap()).unwrap(), unseen);
    }

    #[test]
    fn training_is_deterministic_and_saved_json_reloads() {
        let a = train_bpe(corpus().iter(), 320).unwrap().to_hf_json().unwrap();
        let b = train_bpe(corpus().iter(), 320).unwrap().to_hf_json().unwrap();
        assert_eq!(a, b);
        let dir = std::env::temp_dir().join(format!("selfplay-bpe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(crate::tokenizer::TOKENIZER_FILE), &a).unwrap();
        let loaded = load_tokenizer(&dir, SpecialIds { pad: Some(0), bos: Some(1), eos: Some(2) }).unwrap();
        let original = train_bpe(corpus().iter(), 320).unwrap();
        let text = "7 4 24 -> 99\n3+99=102";
        assert_eq!(loaded.encode(text).unwrap(), original.encode(text).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The same corpus trained by the Python `tokenizers` library with the pipeline this module documents
    /// (`tools/make_trained_bpe_fixture.py`) gives the same vocabulary, id for id, and the same encodings.
    #[test]
    fn matches_the_python_tokenizers_trainer() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trained_bpe/expected.json");
        let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let corpus: Vec<&str> = expected["corpus"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        let bpe = train_bpe(corpus.into_iter(), expected["vocab_size"].as_u64().unwrap() as usize).unwrap();
        let vocab: std::collections::HashMap<String, u32> = expected["vocab"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(token, id)| (token.clone(), id.as_u64().unwrap() as u32))
            .collect();
        let trained: std::collections::HashMap<String, u32> =
            (0..bpe.vocab_size() as u32).map(|id| (bpe.id_to_token(id).unwrap(), id)).collect();
        assert_eq!(trained, vocab);
        for case in expected["cases"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let ids: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            assert_eq!(bpe.encode(text).unwrap(), ids, "{text:?}");
            assert_eq!(bpe.decode(&ids).unwrap(), text);
        }
    }

    #[test]
    fn refuses_absurd_vocabularies() {
        for size in [0, MIN_BPE_VOCAB - 1, MAX_BPE_VOCAB + 1] {
            assert!(matches!(train_bpe(corpus().iter(), size), Err(IoError::Tokenizer(_))), "{size}");
        }
        // A corpus too small to fill the vocabulary gives a smaller one, not an error.
        let tiny = train_bpe(["ab ab"].iter(), 1000).unwrap();
        assert!(tiny.vocab_size() < 1000 && tiny.vocab_size() >= MIN_BPE_VOCAB);
    }
}
