//! Exact Countdown solver over whole-number steps.
//!
//! A solution is `n − 1` steps `a op b = c`, each replacing two available numbers by `c`, ending with the
//! target alone. Steps stay in the non-negative integers (`−` only when `a ≥ b`, `/` only when exact), as
//! in Stream of Search: those are the solutions a policy can write as `a op b = c` lines. The search is
//! exhaustive within that rule, so "unsolvable" means no whole-number solution; the verifier accepts more
//! (any exact expression, e.g. `6/(1−3/4)`), which only makes generated problems a subset of solvable ones.

use selfplay_reward::Op;

/// One step: `a op b = result`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Step {
    /// Left operand.
    pub a: u64,
    /// Operator.
    pub op: Op,
    /// Right operand.
    pub b: u64,
    /// `a op b`.
    pub result: u64,
}

impl Step {
    /// The step as written in traces: `a op b=c`.
    pub fn render(&self) -> String {
        format!("{}{}{}={}", self.a, self.op.symbol(), self.b, self.result)
    }
}

/// The whole-number results of combining `x` and `y`, with the operand order each needs.
pub(crate) fn successors(x: u64, y: u64) -> impl Iterator<Item = Step> {
    let (hi, lo) = if x >= y { (x, y) } else { (y, x) };
    [
        hi.checked_add(lo).map(|result| Step { a: hi, op: Op::Add, b: lo, result }),
        hi.checked_mul(lo).map(|result| Step { a: hi, op: Op::Mul, b: lo, result }),
        Some(Step { a: hi, op: Op::Sub, b: lo, result: hi - lo }),
        (lo != 0 && hi % lo == 0).then(|| Step { a: hi, op: Op::Div, b: lo, result: hi / lo }),
    ]
    .into_iter()
    .flatten()
}

/// The most numbers [`solve`] accepts: the work grows steeply with the count, and problems can come from
/// untrusted JSONL.
pub const MAX_SOLVE_NUMS: usize = 6;

/// A tabulated entry's address: (subset mask, index in that subset's table).
type EntryRef = (usize, usize);

/// How a reachable value was made: from the original number, or by one step from two disjoint subsets.
#[derive(Debug, Clone, Copy)]
struct Reached {
    value: u64,
    /// The operands' own entries (`a` then `b`) and the step; `None` for an original number.
    from: Option<(EntryRef, EntryRef, Step)>,
}

/// Subsets up to this size get their full set of reachable values tabulated; larger ones are searched.
const TABULATED: u32 = 3;

/// A solution's steps in order, or `None` if no whole-number solution exists (or there are more than
/// [`MAX_SOLVE_NUMS`] numbers).
///
/// Meet in the middle over subsets of the numbers. For every subset of at most three numbers, all the
/// values it can make are tabulated (deduplicated, one way each). A larger set `S` makes `v` iff some split
/// of `S` into a small part `A` (tabulated) and the rest `B` has `a` in `A`'s table and `B` can make one of
/// the few `b` with `a op b = v` — checked by lookup, or recursively when `B` is large. An unsolvable
/// 5-number problem thus costs a few thousand binary searches instead of enumerating ~10⁵ expression trees.
pub fn solve(nums: &[u64], target: u64) -> Option<Vec<Step>> {
    let n = nums.len();
    if n == 0 || n > MAX_SOLVE_NUMS {
        return None;
    }
    let full = (1usize << n) - 1;
    let mut reach: Vec<Vec<Reached>> = vec![Vec::new(); full + 1];
    for (i, &value) in nums.iter().enumerate() {
        reach[1 << i].push(Reached { value, from: None });
    }
    // Submasks are numerically smaller than their mask, so increasing order builds parts first.
    for mask in 1..=full {
        let size = mask.count_ones();
        if !(2..=TABULATED).contains(&size) {
            continue;
        }
        let mut found = Vec::new();
        for (left, right) in splits(mask) {
            for (li, l) in reach[left].iter().enumerate() {
                for (ri, r) in reach[right].iter().enumerate() {
                    for step in successors(l.value, r.value) {
                        // Keep track of which side is `a` (the larger operand, as `successors` orders them).
                        let (a, b) =
                            if step.a == l.value { ((left, li), (right, ri)) } else { ((right, ri), (left, li)) };
                        found.push(Reached { value: step.result, from: Some((a, b, step)) });
                    }
                }
            }
        }
        // Stable sort keeps the first way each value was found: deterministic solutions.
        found.sort_by_key(|r| r.value);
        found.dedup_by_key(|r| r.value);
        reach[mask] = found;
    }
    Solver { nums, reach }.make(full, target)
}

/// Every split of `mask` into two non-empty parts, each unordered split once, smaller part first (for
/// equal sizes, the part holding the lowest bit first).
fn splits(mask: usize) -> impl Iterator<Item = (usize, usize)> {
    let lowest = mask & mask.wrapping_neg();
    let mut part = mask;
    std::iter::from_fn(move || {
        loop {
            part = (part.wrapping_sub(1)) & mask;
            if part == 0 {
                return None;
            }
            let rest = mask ^ part;
            let (ps, rs) = (part.count_ones(), rest.count_ones());
            if ps < rs || (ps == rs && part & lowest != 0) {
                return Some((part, rest));
            }
        }
    })
}

struct Solver<'a> {
    nums: &'a [u64],
    reach: Vec<Vec<Reached>>,
}

impl Solver<'_> {
    /// Steps that make `v` from exactly the numbers in `mask`, if possible.
    fn make(&self, mask: usize, v: u64) -> Option<Vec<Step>> {
        if mask.count_ones() <= TABULATED {
            let table = self.reach.get(mask)?;
            let index = table.binary_search_by_key(&v, |r| r.value).ok()?;
            let mut steps = Vec::new();
            self.unwind((mask, index), &mut steps);
            return Some(steps);
        }
        for (small, rest) in splits(mask) {
            for (index, a) in self.reach.get(small)?.iter().enumerate() {
                for b in self.partners(a.value, v, rest) {
                    let Some(step) = successors(a.value, b).find(|s| s.result == v) else { continue };
                    let Some(rest_steps) = self.make(rest, b) else { continue };
                    let mut steps = Vec::new();
                    self.unwind((small, index), &mut steps);
                    steps.extend(rest_steps);
                    steps.push(step);
                    return Some(steps);
                }
            }
        }
        None
    }

    /// Every `b` for which one whole-number step on `a` and `b` can give `v`.
    fn partners(&self, a: u64, v: u64, rest: usize) -> impl Iterator<Item = u64> {
        // `0 * b = 0` for any b: the sum of the other numbers is one value they can always make.
        let any_b = (a == 0 && v == 0).then(|| {
            let mut members = self.nums.iter().enumerate().filter(|&(i, _)| rest & (1 << i) != 0);
            members.try_fold(0u64, |sum, (_, &x)| sum.checked_add(x))
        });
        [
            v.checked_sub(a),                               // a + b = v
            a.checked_sub(v),                               // a - b = v
            a.checked_add(v),                               // b - a = v
            (a != 0 && v.is_multiple_of(a)).then(|| v / a), // a * b = v
            (v != 0 && a.is_multiple_of(v)).then(|| a / v), // a / b = v
            if v != 0 { a.checked_mul(v) } else { None },   // b / a = v
            any_b.flatten(),
        ]
        .into_iter()
        .flatten()
    }

    /// Appends the steps that make tabulated entry `at` (operands first), in replayable order.
    fn unwind(&self, at: EntryRef, steps: &mut Vec<Step>) {
        let Some(entry) = self.reach.get(at.0).and_then(|r| r.get(at.1)) else { return };
        let Some((a, b, step)) = entry.from else { return };
        self.unwind(a, steps);
        self.unwind(b, steps);
        steps.push(step);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(nums: &[u64], steps: &[Step]) -> Vec<u64> {
        let mut pool = nums.to_vec();
        for s in steps {
            let ia = pool.iter().position(|&v| v == s.a).unwrap();
            pool.remove(ia);
            let ib = pool.iter().position(|&v| v == s.b).unwrap();
            pool.remove(ib);
            pool.push(s.result);
        }
        pool
    }

    #[test]
    fn finds_solutions_that_replay_to_the_target() {
        for (nums, target) in [
            (&[3u64, 8, 12, 2][..], 24),
            (&[25, 50, 75, 100, 3], 100),
            (&[1, 1], 2),
            (&[7], 7),
            (&[1, 2, 3, 4, 5, 6], 720),
            (&[0, 0, 5, 9], 0),
        ] {
            let steps = solve(nums, target).unwrap();
            assert_eq!(steps.len(), nums.len() - 1);
            assert_eq!(replay(nums, &steps), vec![target]);
        }
    }

    #[test]
    fn reports_unsolvable() {
        assert_eq!(solve(&[1, 1], 5), None);
        assert_eq!(solve(&[7], 8), None);
        assert_eq!(solve(&[], 0), None);
        assert_eq!(solve(&[1; MAX_SOLVE_NUMS + 1], 7), None, "too many numbers to search");
        // 6/(1-3/4) = 24 needs a fraction: no whole-number solution exists.
        assert_eq!(solve(&[1, 3, 4, 6], 24), None);
    }

    #[test]
    fn no_overflow_on_huge_numbers() {
        let steps = solve(&[u64::MAX, u64::MAX], 1).unwrap();
        assert_eq!(steps[0].op, Op::Div);
    }
}
