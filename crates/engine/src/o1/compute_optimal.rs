//! Compute-optimal test-time scaling (Snell et al. 2024): choose the method and budget per problem from the policy's
//! own estimate of the problem's difficulty, instead of one method and budget for all.
//!
//! The problems are binned by the estimate (its quantiles), and each bin gets the option (a method at a budget)
//! that maximises the bin's accuracy minus a price `λ` times its mean FLOPs per problem; sweeping `λ` traces the
//! policy's accuracy against mean FLOPs. Because a bin's choice does not affect another's, the per-bin maximum is
//! the allocation's maximum: every point is the best the estimate allows at its own average compute (for the
//! problems it was fitted on).
//!
//! To be honest about what the estimate predicts, the allocation is *cross-fitted*: the problems are split in two
//! folds by index parity; the bins' edges and choices are fitted on one fold and judged on the other, and the
//! other way round, so no problem's own outcome ever picks its option. The sweep already runs every option on every
//! held-out problem, so the policy costs no generation of its own.

use serde::{Deserialize, Serialize};

use crate::rollout::Outcomes;

/// One point of the compute-optimal curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComputeOptimalPoint {
    /// Whether the options could consult the verifier.
    pub verifier: bool,
    /// The price of a FLOP the allocation was made at.
    pub lambda: f64,
    /// Mean FLOPs per problem over all problems, each at the option its fold's allocation chose.
    pub flops: f64,
    /// Fraction of all problems solved that way.
    pub accuracy: f64,
    /// The option each difficulty bin got on the first fold (hardest-looking first), as `method@budget`.
    pub choices: Vec<String>,
    /// The best single option at no more mean FLOPs (`method@budget`), and its accuracy: what the allocation is
    /// compared with at equal compute. `None` when every option costs more.
    pub best_single: Option<String>,
    pub best_single_accuracy: Option<f64>,
}

/// Inputs no allocation can be fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ComputeOptimalError {
    /// No option, no problem, fewer than two problems (no second fold), or no bin.
    #[error("a compute-optimal allocation needs options, at least two problems and at least one bin")]
    Empty,
    /// An option's outcomes, or the difficulty estimates, do not cover the same problems.
    #[error("every option needs one outcome and one cost per problem, and every problem one difficulty estimate")]
    Mismatched,
}

/// Prices swept, per unit of the cheapest option's mean FLOPs: from nearly free to dearer than any accuracy.
const PRICE_STEPS: usize = 64;

/// The cross-fitted compute-optimal curve over `options` (those that consult the verifier only when `verifier`),
/// with problems binned into `bins` quantiles of `difficulty` (the policy's estimate of its chance of success,
/// higher is easier; NaN counts as hardest). Points ascend in FLOPs, one per distinct allocation outcome.
pub fn compute_optimal(
    options: &[Outcomes],
    difficulty: &[f32],
    bins: usize,
    verifier: bool,
) -> Result<Vec<ComputeOptimalPoint>, ComputeOptimalError> {
    let options: Vec<&Outcomes> = options.iter().filter(|o| verifier || !o.uses_verifier).collect();
    let n = difficulty.len();
    if options.is_empty() || n < 2 || bins == 0 {
        return Err(ComputeOptimalError::Empty);
    }
    if options.iter().any(|o| o.correct.len() != n || o.flops.len() != n) {
        return Err(ComputeOptimalError::Mismatched);
    }
    let folds: [Vec<usize>; 2] = [(0..n).step_by(2).collect(), (1..n).step_by(2).collect()];
    // The bins and their totals do not depend on the price: fitted once per fold.
    let fits =
        [FoldFit::new(&options, &folds[0], difficulty, bins), FoldFit::new(&options, &folds[1], difficulty, bins)];
    let means: Vec<f64> = options.iter().map(|o| o.flops.iter().sum::<f64>() / n as f64).collect();
    let accuracies: Vec<f64> =
        options.iter().map(|o| o.correct.iter().filter(|&&c| c).count() as f64 / n as f64).collect();
    let cheapest = means.iter().copied().filter(|&f| f > 0.0).fold(f64::INFINITY, f64::min);
    let scale = if cheapest.is_finite() { cheapest } else { 1.0 };
    let mut points: Vec<ComputeOptimalPoint> = Vec::new();
    for step in 0..=PRICE_STEPS {
        // 0, then prices from 1e-4 to 10 accuracy per cheapest option's FLOPs, log-spaced.
        let lambda =
            if step == 0 { 0.0 } else { 10f64.powf(-4.0 + 5.0 * (step - 1) as f64 / (PRICE_STEPS - 1) as f64) };
        let lambda = lambda / scale;
        let (mut solved, mut flops, mut first_choices) = (0usize, 0.0f64, Vec::new());
        for (fit, judged) in [(&fits[0], &folds[1]), (&fits[1], &folds[0])] {
            let choices = fit.choose(lambda);
            for &p in judged.iter() {
                let option = options[choices[bin_of(difficulty[p], &fit.edges)]];
                solved += usize::from(option.correct[p]);
                flops += option.flops[p];
            }
            if first_choices.is_empty() {
                first_choices = choices.iter().map(|&c| options[c].label()).collect();
            }
        }
        let (flops, accuracy) = (flops / n as f64, solved as f64 / n as f64);
        if points.iter().any(|p| p.flops == flops && p.accuracy == accuracy) {
            continue;
        }
        let single = (0..options.len()).filter(|&o| means[o] <= flops).map(|o| (o, accuracies[o])).fold(
            None,
            |best: Option<(usize, f64)>, (o, acc)| match best {
                Some((_, b)) if b >= acc => best,
                _ => Some((o, acc)),
            },
        );
        points.push(ComputeOptimalPoint {
            verifier,
            lambda,
            flops,
            accuracy,
            choices: first_choices,
            best_single: single.map(|(o, _)| options[o].label()),
            best_single_accuracy: single.map(|(_, acc)| acc),
        });
    }
    points.sort_by(|a, b| a.flops.total_cmp(&b.flops).then(a.accuracy.total_cmp(&b.accuracy)));
    Ok(points)
}

/// The `bins − 1` inner quantiles of the estimates of `problems`: a problem is in the bin of how many edges its
/// estimate reaches.
fn bin_edges(problems: &[usize], difficulty: &[f32], bins: usize) -> Vec<f32> {
    let mut sorted: Vec<f32> = problems.iter().map(|&p| hardest_if_nan(difficulty[p])).collect();
    sorted.sort_by(f32::total_cmp);
    (1..bins).map(|k| sorted[(k * sorted.len() / bins).min(sorted.len() - 1)]).collect()
}

/// The bin of an estimate: how many edges it reaches.
fn bin_of(estimate: f32, edges: &[f32]) -> usize {
    edges.partition_point(|&edge| edge <= hardest_if_nan(estimate))
}

fn hardest_if_nan(estimate: f32) -> f32 {
    if estimate.is_nan() { f32::NEG_INFINITY } else { estimate }
}

/// One fold's bins: their edges, and per bin and option the problems solved and the FLOPs spent (a bin with no
/// problem counts every problem's FLOPs, so it gets the cheapest option).
struct FoldFit {
    edges: Vec<f32>,
    /// `totals[bin][option]`: (solved, FLOPs).
    totals: Vec<Vec<(f64, f64)>>,
}

impl FoldFit {
    fn new(options: &[&Outcomes], problems: &[usize], difficulty: &[f32], bins: usize) -> Self {
        let edges = bin_edges(problems, difficulty, bins);
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); bins];
        for &p in problems {
            members[bin_of(difficulty[p], &edges)].push(p);
        }
        let totals = members
            .iter()
            .map(|bin| {
                options
                    .iter()
                    .map(|option| {
                        let solved = bin.iter().filter(|&&p| option.correct[p]).count() as f64;
                        let cost = if bin.is_empty() {
                            option.flops.iter().sum()
                        } else {
                            bin.iter().map(|&p| option.flops[p]).sum()
                        };
                        (solved, cost)
                    })
                    .collect()
            })
            .collect();
        FoldFit { edges, totals }
    }

    /// Per bin, the option maximising its solved count minus `λ` times its FLOPs (ties to the cheaper, then to
    /// the earlier option).
    fn choose(&self, lambda: f64) -> Vec<usize> {
        self.totals
            .iter()
            .map(|bin| {
                let mut best: Option<(usize, f64, f64)> = None;
                for (o, &(solved, cost)) in bin.iter().enumerate() {
                    let gain = solved - lambda * cost;
                    if best.is_none_or(|(_, g, c)| gain > g || (gain == g && cost < c)) {
                        best = Some((o, gain, cost));
                    }
                }
                best.map_or(0, |(o, _, _)| o)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option(method: &str, budget: u32, verifier: bool, correct: &[bool], flops: f64) -> Outcomes {
        Outcomes {
            method: method.into(),
            budget,
            uses_verifier: verifier,
            correct: correct.to_vec(),
            flops: vec![flops; correct.len()],
        }
    }

    /// Easy problems (high estimate) are solved by the cheap option, hard ones only by the dear one: the allocation
    /// spends on the hard half alone and reaches full accuracy at about half the dear option's mean FLOPs, where
    /// the best single option solves only the easy half.
    #[test]
    fn spending_follows_difficulty() {
        let n = 40;
        let difficulty: Vec<f32> = (0..n).map(|p| if p % 4 < 2 { 0.9 } else { 0.1 }).collect();
        let easy: Vec<bool> = difficulty.iter().map(|&d| d > 0.5).collect();
        let options = [option("greedy", 1, false, &easy, 1.0), option("best_of_n", 64, true, &[true; 40], 64.0)];
        let curve = compute_optimal(&options, &difficulty, 2, true).unwrap();
        let full = curve.iter().find(|p| p.accuracy == 1.0).unwrap();
        assert_eq!(full.flops, 32.5, "half the problems at 64 FLOPs, half at 1");
        assert_eq!(full.choices, ["best_of_n@64", "greedy@1"], "the hard-looking bin first");
        assert_eq!((full.best_single.as_deref(), full.best_single_accuracy), (Some("greedy@1"), Some(0.5)));
        // Without the verifier only greedy is left.
        let blind = compute_optimal(&options, &difficulty, 2, false).unwrap();
        assert_eq!(blind.len(), 1);
        assert_eq!((blind[0].flops, blind[0].accuracy), (1.0, 0.5));
    }

    /// Against exhaustive search: on random outcomes, each point's allocation, refitted on its first fold, scores at
    /// least as well there (solved − λ·FLOPs) as every one of the options^bins allocations.
    #[test]
    fn each_allocation_is_the_best_of_all_on_its_fold() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let n = 30;
        let difficulty: Vec<f32> = (0..n).map(|_| (next() % 1000) as f32 / 1000.0).collect();
        let options: Vec<Outcomes> = (0..3u32)
            .map(|o| Outcomes {
                method: format!("m{o}"),
                budget: 1 << o,
                uses_verifier: false,
                correct: (0..n).map(|_| next() % 3 < u64::from(o) + 1).collect(),
                flops: (0..n).map(|_| f64::from(1 << o) * (1.0 + (next() % 10) as f64 / 10.0)).collect(),
            })
            .collect();
        let refs: Vec<&Outcomes> = options.iter().collect();
        let fold: Vec<usize> = (0..n).step_by(2).collect();
        let bins = 3;
        let fit = FoldFit::new(&refs, &fold, &difficulty, bins);
        let edges = &fit.edges;
        let score = |choice: &[usize], lambda: f64| -> f64 {
            fold.iter()
                .map(|&p| {
                    let o = &options[choice[bin_of(difficulty[p], edges)]];
                    f64::from(u8::from(o.correct[p])) - lambda * o.flops[p]
                })
                .sum()
        };
        for point in compute_optimal(&options, &difficulty, bins, false).unwrap() {
            let chosen = fit.choose(point.lambda);
            let names: Vec<String> = chosen.iter().map(|&c| options[c].label()).collect();
            assert_eq!(names, point.choices);
            let best = (0..27)
                .map(|code| [code % 3, code / 3 % 3, code / 9])
                .map(|choice| score(&choice, point.lambda))
                .fold(f64::NEG_INFINITY, f64::max);
            assert!(score(&chosen, point.lambda) >= best - 1e-9, "λ {}", point.lambda);
        }
    }

    #[test]
    fn mismatched_or_empty_inputs_are_refused() {
        let one = option("greedy", 1, false, &[true, false], 1.0);
        assert_eq!(compute_optimal(&[], &[0.5, 0.5], 2, true), Err(ComputeOptimalError::Empty));
        assert_eq!(compute_optimal(std::slice::from_ref(&one), &[0.5], 2, true), Err(ComputeOptimalError::Empty));
        assert_eq!(compute_optimal(std::slice::from_ref(&one), &[0.5, 0.5], 0, true), Err(ComputeOptimalError::Empty));
        assert_eq!(compute_optimal(&[one], &[0.5, 0.5, 0.5], 2, true), Err(ComputeOptimalError::Mismatched));
    }

    #[test]
    fn bins_split_at_quantiles_and_nan_is_hardest() {
        let difficulty = [0.1, 0.2, 0.3, 0.4, f32::NAN, 0.9];
        let edges = bin_edges(&[0, 1, 2, 3, 4, 5], &difficulty, 3);
        assert_eq!(edges, [0.2, 0.4], "the 2nd and 4th of six, NaN sorted first");
        let bins: Vec<usize> = difficulty.iter().map(|&d| bin_of(d, &edges)).collect();
        assert_eq!(bins, [0, 1, 1, 2, 0, 2]);
    }
}
