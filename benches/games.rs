//! The Connect Four solver's speed: every move of a set of positions analysed per iteration (positions/s),
//! with the transposition table emptied at the start of each iteration so runs are comparable. Sets: 64
//! mid-game positions (15–28 moves played) and 256 end-game positions (29–40), drawn by seeded random play
//! (`selfplay_games::labelled::generate`). Nodes per set are printed once, so nodes/s = nodes × sets/s.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use selfplay_games::labelled::{GenerateConfig, generate};
use selfplay_games::{Connect4, Solver};

/// 2^23 entries (64 MiB), the solver's default.
const TABLE_ENTRIES: usize = 1 << 23;

fn positions(seed: u64, count: usize, min_moves: usize, max_moves: usize) -> Vec<Connect4> {
    let mut solver = Solver::with_table_entries(1 << 20);
    generate(&GenerateConfig { seed, count, min_moves, max_moves }, &mut solver)
        .into_iter()
        .map(|l| l.position)
        .collect()
}

fn analyze_all(solver: &mut Solver, set: &[Connect4]) {
    solver.clear();
    for p in set {
        black_box(solver.analyze(black_box(p)));
    }
}

fn bench_solver(c: &mut Criterion) {
    let mut group = c.benchmark_group("games/solver");
    group.sample_size(10);
    for (name, set) in [("middle_15_28", positions(11, 64, 15, 28)), ("end_29_40", positions(12, 256, 29, 40))] {
        let mut solver = Solver::with_table_entries(TABLE_ENTRIES);
        solver.reset_nodes();
        analyze_all(&mut solver, &set);
        eprintln!("games/solver/{name}: {} positions, {} nodes per set", set.len(), solver.nodes());
        group.throughput(Throughput::Elements(set.len() as u64));
        group.bench_function(format!("analyze_{name}"), |b| b.iter(|| analyze_all(&mut solver, &set)));
    }
    group.finish();
}

criterion_group!(benches, bench_solver);
criterion_main!(benches);
