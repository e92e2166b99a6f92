//! The recipe on search streams: policy initialisation on a mix of optimal traces and search streams, its trace
//! statistics and the thinking-length curve in the report, and a clear error when no trace fits.

use super::config::{ModelShape, SftSettings};
use super::{O1Error, Outcome, RunConfig, run};
use crate::engine::RunStart;
use crate::o1::sft::SftError;

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("selfplay-o1-streams-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A tiny run whose completions may hold a 3-number search stream.
fn streams_config(traces: &[&str]) -> RunConfig {
    let tiny = RunConfig::tiny();
    RunConfig {
        max_new_tokens: 64,
        model: ModelShape { context: 96, ..tiny.model.clone() },
        sft: SftSettings { traces: traces.iter().map(|t| t.parse().unwrap()).collect(), ..tiny.sft.clone() },
        ..tiny
    }
}

#[test]
fn mixed_traces_train_and_the_report_shows_them_and_the_thinking_curve() {
    let dir = scratch("mixed");
    let config = streams_config(&["optimal", "dfs-target"]);
    let Outcome::Finished(report) = run(&config, &dir, RunStart::New, &|_, _| false).unwrap() else {
        panic!("nothing asked it to stop")
    };
    let kinds: Vec<&str> = report.sft_traces.iter().map(|t| t.kind.as_str()).collect();
    assert_eq!(kinds, ["optimal", "dfs-target"]);
    assert_eq!(report.sft_traces.iter().map(|t| t.problems).sum::<usize>(), config.task.train_problems);
    assert!(report.sft_traces[1].mean_tokens > report.sft_traces[0].mean_tokens, "streams are longer");
    let budgets: Vec<usize> = report.thinking.iter().map(|p| p.max_tokens).collect();
    assert_eq!(budgets, [8, 16, 32, 64]);
    assert_eq!(report.thinking.last().unwrap().accuracy, report.rl_accuracy, "the full budget is greedy decoding");
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("| dfs-target | 100 |") && md.contains("## Thinking length"), "{md}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn streams_that_never_fit_are_a_clear_error() {
    let dir = scratch("too-long");
    let config = RunConfig { max_new_tokens: 8, ..streams_config(&["bfs5-target"]) };
    let error = run(&config, &dir, RunStart::New, &|_, _| false).unwrap_err();
    assert!(matches!(error, O1Error::Sft(SftError::NoTraces(8))), "{error}");
    assert!(error.to_string().contains("max_new_tokens = 8"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `[rl] steps = 0` measures policy initialisation alone: the report's RL accuracy is the SFT accuracy and the
/// thinking curve is the SFT policy's.
#[test]
fn no_rl_steps_reports_the_initialised_policy() {
    let dir = scratch("no-rl");
    let mut config = streams_config(&["dfs-target"]);
    config.rl.steps = 0;
    let Outcome::Finished(report) = run(&config, &dir, RunStart::New, &|_, _| false).unwrap() else {
        panic!("nothing asked it to stop")
    };
    assert_eq!(report.train_curve.len(), 1);
    assert_eq!(report.rl_accuracy, report.sft_accuracy);
    assert_eq!(report.thinking.last().unwrap().accuracy, report.sft_accuracy);
    let rl_lines = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap().matches("\"stage\":\"rl\"").count();
    assert_eq!(rl_lines, 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
