//! Problems drawn one at a time by rejection from a seeded stream, so a caller can write a million problems
//! without holding them (`selfplay tasks generate` streams), and [`crate::Task::generate`] is the first `n` of the
//! same stream: asking for more problems never changes the earlier ones.

use crate::error::TasksError;

/// Attempts a stream may spend on top of [`ATTEMPTS_PER_PROBLEM`] for each problem it has made (counting the
/// one it is making): generous, since `val` keeps only 1 draw in 20 and some number sets reach no target.
const BASE_ATTEMPTS: u64 = 100_000;
/// Attempts a stream earns for each problem.
const ATTEMPTS_PER_PROBLEM: u64 = 1_000;

/// How one task draws candidate problems and which it keeps.
pub(crate) trait Draw {
    type Problem;
    /// Runs once before the attempts at each problem (Countdown draws its count of numbers here).
    fn begin(&mut self) {}
    /// One attempt: the candidate if it is kept.
    fn attempt(&mut self) -> Option<Self::Problem>;
}

/// The problems a [`Draw`] keeps, in order. Once the attempts run out it yields one
/// [`TasksError::Exhausted`] and ends.
pub(crate) struct Problems<D> {
    draw: D,
    attempts: u64,
    made: u64,
    exhausted: bool,
}

impl<D: Draw> Problems<D> {
    pub(crate) fn new(draw: D) -> Self {
        Problems { draw, attempts: 0, made: 0, exhausted: false }
    }
}

impl<D: Draw> Iterator for Problems<D> {
    type Item = Result<D::Problem, TasksError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.exhausted {
            return None;
        }
        let budget = BASE_ATTEMPTS.saturating_add(ATTEMPTS_PER_PROBLEM.saturating_mul(self.made + 1));
        self.draw.begin();
        loop {
            self.attempts += 1;
            if self.attempts > budget {
                self.exhausted = true;
                return Some(Err(TasksError::Exhausted { attempts: budget }));
            }
            if let Some(problem) = self.draw.attempt() {
                self.made += 1;
                return Some(Ok(problem));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeps every `every`-th candidate, counting the candidates and the problems begun.
    struct EveryNth {
        every: u64,
        candidates: u64,
        begun: u64,
    }

    impl Draw for EveryNth {
        type Problem = (u64, u64);
        fn begin(&mut self) {
            self.begun += 1;
        }
        fn attempt(&mut self) -> Option<(u64, u64)> {
            self.candidates += 1;
            self.candidates.is_multiple_of(self.every).then_some((self.begun, self.candidates))
        }
    }

    #[test]
    fn keeps_in_order_and_stops_once_after_the_budget() {
        let kept: Vec<_> = Problems::new(EveryNth { every: 3, candidates: 0, begun: 0 }).take(3).collect();
        assert_eq!(kept.into_iter().map(Result::unwrap).collect::<Vec<_>>(), [(1, 3), (2, 6), (3, 9)]);
        let mut never = Problems::new(EveryNth { every: u64::MAX, candidates: 0, begun: 0 });
        assert!(matches!(never.next(), Some(Err(TasksError::Exhausted { attempts: 101_000 }))));
        assert!(never.next().is_none(), "an exhausted stream ends");
    }
}
