//! Language-style search over sampled steps: candidate merging, MCTS through `StepSearch`, step-level beam search
//! and best-of-N / voting, on a toy task whose optimum is known: pick numbers that sum exactly to 10.

use selfplay_reward::{AnswerSelection, StepAggregation};
use selfplay_search::beam::{BeamConfig, beam_search};
use selfplay_search::best_of_n::{Generator, Judge, best_of_n, select};
use selfplay_search::language::{Candidate, StepModel, StepSearch, StepState, merge_candidates, most_visited_path};
use selfplay_search::{Algorithm, MuZeroConfig, Search, SearchConfig, SearchError, Tree};

const TARGET: u32 = 10;

/// Steps are numbers 1..=5; a step reaching 10 or more ends the solution. The policy proposes each number (and
/// number 1 twice, to exercise merging); the value model prefers sums close to but below 10; the verifier pays
/// 1 for exactly 10. `calls` counts value-model prefixes to check batching.
#[derive(Debug, Default)]
struct SumTo10 {
    with_verifier: bool,
    value_calls: usize,
}

impl StepModel for SumTo10 {
    type Step = u32;
    type Error = String;

    fn propose(&mut self, prefixes: &[&[u32]], k: usize, out: &mut [Vec<Candidate<u32>>]) -> Result<(), String> {
        for (prefix, out) in prefixes.iter().zip(out.iter_mut()) {
            let sum: u32 = prefix.iter().sum();
            for step in [1, 1, 2, 3, 4, 5].into_iter().take(k + 1) {
                out.push(Candidate { step, weight: 1.0, terminal: sum + step >= TARGET });
            }
        }
        Ok(())
    }

    fn value(&mut self, prefixes: &[&[u32]], out: &mut [f32]) -> Result<(), String> {
        self.value_calls += prefixes.len();
        for (p, o) in prefixes.iter().zip(out.iter_mut()) {
            let sum: u32 = p.iter().sum();
            *o = if sum > TARGET { -1.0 } else { sum as f32 / TARGET as f32 - 0.5 };
        }
        Ok(())
    }

    fn verify(&mut self, solution: &[u32]) -> Option<f32> {
        self.with_verifier.then(|| if solution.iter().sum::<u32>() == TARGET { 1.0 } else { 0.0 })
    }
}

#[test]
fn identical_candidates_merge_and_their_weights_add() {
    let mut c = vec![
        Candidate { step: "a", weight: 1.0, terminal: false },
        Candidate { step: "b", weight: 0.5, terminal: false },
        Candidate { step: "a", weight: 2.0, terminal: true },
        Candidate { step: "c", weight: 1.0, terminal: false },
    ];
    merge_candidates(&mut c, 2);
    assert_eq!(c.len(), 2);
    assert_eq!((c[0].step, c[0].weight, c[0].terminal), ("a", 3.0, true));
    assert_eq!((c[1].step, c[1].weight), ("b", 0.5));
}

#[test]
fn mcts_over_steps_finds_an_exact_solution() {
    // Six slots, six proposals of which two are the same step: five distinct candidates, slot 5 stays invalid.
    let k = 6;
    let mut step_search = StepSearch::new(SumTo10 { with_verifier: true, value_calls: 0 }, k).expect("k > 0");
    let mut tree: Tree<StepState<u32>> = Tree::new(k);
    step_search.reset_root(&mut tree, Vec::new()).expect("root");
    // Duplicated "1" merged into one slot with twice the prior of each other step.
    let p1 = tree.prior(0, 0).expect("slot 0");
    let p2 = tree.prior(0, 1).expect("slot 1");
    assert!((p1 - 2.0 * p2).abs() < 1e-5, "{p1} {p2}");
    assert!(tree.is_valid(0, 4) && !tree.is_valid(0, 5));
    let mut config = SearchConfig::muzero(300);
    config.algorithm = Algorithm::MuZero(MuZeroConfig { dirichlet_fraction: 0.0, ..Default::default() });
    config.leaves_per_tree = 4;
    let mut search = Search::new(config, k).expect("config");
    search.run(std::slice::from_mut(&mut tree), &mut step_search, 0).map_err(SearchError::flatten).expect("search");
    let (steps, terminal) = most_visited_path(&tree).expect("a path");
    assert!(terminal, "{steps:?}");
    assert_eq!(steps.iter().sum::<u32>(), TARGET, "{steps:?}");
}

/// A wider root: the root samples `root_k` candidates into a tree of that many slots, inner nodes sample `k` and
/// leave the slots past `k` invalid; the search still finds the exact solution.
#[test]
fn a_wider_root_samples_more_first_steps_than_inner_nodes() {
    let (k, root_k) = (2, 5);
    let model = SumTo10 { with_verifier: true, value_calls: 0 };
    let mut step_search = StepSearch::with_root_candidates(model, k, root_k).expect("k > 0");
    assert_eq!(step_search.num_actions(), root_k);
    let mut tree: Tree<StepState<u32>> = Tree::new(root_k);
    step_search.reset_root(&mut tree, Vec::new()).expect("root");
    // Six proposals for five slots, "1" twice: five distinct first steps.
    assert_eq!(tree.state(0).expect("root").candidates.iter().map(|c| c.step).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    let mut search = Search::new(SearchConfig::muzero(100), root_k).expect("config");
    search.run(std::slice::from_mut(&mut tree), &mut step_search, 0).map_err(SearchError::flatten).expect("search");
    for node in 1..tree.num_nodes() {
        // k + 1 = 3 proposals, "1" twice: two distinct candidates in the first two slots.
        let candidates = &tree.state(node).expect("expanded").candidates;
        assert!(candidates.len() <= k, "node {node}: {candidates:?}");
        assert!((k..root_k).all(|a| !tree.is_valid(node, a)), "node {node}");
    }
    let (steps, terminal) = most_visited_path(&tree).expect("a path");
    assert!(terminal && steps.iter().sum::<u32>() == TARGET, "{steps:?}");
    assert!(StepSearch::with_root_candidates(SumTo10::default(), 2, 0).is_err());
}

#[test]
fn beam_search_finds_an_exact_solution_and_keeps_steps_distinct() {
    let mut model = SumTo10 { with_verifier: true, value_calls: 0 };
    let config = BeamConfig { beam_width: 3, expansions_per_beam: 5, max_steps: 12, ..Default::default() };
    let beams = beam_search(&mut model, &[], &config).expect("beam search");
    assert!(beams.len() <= 3 && !beams.is_empty());
    assert!(beams[0].finished);
    assert_eq!(beams[0].steps.iter().sum::<u32>(), TARGET, "{:?}", beams[0]);
    assert!(beams.windows(2).all(|w| w[0].score >= w[1].score));
    // Width 1 with distinct steps and Min aggregation: the score is the minimum step score.
    let config = BeamConfig { beam_width: 1, aggregation: StepAggregation::Min, ..config };
    let beams = beam_search(&mut model, &[], &config).expect("beam search");
    let b = &beams[0];
    assert_eq!(b.score, b.step_scores.iter().copied().fold(f32::INFINITY, f32::min));
}

#[test]
fn without_a_verifier_terminal_solutions_are_scored_by_the_value_model() {
    let mut model = SumTo10::default();
    let config = BeamConfig { beam_width: 2, expansions_per_beam: 5, max_steps: 12, ..Default::default() };
    let beams = beam_search(&mut model, &[3, 3], &config).expect("beam search");
    assert!(model.value_calls > 0);
    assert_eq!(beams[0].steps[..2], [3, 3]);
    // The value model rates 10 at 0.5, the best reachable: the winner still sums to 10.
    assert_eq!(beams[0].steps.iter().sum::<u32>(), TARGET);
    let bad = BeamConfig { beam_width: 0, ..config };
    assert!(matches!(beam_search(&mut model, &[], &bad), Err(SearchError::InvalidConfig(_))));
}

/// A policy that never proposes anything.
struct Mute;

impl StepModel for Mute {
    type Step = u32;
    type Error = String;
    fn propose(&mut self, _: &[&[u32]], _: usize, _: &mut [Vec<Candidate<u32>>]) -> Result<(), String> {
        Ok(())
    }
    fn value(&mut self, _: &[&[u32]], out: &mut [f32]) -> Result<(), String> {
        out.fill(0.0);
        Ok(())
    }
}

#[test]
fn dead_ends_are_reported_not_dropped() {
    let beams = beam_search(&mut Mute, &[4], &BeamConfig::default()).expect("beam search");
    assert_eq!(beams.len(), 1);
    assert_eq!((beams[0].steps.as_slice(), beams[0].finished), (&[4][..], true));
    let mut tree: Tree<StepState<u32>> = Tree::new(3);
    let err = StepSearch::new(Mute, 3).expect("k").reset_root(&mut tree, vec![4]);
    assert_eq!(err, Err(SearchError::NoValidAction));
}

/// Candidates are (answer, outcome score, step scores).
type Cand = (Option<u32>, f32, Vec<f32>);

struct Fixed(Vec<Cand>);

impl Generator for Fixed {
    type Candidate = Cand;
    type Error = String;
    fn generate(&mut self, n: usize, out: &mut Vec<Cand>) -> Result<(), String> {
        out.extend(self.0.iter().take(n).cloned());
        Ok(())
    }
}

struct ReadScores;

impl Judge<Cand> for ReadScores {
    type Answer = u32;
    type Error = String;
    fn answer(&self, c: &Cand) -> Option<u32> {
        c.0
    }
    fn outcome_scores(&mut self, c: &[Cand], out: &mut Vec<f32>) -> Result<(), String> {
        out.extend(c.iter().map(|c| c.1));
        Ok(())
    }
    fn step_scores(&mut self, c: &[Cand], out: &mut Vec<Vec<f32>>) -> Result<(), String> {
        out.extend(c.iter().map(|c| c.2.clone()));
        Ok(())
    }
}

#[test]
fn best_of_n_and_votes_choose_as_the_rule_says() {
    let cands: Vec<Cand> = vec![
        (Some(7), 0.2, vec![0.9, 0.1]),
        (Some(3), 0.9, vec![0.6, 0.6]),
        (Some(7), 0.3, vec![0.8, 0.2]),
        (None, 1.0, vec![1.0, 1.0]),
        (Some(5), 0.5, vec![0.7, 0.9]),
    ];
    let mut generator = Fixed(cands.clone());
    let pick = |rule| best_of_n(&mut Fixed(cands.clone()), &mut ReadScores, 5, rule).expect("select").chosen;
    assert_eq!(pick(AnswerSelection::MajorityVote), Some(0)); // 7 twice
    assert_eq!(pick(AnswerSelection::OrmMax), Some(3)); // the highest score, even without an answer
    assert_eq!(pick(AnswerSelection::OrmVote), Some(1)); // 3: 0.9 > 7: 0.5 > 5: 0.5
    assert_eq!(pick(AnswerSelection::PrmMinMax), Some(3)); // min step scores: .1 .6 .2 1 .7
    assert_eq!(pick(AnswerSelection::PrmLastMax), Some(3));
    assert_eq!(pick(AnswerSelection::PrmLastVote), Some(4)); // 5: 0.9 > 3: 0.6 > 7: 0.3
    let sel = best_of_n(&mut generator, &mut ReadScores, 5, AnswerSelection::MajorityVote).expect("select");
    assert_eq!(sel.answers, vec![Some(7), Some(3), Some(7), None, Some(5)]);
    assert!(matches!(
        best_of_n(&mut generator, &mut ReadScores, 0, AnswerSelection::OrmMax),
        Err(SearchError::InvalidConfig(_))
    ));
    assert!(matches!(
        best_of_n(&mut generator, &mut ReadScores, 6, AnswerSelection::OrmMax),
        Err(SearchError::Shape { .. })
    ));
    assert_eq!(select(&mut ReadScores, &[] as &[Cand], AnswerSelection::MajorityVote), Ok(None));
}
