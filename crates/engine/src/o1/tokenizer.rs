//! The tokenizer a run's policy reads: `[model] tokenizer`.
//!
//! The BPE is trained on the run's own corpus, the prompts and SFT traces (of the kinds `[sft] traces` deals) of
//! the first [`BPE_CORPUS_PROBLEMS`] training problems, each prompt and trace a sequence of its own, as the policy
//! reads them (a prompt is encoded apart from its completion). Training is deterministic, so a resumed run, or one
//! started `init_from` a run of the same settings, rebuilds the very tokenizer its checkpoint was written with.

use selfplay_model::CharTokenizer;
use selfplay_model::tokenizer::{Tokenizer, train_bpe};
use selfplay_tasks::{CountdownProblem, CountdownTask, Propose, Task};

use super::config::{RunConfig, TokenizerKind};
use super::error::O1Error;
use super::sft::trace_of;

/// How many training problems the BPE learns its merges from: enough to see every number and operator many
/// times over, and trained in well under a second.
pub const BPE_CORPUS_PROBLEMS: usize = 4000;

/// The tokenizer `config` names, trained (for `bpe`) on `train`'s first problems.
pub fn recipe_tokenizer(
    config: &RunConfig,
    task: &CountdownTask,
    train: &[CountdownProblem],
) -> Result<Box<dyn Tokenizer>, O1Error> {
    match config.model.tokenizer {
        TokenizerKind::Char => Ok(Box::new(CharTokenizer::ascii())),
        TokenizerKind::Bpe => {
            let corpus = bpe_corpus(config, task, &train[..train.len().min(BPE_CORPUS_PROBLEMS)]);
            Ok(Box::new(train_bpe(corpus.into_iter(), config.model.bpe_vocab)?))
        }
    }
}

/// Each problem's prompt, and its trace of the kind dealt to it (round-robin over `[sft] traces`, as policy
/// initialisation deals them) when its search finds one; with `[sft] proposer_every`, the proposer prompt before
/// the prompts policy initialisation writes as proposals.
fn bpe_corpus(config: &RunConfig, task: &CountdownTask, problems: &[CountdownProblem]) -> Vec<String> {
    let kinds = &config.sft.traces;
    let every = config.sft.proposer_every;
    let mut corpus = Vec::with_capacity(2 * problems.len());
    for (i, problem) in problems.iter().enumerate() {
        if every > 0 && i.is_multiple_of(every) {
            corpus.push(task.proposer_prompt());
        }
        corpus.push(task.prompt(problem));
        let Some(&kind) = kinds.get(i % kinds.len().max(1)) else { continue };
        corpus.extend(trace_of(task, kind, config.sft.stream_max_lines, problem));
    }
    corpus
}

#[cfg(test)]
mod tests {
    use selfplay_model::tokenizer::MIN_BPE_VOCAB;
    use selfplay_tasks::Split;

    use super::*;

    fn tiny_config(tokenizer: TokenizerKind) -> RunConfig {
        let mut config = RunConfig::default();
        config.model.tokenizer = tokenizer;
        config.model.bpe_vocab = 320;
        config
    }

    #[test]
    fn char_is_the_built_in_and_bpe_shortens_traces() {
        let config = tiny_config(TokenizerKind::Bpe);
        let task = config.task();
        let train = task.generate(Split::Train, 300, 1).unwrap();
        let char_level = recipe_tokenizer(&tiny_config(TokenizerKind::Char), &task, &train).unwrap();
        assert_eq!(char_level.to_hf_json().unwrap(), CharTokenizer::ascii().to_hf_json().unwrap());
        let bpe = recipe_tokenizer(&config, &task, &train).unwrap();
        // Digits and newlines never merge, so a Countdown corpus fills only a few dozen merges.
        assert!((MIN_BPE_VOCAB + 10..=320).contains(&bpe.vocab_size()), "{}", bpe.vocab_size());
        assert_eq!(bpe.special_ids(), char_level.special_ids());
        // Held-out traces: shorter, and decoded back to the same text.
        let (mut chars, mut tokens) = (0, 0);
        for problem in task.generate(Split::Val, 50, 1).unwrap() {
            let trace = task.solution_trace(&problem).unwrap();
            let ids = bpe.encode(&trace).unwrap();
            assert_eq!(bpe.decode(&ids).unwrap(), trace);
            (chars, tokens) = (chars + char_level.encode(&trace).unwrap().len(), tokens + ids.len());
        }
        assert!(3 * tokens < 2 * chars, "{tokens} BPE tokens against {chars} characters");
        // Deterministic: rebuilt, the same file.
        let again = recipe_tokenizer(&config, &task, &train).unwrap();
        assert_eq!(again.to_hf_json().unwrap(), bpe.to_hf_json().unwrap());
    }
}
