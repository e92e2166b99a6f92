//! The committed six-group benchmarks (`data/connect4_benchmark.txt`, 30 positions a group, and
//! `data/connect4_benchmark_1200.txt`, 200 a group, for measurements that need less noise; each made by the
//! command in its header): well formed, each group full and in order, and their middle and end labels still what
//! the solver says.

use selfplay_games::labelled::{GROUPS, committed_benchmark, parse_benchmark};
use selfplay_games::{LabelledPosition, Phase, Solver, Tactic};

const PER_GROUP: usize = 30;

#[test]
fn committed_benchmark_is_well_formed_and_correct() {
    let set: Vec<LabelledPosition> = committed_benchmark().unwrap();
    assert_eq!(set.len(), GROUPS.len() * PER_GROUP);
    for (i, l) in set.iter().enumerate() {
        assert_eq!((l.phase(), l.difficulty()), GROUPS[i / PER_GROUP], "line {i}: {}", l.to_line());
    }
    // Begin positions take seconds each in a debug build; the middle and end ones are quick.
    let mut solver = Solver::with_table_entries(1 << 20);
    for l in set.iter().filter(|l| l.phase() != Phase::Begin) {
        assert_eq!(solver.analyze(&l.position), l.scores, "{}", l.to_line());
    }
}

#[test]
fn the_larger_benchmark_is_well_formed_and_correct() {
    const LARGE_PER_GROUP: usize = 200;
    let set = parse_benchmark(include_str!("../data/connect4_benchmark_1200.txt")).unwrap();
    assert_eq!(set.len(), GROUPS.len() * LARGE_PER_GROUP);
    for (i, l) in set.iter().enumerate() {
        assert_eq!((l.phase(), l.difficulty()), GROUPS[i / LARGE_PER_GROUP], "line {i}: {}", l.to_line());
    }
    // Every fifth middle or end position, to keep a debug build's test short.
    let mut solver = Solver::with_table_entries(1 << 20);
    for l in set.iter().filter(|l| l.phase() != Phase::Begin).step_by(5) {
        assert_eq!(solver.analyze(&l.position), l.scores, "{}", l.to_line());
    }
}

/// The one-ply tactics of both benchmarks, counted as `tools/connect4_tactics.py` (an independent replay and win
/// test) counts them.
#[test]
fn tactics_match_the_independent_count() {
    let count =
        |set: &[LabelledPosition]| Tactic::ALL.map(|t| set.iter().filter(|l| Tactic::of(&l.position) == t).count());
    assert_eq!(count(&committed_benchmark().unwrap()), [31, 22, 42, 85]);
    let large = parse_benchmark(include_str!("../data/connect4_benchmark_1200.txt")).unwrap();
    assert_eq!(count(&large), [202, 174, 271, 553]);
}
