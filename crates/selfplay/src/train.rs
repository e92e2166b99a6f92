//! `selfplay train` (and `selfplay demo`, the same loop on the embedded default): SFT, RL, test-time sweep,
//! report; checkpointed, resumable, and stopped cleanly by Ctrl-C.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use clap::Args;

use selfplay_engine::engine::RunStart;
use selfplay_engine::o1::{self, Outcome, RunConfig};
use selfplay_model::CpuBackend;

use super::ranks::{self, RankArgs};
use super::{CliError, interrupt, stdio};
use crate::stdio::outln;

/// The options `train` and `demo` share.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// Directory for checkpoints, metrics, report, plots and models. A new run into one that already holds a
    /// run is refused: continue it with --resume or replace it with --overwrite. Default: runs/train for
    /// `train`; for the demo runs/demo (runs/demo-connect4), or, when that already holds a run, the next fresh
    /// runs/demo-2, runs/demo-3, ... (with --overwrite, runs/demo itself).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// A TOML file overriding any of the settings (see --print-config).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// The longer, stronger run instead of the default (Countdown: four numbers, a bigger model; demo `--game
    /// connect4`: 600 iterations); hours on 2 cores.
    #[arg(long, conflicts_with = "config")]
    pub(crate) full: bool,
    /// Continue the run in --out from its newest checkpoint, with the settings it was started with: --config,
    /// --full and --seed may be repeated but must give exactly those. The demo without --out continues the
    /// newest of its folders (runs/demo, runs/demo-2, ...) that holds a checkpoint.
    #[arg(long)]
    pub(crate) resume: bool,
    #[command(flatten)]
    pub(crate) overwrite: OverwriteArg,
    /// Print the settings that would be used, every default written out, and exit.
    #[arg(long)]
    pub(crate) print_config: bool,
    /// Seed for everything random.
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) seed: Option<u64>,
    #[command(flatten)]
    pub(crate) ranks: RankArgs,
}

/// `--overwrite`, which `train`, `demo` and `game train` share.
#[derive(Debug, Args, Default)]
pub struct OverwriteArg {
    /// Replace the run already in --out: first remove its own files (checkpoints/, arena/, metrics.jsonl,
    /// config.toml, report.json, report.md, the plots, and the model directories model/, sft_model/, value_model/), each
    /// named on stderr. Other files in --out are kept. A file of yours inside one of those model directories,
    /// which are replaced whole, makes it refuse and remove nothing.
    #[arg(long, conflicts_with = "resume")]
    pub(crate) overwrite: bool,
}

impl OverwriteArg {
    /// What the run does with its output directory, given `--resume` beside this flag.
    pub(crate) fn start(&self, resume: bool) -> RunStart {
        match (resume, self.overwrite) {
            (true, _) => RunStart::Resume,
            (false, true) => RunStart::Overwrite,
            (false, false) => RunStart::New,
        }
    }
}

/// Checks the flags given beside `--resume` against the settings the run in `out` was started with, which a
/// resumed run keeps. `flags`: each flag that asks for settings, as written (`--seed 7`), and whether the saved
/// settings agree with it; the single settings (`--seed`) come before the flag that gives them all (`--config`,
/// `--full`), so that the error names the first one that differs.
pub(crate) fn check_resume_flags(out: &Path, flags: &[(String, bool)]) -> Result<(), CliError> {
    let Some((flag, _)) = flags.iter().find(|(_, agrees)| !agrees) else { return Ok(()) };
    let name = flag.split_once(' ').map_or(flag.as_str(), |(name, _)| name);
    Err(format!(
        "{} was started with other settings than {flag} gives; resume it without {name}, or start a new run with --overwrite or another --out",
        out.display()
    )
    .into())
}

/// The error of `--resume` on a directory with no checkpoint and no settings to start from.
pub(crate) fn nothing_to_resume(out: &Path) -> CliError {
    format!("{} holds no checkpoint to resume", out.display()).into()
}

/// Runs the loop as `args` ask, writing under `--out` or `default_out`.
pub fn run(args: RunArgs, default_out: PathBuf) -> Result<(), CliError> {
    let out = args.out.clone().unwrap_or(default_out);
    let asked = match (&args.config, args.full) {
        (Some(path), _) => Some((format!("--config {}", path.display()), RunConfig::from_file(path)?)),
        (None, true) => Some(("--full".to_string(), RunConfig::full())),
        (None, false) => None,
    };
    let saved = if args.resume { o1::saved_config(&out)? } else { None };
    let mut config = match (&asked, &saved) {
        (Some((_, config)), _) => config.clone(),
        (None, Some(saved)) => saved.clone(),
        (None, None) if args.resume => return Err(nothing_to_resume(&out)),
        (None, None) => RunConfig::default(),
    };
    if let Some(seed) = args.seed {
        config.seed = seed;
    }
    if let Some(saved) = &saved {
        let seed = args.seed.map(|seed| (format!("--seed {seed}"), seed == saved.seed));
        let all = asked.map(|(flag, _)| (flag, config == *saved));
        check_resume_flags(&out, &seed.into_iter().chain(all).collect::<Vec<_>>())?;
    }
    if args.print_config {
        stdio::out(format_args!("{}", config.to_toml()?))?;
        return Ok(());
    }

    let collective = ranks::collective(&args.ranks)?;
    let stop = interrupt::stop_flag()?;
    let should_stop = |_: &str, _: u64| stop.load(Ordering::SeqCst);
    let outcome = o1::run_on(CpuBackend, &*collective, &config, &out, args.overwrite.start(args.resume), &should_stop)?;
    if !collective.is_root() {
        return Ok(());
    }
    match outcome {
        Outcome::Finished(report) => outln!(
            "{}: greedy accuracy {:.3} after policy initialisation, {:.3} after RL ({} held-out problems, {:.0} s); report in {}",
            report.task,
            report.sft_accuracy,
            report.rl_accuracy,
            report.eval_problems,
            report.wall_seconds,
            out.join("report.md").display()
        )?,
        Outcome::Interrupted { stage, step, checkpoint } => outln!(
            "stopped after {stage} step {step}; checkpoint in {}; continue with: selfplay train --out {} --resume",
            checkpoint.display(),
            out.display()
        )?,
    }
    Ok(())
}
