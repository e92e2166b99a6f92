//! The Connect Four solver's speed: every move of a set of positions analysed per iteration (positions/s),
//! with the transposition table emptied at the start of each iteration so runs are comparable. Sets: 64
//! mid-game positions (15–28 moves played; the default 2^23-entry, 64 MiB table) and 256 end-game positions
//! (29–40; a 2^16-entry table, since emptying 64 MiB would cost more than solving them), drawn by seeded random
//! play (`selfplay_games::labelled::generate`). Nodes per set are printed once: nodes/s = nodes × sets/s.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use selfplay_games::labelled::{GenerateConfig, generate};
use selfplay_games::{Connect4, Solver};

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
    let sets =
        [("middle_15_28", positions(11, 64, 15, 28), 1 << 23), ("end_29_40", positions(12, 256, 29, 40), 1 << 16)];
    for (name, set, entries) in sets {
        let mut solver = Solver::with_table_entries(entries);
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
