//! Generates solver-labelled Connect Four positions (seeded random play, see
//! `selfplay_games::labelled::generate`) and prints one line per position, `<moves> s1 … s7`, then a summary
//! on stderr: the count per group (phase × difficulty), positions/s and solver nodes/s.
//!
//! `cargo run --release -p selfplay-games --example label_positions -- --seed 1 --count 100 --min 15 --max 28`
//! (`--table-log2 N`: 2^N table entries, default 23). With `--per-group N` it writes the six-group benchmark
//! instead (`selfplay_games::labelled::generate_benchmark`, N positions a group, `--count/--min/--max`
//! ignored), with a header naming the command.

use std::time::Instant;

use selfplay_games::labelled::{GenerateConfig, generate, generate_benchmark};
use selfplay_games::{Difficulty, Phase, Solver};

fn arg(args: &[String], name: &str, default: u64) -> Result<u64, Box<dyn std::error::Error>> {
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args.get(i + 1).ok_or(format!("{name} needs a value"))?.parse()?),
        None => Ok(default),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let config = GenerateConfig {
        seed: arg(&args, "--seed", 1)?,
        count: arg(&args, "--count", 100)? as usize,
        min_moves: arg(&args, "--min", 15)? as usize,
        max_moves: arg(&args, "--max", 28)? as usize,
    };
    let mut solver = Solver::with_table_entries(1 << arg(&args, "--table-log2", 23)?);
    let start = Instant::now();
    let per_group = arg(&args, "--per-group", 0)? as usize;
    let set = if per_group > 0 {
        println!(
            "# cargo run --release -p selfplay-games --example label_positions -- --seed {} --per-group {per_group}",
            config.seed
        );
        println!("# <moves> then the exact score of columns 1-7 ('-' = full); groups in the order of labelled::GROUPS");
        generate_benchmark(config.seed, per_group, &mut solver)
    } else {
        generate(&config, &mut solver)
    };
    let secs = start.elapsed().as_secs_f64();
    for l in &set {
        println!("{}", l.to_line());
    }
    for phase in Phase::ALL {
        for difficulty in Difficulty::ALL {
            let n = set.iter().filter(|l| l.phase() == phase && l.difficulty() == difficulty).count();
            if n > 0 {
                eprintln!("{}-{}: {n}", phase.name(), difficulty.name());
            }
        }
    }
    let decisive = set.iter().filter(|l| l.is_decisive()).count();
    eprintln!(
        "{} positions ({decisive} decisive) in {secs:.2} s: {:.1} positions/s, {} nodes, {:.2} M nodes/s",
        set.len(),
        set.len() as f64 / secs,
        solver.nodes(),
        solver.nodes() as f64 / secs / 1e6
    );
    Ok(())
}
