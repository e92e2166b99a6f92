//! Sequential Halving's visit schedule (Karnin et al. 2013) as Gumbel MuZero uses it at the root: the visit count
//! an action must have to be eligible at each simulation. Mirrors mctx `seq_halving.py`.

use alloc::vec::Vec;

use crate::error::{Result, SearchError};

/// The schedule of considered visit counts for `max_considered` actions and `num_simulations` simulations:
/// round `r` gives each of the still-considered actions `max(1, floor(n / (ceil(log2 m) * considered)))`
/// extra visits, then halves the considered set (never below 2).
pub fn considered_visits(max_considered: usize, num_simulations: usize, out: &mut Vec<u32>) {
    out.clear();
    if max_considered <= 1 {
        out.extend((0..num_simulations).map(|i| i as u32));
        return;
    }
    let log2max = usize::BITS - (max_considered - 1).leading_zeros();
    let mut visits = alloc::vec![0u32; max_considered];
    let mut considered = max_considered;
    while out.len() < num_simulations {
        // Python's `int(n / (log2max * considered))` truncates a float quotient: integer division agrees.
        let extra = (num_simulations / (log2max as usize * considered)).max(1);
        for _ in 0..extra {
            out.extend_from_slice(&visits[..considered]);
            visits[..considered].iter_mut().for_each(|v| *v += 1);
        }
        considered = (considered / 2).max(2);
    }
    out.truncate(num_simulations);
}

/// The table indexed `[num_considered][simulation]` for every `num_considered` in `0..=max_considered`.
#[derive(Debug, Clone, Default)]
pub struct HalvingTable {
    num_simulations: usize,
    rows: Vec<u32>,
}

impl HalvingTable {
    /// Builds the table for up to `max_considered` actions over `num_simulations` simulations.
    pub fn new(max_considered: usize, num_simulations: usize) -> Result<Self> {
        let size = max_considered
            .checked_add(1)
            .and_then(|m| m.checked_mul(num_simulations))
            .ok_or(SearchError::Allocation("the sequential halving table"))?;
        let mut rows = Vec::new();
        rows.try_reserve_exact(size).map_err(|_| SearchError::Allocation("the sequential halving table"))?;
        let mut row = Vec::new();
        row.try_reserve_exact(num_simulations).map_err(|_| SearchError::Allocation("the sequential halving table"))?;
        for m in 0..=max_considered {
            considered_visits(m, num_simulations, &mut row);
            rows.extend_from_slice(&row);
        }
        Ok(Self { num_simulations, rows })
    }

    /// Number of simulations the table covers.
    pub fn num_simulations(&self) -> usize {
        self.num_simulations
    }

    /// The visit count eligible at `simulation` when `num_considered` actions are considered; past the end of
    /// the schedule (a reused tree) the last entry holds.
    pub fn get(&self, num_considered: usize, simulation: usize) -> u32 {
        if self.num_simulations == 0 {
            return 0;
        }
        let s = simulation.min(self.num_simulations - 1);
        self.rows.get(num_considered * self.num_simulations + s).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_matches_mctx_examples() {
        // mctx seq_halving_test: (4 actions, 8 simulations) and (16, 32) hand-checked against the Python.
        let mut v = Vec::new();
        considered_visits(4, 8, &mut v);
        assert_eq!(v, [0, 0, 0, 0, 1, 1, 2, 2]);
        considered_visits(1, 4, &mut v);
        assert_eq!(v, [0, 1, 2, 3]);
        considered_visits(2, 6, &mut v);
        assert_eq!(v, [0, 0, 1, 1, 2, 2]);
    }

    #[test]
    fn absurd_tables_are_refused() {
        assert!(matches!(HalvingTable::new(16, usize::MAX / 4), Err(SearchError::Allocation(_))));
        let t = HalvingTable::new(4, 8).unwrap_or_default();
        assert_eq!((t.get(4, 4), t.get(4, 100)), (1, 2));
    }

    #[test]
    fn every_prefix_is_a_valid_halving() {
        for m in 2..20 {
            for n in [1usize, 7, 50, 200] {
                let mut v = Vec::new();
                considered_visits(m, n, &mut v);
                assert_eq!(v.len(), n);
                assert_eq!(v[0], 0);
            }
        }
    }
}
