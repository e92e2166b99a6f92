//! The generator's settings, in their own module so the generator and the task both read them without a cycle.

use super::solver;
use crate::error::TasksError;

/// Generator settings. Defaults follow Stream of Search: 3 to 5 numbers in 1..=99, target in 10..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountdownConfig {
    /// Fewest numbers per problem.
    pub min_count: usize,
    /// Most numbers per problem (at most [`solver::MAX_SOLVE_NUMS`]).
    pub max_count: usize,
    /// Smallest number.
    pub min_num: u64,
    /// Largest number.
    pub max_num: u64,
    /// Smallest target.
    pub min_target: u64,
    /// Largest target.
    pub max_target: u64,
}

impl Default for CountdownConfig {
    fn default() -> Self {
        CountdownConfig { min_count: 3, max_count: 5, min_num: 1, max_num: 99, min_target: 10, max_target: 100 }
    }
}

/// Largest target range [`super::generate::held_out_targets`] will enumerate.
const MAX_TARGET_RANGE: u64 = 1_000_000;

impl CountdownConfig {
    /// Checks the ranges are non-empty and searchable.
    pub fn validate(&self) -> Result<(), TasksError> {
        let bad = |msg: &str| Err(TasksError::InvalidConfig(msg.to_owned()));
        if self.min_count == 0 || self.min_count > self.max_count || self.max_count > solver::MAX_SOLVE_NUMS {
            return bad("need 1 <= min_count <= max_count <= 6");
        }
        if self.min_num > self.max_num || self.min_target > self.max_target {
            return bad("number and target ranges must be non-empty");
        }
        if self.max_target - self.min_target >= MAX_TARGET_RANGE {
            return bad("target range must hold at most 1,000,000 targets");
        }
        Ok(())
    }
}
