//! The committed six-group benchmark (`data/connect4_benchmark.txt`, made by the command in its header):
//! well formed, each group full and in order, and its middle and end labels still what the solver says.

use selfplay_games::labelled::{GROUPS, committed_benchmark};
use selfplay_games::{LabelledPosition, Phase, Solver};

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
