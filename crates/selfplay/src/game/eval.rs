//! `selfplay game eval`: the test-time curve of a saved network, the share of its moves that are mistakes on the
//! committed solver-labelled benchmark at each search budget, as a table or as JSON lines.

use std::io::Write;

use clap::Args;
use selfplay_engine::alphazero::{Connect4Benchmark, MistakeRates, MoveBenchmark, benchmark, load_agent};
use selfplay_games::Connect4;
use serde::Serialize;

use super::agent_args::{AgentArgs, PlayedGame};
use crate::CliError;

/// `selfplay game eval` options.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    agent: AgentArgs,
    /// Search budgets, comma-separated (0: the network alone).
    #[arg(long, value_delimiter = ',', default_value = "0,2,8,32,128,600")]
    simulations: Vec<usize>,
    /// One JSON object per budget instead of the table.
    #[arg(long)]
    json: bool,
}

/// Measures each budget in turn, printing its row as soon as it is known (600 simulations take a while).
pub fn run(args: EvalArgs) -> Result<(), CliError> {
    let PlayedGame::Connect4 = args.agent.game;
    let (model, config) = load_agent::<Connect4>(&args.agent.model)?;
    let committed = Connect4Benchmark::committed()?;
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(out, "mistakes on {} solver-labelled positions", committed.positions().len())?;
        writeln!(out, "{HEADER}")?;
    }
    for &simulations in &args.simulations {
        let rates = benchmark::measure(&model, &config, &committed, simulations, args.agent.seed)?;
        writeln!(out, "{}", rates_line(simulations, &rates, args.json)?)?;
        out.flush()?;
    }
    Ok(())
}

/// The table's column names, matching [`rates_line`].
const HEADER: &str = "simulations       all  decisive";

/// One budget's result: a row of the table under [`HEADER`], or with `json` an object holding `simulations` and
/// every field of [`MistakeRates`] (a field added there appears in the JSON by itself; the table takes a column
/// here and in [`HEADER`]).
fn rates_line(simulations: usize, rates: &MistakeRates, json: bool) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Row<'a> {
        simulations: usize,
        #[serde(flatten)]
        rates: &'a MistakeRates,
    }
    if json {
        serde_json::to_string(&Row { simulations, rates })
    } else {
        Ok(format!("{simulations:>11} {:>9.3} {:>9.3}", rates.all, rates.decisive))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_line_up_under_the_header_and_json_carries_every_field() {
        let rates = MistakeRates { all: 0.289, decisive: 0.46 };
        let row = rates_line(600, &rates, false).unwrap();
        assert_eq!(row, "        600     0.289     0.460");
        assert_eq!(row.len(), HEADER.len());
        let json: serde_json::Value = serde_json::from_str(&rates_line(0, &rates, true).unwrap()).unwrap();
        assert_eq!(json, serde_json::json!({"simulations": 0, "all": 0.289, "decisive": 0.46}));
    }
}
