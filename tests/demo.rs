//! The demo end to end on a tiny configuration: every artefact is written, the report has the fields
//! the README promises, and the same seed gives the same report.

use selfplay_e2e::tiny_run_config as tiny;
use selfplay_engine::engine::{RunStart, seeded_metrics};
use selfplay_engine::o1::Report;
use selfplay_engine::o1::config::RunConfig;
use selfplay_engine::o1::{Outcome, run};

fn run_in(dir: &std::path::Path, config: &RunConfig) -> Report {
    let _ = std::fs::remove_dir_all(dir);
    match run(config, dir, RunStart::New, &|_: &str, _| false).expect("demo runs") {
        Outcome::Finished(report) => *report,
        Outcome::Interrupted { .. } => panic!("nothing asked the run to stop"),
    }
}

#[test]
fn demo_writes_a_complete_report_and_is_deterministic() {
    let base = std::env::temp_dir().join(format!("selfplay-e2e-demo-{}", std::process::id()));
    let config = tiny();
    let first = run_in(&base.join("a"), &config);
    let second = run_in(&base.join("b"), &config);

    for file in [
        "report.json",
        "report.md",
        "metrics.jsonl",
        "config.toml",
        "train_curve.svg",
        "train_curve.png",
        "test_time_budget.svg",
        "test_time_flops.png",
        "model/config.json",
        "model/model.safetensors",
        "model/tokenizer.json",
    ] {
        assert!(base.join("a").join(file).is_file(), "{file} missing");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(base.join("a/report.json")).unwrap()).unwrap();
    for key in ["task", "eval_problems", "wall_seconds", "sft_accuracy", "rl_accuracy", "train_curve", "test_time"] {
        assert!(json.get(key).is_some(), "report.json lacks {key}");
    }
    assert_eq!(first.task, "countdown");
    assert_eq!(first.eval_problems, 12);
    // Steps 0, 1, 2: one point per evaluation.
    assert_eq!(first.train_curve.iter().map(|p| p.step).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(first.train_curve.windows(2).all(|w| w[1].train_flops > w[0].train_flops));
    let methods: Vec<&str> = first.test_time.iter().map(|p| p.method.as_str()).collect();
    for method in ["greedy", "majority", "best_of_n", "best_of_n_value", "beam", "mcts", "gumbel"] {
        assert!(methods.contains(&method), "no {method} in test_time");
    }
    assert!(first.test_time.iter().all(|p| (0.0..=1.0).contains(&p.accuracy) && p.flops > 0.0));

    // Same seed, same everything but the clock.
    let strip = |r: &Report| Report { wall_seconds: 0.0, ..r.clone() };
    assert_eq!(strip(&first), strip(&second));
    let metrics =
        |d: &str| seeded_metrics(&std::fs::read_to_string(base.join(d).join("metrics.jsonl")).unwrap()).unwrap();
    assert_eq!(metrics("a"), metrics("b"));
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn another_seed_gives_another_run() {
    let base = std::env::temp_dir().join(format!("selfplay-e2e-seed-{}", std::process::id()));
    let a = run_in(&base.join("a"), &tiny());
    let b = run_in(&base.join("b"), &RunConfig { seed: 2, ..tiny() });
    assert_ne!(
        std::fs::read_to_string(base.join("a/metrics.jsonl")).unwrap(),
        std::fs::read_to_string(base.join("b/metrics.jsonl")).unwrap()
    );
    assert_eq!(a.eval_problems, b.eval_problems);
    std::fs::remove_dir_all(&base).unwrap();
}
