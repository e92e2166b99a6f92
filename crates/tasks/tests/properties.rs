//! Property tests: everything the solver and trace writers produce passes the independent verifier.

use proptest::prelude::*;
use selfplay_reward::{CountdownVerifier, Verdict, Verifier, check_steps};
use selfplay_tasks::countdown::solver::solve;
use selfplay_tasks::countdown::stream::{Heuristic, StreamSearch, StreamStyle, stream_trace};
use selfplay_tasks::countdown::trace::optimal_trace;
use selfplay_tasks::{CountdownProblem, CountdownTask, Task};

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn every_solver_solution_verifies(
        // Small values (zeros, ones, repeats) stress the solver's special cases; large ones its search.
        nums in prop::collection::vec(prop_oneof![0u64..=4, 0u64..=120], 1..=5),
        target in prop_oneof![0u64..=4, 0u64..=150],
    ) {
        let problem = CountdownProblem { nums, target };
        if let Some(steps) = solve(&problem.nums, problem.target) {
            prop_assert_eq!(steps.len(), problem.nums.len() - 1);
            let trace = optimal_trace(&problem, &steps).expect("solver steps always build an expression");
            let reward = CountdownVerifier::default().verify(&problem, trace.as_bytes());
            prop_assert_eq!(reward.verdict, Verdict::Correct, "{:?}: {}", problem, trace);
            let check = check_steps(&problem.nums, trace.as_bytes());
            prop_assert_eq!(check.error, None);
            prop_assert_eq!(check.remaining, vec![problem.target]);
            // A breadth-first stream whose beam keeps every successor is an exhaustive best-first search over
            // the same steps: it must agree on solvability, which checks the solver's completeness.
            let stream = stream_trace(&problem, exhaustive(), usize::MAX).expect("solvable, so the stream finds it");
            let reward = CountdownVerifier::default().verify(&problem, stream.as_bytes());
            prop_assert_eq!(reward.verdict, Verdict::Correct, "{}", stream);
        } else {
            prop_assert_eq!(stream_trace(&problem, exhaustive(), usize::MAX), None);
        }
    }

    /// Every stream any style writes verifies, and replays under the step checker, backtracks included, to the
    /// target alone.
    #[test]
    fn every_stream_verifies_and_replays(
        nums in prop::collection::vec(prop_oneof![0u64..=4, 0u64..=60], 1..=4),
        target in prop_oneof![0u64..=4, 0u64..=100],
        style in prop::sample::select(vec!["dfs-target", "dfs-factors", "bfs1-target", "bfs2-factors", "bfs5-target"]),
    ) {
        let problem = CountdownProblem { nums, target };
        if let Some(stream) = stream_trace(&problem, style.parse().unwrap(), 10_000) {
            let reward = CountdownVerifier::default().verify(&problem, stream.as_bytes());
            prop_assert_eq!(reward.verdict, Verdict::Correct, "{}", stream);
            let check = check_steps(&problem.nums, format!("{stream}\n").as_bytes());
            prop_assert_eq!(check.error, None);
            prop_assert_eq!(check.remaining, vec![problem.target]);
        }
    }

    #[test]
    fn task_methods_are_total_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let task = CountdownTask::default();
        let problem = CountdownProblem { nums: vec![3, 8, 12, 2], target: 24 };
        let reward = task.reward(&problem, &bytes);
        prop_assert!([0.0, 0.1, 1.0].contains(&reward.value));
        let _ = task.answer_key(&problem, &bytes);
        let _ = task.check_steps(&problem, &bytes);
    }
}

/// Breadth-first search with a beam that keeps every successor: every state is expanded (names cap beams at
/// `MAX_BEAM`; the search itself takes any).
fn exhaustive() -> StreamStyle {
    StreamStyle { search: StreamSearch::Bfs { beam: usize::MAX }, heuristic: Heuristic::Target }
}
