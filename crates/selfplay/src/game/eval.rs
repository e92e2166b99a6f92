//! `selfplay game eval`: the test-time curve of a saved network, the share of its moves that are mistakes on the
//! committed solver-labelled benchmark (or a labelled file of the user's) at each search budget, as a table or as
//! JSON lines.

use std::io::Write;

use clap::Args;
use selfplay_engine::alphazero::benchmark::{BenchmarkMistakes, GroupRates};
use selfplay_engine::alphazero::{Connect4Benchmark, MistakeRates, MoveBenchmark, benchmark, choose_moves, load_agent};
use selfplay_games::Connect4;
use selfplay_games::labelled::parse_benchmark;
use serde::Serialize;

use super::agent_args::{AgentArgs, PlayedGame};
use crate::CliError;
use crate::limits::{MAX_SIMULATIONS, bounded};

/// `selfplay game eval` options.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    agent: AgentArgs,
    /// Search budgets, comma-separated, each 0 to 100000 (0: the network alone).
    #[arg(long, value_delimiter = ',', default_value = "0,2,8,32,128,600", allow_hyphen_values = true,
          value_parser = |s: &str| bounded(s, 0..=MAX_SIMULATIONS))]
    simulations: Vec<usize>,
    /// One JSON object per budget instead of the table.
    #[arg(long)]
    json: bool,
    /// Group the positions by what they ask one ply deep (win while the opponent threatens, win, block, quiet)
    /// instead of by phase and difficulty.
    #[arg(long)]
    by_tactic: bool,
    /// Solver-labelled positions to measure on instead of the committed benchmark: a file of `<moves> s1 … s7`
    /// lines as `label_positions` writes them (`#` comments and blank lines skipped).
    #[arg(long, value_name = "FILE")]
    positions: Option<std::path::PathBuf>,
}

/// Measures each budget in turn, printing its row as soon as it is known (600 simulations take a while).
pub fn run(args: EvalArgs) -> Result<(), CliError> {
    let PlayedGame::Connect4 = args.agent.game;
    let (model, config) = load_agent::<Connect4>(&args.agent.model)?;
    let committed = match &args.positions {
        None => Connect4Benchmark::committed()?,
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let labelled = parse_benchmark(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            if labelled.is_empty() {
                return Err(format!("{} holds no labelled position", path.display()).into());
            }
            Connect4Benchmark::new(labelled)
        }
    };
    let mut out = crate::stdio::stdout();
    for (k, &simulations) in args.simulations.iter().enumerate() {
        let rates = if args.by_tactic {
            let (moves, _) = choose_moves(&model, &config, committed.positions(), simulations, args.agent.seed)?;
            committed.mistakes_by_tactic(&moves)
        } else {
            benchmark::measure_by_group(&model, &config, &committed, simulations, args.agent.seed)?
        };
        if k == 0 && !args.json {
            writeln!(
                out,
                "mistakes on {} solver-labelled positions (decisive: where the moves' outcomes differ)",
                committed.positions().len()
            )?;
            writeln!(out, "{}", header(&rates))?;
        }
        writeln!(out, "{}", rates_line(simulations, &rates, args.json)?)?;
        out.flush()?;
    }
    Ok(())
}

/// A column's width: wide enough for its name, at least a rate's.
fn width(name: &str) -> usize {
    name.len().max(9)
}

/// The table's column names (the groups are the benchmark's, in its order), matching [`rates_line`].
fn header(rates: &BenchmarkMistakes) -> String {
    let mut line = format!("{:>11} {:>9} {:>9}", "simulations", "all", "decisive");
    for g in &rates.groups {
        line += &format!("  {:>w$}", g.group, w = width(&g.group));
    }
    line
}

/// One budget's result: a row of the table under [`header`] (each group's rate over all its positions), or with
/// `json` an object holding `simulations`, the totals and every group with both its rates.
fn rates_line(simulations: usize, rates: &BenchmarkMistakes, json: bool) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Row<'a> {
        simulations: usize,
        #[serde(flatten)]
        total: &'a MistakeRates,
        groups: &'a [GroupRates],
    }
    if json {
        return serde_json::to_string(&Row { simulations, total: &rates.total, groups: &rates.groups });
    }
    let mut line = format!("{simulations:>11} {:>9.3} {:>9.3}", rates.total.all, rates.total.decisive);
    for g in &rates.groups {
        line += &format!("  {:>w$.3}", g.rates.all, w = width(&g.group));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_line_up_under_the_header_and_json_carries_every_field() {
        let rates = BenchmarkMistakes {
            total: MistakeRates { all: 0.289, decisive: 0.46 },
            groups: vec![GroupRates { group: "begin hard".into(), rates: MistakeRates { all: 0.5, decisive: 0.75 } }],
        };
        let row = rates_line(600, &rates, false).unwrap();
        assert_eq!(row, "        600     0.289     0.460       0.500");
        assert_eq!(row.len(), header(&rates).len());
        assert!(header(&rates).ends_with("begin hard"));
        let json: serde_json::Value = serde_json::from_str(&rates_line(0, &rates, true).unwrap()).unwrap();
        let groups = serde_json::json!([{"group": "begin hard", "all": 0.5, "decisive": 0.75}]);
        assert_eq!(json, serde_json::json!({"simulations": 0, "all": 0.289, "decisive": 0.46, "groups": groups}));
    }
}
