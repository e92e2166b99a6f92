//! Countdown problems the policy proposes. Under `"propose 3\n"` it writes one expression over three numbers,
//! `"3*8+12\n"`; the task takes the expression's numbers as the problem's and its value as the target
//! (Absolute Zero's deduction: the environment, not the proposer, computes the answer), so every well-formed
//! expression in range states a problem with a solution. The numbers are posed in an order fixed by the problem
//! alone (a hash of the number set and the target), not the expression's, so the prompt does not give the
//! solution's order away and the same problem written two ways is one problem.
//!
//! Two formats were measured first and dropped: bare `numbers -> target` lines (the generator's problems' look,
//! but only about one random 3-number problem in twenty has a solution: 4% of such proposals certified), and
//! `numbers = expression` (98% malformed: the policy's expression seldom used the numbers it had just written).
//! The exact solver still certifies each problem (whole-number steps, as every trace is written).

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use selfplay_reward::{CountdownProblem, Expression, evaluate_answer};

use super::CountdownTask;
use super::generate::{held_out_targets, split_of};
use super::solver::solve;
use super::trace::answer_expression;
use crate::propose::{Propose, Rejection};
use crate::rng::{mix64, uniform_inclusive};
use crate::task::Split;

/// Salts the hash that orders a proposed problem's numbers.
const ORDER_SALT: u64 = 0x0DE5_1A7E_5EED_2025;

impl Propose for CountdownTask {
    type Problem = CountdownProblem;

    /// `"propose 3\n"` for a task of 3 numbers; `"propose 3-5\n"` when the count varies.
    fn proposer_prompt(&self) -> String {
        let (min, max) = (self.config.min_count, self.config.max_count);
        if min == max { format!("propose {min}\n") } else { format!("propose {min}-{max}\n") }
    }

    /// The solver's solution as one expression, `"3*8+12\n"`.
    fn proposal(&self, problem: &CountdownProblem) -> Option<String> {
        Some(format!("{}\n", answer_expression(&problem.nums, &solve(&problem.nums, problem.target)?)?))
    }

    /// Accepts one expression (a final newline allowed, nothing else around it) over the task's count of numbers,
    /// each in its number range, whose value is a whole number in the target range; the problem (its numbers in
    /// an order fixed by the problem alone) must be of the training split (not a held-out target nor a validation
    /// set) and solved by the exact solver.
    fn certify(&self, completion: &[u8]) -> Result<CountdownProblem, Rejection> {
        let line = completion.strip_suffix(b"\n").unwrap_or(completion);
        if line.contains(&b'\n') {
            return Err(Rejection::Malformed);
        }
        let expression = Expression::parse(line).map_err(|_| Rejection::Malformed)?;
        let nums: Vec<u64> = expression.literals().collect();
        let config = &self.config;
        if !(config.min_count..=config.max_count).contains(&nums.len()) {
            return Err(Rejection::Malformed);
        }
        let value = evaluate_answer(&nums, line).map_err(|_| Rejection::Malformed)?;
        if !nums.iter().all(|n| (config.min_num..=config.max_num).contains(n)) {
            return Err(Rejection::OutOfRange);
        }
        let target = value
            .to_integer()
            .and_then(|t| u64::try_from(t).ok())
            .filter(|t| (config.min_target..=config.max_target).contains(t))
            .ok_or(Rejection::OutOfRange)?;
        let problem = CountdownProblem { nums: posed_order(nums, target), target };
        if split_of(&problem, &held_out_targets(config)) != Split::Train {
            return Err(Rejection::HeldOut);
        }
        solve(&problem.nums, problem.target).ok_or(Rejection::Unsolvable)?;
        Ok(problem)
    }
}

/// `nums` shuffled by a generator seeded from the sorted numbers and the target: the same order for the same
/// problem however its expression listed them.
fn posed_order(mut nums: Vec<u64>, target: u64) -> Vec<u64> {
    nums.sort_unstable();
    let seed = nums.iter().fold(mix64(target ^ ORDER_SALT), |h, &n| mix64(h ^ n));
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in (1..nums.len()).rev() {
        let j = uniform_inclusive(&mut rng, 0, i as u64) as usize;
        nums.swap(i, j);
    }
    nums
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::countdown::CountdownConfig;
    use crate::task::Task;

    fn task(count: usize) -> CountdownTask {
        let config = CountdownConfig { min_count: count, max_count: count, ..CountdownConfig::default() };
        CountdownTask { config, ..CountdownTask::default() }
    }

    /// The same problem: the same target and the same numbers in any order.
    fn same(a: &CountdownProblem, b: &CountdownProblem) -> bool {
        let sorted = |p: &CountdownProblem| {
            let mut nums = p.nums.clone();
            nums.sort_unstable();
            nums
        };
        a.target == b.target && sorted(a) == sorted(b)
    }

    #[test]
    fn training_problems_round_trip_through_their_proposals() {
        let task = task(3);
        assert_eq!(task.proposer_prompt(), "propose 3\n");
        assert_eq!(CountdownTask::default().proposer_prompt(), "propose 3-5\n");
        let problem = CountdownProblem { nums: vec![3, 8, 12, 2], target: 24 };
        assert_eq!(task.proposal(&problem).unwrap(), "3*2*(12-8)\n");
        assert_eq!(task.proposal(&CountdownProblem { nums: vec![1, 1, 1], target: 99 }), None, "no solution");
        let mut reordered = 0;
        for problem in task.generate(Split::Train, 200, 5).unwrap() {
            let text = task.proposal(&problem).unwrap();
            let back = task.certify(text.as_bytes()).unwrap();
            assert!(same(&back, &problem), "{text}: {back:?} for {problem:?}");
            assert_eq!(task.certify(text.trim_end().as_bytes()), Ok(back.clone()), "without the newline");
            reordered += usize::from(back.nums != problem.nums);
        }
        assert!(reordered > 50, "the posed order is the problem's, not the generator's: {reordered}");
    }

    /// The order the numbers are posed in depends on the problem only, and is no fixed sort.
    #[test]
    fn the_posed_order_is_the_problems() {
        assert_eq!(task(3).certify(b"3*8+12"), task(3).certify(b"12+(8*3)"));
        let orders: std::collections::HashSet<Vec<u64>> = (10..40).map(|t| posed_order(vec![5, 6, 7], t)).collect();
        assert_eq!(orders.len(), 6, "every order of three numbers appears");
        assert_eq!(posed_order(vec![7, 5, 6], 24), posed_order(vec![6, 7, 5], 24));
    }

    #[test]
    fn held_out_problems_are_refused() {
        let task = task(3);
        for split in [Split::Val, Split::ValTarget] {
            for problem in task.generate(split, 50, 5).unwrap() {
                let text = task.proposal(&problem).unwrap();
                assert_eq!(task.certify(text.as_bytes()), Err(Rejection::HeldOut), "{problem:?}");
            }
        }
    }

    /// Whether whole-number steps (`-` only to a non-negative result, `/` only when exact) reach `target` from
    /// exactly `nums`: a plain recursion over every pair, independent of the solver's meet in the middle.
    fn brute_force(nums: &[u64], target: u64) -> bool {
        if let [only] = nums {
            return *only == target;
        }
        (0..nums.len()).any(|i| {
            (0..nums.len()).filter(|&j| j != i).any(|j| {
                let (a, b) = (nums[i], nums[j]);
                let rest: Vec<u64> = (0..nums.len()).filter(|&k| k != i && k != j).map(|k| nums[k]).collect();
                let results = [Some(a + b), Some(a * b), a.checked_sub(b), (b != 0 && a % b == 0).then(|| a / b)];
                results.into_iter().flatten().any(|c| brute_force(&[rest.as_slice(), &[c]].concat(), target))
            })
        })
    }

    /// Every expression shape over every 3-number set of small numbers: certified exactly when the value is a
    /// whole target in range of a training-split problem that brute force solves; the value is the target.
    #[test]
    fn certification_agrees_with_brute_force() {
        let task = task(3);
        let held_out = held_out_targets(&task.config);
        let mut certified = 0;
        let shapes = ["{a}*{b}+{c}", "({a}+{b})*{c}", "{a}*{b}-{c}", "{a}*{b}/{c}", "{a}/({b}-{c})", "({a}-{b})*{c}"];
        for a in 1..=9u64 {
            for b in 1..=9u64 {
                for c in 1..=9u64 {
                    for shape in shapes {
                        let expression = shape.replace("{a}", &a.to_string()).replace("{b}", &b.to_string());
                        let expression = expression.replace("{c}", &c.to_string());
                        let verdict = task.certify(expression.as_bytes());
                        let value = evaluate_answer(&[a, b, c], expression.as_bytes());
                        let expected = match value.ok().and_then(|v| v.to_integer()) {
                            None if value.is_err() => Err(Rejection::Malformed),
                            Some(t) if (10..=100).contains(&t) => {
                                let problem = CountdownProblem { nums: vec![a, b, c], target: t as u64 };
                                let problem =
                                    CountdownProblem { nums: posed_order(problem.nums, problem.target), ..problem };
                                if split_of(&problem, &held_out) != Split::Train {
                                    Err(Rejection::HeldOut)
                                } else if !brute_force(&problem.nums, problem.target) {
                                    Err(Rejection::Unsolvable)
                                } else {
                                    certified += 1;
                                    Ok(problem)
                                }
                            }
                            _ => Err(Rejection::OutOfRange),
                        };
                        assert_eq!(verdict, expected, "{expression}");
                    }
                }
            }
        }
        assert!(certified > 500, "{certified}");
    }

    #[test]
    fn malformed_and_out_of_range_proposals_are_refused() {
        let task = task(3);
        for text in [
            &b""[..],
            b"3*8",
            b"3*8+12-2",
            b"3 8 12 -> 24",
            b"3 8 12 = 3*8-12",
            b"<answer>3*8+12</answer>",
            b"3*8+12\n\n",
            b"3*8+12\nmore",
            b"3/(8-8)*12",
            b"\xff\xfe",
            b"99999999999999999999999+1+2",
        ] {
            assert_eq!(task.certify(text), Err(Rejection::Malformed), "{}", String::from_utf8_lossy(text));
        }
        assert_eq!(task.certify(b"100-8*3"), Err(Rejection::OutOfRange), "a number out of range");
        assert_eq!(task.certify(b"12-8+3"), Err(Rejection::OutOfRange), "target 7");
        assert_eq!(task.certify(b"3*8*12"), Err(Rejection::OutOfRange), "target 288");
        assert_eq!(task.certify(b"(3+8)/12"), Err(Rejection::OutOfRange), "not a whole number");
        let problem = task.certify(b"3*8+12\n").unwrap();
        assert!(same(&problem, &CountdownProblem { nums: vec![3, 8, 12], target: 36 }), "{problem:?}");
    }
}
