//! The o1 recipe data-parallel over ranks (threads standing in for MPI processes): policy initialisation, RL
//! (rollouts split across ranks, the update over shards) and the evaluation, on two ranks, end where one process
//! ends, and rank 0 alone writes the run.

use selfplay_collective::ThreadWorld;
use selfplay_model::{CpuBackend, ModelDir};

use super::{Outcome, RunConfig, run, run_on};
use crate::engine::RunStart;

#[test]
fn a_run_over_two_ranks_ends_where_one_process_ends() {
    let mut config = RunConfig::tiny();
    // Three prompts over two ranks: the shards differ in size.
    config.rl.prompts_per_step = 3;
    let dir = |name: &str| std::env::temp_dir().join(format!("selfplay-o1-ranks-{name}-{}", std::process::id()));
    let (one_dir, two_dir) = (dir("one"), dir("two"));
    let _ = (std::fs::remove_dir_all(&one_dir), std::fs::remove_dir_all(&two_dir));
    let Outcome::Finished(one) = run(&config, &one_dir, RunStart::New, &|_, _| false).unwrap() else {
        panic!("nothing asked it to stop")
    };
    let reports = ThreadWorld::run(2, |rank| {
        match run_on(CpuBackend, rank, &config, &two_dir, RunStart::New, &|_, _| false).unwrap() {
            Outcome::Finished(report) => report,
            Outcome::Interrupted { .. } => panic!("nothing asked it to stop"),
        }
    });
    for report in &reports {
        assert_eq!(report.sft_accuracy, one.sft_accuracy);
        assert_eq!(report.rl_accuracy, one.rl_accuracy);
        assert_eq!(report.train_curve.len(), one.train_curve.len());
    }
    for name in ["model", "sft_model"] {
        let weights = |d: &std::path::Path| ModelDir::load(&d.join(name)).unwrap().weights;
        let (two, one) = (weights(&two_dir), weights(&one_dir));
        let scale = one.as_flat().iter().fold(0.0f32, |m, x| m.max(x.abs()));
        let difference = two.as_flat().iter().zip(one.as_flat()).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
        assert!(difference < 1e-6, "{name}: the networks differ by {difference:e}");
    }
    let lines = |d: &std::path::Path| std::fs::read_to_string(d.join("metrics.jsonl")).unwrap().lines().count();
    assert_eq!(lines(&two_dir), lines(&one_dir), "rank 0 alone logs");
    std::fs::remove_dir_all(&one_dir).unwrap();
    std::fs::remove_dir_all(&two_dir).unwrap();
}
