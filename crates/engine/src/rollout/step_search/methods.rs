//! Running a step search over a problem set: which solution each method returns, and what it cost.
//!
//! Budget semantics: MCTS and Gumbel run `budget` simulations per problem (the root's evaluation comes on top);
//! beam search keeps `budget` beams, each extended by K sampled steps. Every budget is a fresh search; the
//! expansions a smaller budget already made are reused from the policy's cache (they are the same samples), but
//! each search is charged every token it asked for, so the reported tokens and FLOPs are those of running that
//! method at that budget alone (an expansion is charged what computing it first cost: with KV reuse, the part of
//! its prefix no earlier expansion had cached).
//!
//! The returned solution, judged by the task afterwards (accuracy is whether it is correct):
//! * with the verifier, a finished solution the verifier accepts, when the search generated one (the
//!   highest-scoring; as in `best_of_n`, the verifier is the oracle that recognises a solution). For the trees
//!   that includes finished steps proposed at a node but not yet expanded: their tokens are already paid for
//!   (for beam search, the final beams that finished);
//! * without the verifier, by default ([`SearchSettings::vote`]), the answer with the largest vote over the same
//!   finished solutions, each weighted by its judged value times the times it was sampled;
//! * otherwise the search's recommendation: the best beam, or the most visited path (for Gumbel, below the
//!   Sequential Halving winner), completed greedily when it is not finished yet. The completion's tokens are
//!   charged too.

use selfplay_model::HostAccess;
use selfplay_model::Model;
use selfplay_model::tokenizer::Tokenizer;
use selfplay_reward::{StepAggregation, weighted_vote};
use selfplay_search::beam::{BeamConfig, beam_search};
use selfplay_search::language::{StepSearch, StepState, most_visited_path};
use selfplay_search::{Algorithm, GumbelConfig, MuZeroConfig, Search, SearchConfig, SearchError, Tree};
use selfplay_tasks::Task;

use super::cost::Spent;
use super::policy::{Step, TransformerPolicy};
use super::{SearchSettings, StepSearchError};
use crate::rollout::method::{Method, Outcomes, TestTimePoint};

/// One problem's search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Solved {
    /// The returned completion (without EOS), e.g. a training example for expert iteration.
    pub completion: String,
    /// Its token ids, EOS included when it ended with one: what expert iteration from search clones.
    pub completion_tokens: Vec<u32>,
    /// Whether the task judges it correct.
    pub correct: bool,
    /// Every token generated for the problem: all proposals, and the greedy completion if one was needed.
    pub tokens: usize,
    /// Positions run through the model for the problem (prefills of what the KV cache lacked, and decodes).
    pub forward_tokens: usize,
    /// Positions a search without KV reuse would have run for the same proposals ([`Spent::recompute_tokens`]).
    pub recompute_tokens: usize,
    /// Forward FLOPs spent on the problem: those of `forward_tokens`.
    pub flops: f64,
}

/// A solution the search returns, before judging.
struct Pick {
    steps: Vec<Step>,
    /// Whether it has ended (else it is completed greedily).
    finished: bool,
}

/// Runs `method` at `budget` on every problem; `out[i]` is problem `i`'s result.
#[allow(clippy::too_many_arguments)]
pub fn solve<B: HostAccess, T: Task>(
    model: &Model<B>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    method: Method,
    budget: u32,
    settings: &SearchSettings,
    max_new_tokens: usize,
    seed: u64,
) -> Result<Vec<Solved>, StepSearchError> {
    if problems.is_empty() {
        return Err(StepSearchError::InvalidInput("no problems to search"));
    }
    let mut policy = TransformerPolicy::new(model, tokenizer, task, problems, settings, max_new_tokens, seed)?;
    solve_with(&mut policy, method, budget)
}

/// The test-time curve of `method`: accuracy, mean tokens and mean FLOPs per problem at every budget.
#[allow(clippy::too_many_arguments)]
pub fn search_test_time<B: HostAccess, T: Task>(
    model: &Model<B>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    method: Method,
    budgets: &[u32],
    settings: &SearchSettings,
    max_new_tokens: usize,
    seed: u64,
) -> Result<Vec<TestTimePoint>, StepSearchError> {
    search_test_time_methods(model, tokenizer, task, problems, &[method], budgets, settings, max_new_tokens, seed)
}

/// The curves of several methods at once, in the order of `methods`. Same results as one [`search_test_time`]
/// call per method, but the methods share one cache of expansions (the same prefix gets the same samples in every
/// method), so the wall time is about that of expanding the union of their trees.
#[allow(clippy::too_many_arguments)]
pub fn search_test_time_methods<B: HostAccess, T: Task>(
    model: &Model<B>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    methods: &[Method],
    budgets: &[u32],
    settings: &SearchSettings,
    max_new_tokens: usize,
    seed: u64,
) -> Result<Vec<TestTimePoint>, StepSearchError> {
    let sweep = search_sweep(model, tokenizer, task, problems, methods, budgets, settings, max_new_tokens, seed)?;
    Ok(sweep.into_iter().map(|(point, _)| point).collect())
}

/// [`search_test_time_methods`]'s points, each with its outcomes problem by problem.
#[allow(clippy::too_many_arguments)]
pub fn search_sweep<B: HostAccess, T: Task>(
    model: &Model<B>,
    tokenizer: &dyn Tokenizer,
    task: &T,
    problems: &[T::Problem],
    methods: &[Method],
    budgets: &[u32],
    settings: &SearchSettings,
    max_new_tokens: usize,
    seed: u64,
) -> Result<Vec<(TestTimePoint, Outcomes)>, StepSearchError> {
    let mut policy = TransformerPolicy::new(model, tokenizer, task, problems, settings, max_new_tokens, seed)?;
    sweep_with(&mut policy, methods, budgets)
}

/// [`search_sweep`] with a policy the caller built: one judged by a value model
/// ([`TransformerPolicy::judged_by`]), for instance.
pub fn sweep_with<B: HostAccess, T: Task>(
    policy: &mut TransformerPolicy<'_, T, B>,
    methods: &[Method],
    budgets: &[u32],
) -> Result<Vec<(TestTimePoint, Outcomes)>, StepSearchError> {
    if policy.num_distinct() == 0 {
        return Err(StepSearchError::InvalidInput("no problems to search"));
    }
    if let Some(&other) = methods.iter().find(|m| !m.is_search()) {
        return Err(StepSearchError::NotASearch(other));
    }
    if budgets.is_empty() || budgets.contains(&0) {
        return Err(StepSearchError::InvalidInput("budgets must be non-empty and each at least 1"));
    }
    let use_verifier = policy.settings().use_verifier;
    // Beam search runs one problem at a time (narrow batches); the trees expand every problem together. Running
    // the trees first lets beam search find most of its expansions cached. Results do not depend on the order.
    let mut order: Vec<usize> = (0..methods.len()).collect();
    order.sort_by_key(|&i| methods[i] == Method::Beam);
    let mut curves: Vec<Vec<(TestTimePoint, Outcomes)>> = vec![Vec::new(); methods.len()];
    for i in order {
        for &budget in budgets {
            let solved = solve_with(policy, methods[i], budget)?;
            let n = solved.len() as f64;
            let point = TestTimePoint {
                method: methods[i].name().into(),
                budget,
                tokens: solved.iter().map(|s| s.tokens as f64).sum::<f64>() / n,
                forward_tokens: solved.iter().map(|s| s.forward_tokens as f64).sum::<f64>() / n,
                recompute_tokens: solved.iter().map(|s| s.recompute_tokens as f64).sum::<f64>() / n,
                flops: solved.iter().map(|s| s.flops).sum::<f64>() / n,
                accuracy: solved.iter().filter(|s| s.correct).count() as f64 / n,
            };
            let outcomes = Outcomes {
                method: methods[i].name().into(),
                budget,
                uses_verifier: use_verifier,
                correct: solved.iter().map(|s| s.correct).collect(),
                flops: solved.iter().map(|s| s.flops).collect(),
            };
            curves[i].push((point, outcomes));
        }
    }
    Ok(curves.concat())
}

/// [`solve`] with a policy the caller built (one judged by a value model, for instance): one fresh search of
/// every distinct problem, its picks completed and judged, spread back over the problems.
pub fn solve_with<B: HostAccess, T: Task>(
    policy: &mut TransformerPolicy<'_, T, B>,
    method: Method,
    budget: u32,
) -> Result<Vec<Solved>, StepSearchError> {
    if budget == 0 {
        return Err(StepSearchError::InvalidInput("budget must be at least 1"));
    }
    policy.begin_search();
    let picks = match method {
        Method::Beam => beam(policy, budget as usize)?,
        Method::Mcts | Method::Gumbel => tree_search(policy, method, budget as usize)?,
        other => return Err(StepSearchError::NotASearch(other)),
    };
    let (open, done): (Vec<_>, Vec<_>) = picks.into_iter().enumerate().partition(|(_, p)| !p.finished);
    let finished = policy.finish_greedily(open.iter().map(|(u, p)| (*u, p.steps.clone())).collect())?;
    let mut solutions: Vec<(usize, Vec<Step>)> = done.into_iter().map(|(u, p)| (u, p.steps)).collect();
    solutions.extend(open.into_iter().map(|(u, _)| u).zip(finished));
    solutions.sort_by_key(|(u, _)| *u);
    let mut distinct = Vec::with_capacity(solutions.len());
    for (u, steps) in &solutions {
        let judged = policy.judge(steps)?;
        let Spent { tokens, forward_tokens, recompute_tokens, flops } = policy.spent(*u);
        distinct.push(Solved {
            completion: judged.text,
            completion_tokens: policy.completion_tokens(steps),
            correct: judged.correct,
            tokens,
            forward_tokens,
            recompute_tokens,
            flops,
        });
    }
    policy
        .distinct_of_problems()
        .iter()
        .map(|&u| distinct.get(u).cloned().ok_or(StepSearchError::InvalidInput("problem without a search")))
        .collect()
}

/// Beam search of each distinct problem with beam width `width` and K expansions per beam.
fn beam<B: HostAccess, T: Task>(
    policy: &mut TransformerPolicy<'_, T, B>,
    width: usize,
) -> Result<Vec<Pick>, StepSearchError> {
    let config = BeamConfig {
        beam_width: width,
        expansions_per_beam: policy.candidates(),
        // Every step holds at least one token.
        max_steps: policy.max_new_tokens(),
        // The value head (or verifier) scores the whole prefix, so the newest step's score is the beam's.
        aggregation: StepAggregation::Last,
        distinct_steps: true,
    };
    let use_verifier = policy.settings().use_verifier;
    let mut picks = Vec::with_capacity(policy.num_distinct());
    for u in 0..policy.num_distinct() {
        let root = policy.root(u);
        let beams = beam_search(&mut &mut *policy, &root, &config)?;
        let verified = if use_verifier {
            first_accepted(policy, beams.iter().map(|b| &b.steps))?
        } else if policy.settings().vote {
            let finished = beams.iter().filter(|b| b.finished).map(|b| (b.steps.clone(), 1.0));
            voted(policy, finished.collect())?
        } else {
            None
        };
        picks.push(match (verified, beams.into_iter().next()) {
            (Some(steps), _) => Pick { steps, finished: true },
            (None, Some(best)) => Pick { steps: best.steps, finished: best.finished },
            (None, None) => Pick { steps: root, finished: false },
        });
    }
    Ok(picks)
}

/// MCTS or Gumbel MuZero with `simulations` simulations on every distinct problem's tree, all trees' leaves
/// evaluated together.
fn tree_search<B: HostAccess, T: Task>(
    policy: &mut TransformerPolicy<'_, T, B>,
    method: Method,
    simulations: usize,
) -> Result<Vec<Pick>, StepSearchError> {
    let k = policy.candidates();
    let root_k = match policy.settings().root_widening {
        0 => k,
        per_candidate => k.max(simulations.div_ceil(per_candidate)),
    };
    let roots: Vec<Vec<Step>> = (0..policy.num_distinct()).map(|u| policy.root(u)).collect();
    let root_refs: Vec<&[Step]> = roots.iter().map(Vec::as_slice).collect();
    policy.prefetch(&root_refs, root_k)?;
    let use_verifier = policy.settings().use_verifier;
    let mut search = Search::new(search_config(method, simulations, root_k), root_k).map_err(SearchError::widen)?;
    let mut trees: Vec<Tree<StepState<Step>>> = Vec::with_capacity(roots.len());
    {
        let mut evaluator = StepSearch::with_root_candidates(&mut *policy, k, root_k).map_err(SearchError::widen)?;
        for root in roots {
            let mut tree = Tree::new(root_k);
            evaluator.reset_root(&mut tree, root)?;
            trees.push(tree);
        }
        search.run(&mut trees, &mut evaluator, 0).map_err(SearchError::flatten)?;
    }
    let mut picks = Vec::with_capacity(trees.len());
    for tree in &mut trees {
        // Every finished solution the search generated, expanded into a node or not (its tokens are paid for), with
        // the times it was sampled there; collected only when the verifier or the vote reads them.
        let finished: Vec<(Vec<Step>, f32)> = if !use_verifier && !policy.settings().vote {
            Vec::new()
        } else {
            (0..tree.num_nodes())
                .filter_map(|n| tree.state(n))
                .flat_map(|s| {
                    s.candidates.iter().filter(|c| c.terminal).map(|c| {
                        let mut steps = s.steps.clone();
                        steps.push(c.step.clone());
                        (steps, c.weight)
                    })
                })
                .collect()
        };
        let chosen = if use_verifier {
            first_accepted(policy, finished.iter().map(|(steps, _)| steps))?
        } else {
            voted(policy, finished)?
        };
        if let Some(steps) = chosen {
            picks.push(Pick { steps, finished: true });
            continue;
        }
        if method == Method::Gumbel {
            // Gumbel's recommendation at the root is the Sequential Halving winner, not the most visited action.
            let action = search.policy(tree).map_err(SearchError::widen)?.action;
            tree.advance(action).map_err(SearchError::widen)?;
        }
        let (steps, finished) = most_visited_path(tree).ok_or(SearchError::EmptyTree)?;
        picks.push(Pick { steps, finished });
    }
    Ok(picks)
}

/// Test-time search draws no noise (no Dirichlet noise, Gumbel scale 0): the proposals hold all the randomness.
/// Gumbel considers every candidate at the root (at most `root_k`).
fn search_config(method: Method, simulations: usize, root_k: usize) -> SearchConfig {
    let algorithm = match method {
        Method::Gumbel => Algorithm::GumbelMuZero(GumbelConfig {
            max_num_considered_actions: root_k,
            gumbel_scale: 0.0,
            ..GumbelConfig::default()
        }),
        _ => Algorithm::MuZero(MuZeroConfig { dirichlet_fraction: 0.0, temperature: 0.0, ..MuZeroConfig::default() }),
    };
    SearchConfig { algorithm, ..SearchConfig::muzero(simulations) }
}

/// With [`SearchSettings::vote`]: the finished solution [`vote_pick`] picks among `solutions` (each with the times it
/// was sampled); `None` without the setting or when no solution states an answer.
fn voted<B: HostAccess, T: Task>(
    policy: &TransformerPolicy<'_, T, B>,
    solutions: Vec<(Vec<Step>, f32)>,
) -> Result<Option<Vec<Step>>, StepSearchError> {
    if !policy.settings().vote || solutions.is_empty() {
        return Ok(None);
    }
    let answers = solutions.iter().map(|(steps, _)| policy.answer_key(steps)).collect::<Result<Vec<_>, _>>()?;
    let values: Vec<f32> = solutions.iter().map(|(steps, _)| steps.last().map_or(f32::NAN, |s| s.value)).collect();
    let counts: Vec<f32> = solutions.iter().map(|(_, count)| *count).collect();
    Ok(vote_pick(&answers, &values, &counts).and_then(|i| solutions.into_iter().nth(i)).map(|(steps, _)| steps))
}

/// The answer with the largest vote, each candidate weighted by its value clamped to [0, 1] times its count (a
/// non-finite value or count votes nothing), and among that answer's candidates the highest-valued one (the first on
/// ties; a NaN value never preferred). `None` when no candidate states an answer or the lengths differ.
pub fn vote_pick<K: Ord>(answers: &[Option<K>], values: &[f32], counts: &[f32]) -> Option<usize> {
    if values.len() != answers.len() || counts.len() != answers.len() {
        return None;
    }
    let weights: Vec<f32> = values.iter().zip(counts).map(|(v, c)| v.clamp(0.0, 1.0) * c).collect();
    let winner = weighted_vote(answers, &weights)?;
    let rank = |i: usize| if values[i].is_nan() { f32::NEG_INFINITY } else { values[i] };
    (0..answers.len())
        .filter(|&i| answers[i] == answers[winner])
        .max_by(|&a, &b| rank(a).total_cmp(&rank(b)).then(b.cmp(&a)))
}

/// The highest-scoring solution among `solutions` that the task accepts (the first on ties), if any.
fn first_accepted<'s, B: HostAccess, T: Task>(
    policy: &TransformerPolicy<'_, T, B>,
    solutions: impl Iterator<Item = &'s Vec<Step>>,
) -> Result<Option<Vec<Step>>, StepSearchError> {
    let mut best: Option<(f32, &Vec<Step>)> = None;
    for steps in solutions {
        let judged = policy.judge(steps)?;
        if judged.correct && best.is_none_or(|(score, _)| judged.score > score) {
            best = Some((judged.score, steps));
        }
    }
    Ok(best.map(|(_, steps)| steps.clone()))
}

#[cfg(test)]
mod tests {
    use super::vote_pick;

    /// Two middling votes for one answer outweigh one confident vote for another; clamping bounds a value past 1;
    /// counts multiply; NaN votes nothing and is never picked; the highest-valued candidate of the winner is returned.
    #[test]
    fn the_vote_weighs_values_and_counts() {
        let a = Some("a");
        let b = Some("b");
        assert_eq!(vote_pick(&[b, a, a], &[0.7, 0.4, 0.45], &[1.0, 1.0, 1.0]), Some(2));
        assert_eq!(vote_pick(&[b, a, a], &[0.7, 0.4, 0.45], &[3.0, 1.0, 1.0]), Some(0));
        assert_eq!(vote_pick(&[b, a], &[5.0, 0.9], &[1.0, 1.0]), Some(0), "5.0 counts as 1.0");
        assert_eq!(vote_pick(&[a, a, b], &[f32::NAN, 0.3, 0.2], &[1.0, 1.0, 1.0]), Some(1));
        assert_eq!(vote_pick(&[None, b], &[0.9, 0.1], &[1.0, 1.0]), Some(1), "no answer never wins");
        assert_eq!(vote_pick(&[a, a], &[0.5, 0.5], &[1.0, 1.0]), Some(0), "ties go to the first");
        assert_eq!(vote_pick::<&str>(&[None], &[0.9], &[1.0]), None);
        assert_eq!(vote_pick(&[a], &[0.9], &[]), None);
    }
}
