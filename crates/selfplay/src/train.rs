//! `selfplay train` (and `selfplay demo`, the same loop on the embedded default): SFT, RL, test-time sweep,
//! report; checkpointed, resumable, and stopped cleanly by Ctrl-C.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use clap::Args;

use selfplay_engine::o1::{self, Outcome, RunConfig};

use super::{CliError, interrupt};

/// The options `train` and `demo` share.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Directory for checkpoints, metrics, report, plots and models.
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// A TOML file overriding any of the settings (see --print-config).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// The longer, stronger run instead of the default (Countdown: four numbers, a bigger model; demo `--game
    /// connect4`: 600 iterations); hours on 2 cores.
    #[arg(long, conflicts_with = "config")]
    pub(crate) full: bool,
    /// Continue the run in --out from its newest checkpoint (its settings are used unless --config is given,
    /// which must then match them).
    #[arg(long)]
    pub(crate) resume: bool,
    /// Print the settings that would be used, every default written out, and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
    /// Seed for everything random.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
}

/// Runs the loop as `args` ask, writing under `--out` or `default_out`.
pub fn run(args: RunArgs, default_out: PathBuf) -> Result<(), CliError> {
    let out = args.out.clone().unwrap_or(default_out);
    let mut config = match (&args.config, args.resume) {
        (Some(path), _) => RunConfig::from_file(path)?,
        (None, true) => match o1::saved_config(&out)? {
            Some(config) => config,
            None => return Err(format!("{} holds no checkpoint to resume", out.display()).into()),
        },
        (None, false) if args.full => RunConfig::full(),
        (None, false) => RunConfig::default(),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if args.print_config {
        print!("{}", config.to_toml()?);
        return Ok(());
    }

    let stop = interrupt::stop_flag()?;
    let should_stop = |_: &str, _: u64| stop.load(Ordering::SeqCst);
    match o1::run(&config, &out, args.resume, &should_stop)? {
        Outcome::Finished(report) => println!(
            "{}: greedy accuracy {:.3} after policy initialisation, {:.3} after RL ({} held-out problems, {:.0} s); report in {}",
            report.task,
            report.sft_accuracy,
            report.rl_accuracy,
            report.eval_problems,
            report.wall_seconds,
            out.join("report.md").display()
        ),
        Outcome::Interrupted { stage, step, checkpoint } => println!(
            "stopped after {stage} step {step}; checkpoint in {}; continue with: selfplay train --out {} --resume",
            checkpoint.display(),
            out.display()
        ),
    }
    Ok(())
}
