//! `selfplay demo`: the whole loop on the embedded default task (what `cargo run --release` runs).

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::demo::{self, DemoConfig};

#[derive(Debug, Args, Default)]
pub struct DemoArgs {
    /// Directory for the report, plots, metrics and final model.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The longer, stronger run (four numbers, bigger model; hours on 2 cores).
    #[arg(long)]
    full: bool,
    /// A TOML file overriding any of the settings (see --print-config).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Print the settings that would be used, every default written out, and exit.
    #[arg(long)]
    print_config: bool,
    /// Seed for everything random.
    #[arg(long)]
    seed: Option<u64>,
}

pub fn run(args: DemoArgs) -> Result<(), CliError> {
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            toml::from_str(&text).map_err(|e| format!("invalid config {}: {e}", path.display()))?
        }
        None if args.full => DemoConfig::full(),
        None => DemoConfig::default(),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if args.print_config {
        print!("{}", toml::to_string(&config)?);
        return Ok(());
    }
    let out = args.out.unwrap_or_else(demo::default_out);
    let report = demo::run(&config, &out)?;
    println!(
        "{}: greedy accuracy {:.3} after policy initialisation, {:.3} after RL ({} held-out problems, {:.0} s); report in {}",
        report.task,
        report.sft_accuracy,
        report.rl_accuracy,
        report.eval_problems,
        report.wall_seconds,
        out.join("report.md").display()
    );
    Ok(())
}
