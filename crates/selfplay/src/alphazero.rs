//! `selfplay alphazero`: self-play as in AlphaGo Zero on a board game, checkpointed, resumable, stopped cleanly by
//! Ctrl-C.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use clap::{Args, ValueEnum};
use selfplay_engine::alphazero::{self, AlphaZeroConfig, AlphaZeroRecord};
use selfplay_search::games::TicTacToe;

use super::{CliError, interrupt};

/// The games it plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GameName {
    /// Connect Four (7 × 6); mistakes are measured on the committed solver-labelled benchmark.
    Connect4,
    TicTacToe,
}

/// `selfplay alphazero` options.
#[derive(Debug, Args)]
pub struct AlphaZeroArgs {
    /// The game.
    #[arg(long, value_enum, default_value = "connect4")]
    game: GameName,
    /// Directory for checkpoints, metrics, the network (`model/`) and `report.json`.
    #[arg(long, default_value = "runs/alphazero")]
    out: PathBuf,
    /// A TOML file overriding any of the settings (see --print-config).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the run in --out from its newest checkpoint (with its settings unless --config is given, which
    /// must then match them).
    #[arg(long)]
    resume: bool,
    /// Print the settings that would be used, every default written out, and exit.
    #[arg(long)]
    print_config: bool,
    /// Self-play iterations (overrides the config).
    #[arg(long)]
    iterations: Option<u64>,
    /// Seed for everything random (overrides the config).
    #[arg(long)]
    seed: Option<u64>,
}

/// Runs AlphaZero as `args` ask.
pub fn run(args: AlphaZeroArgs) -> Result<(), CliError> {
    let mut config = match (&args.config, args.resume) {
        (Some(path), _) => AlphaZeroConfig::from_file(path)?,
        (None, true) => match alphazero::saved_config(&args.out)? {
            Some(config) => config,
            None => return Err(format!("{} holds no checkpoint to resume", args.out.display()).into()),
        },
        (None, false) => AlphaZeroConfig::default(),
    };
    config.iterations = args.iterations.unwrap_or(config.iterations);
    config.seed = args.seed.unwrap_or(config.seed);
    config.validate()?;
    if args.print_config {
        print!("{}", config.to_toml()?);
        return Ok(());
    }
    let stop = interrupt::stop_flag()?;
    let should_stop = |_: &str, _: u64| stop.load(Ordering::SeqCst);
    let record = match args.game {
        GameName::Connect4 => alphazero::run_connect4(&config, &args.out, args.resume, &should_stop)?,
        GameName::TicTacToe => alphazero::run(&config, TicTacToe::new(), &args.out, args.resume, &should_stop)?,
    };
    match record {
        Some(record) => print_summary(&record, &args),
        None => println!(
            "stopped; continue with: selfplay alphazero --game {:?} --out {} --resume",
            args.game,
            args.out.display()
        ),
    }
    Ok(())
}

fn print_summary(record: &AlphaZeroRecord, args: &AlphaZeroArgs) {
    let last = record.curve.last().map_or(String::from("no match played"), |p| {
        let r = p.vs_random;
        let mistakes = p.mistakes.map_or(String::new(), |m| format!("; mistakes {:.3} on the benchmark", m.all));
        format!("against a random player: {} wins, {} draws, {} losses{mistakes}", r.wins, r.draws, r.losses)
    });
    println!(
        "{} self-play games ({:.2e} FLOPs); {last}; network in {}",
        record.games,
        record.selfplay_flops + record.train_flops,
        args.out.join("model").display()
    );
}
