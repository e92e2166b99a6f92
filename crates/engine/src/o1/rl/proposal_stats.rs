//! What the policy proposed (`[rl.propose]`): a step's counts, and their sums over many steps for the report.

use selfplay_tasks::Rejection;
use serde::{Deserialize, Serialize};

/// What the policy proposed in one step (a part of its line in `metrics.jsonl`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProposalStats {
    /// Proposals written.
    pub proposed: usize,
    /// Proposals the task certified.
    pub certified: usize,
    /// Distinct certified problems (each attempted once; problems are the same when their prompts are).
    pub distinct: usize,
    /// Rejected as not in the proposal format.
    pub malformed: usize,
    /// Rejected for a number or target out of the task's ranges.
    pub out_of_range: usize,
    /// Rejected as problems of a held-out split.
    pub held_out: usize,
    /// Rejected as unsolvable.
    pub unsolvable: usize,
    /// Mean solve rate of the distinct certified problems (`None` when there are none).
    pub solve_rate: Option<f32>,
    /// Mean proposer reward over every proposal.
    pub reward_mean: f32,
    /// Tokens the proposals took.
    pub tokens: usize,
}

impl ProposalStats {
    /// Adds `other`'s counts, its means weighted by what they average over (the reward by proposals, the solve
    /// rate by distinct problems): the stats of both steps together.
    pub fn absorb(&mut self, other: &ProposalStats) {
        let proposed = self.proposed + other.proposed;
        if proposed > 0 {
            self.reward_mean =
                (self.reward_mean * self.proposed as f32 + other.reward_mean * other.proposed as f32) / proposed as f32;
        }
        let distinct = self.distinct + other.distinct;
        let solved = |s: &ProposalStats| s.solve_rate.unwrap_or(0.0) * s.distinct as f32;
        self.solve_rate = (distinct > 0).then(|| (solved(self) + solved(other)) / distinct as f32);
        self.proposed = proposed;
        self.distinct = distinct;
        self.certified += other.certified;
        self.malformed += other.malformed;
        self.out_of_range += other.out_of_range;
        self.held_out += other.held_out;
        self.unsolvable += other.unsolvable;
        self.tokens += other.tokens;
    }

    /// Share of the proposals certified.
    pub fn certified_share(&self) -> f64 {
        self.certified as f64 / self.proposed.max(1) as f64
    }

    pub(super) fn reject(&mut self, rejection: Rejection) {
        *match rejection {
            Rejection::Malformed => &mut self.malformed,
            Rejection::OutOfRange => &mut self.out_of_range,
            Rejection::HeldOut => &mut self.held_out,
            Rejection::Unsolvable => &mut self.unsolvable,
        } += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absorbing_weighs_each_mean_by_what_it_averages() {
        let a = ProposalStats {
            proposed: 4,
            certified: 2,
            distinct: 1,
            unsolvable: 2,
            solve_rate: Some(0.5),
            reward_mean: 0.25,
            tokens: 40,
            ..ProposalStats::default()
        };
        let b = ProposalStats {
            proposed: 12,
            certified: 9,
            distinct: 3,
            malformed: 3,
            solve_rate: Some(0.9),
            reward_mean: 0.5,
            tokens: 100,
            ..ProposalStats::default()
        };
        let mut sum = ProposalStats::default();
        sum.absorb(&a);
        assert_eq!(sum, a, "absorbed into nothing, the same");
        sum.absorb(&b);
        assert_eq!((sum.proposed, sum.certified, sum.distinct, sum.tokens), (16, 11, 4, 140));
        assert_eq!((sum.malformed, sum.unsolvable), (3, 2));
        assert!((sum.reward_mean - (0.25 * 4.0 + 0.5 * 12.0) / 16.0).abs() < 1e-6);
        assert!((sum.solve_rate.unwrap() - (0.5 + 0.9 * 3.0) / 4.0).abs() < 1e-6);
        assert_eq!(sum.certified_share(), 11.0 / 16.0);
        let mut none = ProposalStats { proposed: 2, malformed: 2, ..ProposalStats::default() };
        none.absorb(&ProposalStats { proposed: 2, unsolvable: 2, ..ProposalStats::default() });
        assert_eq!(none.solve_rate, None);
    }
}
