//! The `selfplay` binary end to end on what a run trusts about its checkpoints and settings: pruning keeps the
//! newest checkpoints of the run (not of the alphabet), a resume refuses a checkpoint that does not fit its run,
//! a method that ranks by a value head refuses a model without one, and settings no run can use are refused
//! before anything runs. Every refusal is one `error: ...` line and a non-zero exit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use selfplay_engine::engine::checkpoint::{CHECKPOINTS_DIR, LATEST_FILE, TRAINER_STATE_FILE};
use selfplay_engine::o1::config::{CheckpointSettings, EvalSettings, ModelShape, RunConfig, SftSettings, TaskSettings};
use selfplay_engine::o1::rl::RlSettings;
use serde_json::Value;

/// A run of a few seconds: 3 SFT steps, `rl_steps` RL steps, a checkpoint after every step, `keep` kept.
fn config(rl_steps: u64, keep: usize) -> RunConfig {
    RunConfig {
        max_new_tokens: 24,
        task: TaskSettings { numbers: 3, train_problems: 200, eval_problems: 4, ..TaskSettings::default() },
        model: RunConfig::tiny().model,
        sft: SftSettings { steps: 3, batch_size: 4, ..RunConfig::tiny().sft },
        rl: RlSettings { steps: rl_steps, prompts_per_step: 2, group_size: 3, ..RlSettings::default() },
        eval: EvalSettings { every: 1, budgets: vec![1], search_methods: vec![], ..EvalSettings::default() },
        checkpoint: CheckpointSettings { every: 1, keep },
        ..RunConfig::default()
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("selfplay-cli-checkpoints-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn selfplay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_selfplay")).args(args).output().expect("spawn selfplay")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Trains a fresh run of `config` into `dir/name`, which it returns.
fn train(dir: &Path, name: &str, config: &RunConfig) -> PathBuf {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, config.to_toml().unwrap()).unwrap();
    let run = dir.join(name);
    let out = selfplay(&["train", "--config", path(&file), "--out", path(&run)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    run
}

/// The one `error: ` line of a failed command; fails the test unless it failed with exactly one such line.
fn one_line_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "it should have failed; stderr: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(stderr.trim_end().ends_with(errors[0]), "the error is the last line: {stderr}");
    errors[0].to_string()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                pending.push(p);
            } else {
                files.insert(p.strip_prefix(dir).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
            }
        }
    }
    files
}

fn checkpoint_names(run: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(run.join(CHECKPOINTS_DIR))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The saves of a run are sft-1..3, rl-0..2, eval-0; `checkpoint.keep` newest of them remain, in run order:
/// `rl-…` sorts before `sft-…`, yet the SFT ones go first.
#[test]
fn a_finished_run_keeps_its_newest_checkpoints() {
    let dir = scratch("keep");
    let cases: [(usize, &[&str]); 3] = [
        (1, &["eval-0000000"]),
        (2, &["eval-0000000", "rl-0000002"]),
        (5, &["eval-0000000", "rl-0000000", "rl-0000001", "rl-0000002", "sft-0000003"]),
    ];
    for (keep, expected) in cases {
        let run = train(&dir, &format!("keep-{keep}"), &config(2, keep));
        assert_eq!(checkpoint_names(&run), expected, "keep = {keep}");
        let latest = std::fs::read_to_string(run.join(CHECKPOINTS_DIR).join(LATEST_FILE)).unwrap();
        assert_eq!(latest.trim(), "eval-0000000");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A copy of `run` whose `latest` is `rl-0000003`, with `edit` applied to that checkpoint's trainer state.
fn tampered(run: &Path, dir: &Path, name: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let copy = dir.join(name);
    let status = Command::new("cp").arg("-r").arg(run).arg(&copy).status().unwrap();
    assert!(status.success());
    let checkpoints = copy.join(CHECKPOINTS_DIR);
    std::fs::write(checkpoints.join(LATEST_FILE), "rl-0000003").unwrap();
    let state_file = checkpoints.join("rl-0000003").join(TRAINER_STATE_FILE);
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    edit(&mut state);
    std::fs::write(&state_file, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    copy
}

/// `selfplay train --out RUN --resume` refuses a checkpoint edited to be at a stage or step its run does not
/// have, or to describe another model than the one stored, naming the file and the mismatch; it writes no
/// checkpoint. The untouched copy resumes.
#[test]
fn resume_refuses_a_checkpoint_that_does_not_fit_its_run() {
    let dir = scratch("tamper");
    let run = train(&dir, "run", &config(5, 10));
    type Edit = Box<dyn FnOnce(&mut Value)>;
    // `{dir}` stands for the tampered checkpoint's directory.
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "hidden",
            Box::new(|s| s["config"]["model"]["hidden_size"] = 64.into()),
            "{dir}/config.json: the model is not the one the run's settings in trainer_state.json describe: head_dim 16 \
             (settings: 32), hidden_size 32 (settings: 64)",
        ),
        (
            "past-the-end",
            Box::new(|s| s["step"] = 99.into()),
            "{dir}/trainer_state.json: step 99 of stage rl, which has 5 steps",
        ),
        (
            "unknown-stage",
            Box::new(|s| s["stage"] = "warmup".into()),
            "{dir}/trainer_state.json: stage \"warmup\" at position 1 of the run, where the run has \"rl\" (its stages: \
             sft, rl, eval)",
        ),
        (
            "stage-index",
            Box::new(|s| s["stage_index"] = 7.into()),
            "{dir}/trainer_state.json: stage \"rl\" at position 7, but the run has 3 stages (sft, rl, eval)",
        ),
        (
            "negative",
            Box::new(|s| s["step"] = (-1).into()),
            "invalid trainer state {dir}/trainer_state.json: invalid value: integer `-1`",
        ),
        (
            "absurd",
            Box::new(|s| s["step"] = 1e30.into()),
            "invalid trainer state {dir}/trainer_state.json: invalid type: floating point",
        ),
        (
            "clock",
            Box::new(|s| s["elapsed_seconds"] = (-5.0).into()),
            "{dir}/trainer_state.json: elapsed_seconds -5 is no duration",
        ),
    ];
    for (name, edit, expected) in cases {
        let copy = tampered(&run, &dir, name, edit);
        let checkpoints = copy.join(CHECKPOINTS_DIR);
        let before = snapshot(&copy);
        let error = one_line_error(&selfplay(&["train", "--out", path(&copy), "--resume"]));
        let dir = checkpoints.join("rl-0000003");
        let expected = format!("error: {}", expected.replace("{dir}", path(&dir)));
        assert!(error.starts_with(&expected), "{name}:\n  got      {error}\n  expected {expected}");
        assert!(snapshot(&copy) == before, "{name}: a refused resume changed the run (metrics, settings, checkpoints)");
    }

    // Weights of other shapes than the checkpoint's config.json: the loader refuses them, naming the directory.
    let copy = tampered(&run, &dir, "shapes", |_| {});
    let model_dir = copy.join(CHECKPOINTS_DIR).join("rl-0000003");
    let text = std::fs::read_to_string(model_dir.join("config.json")).unwrap();
    std::fs::write(
        model_dir.join("config.json"),
        text.replace("\"intermediate_size\": 64", "\"intermediate_size\": 48"),
    )
    .unwrap();
    let error = one_line_error(&selfplay(&["train", "--out", path(&copy), "--resume"]));
    let expected = format!("error: the model in {} does not load: ", model_dir.display());
    assert!(error.starts_with(&expected) && error.contains("shape"), "{error}");

    // The same copy, untouched, resumes and finishes.
    let copy = tampered(&run, &dir, "untouched", |_| {});
    let out = selfplay(&["train", "--out", path(&copy), "--resume"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Rewrites the model in `dir` without its value head, as a Hugging Face checkpoint comes.
fn drop_value_head(dir: &Path) {
    let file = dir.join("model.safetensors");
    let bytes = std::fs::read(&file).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView<'_>)> =
        tensors.tensors().into_iter().filter(|(name, _)| !name.starts_with("value_head.")).collect();
    assert_eq!(kept.len() + 2, tensors.len(), "the run's model had a value head");
    std::fs::write(&file, safetensors::serialize(kept, None).unwrap()).unwrap();
}

/// `best_of_n_value` and the step searches rank by a value head: on a model without one they refuse (rather than
/// rank by zeros), unless a value model judges them; every other method runs on it.
#[test]
fn methods_that_rank_by_a_value_head_refuse_a_model_without_one() {
    let dir = scratch("value-head");
    let run = train(&dir, "run", &config(1, 1));
    let headless = dir.join("headless");
    let status = Command::new("cp").arg("-r").arg(run.join("model")).arg(&headless).status().unwrap();
    assert!(status.success());
    drop_value_head(&headless);
    let eval = |model: &Path, method: &str, extra: &[&str]| {
        let mut args = vec!["eval", "--model", path(model), "--method", method, "--budget", "2", "--problems", "2"];
        args.extend(extra);
        args.extend(["--max-new-tokens", "8"]);
        selfplay(&args)
    };
    for method in ["greedy", "sample", "majority", "best_of_n"] {
        let out = eval(&headless, method, &[]);
        assert!(out.status.success(), "{method}: {}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(
        one_line_error(&eval(&headless, "best_of_n_value", &[])),
        "error: best_of_n_value ranks by a value head, and the model has none (its weights lack value_head.weight \
         and value_head.bias); use a model trained with one or a value model, or a method that needs none"
    );
    for method in ["beam", "mcts", "gumbel"] {
        let error = one_line_error(&eval(&headless, method, &[]));
        assert!(
            error.starts_with(&format!("error: {method} ranks by a value head, and the model has none")),
            "{error}"
        );
    }
    // A value model with a head judges instead; a value model without one is refused the same way.
    for method in ["best_of_n_value", "mcts"] {
        let with_judge = eval(&headless, method, &["--value-model", path(&run.join("model"))]);
        assert!(with_judge.status.success(), "{method}: {}", String::from_utf8_lossy(&with_judge.stderr));
    }
    let error = one_line_error(&eval(&run.join("model"), "best_of_n_value", &["--value-model", path(&headless)]));
    assert!(error.starts_with("error: best_of_n_value ranks by a value head, and the value model has none"), "{error}");
    // The run's own model, which has a head, is not refused.
    assert!(eval(&run.join("model"), "best_of_n_value", &[]).status.success());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Settings no run can use are refused when the file is read, before anything is written: `--print-config` fails
/// too, and `--out` is never created. A context too short for the SFT traces (which exist only once the problems
/// are generated) is refused before the first step.
#[test]
fn unusable_settings_are_refused_before_anything_runs() {
    let dir = scratch("settings");
    let out = dir.join("run");
    let cases = [
        (
            "[model]\ncontext = 4\n",
            "error: model.context = 4 is too short: prompts of up to 17 tokens (BOS included) and max_new_tokens = 96 need at least 113 tokens",
        ),
        ("[sft]\nbatch_size = 0\n", "error: sft.batch_size must be at least 1"),
        ("[sft]\nlr = nan\n", "error: sft.lr must be a positive number"),
        ("[rl]\nlr = -0.1\n", "error: invalid RL setting `lr`: must be finite and positive"),
        ("[eval]\nbudgets = []\n", "error: eval.budgets must hold at least one budget"),
        ("[checkpoint]\nkeep = 0\n", "error: checkpoint.keep must be at least 1"),
        (
            "[value_model]\nenabled = true\nsteps = 0\n",
            "error: value_model.steps must be at least 1 (an untrained judge)",
        ),
    ];
    for (text, expected) in cases {
        let file = dir.join("bad.toml");
        std::fs::write(&file, text).unwrap();
        for extra in [&["--print-config"][..], &[]] {
            let mut args = vec!["train", "--config", path(&file), "--out", path(&out)];
            args.extend(extra);
            assert_eq!(one_line_error(&selfplay(&args)), expected, "{text}");
            assert!(!out.exists(), "{text}: a refused config wrote {}", out.display());
        }
    }

    // Context 50 holds the widest prompt and 24 new tokens (41), but not the SFT examples: refused at SFT's start.
    let short = RunConfig { model: ModelShape { context: 50, ..config(1, 1).model }, ..config(1, 1) };
    let file = dir.join("short.toml");
    std::fs::write(&file, short.to_toml().unwrap()).unwrap();
    let error = one_line_error(&selfplay(&["train", "--config", path(&file), "--out", path(&out)]));
    assert!(
        error.starts_with(
            "error: model.context = 50 is too short: the SFT examples (BOS, prompt, solution trace, EOS) need at least "
        ),
        "{error}"
    );
    assert!(!out.join(CHECKPOINTS_DIR).exists(), "a step ran");
    std::fs::remove_dir_all(&dir).unwrap();
}
