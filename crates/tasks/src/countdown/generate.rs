//! The Countdown problem generator and its splits.
//!
//! Splits are disjoint by construction, and the assignment does not depend on the seed:
//! - `val_target` owns a fixed 10% of the target range: the `⌈range/10⌉` targets with the smallest
//!   `mix64(target ^ TARGET_SALT)` (SplitMix64, a fixed hash). For the default 10..=100 (91 targets) that
//!   is the 10 targets 18, 21, 56, 63, 82, 87, 88, 92, 95, 99 (cross-checked with a Python SplitMix64);
//!   see [`held_out_targets`]. Every seed and every run agrees on them.
//! - among the other targets, a problem belongs to `val` when the hash of its sorted numbers and target is
//!   0 mod 20 (5% of problems), and to `train` otherwise.
//!
//! Within a split, problems are drawn from a ChaCha stream of (seed, split): the count of numbers uniformly
//! (so each size is equally common), then numbers and target uniformly until the exact solver finds a
//! whole-number solution. Duplicates within a split are possible (as with any sampler).

use rand_chacha::ChaCha8Rng;
use selfplay_reward::CountdownProblem;

use super::config::CountdownConfig;
use super::solver::solve;
use crate::error::TasksError;
use crate::rng::{mix64, split_rng, uniform_inclusive};
use crate::sampler::{Draw, Problems};
use crate::task::Split;

const TARGET_SALT: u64 = 0x5e1f_91a7_c0de_7a26;
const VAL_MODULUS: u64 = 20;

/// The targets reserved for `val_target`, sorted: the 10% (rounded up) of `min_target..=max_target` with
/// the smallest fixed hash.
pub fn held_out_targets(config: &CountdownConfig) -> Vec<u64> {
    let mut targets: Vec<u64> = (config.min_target..=config.max_target).collect();
    let keep = targets.len().div_ceil(10);
    targets.sort_by_key(|&t| (mix64(t ^ TARGET_SALT), t));
    targets.truncate(keep);
    targets.sort_unstable();
    targets
}

/// Which split a problem belongs to under `held_out` (the sorted [`held_out_targets`]).
pub fn split_of(problem: &CountdownProblem, held_out: &[u64]) -> Split {
    if held_out.binary_search(&problem.target).is_ok() {
        return Split::ValTarget;
    }
    let mut sorted = problem.nums.clone();
    sorted.sort_unstable();
    let h = sorted.iter().fold(mix64(problem.target), |h, &n| mix64(h ^ n));
    if h.is_multiple_of(VAL_MODULUS) { Split::Val } else { Split::Train }
}

/// `n` solvable problems of `split`, deterministic in (`config`, `split`, `seed`): the first `n` of [`problems`].
pub fn generate(
    config: &CountdownConfig,
    split: Split,
    n: usize,
    seed: u64,
) -> Result<Vec<CountdownProblem>, TasksError> {
    problems(config, split, seed)?.take(n).collect()
}

/// The endless stream of solvable problems of `split`, deterministic in (`config`, `split`, `seed`); an invalid
/// config or a split without targets is refused before the first problem.
pub fn problems(
    config: &CountdownConfig,
    split: Split,
    seed: u64,
) -> Result<impl Iterator<Item = Result<CountdownProblem, TasksError>> + use<>, TasksError> {
    config.validate()?;
    let held_out = held_out_targets(config);
    let targets: Vec<u64> = match split {
        Split::ValTarget => held_out.clone(),
        Split::Train | Split::Val => {
            (config.min_target..=config.max_target).filter(|t| held_out.binary_search(t).is_err()).collect()
        }
    };
    let last_target = targets.len().checked_sub(1).ok_or_else(|| {
        TasksError::InvalidConfig(format!("split {} has no targets in this target range", split.name()))
    })? as u64;
    let rng = split_rng(seed, split);
    Ok(Problems::new(CountdownDraw { config: *config, split, held_out, targets, last_target, rng, count: 0 }))
}

/// Countdown's [`Draw`]: numbers and a target drawn uniformly, kept when they fall in the split and the exact
/// solver reaches the target.
struct CountdownDraw {
    config: CountdownConfig,
    split: Split,
    held_out: Vec<u64>,
    targets: Vec<u64>,
    last_target: u64,
    rng: ChaCha8Rng,
    /// How many numbers the problem being drawn has.
    count: u64,
}

impl Draw for CountdownDraw {
    type Problem = CountdownProblem;

    /// The count is drawn once per problem, before rejection: otherwise the easily solvable 5-number sets would
    /// crowd out 3-number ones (only ~4% of random 3-number problems are solvable).
    fn begin(&mut self) {
        self.count = uniform_inclusive(&mut self.rng, self.config.min_count as u64, self.config.max_count as u64);
    }

    fn attempt(&mut self) -> Option<CountdownProblem> {
        let (min, max) = (self.config.min_num, self.config.max_num);
        let nums: Vec<u64> = (0..self.count).map(|_| uniform_inclusive(&mut self.rng, min, max)).collect();
        let index = uniform_inclusive(&mut self.rng, 0, self.last_target) as usize;
        let target = *self.targets.get(index)?;
        let problem = CountdownProblem { nums, target };
        (split_of(&problem, &self.held_out) == self.split && solve(&problem.nums, problem.target).is_some())
            .then_some(problem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_targets_are_a_fixed_tenth() {
        let config = CountdownConfig::default();
        let held = held_out_targets(&config);
        assert_eq!(held.len(), 10, "ceil(91 / 10)");
        assert!(held.iter().all(|t| (10..=100).contains(t)));
        // Pinned: changing the hash or salt silently changes every val_target split on disk.
        assert_eq!(held, PINNED_HELD_OUT);
    }

    const PINNED_HELD_OUT: [u64; 10] = [18, 21, 56, 63, 82, 87, 88, 92, 95, 99];

    #[test]
    fn splits_are_disjoint_deterministic_and_solvable() {
        let config = CountdownConfig::default();
        let held = held_out_targets(&config);
        for split in Split::ALL {
            let a = generate(&config, split, 200, 11).unwrap();
            assert_eq!(a, generate(&config, split, 200, 11).unwrap(), "same seed, same problems");
            assert_ne!(a, generate(&config, split, 200, 12).unwrap());
            let mut sizes = [0usize; 6];
            for p in &a {
                sizes[p.nums.len()] += 1;
                assert_eq!(split_of(p, &held), split);
                assert!((3..=5).contains(&p.nums.len()));
                assert!(p.nums.iter().all(|n| (1..=99).contains(n)));
                assert!(solve(&p.nums, p.target).is_some());
            }
            assert!(sizes[3..].iter().all(|&c| c > 40), "each size about a third: {sizes:?}");
            // A prefix of a longer run is the shorter run.
            assert_eq!(generate(&config, split, 50, 11).unwrap(), a[..50]);
        }
    }

    #[test]
    fn impossible_settings_error_instead_of_looping() {
        let config =
            CountdownConfig { min_num: 1, max_num: 1, min_count: 3, max_count: 3, min_target: 90, max_target: 100 };
        assert!(matches!(generate(&config, Split::Train, 1, 0), Err(TasksError::Exhausted { .. })));
        let bad = CountdownConfig { min_count: 4, max_count: 3, ..CountdownConfig::default() };
        assert!(matches!(generate(&bad, Split::Train, 1, 0), Err(TasksError::InvalidConfig(_))));
    }
}
