//! The solver against an independent reference and against published scores.
//!
//! `fixtures/connect4_scores.txt` was written by `tools/connect4_reference.py` (a plain 2-D board, a win test
//! that walks the four directions, negamax with a memo of bounds: no code shared with the solver). Regenerate
//! it with `python3 tools/connect4_reference.py` from the repository root.

use selfplay_games::{Connect4, LabelledPosition, Solver};

const FIXTURE: &str = include_str!("fixtures/connect4_scores.txt");

#[test]
fn solver_agrees_with_the_python_reference() {
    let mut solver = Solver::with_table_entries(1 << 20);
    let mut checked = 0;
    for line in FIXTURE.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let expected = LabelledPosition::parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let scores = solver.analyze(&expected.position);
        assert_eq!(scores, expected.scores, "position {}", expected.position.notation());
        // The position's score is its best move's.
        assert_eq!(solver.solve(&expected.position), expected.score(), "position {}", expected.position.notation());
        checked += 1;
    }
    assert!(checked >= 100, "only {checked} positions in the fixture");
}

fn solve(moves: &str) -> i32 {
    Solver::with_table_entries(1 << 20).solve(&Connect4::from_moves(moves).unwrap())
}

/// Scores published in Pascal Pons's tutorial (part 2, "Benchmarking solvers") and its test sets.
#[test]
fn published_scores() {
    assert_eq!(solve("2252576253462244111563365343671351441"), -1);
    assert_eq!(solve("4455"), 18);
    assert_eq!(solve("44455554221"), -15);
}

/// The empty board: the first player wins (with its last stone, score 1) only by playing the centre; the
/// scores of the seven first moves are -2 -1 0 1 0 -1 -2. Takes about 27 CPU-minutes in release (9.6 G
/// nodes, no opening book; measured with the `solve` example):
/// `cargo test --release -p selfplay-games --test reference -- --ignored`.
#[test]
#[ignore = "about 27 CPU-minutes: run with --ignored in release"]
fn empty_board() {
    let mut solver = Solver::new();
    let scores = solver.analyze(&Connect4::new());
    assert_eq!(scores, [-2, -1, 0, 1, 0, -1, -2].map(Some));
}
