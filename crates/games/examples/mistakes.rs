//! Mistake rates of the fixed opponents (random, alpha-beta depth 1–7) on a labelled set, per group:
//! `cargo run --release -p selfplay-games --example mistakes -- crates/games/data/connect4_benchmark.txt`.
//! Each cell is `mistakes% (decisive-only%)`.

use selfplay_games::labelled::{GROUPS, mistakes};
use selfplay_games::{Agent, AlphaBetaAgent, Connect4, LabelledPosition, RandomAgent, TieBreak};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: mistakes FILE")?;
    let text = std::fs::read_to_string(&path)?;
    let set = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(LabelledPosition::parse_line)
        .collect::<Result<Vec<_>, _>>()?;
    let mut agents: Vec<Box<dyn Agent<Connect4>>> = vec![Box::new(RandomAgent::new(0))];
    for depth in 1..=7 {
        agents.push(Box::new(AlphaBetaAgent::new(depth, TieBreak::CentreFirst)?));
    }
    let header: Vec<String> = GROUPS.iter().map(|(p, d)| format!("{}-{}", p.name(), d.name())).collect();
    println!("| agent | {} | all |", header.join(" | "));
    println!("|---|{}---|", "---|".repeat(GROUPS.len()));
    for agent in agents.iter_mut() {
        let m = mistakes(agent.as_mut(), &set)?;
        let cells: Vec<String> = GROUPS
            .iter()
            .map(|&(p, d)| m.group(p, d))
            .chain(std::iter::once(&m.total))
            .map(|r| format!("{:.1} ({:.1})", 100.0 * r.rate(), 100.0 * r.decisive_rate()))
            .collect();
        println!("| {} | {} |", agent.name(), cells.join(" | "));
    }
    Ok(())
}
