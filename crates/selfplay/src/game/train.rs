//! `selfplay game train`: self-play as in AlphaGo Zero on a board game, checkpointed, resumable, stopped cleanly
//! by Ctrl-C. `selfplay demo --game connect4` runs the same function from a preset.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use clap::{Args, ValueEnum};
use selfplay_engine::alphazero::{self, AlphaZeroConfig, AlphaZeroRecord};
use selfplay_model::CpuBackend;
use selfplay_search::games::TicTacToe;

use crate::ranks::{self, RankArgs};
use crate::stdio::{self, outln};
use crate::train::{OverwriteArg, check_resume_flags, nothing_to_resume};
use crate::{CliError, interrupt};

/// The games self-play trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GameName {
    /// Connect Four (7 × 6); mistakes are measured on the committed solver-labelled benchmark.
    Connect4,
    TicTacToe,
}

/// `selfplay game train` options.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The game.
    #[arg(long, value_enum)]
    pub(crate) game: GameName,
    /// Directory for checkpoints, metrics, the network (`model/`, what `game move|play|eval --model` read) and
    /// `report.json`. A new run into one that already holds a run is refused: continue it with --resume or
    /// replace it with --overwrite.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// A TOML file overriding any of the settings (see --print-config).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Continue the run in --out from its newest checkpoint, with the settings it was started with: --config,
    /// --iterations and --seed may be repeated but must give exactly those.
    #[arg(long)]
    pub(crate) resume: bool,
    #[command(flatten)]
    pub(crate) overwrite: OverwriteArg,
    /// Print the settings that would be used, every default written out, and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
    /// Self-play iterations (overrides the config).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) iterations: Option<u64>,
    /// Seed for everything random (overrides the config).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) seed: Option<u64>,
    #[command(flatten)]
    pub(crate) ranks: RankArgs,
}

/// Runs `selfplay game train` from the default settings.
pub fn run(args: TrainArgs) -> Result<(), CliError> {
    train(&args, Preset { config: AlphaZeroConfig::default(), flag: None }, "selfplay game train")
}

/// The settings a run starts from when no config file gives them, and the flag that chose them (`--full`), if
/// any: with `--resume` that flag must agree with the saved settings.
#[derive(Debug)]
pub struct Preset {
    /// The settings.
    pub config: AlphaZeroConfig,
    /// The flag that chose them; `None` for the command's defaults.
    pub flag: Option<&'static str>,
}

/// Trains as `args` ask, from `preset` unless a config file or a checkpoint to resume gives the settings; a
/// stopped run tells how to continue it with `command` (the subcommand that started it).
pub fn train(args: &TrainArgs, preset: Preset, command: &str) -> Result<(), CliError> {
    let asked = match (&args.config, preset.flag) {
        (Some(path), _) => Some((format!("--config {}", path.display()), AlphaZeroConfig::from_file(path)?)),
        (None, Some(flag)) => Some((flag.to_string(), preset.config.clone())),
        (None, None) => None,
    };
    let saved = if args.resume { alphazero::saved_config(&args.out)? } else { None };
    let mut config = match (&asked, &saved) {
        (Some((_, config)), _) => config.clone(),
        (None, Some(saved)) => saved.clone(),
        (None, None) if args.resume => return Err(nothing_to_resume(&args.out)),
        (None, None) => preset.config,
    };
    config.iterations = args.iterations.unwrap_or(config.iterations);
    config.seed = args.seed.unwrap_or(config.seed);
    if let Some(saved) = &saved {
        let iterations = args.iterations.map(|n| (format!("--iterations {n}"), n == saved.iterations));
        let seed = args.seed.map(|seed| (format!("--seed {seed}"), seed == saved.seed));
        let all = asked.map(|(flag, _)| (flag, config == *saved));
        check_resume_flags(&args.out, &iterations.into_iter().chain(seed).chain(all).collect::<Vec<_>>())?;
    }
    config.validate()?;
    if args.print_config {
        stdio::out(format_args!("{}", config.to_toml()?))?;
        return Ok(());
    }
    let collective = ranks::collective(&args.ranks)?;
    let stop = interrupt::stop_flag()?;
    let should_stop = |_: &str, _: u64| stop.load(Ordering::SeqCst);
    let start = args.overwrite.start(args.resume);
    let record = match args.game {
        GameName::Connect4 => alphazero::run_connect4(&*collective, &config, &args.out, start, &should_stop)?,
        GameName::TicTacToe => {
            let game = TicTacToe::new();
            alphazero::run_on(CpuBackend, &*collective, &config, game, None, &args.out, start, &should_stop)?
        }
    };
    if !collective.is_root() {
        return Ok(());
    }
    match record {
        Some(record) => print_summary(&record, args)?,
        None => {
            let game = args.game.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default();
            outln!("stopped; continue with: {command} --game {game} --out {} --resume", args.out.display())?;
        }
    }
    Ok(())
}

fn print_summary(record: &AlphaZeroRecord, args: &TrainArgs) -> std::io::Result<()> {
    let last = record.curve.last().map_or(String::from("no match played"), |p| {
        let r = p.vs_random;
        let mistakes = p.mistakes.map_or(String::new(), |m| format!("; mistakes {:.3} on the benchmark", m.all));
        format!("against a random player: {} wins, {} draws, {} losses{mistakes}", r.wins, r.draws, r.losses)
    });
    outln!(
        "{} self-play games ({:.2e} FLOPs); {last}; network in {}",
        record.games,
        record.selfplay_flops + record.train_flops,
        args.out.join("model").display()
    )
}
