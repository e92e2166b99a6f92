//! `[rl.propose]` in a whole run: policy initialisation teaches proposing (`[sft] proposer_every`), RL steps log
//! what was proposed, and a run that could not propose is refused before it starts.

use super::{Outcome, RunConfig, run};
use crate::engine::RunStart;
use crate::o1::report::Report;
use crate::o1::rl::{ProposalStats, StepMetrics};

fn proposing_config() -> RunConfig {
    let mut config = RunConfig::tiny();
    config.sft.proposer_every = 4;
    config.rl.propose.share = 0.5;
    config.rl.steps = 3;
    config
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("selfplay-o1-propose-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn finish(config: &RunConfig, dir: &std::path::Path, start: RunStart) -> Box<Report> {
    let Outcome::Finished(report) = run(config, dir, start, &|_, _| false).unwrap() else {
        panic!("nothing asked it to stop")
    };
    report
}

/// The RL steps' proposal stats, from `metrics.jsonl`.
fn logged_proposals(dir: &std::path::Path) -> Vec<ProposalStats> {
    let metrics = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    metrics
        .lines()
        .filter_map(|line| serde_json::from_str::<StepMetrics>(line).ok())
        .filter_map(|m| m.proposals)
        .collect()
}

#[test]
fn a_proposing_run_logs_its_proposals_and_resumes_exactly() {
    let config = proposing_config();
    let straight = scratch("straight");
    let report = finish(&config, &straight, RunStart::New);
    let proposer = report.sft_traces.iter().find(|s| s.kind == "proposer").expect("proposer examples");
    assert_eq!(proposer.problems, config.task.train_problems.div_ceil(4));
    assert_eq!(proposer.traces + proposer.missed, proposer.problems);
    let proposals = logged_proposals(&straight);
    assert_eq!(proposals.len(), 3, "every RL step proposes");
    let wanted = config.rl.propose.proposals(config.rl.prompts_per_step);
    for p in &proposals {
        assert_eq!(p.proposed, wanted);
        assert_eq!(p.certified + p.malformed + p.out_of_range + p.held_out + p.unsolvable, p.proposed);
        assert!(p.distinct <= p.certified);
    }
    // The train curve's points (every `eval.every` steps) hold every step's proposals once.
    let mut logged = ProposalStats::default();
    proposals.iter().for_each(|p| logged.absorb(p));
    let mut curve = ProposalStats::default();
    report.train_curve.iter().filter_map(|p| p.proposals.as_ref()).for_each(|p| curve.absorb(p));
    assert_eq!((curve.proposed, curve.certified, curve.distinct), (logged.proposed, logged.certified, logged.distinct));
    assert!(report.train_curve[0].proposals.is_none(), "nothing proposed before RL");

    // Stopped after its first RL step and resumed: the same model, the same record of proposals.
    let stopped = scratch("stopped");
    let outcome = run(&config, &stopped, RunStart::New, &|stage, step| stage == "rl" && step == 1).unwrap();
    assert!(matches!(outcome, Outcome::Interrupted { .. }), "{outcome:?}");
    let resumed = finish(&config, &stopped, RunStart::Resume);
    assert_eq!(resumed.train_curve, report.train_curve);
    let weights = |dir: &std::path::Path| std::fs::read(dir.join("model/model.safetensors")).unwrap();
    assert_eq!(weights(&stopped), weights(&straight));
    for dir in [straight, stopped] {
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
fn proposing_needs_a_policy_taught_to_propose() {
    let mut config = proposing_config();
    config.sft.proposer_every = 0;
    let message = config.validate().unwrap_err().to_string();
    assert!(message.contains("sft.proposer_every"), "{message}");
    config.rl.steps = 0;
    config.validate().expect("no RL, nothing proposed");
    let mut bad = proposing_config();
    bad.rl.propose.share = 2.0;
    assert!(bad.validate().unwrap_err().to_string().contains("propose.share"));
}
