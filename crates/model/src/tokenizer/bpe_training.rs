//! Training a byte-level BPE tokenizer on a task's own corpus with the `tokenizers` crate: the GPT-2/Qwen2
//! layout (GPT-2's pre-tokenizing pattern, so a merge never crosses from a number into an operator or a line
//! break) with every byte in the base alphabet, so any text still encodes, whatever the corpus held.
//!
//! A character-level tokenizer spends one token per character; a task whose traces repeat the same pieces
//! (numbers, ` -> `, `<answer>`, `back`) writes them in fewer tokens once those pieces are merged, and a
//! transformer's cost grows with the tokens it reads.
//!
//! The ids are `<pad>` = 0, `<bos>` = 1, `<eos>` = 2 (as [`super::CharTokenizer::ascii`]), then the 256 byte
//! glyphs, then the merges in the order they were learnt. Training is deterministic: the trainer breaks ties
//! between equally frequent pairs by their ids, and the alphabet is sorted, so the same corpus gives the same
//! `tokenizer.json` on any machine.

use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PostProcessorWrapper, PreTokenizerWrapper, TokenizerBuilder,
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
    let byte_level = ByteLevel::default().add_prefix_space(false).trim_offsets(false).use_regex(true);
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
    .with_pre_tokenizer(Some(byte_level.into()))
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
        assert_eq!(bpe.vocab_size(), 300);
        assert_eq!(bpe.special_ids(), SpecialIds { pad: Some(0), bos: Some(1), eos: Some(2) });
        let text = "3 5 24 -> 17\n3+17=20\nback\n<answer>(3+17)</answer>";
        let ids = bpe.encode(text).unwrap();
        assert!(3 * ids.len() < 2 * text.len(), "{} tokens for {} characters", ids.len(), text.len());
        assert_eq!(bpe.decode(&ids).unwrap(), text);
        // A newline is one token of its own (step search splits completions at it).
        assert_eq!(bpe.encode("\n").unwrap().len(), 1);
        assert!(bpe.encode("12\n34").unwrap().contains(&bpe.encode("\n").unwrap()[0]));
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
