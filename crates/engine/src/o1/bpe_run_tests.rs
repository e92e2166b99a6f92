//! The recipe with `[model] tokenizer = "bpe"`: the trained BPE reaches every saved model and checkpoint, a saved
//! model reloads with it, a run stopped mid-RL resumes to the uninterrupted run's very weights, and a checkpoint
//! holding another tokenizer is refused.

use selfplay_model::tokenizer::TOKENIZER_FILE;
use selfplay_model::{CharTokenizer, ModelDir, Tokenizer};
use selfplay_tasks::{Split, Task};

use super::config::TokenizerKind;
use super::{O1Error, Outcome, RunConfig, run};
use crate::engine::RunStart;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("selfplay-o1-bpe-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn bpe_config() -> RunConfig {
    let mut config = RunConfig::tiny();
    config.model.tokenizer = TokenizerKind::Bpe;
    config.model.bpe_vocab = 300;
    config.rl.steps = 3;
    config
}

fn final_weights(dir: &std::path::Path) -> Vec<u8> {
    std::fs::read(dir.join("model/model.safetensors")).unwrap()
}

#[test]
fn a_bpe_run_saves_its_tokenizer_and_resumes_bit_identically() {
    let config = bpe_config();
    let straight = scratch("straight");
    let Outcome::Finished(report) = run(&config, &straight, RunStart::New, &|_, _| false).unwrap() else {
        panic!("nothing asked it to stop")
    };
    let saved = ModelDir::load(&straight.join("model")).unwrap();
    let tokenizer = saved.tokenizer.expect("the model directory holds the BPE");
    assert!(tokenizer.vocab_size() <= 300 && tokenizer.vocab_size() > 259, "{}", tokenizer.vocab_size());
    assert_eq!(saved.config.vocab_size, tokenizer.vocab_size());
    let trace = "8+12=20\n20+4=24\n<answer>(8+12)+4</answer>";
    assert!(tokenizer.encode(trace).unwrap().len() < trace.len());
    assert_eq!(
        std::fs::read(straight.join("model").join(TOKENIZER_FILE)).unwrap(),
        std::fs::read(straight.join("sft_model").join(TOKENIZER_FILE)).unwrap(),
    );
    let task = config.task();
    let problems = task.generate(Split::Train, config.task.train_problems, config.seed).unwrap();
    let characters: usize = problems.iter().map(|p| task.solution_trace(p).unwrap().len()).sum();
    let characters = characters as f64 / problems.len() as f64;
    assert!(report.sft_traces[0].mean_tokens < 0.8 * characters, "{:?}: {characters} characters", report.sft_traces);

    let stopped = scratch("stopped");
    let outcome = run(&config, &stopped, RunStart::New, &|stage, step| stage == "rl" && step == 1).unwrap();
    assert!(matches!(outcome, Outcome::Interrupted { .. }), "{outcome:?}");
    let Outcome::Finished(resumed) = run(&config, &stopped, RunStart::Resume, &|_, _| false).unwrap() else {
        panic!("nothing asked it to stop")
    };
    assert_eq!(resumed.rl_accuracy, report.rl_accuracy);
    assert_eq!(final_weights(&stopped), final_weights(&straight));

    // A checkpoint whose tokenizer is not the one the settings build is refused, not misread.
    let changed = scratch("changed");
    let outcome = run(&config, &changed, RunStart::New, &|stage, step| stage == "rl" && step == 1).unwrap();
    assert!(matches!(outcome, Outcome::Interrupted { .. }), "{outcome:?}");
    let char_level = CharTokenizer::ascii().to_hf_json().unwrap();
    for checkpoint in std::fs::read_dir(changed.join("checkpoints")).unwrap() {
        let tokenizer = checkpoint.unwrap().path().join(TOKENIZER_FILE);
        if tokenizer.is_file() {
            std::fs::write(&tokenizer, &char_level).unwrap();
        }
    }
    let error = run(&config, &changed, RunStart::Resume, &|_, _| false).unwrap_err();
    assert!(matches!(error, O1Error::TokenizerChanged), "{error}");
    for dir in [straight, stopped, changed] {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
