//! Search streams (Stream of Search, Gandhi et al. 2024): a solution written as the search that found it, every
//! state it explored and every backtrack included, so that a policy trained on them learns to try, check, back up
//! and try again — o1's "long thinking" — rather than only to recite answers.
//!
//! The searches and orderings are the paper's:
//! - **depth-first** ([`StreamSearch::Dfs`]): at each state the successors are tried best first by the heuristic;
//!   successors whose heuristic exceeds the target are pruned (never tried);
//! - **breadth-first with a beam** ([`StreamSearch::Bfs`]): the `beam` best open states are expanded in turn;
//!   each keeps its `beam` best successors, which join the open states;
//! - heuristics ([`Heuristic`]): the mean distance of the numbers to the target, or the summed distance of each
//!   number to its nearest factor of the target.
//!
//! The writing is compact for a character-level policy: a stream is only step lines (`a op b=c`, applied to the
//! numbers standing) and [`BACKTRACK_LINE`]s (undo the latest step standing), then the answer. Depth-first search
//! descends with a step and returns with `back`. Breadth-first search writes each kept successor as a step and a
//! `back` (explored, not entered), and moves to the next state to expand by backing up to the common ancestor
//! and stepping down. At the last level (two numbers) only a step that reaches the target is written: that check
//! is easy to do "in the head", and writing the failures would double a stream's length. Whatever the search,
//! replaying the lines gives the numbers standing at every point ([`selfplay_reward::check_steps`] does), and the
//! steps standing at the end are the solution the answer writes out.

use core::cmp::Ordering;
use core::fmt;
use core::str::FromStr;
use std::collections::BinaryHeap;

pub use selfplay_reward::BACKTRACK_LINE;
use selfplay_reward::CountdownProblem;
use serde::{Deserialize, Serialize};

use super::solver::{MAX_SOLVE_NUMS, Step, successors};
use super::trace::{answer_expression, answer_line};

/// How a search stream orders (and prunes) states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Heuristic {
    /// The mean distance of the numbers to the target (the paper's "sum" heuristic).
    Target,
    /// The summed distance of each number to the nearest factor (at least 2) of the target (the paper's
    /// "multiply" heuristic): steers towards products.
    Factors,
}

/// Which search a stream writes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamSearch {
    /// Depth-first, best successor first, pruning successors scored above the target.
    Dfs,
    /// Breadth-first over the best open states, `beam` at a time, each keeping its `beam` best successors.
    Bfs {
        /// States expanded per round and successors kept per state (1 to [`MAX_BEAM`]).
        beam: usize,
    },
}

/// The widest beam a stream name may ask for: wider beams write streams far beyond any context we train.
pub const MAX_BEAM: usize = 16;

/// A search and its heuristic: one way of writing search streams, named `dfs-target`, `bfs3-factors`, …
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamStyle {
    /// The search.
    pub search: StreamSearch,
    /// Its ordering.
    pub heuristic: Heuristic,
}

/// A stream style's name that is none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown trace style {0:?}: expected optimal, dfs-target, dfs-factors, or bfsN-target / bfsN-factors with \
     a beam N from 1 to {MAX_BEAM}"
)]
pub struct StyleParseError(pub String);

impl fmt::Display for StreamStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.search {
            StreamSearch::Dfs => write!(f, "dfs")?,
            StreamSearch::Bfs { beam } => write!(f, "bfs{beam}")?,
        }
        match self.heuristic {
            Heuristic::Target => write!(f, "-target"),
            Heuristic::Factors => write!(f, "-factors"),
        }
    }
}

impl FromStr for StreamStyle {
    type Err = StyleParseError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let error = || StyleParseError(name.to_owned());
        let (search, heuristic) = name.split_once('-').ok_or_else(error)?;
        let heuristic = match heuristic {
            "target" => Heuristic::Target,
            "factors" => Heuristic::Factors,
            _ => return Err(error()),
        };
        let search = match search.strip_prefix("bfs") {
            _ if search == "dfs" => StreamSearch::Dfs,
            Some(beam) if !beam.starts_with(['+', '0']) => match beam.parse() {
                Ok(beam @ 1..=MAX_BEAM) => StreamSearch::Bfs { beam },
                _ => return Err(error()),
            },
            _ => return Err(error()),
        };
        Ok(StreamStyle { search, heuristic })
    }
}

/// A policy initialisation trace by name, as run configs write it: `optimal` (the direct solution) or a
/// [`StreamStyle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum TraceKind {
    /// The direct solution: `n − 1` step lines and the answer.
    Optimal,
    /// A search stream.
    Stream(StreamStyle),
}

impl fmt::Display for TraceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceKind::Optimal => write!(f, "optimal"),
            TraceKind::Stream(style) => style.fmt(f),
        }
    }
}

impl FromStr for TraceKind {
    type Err = StyleParseError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "optimal" => Ok(TraceKind::Optimal),
            _ => name.parse().map(TraceKind::Stream),
        }
    }
}

impl TryFrom<String> for TraceKind {
    type Error = StyleParseError;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

impl From<TraceKind> for String {
    fn from(kind: TraceKind) -> String {
        kind.to_string()
    }
}

/// A state's heuristic as an exact fraction (`numerator / denominator`), lower is closer; compared exactly, so
/// orderings never depend on floating point.
#[derive(Debug, Clone, Copy)]
struct Score {
    numerator: u128,
    denominator: u128,
}

impl Score {
    fn exceeds(self, target: u64) -> bool {
        self.numerator > u128::from(target) * self.denominator
    }
}

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        // Numerators are sums of at most six u64 distances and denominators at most six: no overflow.
        (self.numerator * other.denominator).cmp(&(other.numerator * self.denominator))
    }
}

/// A heuristic bound to one problem's target (the target's factors are found once).
struct Scorer {
    heuristic: Heuristic,
    target: u64,
    /// The target's factors from 2 up, ascending (the target itself when it has none, as 0 and 1 do).
    factors: Vec<u64>,
}

impl Scorer {
    /// The factors come by trial division, √target steps once per stream: a millisecond up to targets of 10^12
    /// (Countdown's are in the hundreds), seconds only for targets near `u64::MAX`.
    fn new(heuristic: Heuristic, target: u64) -> Self {
        let mut factors: Vec<u64> = Vec::new();
        if heuristic == Heuristic::Factors {
            let mut d = 1u64;
            while d.saturating_mul(d) <= target {
                if target.is_multiple_of(d) {
                    factors.extend([d, target / d].into_iter().filter(|&f| f >= 2));
                }
                d += 1;
            }
            factors.sort_unstable();
            factors.dedup();
            if factors.is_empty() {
                factors.push(target);
            }
        }
        Scorer { heuristic, target, factors }
    }

    fn score(&self, nums: &[u64]) -> Score {
        match self.heuristic {
            Heuristic::Target => Score {
                numerator: nums.iter().map(|&n| u128::from(n.abs_diff(self.target))).sum(),
                denominator: nums.len().max(1) as u128,
            },
            Heuristic::Factors => {
                let nearest = |n: u64| {
                    let at = self.factors.partition_point(|&f| f < n);
                    [at.checked_sub(1), Some(at)]
                        .into_iter()
                        .flatten()
                        .filter_map(|i| self.factors.get(i))
                        .map(|&f| u128::from(f.abs_diff(n)))
                        .min()
                        .unwrap_or(0)
                };
                Score { numerator: nums.iter().map(|&n| nearest(n)).sum(), denominator: 1 }
            }
        }
    }

    /// Every successor of `nums` (pairs in order, each pair's operations in [`successors`]' order) with the numbers
    /// it leaves and their score, best first; ties keep that order.
    fn successors(&self, nums: &[u64]) -> Vec<(Step, Vec<u64>, Score)> {
        let mut out = Vec::new();
        for i in 0..nums.len() {
            for j in i + 1..nums.len() {
                for step in successors(nums[i], nums[j]) {
                    let mut next: Vec<u64> =
                        nums.iter().enumerate().filter(|&(k, _)| k != i && k != j).map(|(_, &v)| v).collect();
                    next.push(step.result);
                    let score = self.score(&next);
                    out.push((step, next, score));
                }
            }
        }
        out.sort_by_key(|&(_, _, score)| score);
        out
    }
}

/// The line budget ran out.
struct OverBudget;

/// The stream being written, and the steps standing.
struct Writer {
    lines: Vec<String>,
    max_lines: usize,
    standing: Vec<Step>,
}

impl Writer {
    fn push(&mut self, line: String) -> Result<(), OverBudget> {
        if self.lines.len() >= self.max_lines {
            return Err(OverBudget);
        }
        self.lines.push(line);
        Ok(())
    }

    fn step(&mut self, step: Step) -> Result<(), OverBudget> {
        self.push(step.render())?;
        self.standing.push(step);
        Ok(())
    }

    fn back(&mut self) -> Result<(), OverBudget> {
        self.push(BACKTRACK_LINE.to_owned())?;
        self.standing.pop();
        Ok(())
    }

    /// Backs up to the longest common prefix of the steps standing and `path`, then steps down along `path`.
    fn go_to(&mut self, path: &[Step]) -> Result<(), OverBudget> {
        let common = self.standing.iter().zip(path).take_while(|(a, b)| a == b).count();
        while self.standing.len() > common {
            self.back()?;
        }
        path[common..].iter().try_for_each(|&step| self.step(step))
    }
}

/// The search stream of `style` for `problem`, ending in the answer its steps build; `None` when the search finds
/// no solution within `max_lines` step and backtrack lines (pruning or a narrow beam can miss one that exists), or
/// the problem has none, or more than [`MAX_SOLVE_NUMS`] numbers.
pub fn stream_trace(problem: &CountdownProblem, style: StreamStyle, max_lines: usize) -> Option<String> {
    if problem.nums.len() > MAX_SOLVE_NUMS || problem.nums.is_empty() {
        return None;
    }
    let scorer = Scorer::new(style.heuristic, problem.target);
    let mut writer = Writer { lines: Vec::new(), max_lines, standing: Vec::new() };
    let found = match style.search {
        StreamSearch::Dfs => dfs(&mut writer, &scorer, &problem.nums),
        StreamSearch::Bfs { beam } => bfs(&mut writer, &scorer, &problem.nums, beam),
    };
    if !matches!(found, Ok(true)) {
        return None;
    }
    let expression = answer_expression(&problem.nums, &writer.standing)?;
    writer.lines.push(answer_line(&expression));
    Some(writer.lines.join("\n"))
}

/// True when a solution was found from `nums` (its steps standing in `writer`).
fn dfs(writer: &mut Writer, scorer: &Scorer, nums: &[u64]) -> Result<bool, OverBudget> {
    if let [only] = nums {
        return Ok(*only == scorer.target);
    }
    for (step, next, score) in scorer.successors(nums) {
        let last_level = next.len() == 1;
        if (last_level && step.result != scorer.target) || score.exceeds(scorer.target) {
            continue;
        }
        writer.step(step)?;
        if dfs(writer, scorer, &next)? {
            return Ok(true);
        }
        writer.back()?;
    }
    Ok(false)
}

/// An open state of the breadth-first search: the steps that reach it and the numbers they leave.
struct Open {
    score: Score,
    /// Insertion order: ties go to the state opened first, so the order is deterministic.
    order: u64,
    path: Vec<Step>,
    nums: Vec<u64>,
}

impl PartialEq for Open {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Open {}

impl PartialOrd for Open {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Open {
    /// Reversed, so that the max-heap pops the best (lowest score, then earliest) state.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.score, other.order).cmp(&(self.score, self.order))
    }
}

/// True when a solution was found from `nums` (its steps standing in `writer`). A beam of 0 expands nothing
/// and finds nothing (names refuse it; a hand-built style would otherwise never leave its first round).
fn bfs(writer: &mut Writer, scorer: &Scorer, nums: &[u64], beam: usize) -> Result<bool, OverBudget> {
    if let [only] = nums {
        return Ok(*only == scorer.target);
    }
    if beam == 0 {
        return Ok(false);
    }
    let mut open = BinaryHeap::new();
    open.push(Open { score: scorer.score(nums), order: 0, path: Vec::new(), nums: nums.to_vec() });
    let mut opened = 1u64;
    while !open.is_empty() {
        let round: Vec<Open> = (0..beam).map_while(|_| open.pop()).collect();
        for state in round {
            writer.go_to(&state.path)?;
            for (step, next, score) in scorer.successors(&state.nums).into_iter().take(beam) {
                if next.len() == 1 {
                    if step.result == scorer.target {
                        writer.step(step)?;
                        return Ok(true);
                    }
                    continue;
                }
                writer.step(step)?;
                writer.back()?;
                let mut path = state.path.clone();
                path.push(step);
                open.push(Open { score, order: opened, path, nums: next });
                opened += 1;
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfplay_reward::{CountdownVerifier, StepCheck, Verdict, Verifier, check_steps};

    fn problem(nums: &[u64], target: u64) -> CountdownProblem {
        CountdownProblem { nums: nums.to_vec(), target }
    }

    fn style(name: &str) -> StreamStyle {
        name.parse().unwrap()
    }

    /// Every style's stream verifies, replays cleanly under the step checker (backtracks included), and ends with
    /// the target alone standing.
    #[test]
    fn every_style_verifies_and_replays() {
        let p = problem(&[25, 50, 75, 100, 3], 100);
        for name in ["dfs-target", "dfs-factors", "bfs1-target", "bfs2-factors", "bfs3-target", "bfs5-factors"] {
            let Some(trace) = stream_trace(&p, style(name), 5000) else { continue };
            assert_eq!(CountdownVerifier::default().verify(&p, trace.as_bytes()).verdict, Verdict::Correct, "{name}");
            let StepCheck { error, remaining, .. } = check_steps(&p.nums, format!("{trace}\n").as_bytes());
            assert_eq!((error, remaining), (None, vec![100]), "{name}: {trace}");
        }
        for name in ["dfs-target", "bfs5-target"] {
            assert!(stream_trace(&p, style(name), 5000).is_some(), "{name} solves it");
        }
    }

    /// Streams written out by hand from the paper's rules.
    #[test]
    fn streams_follow_the_searches_by_hand() {
        // 36 20 71 -> 55, target heuristic. The root's successors by the mean distance to 55 of the numbers they
        // leave: 36+20=56 (8.5), 71-20=51 (11.5), then 36-20=16, 71-36=35 and 71+20=91 tied at 27.5 (kept in
        // order), ...; 36*20=720 (340.5) is pruned. At two numbers only a step reaching 55 is written.
        let hard = problem(&[36, 20, 71], 55);
        let dfs = stream_trace(&hard, style("dfs-target"), 100).unwrap();
        assert_eq!(dfs, "36+20=56\nback\n71-20=51\nback\n36-20=16\n71-16=55\n<answer>71-(36-20)</answer>");
        // A beam of one keeps the best successor only, explores it (step, back), enters it, finds no way on.
        assert_eq!(stream_trace(&hard, style("bfs1-target"), 100), None);
        let bfs = stream_trace(&hard, style("bfs3-target"), 100).unwrap();
        assert_eq!(
            bfs,
            "36+20=56\nback\n71-20=51\nback\n36-20=16\nback\n\
             36+20=56\nback\n71-20=51\nback\n36-20=16\n71-16=55\n<answer>71-(36-20)</answer>",
            "round 1 explores the root's best three; round 2 enters each in turn"
        );
        let no_beam = StreamStyle { search: StreamSearch::Bfs { beam: 0 }, heuristic: Heuristic::Target };
        assert_eq!(stream_trace(&hard, no_beam, 100), None, "a beam of 0 finds nothing, and ends");
        // A tiny budget gives up; an unsolvable problem has no stream.
        assert_eq!(stream_trace(&hard, style("dfs-target"), 1), None);
        assert_eq!(stream_trace(&problem(&[1, 1], 5), style("dfs-target"), 1000), None);
        assert_eq!(stream_trace(&problem(&[7], 7), style("bfs2-target"), 1000).as_deref(), Some("<answer>7</answer>"));
    }

    /// The factors heuristic: distance of each number to the nearest factor of the target (2 up).
    #[test]
    fn heuristics_score_as_the_paper_does() {
        let target = Scorer::new(Heuristic::Target, 24);
        assert_eq!(target.score(&[20, 30]), Score { numerator: 10, denominator: 2 });
        let factors = Scorer::new(Heuristic::Factors, 24);
        assert_eq!(factors.factors, vec![2, 3, 4, 6, 8, 12, 24]);
        // 5 -> 4 or 6 (1), 10 -> 8 or 12 (2), 30 -> 24 (6), 1 -> 2 (1).
        assert_eq!(factors.score(&[5, 10, 30, 1]), Score { numerator: 10, denominator: 1 });
        assert_eq!(Scorer::new(Heuristic::Factors, 13).factors, vec![13]);
        assert_eq!(Scorer::new(Heuristic::Factors, 1).factors, vec![1]);
        assert_eq!(Scorer::new(Heuristic::Factors, 0).factors, vec![0]);
        assert!(Score { numerator: 7, denominator: 2 } < Score { numerator: 4, denominator: 1 });
        assert!(Score { numerator: 9, denominator: 2 }.exceeds(4));
        assert!(!Score { numerator: 8, denominator: 2 }.exceeds(4));
    }

    #[test]
    fn names_round_trip_and_bad_ones_are_refused() {
        for name in ["optimal", "dfs-target", "dfs-factors", "bfs1-target", "bfs5-factors", "bfs16-target"] {
            let kind: TraceKind = name.parse().unwrap();
            assert_eq!(kind.to_string(), name);
        }
        for bad in ["", "dfs", "bfs-target", "bfs0-target", "bfs17-target", "bfs03-target", "bfs+3-target", "dfs-sum"] {
            assert_eq!(bad.parse::<TraceKind>(), Err(StyleParseError(bad.to_owned())), "{bad:?}");
        }
    }
}
