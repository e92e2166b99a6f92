//! Positions with known move values, on which an agent's mistakes are counted: Connect Four's solver-labelled
//! benchmark (AlphaZero.jl's metric). The network alone and with search at several budgets is measured on it:
//! the test-time curve of a board game.

use selfplay_games::labelled::{GROUPS, MistakeReport, Tactic, mistakes_of_moves};
use selfplay_games::{Connect4, LabelledPosition};
use selfplay_model::{HostAccess, Model};
use selfplay_search::Game;
use serde::{Deserialize, Serialize};

use super::config::AlphaZeroConfig;
use super::error::AlphaZeroError;
use super::play::choose_moves;

/// How often an agent's move was a mistake (its solved outcome worse than the best move's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MistakeRates {
    /// Over every position.
    pub all: f64,
    /// Over the positions whose moves' outcomes differ.
    pub decisive: f64,
}

/// The mistake rates on one group of a benchmark's positions (Connect Four: a phase and a difficulty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupRates {
    /// The group's name (`"begin hard"`).
    pub group: String,
    #[serde(flatten)]
    pub rates: MistakeRates,
}

/// Mistake rates over a whole benchmark and on each of its groups. The totals stay a `Copy` [`MistakeRates`]
/// beside the groups, so that a record's points can be read by value.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchmarkMistakes {
    pub total: MistakeRates,
    /// The groups that hold positions, in the benchmark's order.
    pub groups: Vec<GroupRates>,
}

/// Positions of game `G` and a judge of the moves played at them.
pub trait MoveBenchmark<G> {
    /// The positions (none finished).
    fn positions(&self) -> &[G];
    /// The mistake rates of `moves[i]` played at `positions()[i]`, in total and per group.
    fn mistakes(&self, moves: &[usize]) -> BenchmarkMistakes;
}

/// Connect Four positions labelled by the perfect solver.
#[derive(Debug, Clone)]
pub struct Connect4Benchmark {
    labelled: Vec<LabelledPosition>,
    positions: Vec<Connect4>,
}

impl Connect4Benchmark {
    /// The benchmark of `labelled` positions.
    pub fn new(labelled: Vec<LabelledPosition>) -> Self {
        let positions = labelled.iter().map(|l| l.position).collect();
        Connect4Benchmark { labelled, positions }
    }

    /// The mistake rates of `moves[i]` played at `positions()[i]`, in total and grouped by what each position
    /// asks one ply deep ([`Tactic`]: win while threatened, win, block, quiet) instead of by phase and difficulty.
    pub fn mistakes_by_tactic(&self, moves: &[usize]) -> BenchmarkMistakes {
        let report = mistakes_of_moves(&self.labelled, moves);
        let rates = |r: &MistakeReport| MistakeRates { all: r.rate(), decisive: r.decisive_rate() };
        let groups = Tactic::ALL
            .iter()
            .map(|&t| (t, report.tactic(t)))
            .filter(|(_, r)| r.positions > 0)
            .map(|(t, r)| GroupRates { group: t.name().to_string(), rates: rates(r) })
            .collect();
        BenchmarkMistakes { total: rates(&report.total), groups }
    }

    /// The benchmark committed with `selfplay-games`: 30 positions in each of Pons's six groups (begin easy,
    /// medium, hard; middle easy, medium; end easy).
    pub fn committed() -> Result<Self, selfplay_games::LabelError> {
        Ok(Connect4Benchmark::new(selfplay_games::labelled::committed_benchmark()?))
    }
}

impl MoveBenchmark<Connect4> for Connect4Benchmark {
    fn positions(&self) -> &[Connect4] {
        &self.positions
    }

    fn mistakes(&self, moves: &[usize]) -> BenchmarkMistakes {
        let report = mistakes_of_moves(&self.labelled, moves);
        let rates = |r: &MistakeReport| MistakeRates { all: r.rate(), decisive: r.decisive_rate() };
        let groups = GROUPS
            .iter()
            .map(|&(phase, difficulty)| (phase, difficulty, report.group(phase, difficulty)))
            .filter(|(_, _, r)| r.positions > 0)
            .map(|(phase, difficulty, r)| GroupRates {
                group: format!("{} {}", phase.name(), difficulty.name()),
                rates: rates(r),
            })
            .collect();
        BenchmarkMistakes { total: rates(&report.total), groups }
    }
}

/// The mistake rates of the network on `benchmark` in total and per group, with a search of `simulations` (0: the
/// network alone).
pub fn measure_by_group<G: Game, B: HostAccess>(
    model: &Model<B>,
    config: &AlphaZeroConfig,
    benchmark: &dyn MoveBenchmark<G>,
    simulations: usize,
    seed: u64,
) -> Result<BenchmarkMistakes, AlphaZeroError> {
    let (moves, _) = choose_moves(model, config, benchmark.positions(), simulations, seed)?;
    Ok(benchmark.mistakes(&moves))
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfplay_games::labelled::committed_benchmark;

    /// The best (with `best`) or the worst legal column by score.
    fn column(l: &LabelledPosition, best: bool) -> usize {
        let legal = (0..7).filter_map(|c| l.scores[c].map(|s| (c, s)));
        let pick = if best { legal.max_by_key(|&(_, s)| s) } else { legal.min_by_key(|&(_, s)| s) };
        pick.unwrap().0
    }

    /// A hand-made set: the first two positions of each of the committed benchmark's six groups; the first of each
    /// pair played with its best move, the second with its worst (a mistake exactly when it is decisive).
    #[test]
    fn rates_per_group_count_each_group_alone() {
        let labelled = committed_benchmark().unwrap();
        let mut set = Vec::new();
        for &(phase, difficulty) in &GROUPS {
            set.extend(labelled.iter().filter(|l| (l.phase(), l.difficulty()) == (phase, difficulty)).take(2).cloned());
        }
        assert_eq!(set.len(), 12);
        let moves: Vec<usize> = set.iter().enumerate().map(|(i, l)| column(l, i % 2 == 0)).collect();
        let measured = Connect4Benchmark::new(set.clone()).mistakes(&moves);
        let names: Vec<&str> = measured.groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(names, ["begin easy", "begin medium", "begin hard", "middle easy", "middle medium", "end easy"]);
        let mut mistakes = 0;
        for (pair, group) in set.chunks(2).zip(&measured.groups) {
            let decisive = pair.iter().filter(|l| l.is_decisive()).count();
            let mistake = usize::from(pair[1].is_decisive());
            assert!(pair[1].is_mistake(column(&pair[1], false)) == pair[1].is_decisive());
            mistakes += mistake;
            assert_eq!(group.rates.all, mistake as f64 / 2.0, "{}", group.group);
            let decisive_rate = if decisive == 0 { 0.0 } else { mistake as f64 / decisive as f64 };
            assert_eq!(group.rates.decisive, decisive_rate, "{}", group.group);
        }
        assert!(mistakes >= 3, "the set should hold decisive positions");
        assert_eq!(measured.total.all, mistakes as f64 / 12.0);
    }

    /// The worst move everywhere: each tactic's rate is its share of decisive positions, and the totals are the
    /// grouped view's.
    #[test]
    fn rates_per_tactic_count_each_tactic_alone() {
        let labelled = committed_benchmark().unwrap();
        let moves: Vec<usize> = labelled.iter().map(|l| column(l, false)).collect();
        let benchmark = Connect4Benchmark::new(labelled.clone());
        let measured = benchmark.mistakes_by_tactic(&moves);
        assert_eq!(measured.total, benchmark.mistakes(&moves).total);
        let names: Vec<&str> = measured.groups.iter().map(|g| g.group.as_str()).collect();
        assert_eq!(names, ["win, threatened", "win", "block", "quiet"]);
        for (&tactic, group) in Tactic::ALL.iter().zip(&measured.groups) {
            let of: Vec<&LabelledPosition> = labelled.iter().filter(|l| Tactic::of(&l.position) == tactic).collect();
            let decisive = of.iter().filter(|l| l.is_decisive()).count();
            assert_eq!(group.rates.all, decisive as f64 / of.len() as f64, "{}", group.group);
        }
    }
}
