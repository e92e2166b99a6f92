//! Solves positions read from stdin (one a line, the column notation) and prints each move's score, the
//! solver's node count and the time taken: `cargo run --release -p selfplay-games --example solve`.
//! `--table-log2 N` sets the transposition table to 2^N entries (default 23).

use std::io::BufRead;
use std::time::Instant;

use selfplay_games::{Connect4, Solver};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let log2 = match args.iter().position(|a| a == "--table-log2") {
        Some(i) => args.get(i + 1).ok_or("--table-log2 needs a value")?.parse::<u32>()?,
        None => 23,
    };
    let mut solver = Solver::with_table_entries(1 << log2);
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let moves = line.split_whitespace().next().unwrap_or("");
        match Connect4::from_moves(moves) {
            Ok(p) => {
                solver.reset_nodes();
                let start = Instant::now();
                let scores = solver.analyze(&p);
                let secs = start.elapsed().as_secs_f64();
                let shown: Vec<String> = scores.iter().map(|s| s.map_or("-".into(), |s| s.to_string())).collect();
                println!("{moves} {} nodes={} secs={secs:.4}", shown.join(" "), solver.nodes());
            }
            Err(e) => println!("{moves} error: {e}"),
        }
    }
    Ok(())
}
