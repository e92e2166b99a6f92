//! Checkpoint and resume, end to end: a run stopped at any step and resumed ends exactly where an
//! uninterrupted run ends (same report but the clock, same metrics lines, bit-identical models).

use std::path::{Path, PathBuf};

use selfplay_e2e::tiny_run_config;
use selfplay_engine::engine::checkpoint::{CHECKPOINTS_DIR, LATEST_FILE, OPTIMIZER_FILE, STAGE_MODEL_DIR};
use selfplay_engine::engine::{RunStart, seeded_metrics};
use selfplay_engine::o1::Report;
use selfplay_engine::o1::config::RunConfig;
use selfplay_engine::o1::rl::{Algorithm, RlSettings};
use selfplay_engine::o1::value_model::ValueModelSettings;
use selfplay_engine::o1::{Outcome, run};
use selfplay_engine::rollout::Method;
use selfplay_reward::StepAggregation;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("selfplay-e2e-resume-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn finished(outcome: Outcome) -> Report {
    match outcome {
        Outcome::Finished(report) => Report { wall_seconds: 0.0, ..*report },
        Outcome::Interrupted { stage, step, .. } => panic!("stopped at {stage} {step} unasked"),
    }
}

/// What a finished run must reproduce: its files byte for byte, and its metrics but for clock readings.
fn artefacts(dir: &Path) -> (Vec<(String, Vec<u8>)>, Vec<serde_json::Value>) {
    let files = ["model/model.safetensors", "sft_model/model.safetensors", "config.toml"]
        .into_iter()
        .map(|f| (f.to_string(), std::fs::read(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"))))
        .collect();
    let metrics = seeded_metrics(&std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap()).unwrap();
    (files, metrics)
}

#[test]
fn a_run_stopped_anywhere_resumes_bit_identically() {
    let mut config = RunConfig { rl: RlSettings { steps: 3, ..tiny_run_config().rl }, ..tiny_run_config() };
    config.sft.eval_every = 1;
    let straight_dir = scratch("straight");
    let straight = finished(run(&config, &straight_dir, RunStart::New, &|_: &str, _| false).unwrap());
    let expected = artefacts(&straight_dir);
    // Policy initialisation's curve: a point every `eval_every` steps, the last one its final accuracy.
    let steps: Vec<u64> = straight.sft_curve.iter().map(|p| p.step).collect();
    assert_eq!(steps, (1..=config.sft.steps).collect::<Vec<_>>());
    assert_eq!(straight.sft_curve.last().map(|p| p.accuracy), Some(straight.sft_accuracy));
    assert!(straight.sft_curve.windows(2).all(|w| w[0].train_flops < w[1].train_flops));
    assert_eq!(straight.sft_curve.last().map(|p| p.train_flops), straight.train_curve.first().map(|p| p.train_flops));

    for (stop_stage, stop_step) in [("sft", 1), ("sft", 3), ("rl", 0), ("rl", 2), ("eval", 0)] {
        let dir = scratch(&format!("{stop_stage}-{stop_step}"));
        let stop = |stage: &str, step| stage == stop_stage && step == stop_step;
        match run(&config, &dir, RunStart::New, &stop).unwrap() {
            Outcome::Interrupted { stage, step, checkpoint } => {
                assert_eq!((stage, step), (stop_stage, stop_step));
                // The training stages keep their optimizer's moments; evaluation has none.
                assert_eq!(checkpoint.join(OPTIMIZER_FILE).is_file(), stop_stage != "eval");
            }
            Outcome::Finished(_) => panic!("the run ignored its stop signal"),
        }
        assert!(!dir.join("report.json").exists(), "an interrupted run wrote a report");
        let resumed = finished(run(&config, &dir, RunStart::Resume, &|_: &str, _| false).unwrap());
        assert_eq!(resumed, straight, "stopped at {stop_stage} {stop_step}");
        assert!(artefacts(&dir) == expected, "stopped at {stop_stage} {stop_step}: files differ");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::remove_dir_all(&straight_dir).unwrap();
}

/// The value model's stage resumes like the others: stopped at its start, mid-way or at the hand-over to
/// evaluation, the run ends with the same value model (its weights and moments travel in `stage_model/` and
/// `optimizer.safetensors`), the same report and the same metrics. It is a process reward model here (its steps
/// labelled by Monte-Carlo continuation, the sweep aggregating by `min`, the step searches judged by it), so the
/// labelling is resumed too.
#[test]
fn a_run_with_a_value_model_stopped_anywhere_resumes_bit_identically() {
    let mut config = RunConfig { rl: RlSettings { steps: 1, ..tiny_run_config().rl }, ..tiny_run_config() };
    config.value_model = ValueModelSettings {
        enabled: true,
        problems: 4,
        samples_per_problem: 2,
        rollouts: 2,
        steps: 3,
        batch_size: 4,
        lr: 1e-3,
    };
    config.eval.step_aggregation = StepAggregation::Min;
    config.eval.search.step_aggregation = StepAggregation::Min;
    let straight_dir = scratch("value-straight");
    let straight = finished(run(&config, &straight_dir, RunStart::New, &|_: &str, _| false).unwrap());
    let value_model = |dir: &Path| std::fs::read(dir.join("value_model/model.safetensors")).unwrap();
    let expected = (artefacts(&straight_dir), value_model(&straight_dir));
    let report = straight.value_model.as_ref().expect("the report says what the value model did");
    assert_eq!(report.samples, 8);
    assert!(report.final_loss.is_some_and(|l| l.is_finite()) && report.trained_tokens > 0, "{report:?}");
    let value_lines = expected.0.1.iter().filter(|m| m["stage"] == "value").count();
    assert_eq!(value_lines, 3, "one metrics line per value-model step");

    for (stop_stage, stop_step) in [("value", 0), ("value", 2), ("eval", 0)] {
        let dir = scratch(&format!("value-{stop_stage}-{stop_step}"));
        let stop = |stage: &str, step| stage == stop_stage && step == stop_step;
        let Outcome::Interrupted { checkpoint, .. } = run(&config, &dir, RunStart::New, &stop).unwrap() else {
            panic!("the run ignored its stop signal");
        };
        let in_value_stage = stop_stage == "value";
        assert_eq!(checkpoint.join(STAGE_MODEL_DIR).join("model.safetensors").is_file(), in_value_stage);
        assert_eq!(checkpoint.join(OPTIMIZER_FILE).is_file(), in_value_stage);
        let resumed = finished(run(&config, &dir, RunStart::Resume, &|_: &str, _| false).unwrap());
        assert_eq!(resumed, straight, "stopped at {stop_stage} {stop_step}");
        assert!((artefacts(&dir), value_model(&dir)) == expected, "stopped at {stop_stage} {stop_step}: files differ");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::remove_dir_all(&straight_dir).unwrap();
}

/// Expert iteration from search through the whole pipeline: the searches' FLOPs reach the train curve, and a run
/// stopped mid-RL resumes to the same result (the searches' proposals are seeded like samples are).
#[test]
fn expert_iteration_from_search_charges_its_flops_and_resumes_bit_identically() {
    let rl = RlSettings {
        algorithm: Algorithm::ExpertIteration,
        rollouts: Method::Mcts,
        search_budget: 3,
        steps: 3,
        ..tiny_run_config().rl
    };
    let config = RunConfig { rl, ..tiny_run_config() };
    let straight_dir = scratch("search-straight");
    let straight = finished(run(&config, &straight_dir, RunStart::New, &|_: &str, _| false).unwrap());
    let (_, metrics) = artefacts(&straight_dir);
    let rl_lines: Vec<_> = metrics.iter().filter(|m| m["stage"] == "rl").collect();
    assert_eq!(rl_lines.len(), 3);
    // Evaluated after every step: each step's growth of the train FLOPs covers its searches (and its update).
    for (w, m) in straight.train_curve.windows(2).zip(&rl_lines) {
        let search = m["search_flops"].as_f64().unwrap();
        assert!(search > 0.0 && w[1].train_flops - w[0].train_flops > search, "step {}", w[1].step);
    }

    let dir = scratch("search-stopped");
    let stop = |stage: &str, step| stage == "rl" && step == 1;
    assert!(matches!(run(&config, &dir, RunStart::New, &stop).unwrap(), Outcome::Interrupted { .. }));
    assert_eq!(finished(run(&config, &dir, RunStart::Resume, &|_: &str, _| false).unwrap()), straight);
    assert!(artefacts(&dir) == artefacts(&straight_dir), "files differ after resuming");
    for d in [dir, straight_dir] {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn resume_refuses_other_settings_and_corrupt_checkpoints() {
    let config = tiny_run_config();
    let dir = scratch("refuse");
    let stopped = run(&config, &dir, RunStart::New, &|stage: &str, step| stage == "rl" && step == 1).unwrap();
    assert!(matches!(stopped, Outcome::Interrupted { .. }));

    let other = RunConfig { seed: 99, ..config.clone() };
    let err = run(&other, &dir, RunStart::Resume, &|_: &str, _| false).unwrap_err().to_string();
    assert!(err.contains("other settings"), "{err}");

    // A truncated optimizer file is an error that names the problem, not a panic or a silent restart.
    let latest = std::fs::read_to_string(dir.join(CHECKPOINTS_DIR).join(LATEST_FILE)).unwrap();
    let optimizer = dir.join(CHECKPOINTS_DIR).join(latest.trim()).join(OPTIMIZER_FILE);
    let bytes = std::fs::read(&optimizer).unwrap();
    std::fs::write(&optimizer, &bytes[..bytes.len() / 2]).unwrap();
    assert!(run(&config, &dir, RunStart::Resume, &|_: &str, _| false).is_err());

    // A checkpoint pointer to nowhere is an error too.
    std::fs::write(dir.join(CHECKPOINTS_DIR).join(LATEST_FILE), "../../etc").unwrap();
    assert!(run(&config, &dir, RunStart::Resume, &|_: &str, _| false).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn resume_without_a_checkpoint_starts_over() {
    let config = tiny_run_config();
    let (a, b) = (scratch("fresh-a"), scratch("fresh-b"));
    let fresh = finished(run(&config, &a, RunStart::New, &|_: &str, _| false).unwrap());
    let resumed = finished(run(&config, &b, RunStart::Resume, &|_: &str, _| false).unwrap());
    assert_eq!(fresh, resumed);
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::remove_dir_all(&b).unwrap();
}
