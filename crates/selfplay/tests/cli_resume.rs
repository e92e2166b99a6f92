//! The `selfplay` binary end to end: a `train` killed with SIGKILL at an arbitrary moment, or stopped with
//! Ctrl-C (SIGINT), resumes with `--resume` and ends with the same model, metrics and report as a run that was
//! never interrupted.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use selfplay_engine::engine::checkpoint::{CHECKPOINTS_DIR, LATEST_FILE};
use selfplay_engine::engine::seeded_metrics;
use selfplay_engine::o1::config::{CheckpointSettings, EvalSettings, RunConfig, SftSettings, TaskSettings};
use selfplay_engine::o1::rl::RlSettings;

fn config() -> RunConfig {
    RunConfig {
        max_new_tokens: 24,
        task: TaskSettings { numbers: 3, train_problems: 200, eval_problems: 8, ..TaskSettings::default() },
        model: RunConfig::tiny().model,
        sft: SftSettings { steps: 20, batch_size: 8, ..RunConfig::tiny().sft },
        rl: RlSettings { steps: 40, prompts_per_step: 4, group_size: 4, ..RlSettings::default() },
        eval: EvalSettings { every: 10, budgets: vec![1, 2], ..EvalSettings::default() },
        checkpoint: CheckpointSettings { every: 1, keep: 2 },
        ..RunConfig::default()
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("selfplay-cli-resume-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn train(dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_selfplay"));
    command.arg("train").arg("--out").arg(dir.join("run")).args(extra);
    command.stdout(Stdio::piped()).stderr(Stdio::null());
    command
}

fn write_config(dir: &Path) -> PathBuf {
    let path = dir.join("run.toml");
    std::fs::write(&path, config().to_toml().unwrap()).unwrap();
    path
}

/// Waits until the run has checkpointed some RL step; false if it exited first.
fn wait_for_rl_checkpoint(child: &mut Child, run: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let latest = std::fs::read_to_string(run.join(CHECKPOINTS_DIR).join(LATEST_FILE)).unwrap_or_default();
        if latest.starts_with("rl-") && latest.trim() != "rl-0000000" {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("no RL checkpoint within two minutes");
}

/// What an uninterrupted run and a resumed one must share byte for byte.
fn outcome(run: &Path) -> Vec<Vec<u8>> {
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("report.json")).unwrap()).unwrap();
    let mut report = report.as_object().unwrap().clone();
    report.remove("wall_seconds");
    vec![
        serde_json::to_vec(&report).unwrap(),
        serde_json::to_vec(&seeded_metrics(&std::fs::read_to_string(run.join("metrics.jsonl")).unwrap()).unwrap())
            .unwrap(),
        std::fs::read(run.join("model/model.safetensors")).unwrap(),
    ]
}

fn straight_run() -> Vec<Vec<u8>> {
    let dir = scratch("straight");
    let config = write_config(&dir);
    let status = train(&dir, &["--config", config.to_str().unwrap()]).status().unwrap();
    assert!(status.success());
    let out = outcome(&dir.join("run"));
    std::fs::remove_dir_all(&dir).unwrap();
    out
}

#[test]
fn killed_and_interrupted_runs_resume_to_the_same_result() {
    let expected = straight_run();

    // SIGKILL: no chance to clean up; the newest complete checkpoint carries the run.
    let dir = scratch("kill");
    let config = write_config(&dir);
    let mut child = train(&dir, &["--config", config.to_str().unwrap()]).spawn().unwrap();
    assert!(wait_for_rl_checkpoint(&mut child, &dir.join("run")), "the run finished before it could be killed");
    child.kill().unwrap();
    child.wait().unwrap();
    let status = train(&dir, &["--resume"]).status().unwrap();
    assert!(status.success());
    assert!(outcome(&dir.join("run")) == expected, "killed and resumed run differs");
    std::fs::remove_dir_all(&dir).unwrap();

    // SIGINT (Ctrl-C): checkpoint after the current step, say how to continue, exit 0.
    let dir = scratch("int");
    let config = write_config(&dir);
    let mut child = train(&dir, &["--config", config.to_str().unwrap()]).spawn().unwrap();
    assert!(wait_for_rl_checkpoint(&mut child, &dir.join("run")), "the run finished before Ctrl-C");
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "Ctrl-C must exit cleanly");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("selfplay train --out") && stdout.contains("--resume"), "{stdout}");
    assert!(!dir.join("run/report.json").exists(), "an interrupted run wrote a report");
    let status = train(&dir, &["--resume", "--config", config.to_str().unwrap()]).status().unwrap();
    assert!(status.success());
    assert!(outcome(&dir.join("run")) == expected, "interrupted and resumed run differs");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn print_config_writes_every_default_and_reads_back() {
    let output = Command::new(env!("CARGO_BIN_EXE_selfplay")).args(["train", "--print-config"]).output().unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let back: RunConfig = toml::from_str(&text).unwrap();
    assert_eq!(back, RunConfig::default());
    for section in ["[task]", "[model]", "[sft]", "[rl]", "[eval]", "[checkpoint]"] {
        assert!(text.contains(section), "{section} missing from --print-config");
    }
}

#[test]
fn resume_of_an_empty_directory_is_a_clear_error() {
    let dir = scratch("empty");
    let output = train(&dir, &["--resume"]).stderr(Stdio::piped()).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no checkpoint"));
    std::fs::remove_dir_all(&dir).unwrap();
}
