//! `selfplay tasks generate`: write a task's problems as JSONL, deterministic by seed, each line as soon as its
//! problem is drawn (nothing is held, so `--n` is bounded by time and disk, not memory).

use std::io::{BufWriter, Write};

use clap::{Args, Subcommand, ValueEnum};
use selfplay_tasks::{
    ArithmeticOps, ArithmeticTask, CountdownConfig, CountdownTask, Split, Task, TasksError, TraceKind,
};
use serde::Serialize;

use super::CliError;
use crate::limits::{MAX_TASK_PROBLEMS, bounded};

/// Lines between flushes of `tasks generate`'s output (the first line is flushed alone).
const FLUSH_EVERY: usize = 64;

/// The tasks the CLI knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskName {
    /// Reach a target from given numbers with + - * /.
    Countdown,
    /// Multi-digit addition and multiplication.
    Arithmetic,
}

/// `selfplay tasks …`
#[derive(Debug, Args)]
pub struct TasksArgs {
    #[command(subcommand)]
    action: TasksAction,
}

#[derive(Debug, Subcommand)]
enum TasksAction {
    /// Write `--n` problems of a split to stdout, one JSON object per line, streamed.
    Generate(GenerateArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SplitName {
    Train,
    Val,
    /// Countdown problems with held-out targets (10% of the target range, fixed for every seed).
    #[value(name = "val_target")]
    ValTarget,
}

impl From<SplitName> for Split {
    fn from(s: SplitName) -> Split {
        match s {
            SplitName::Train => Split::Train,
            SplitName::Val => Split::Val,
            SplitName::ValTarget => Split::ValTarget,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OpsName {
    Add,
    Mul,
    Both,
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// Which task.
    #[arg(long, value_enum)]
    task: TaskName,
    /// Which split.
    #[arg(long, value_enum, default_value = "train")]
    split: SplitName,
    /// How many problems: 0 to 1000000000 (the first `n` of the seed's stream: a larger `n` only adds lines).
    #[arg(long, allow_hyphen_values = true, value_parser = |s: &str| bounded(s, 0..=MAX_TASK_PROBLEMS))]
    n: usize,
    /// Seed: the same seed gives the same problems.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    seed: u64,
    /// Add `prompt` and `completion` (a verified solution trace) fields to each line, for SFT.
    #[arg(long)]
    traces: bool,
    /// Countdown: which traces `--traces` writes: `optimal` (the direct solution) or a search stream (Stream of
    /// Search): `dfs-target`, `dfs-factors`, `bfsN-target`, `bfsN-factors` (beam N from 1 to 16).
    #[arg(long, default_value = "optimal")]
    trace: TraceKind,
    /// Countdown: the most step and `back` lines a search stream may take; problems whose search needs more (or
    /// that the search misses) get no trace fields.
    #[arg(long, default_value_t = 256, allow_hyphen_values = true)]
    stream_max_lines: usize,
    /// Countdown: fewest numbers per problem.
    #[arg(long, default_value_t = CountdownConfig::default().min_count, allow_hyphen_values = true)]
    min_count: usize,
    /// Countdown: most numbers per problem (at most 6).
    #[arg(long, default_value_t = CountdownConfig::default().max_count, allow_hyphen_values = true)]
    max_count: usize,
    /// Countdown: smallest number.
    #[arg(long, default_value_t = CountdownConfig::default().min_num, allow_hyphen_values = true)]
    min_num: u64,
    /// Countdown: largest number.
    #[arg(long, default_value_t = CountdownConfig::default().max_num, allow_hyphen_values = true)]
    max_num: u64,
    /// Countdown: smallest target.
    #[arg(long, default_value_t = CountdownConfig::default().min_target, allow_hyphen_values = true)]
    min_target: u64,
    /// Countdown: largest target.
    #[arg(long, default_value_t = CountdownConfig::default().max_target, allow_hyphen_values = true)]
    max_target: u64,
    /// Arithmetic: fewest digits per operand.
    #[arg(long, default_value_t = ArithmeticTask::default().min_digits, allow_hyphen_values = true)]
    min_digits: u32,
    /// Arithmetic: most digits per operand (at most 18).
    #[arg(long, default_value_t = ArithmeticTask::default().max_digits, allow_hyphen_values = true)]
    max_digits: u32,
    /// Arithmetic: operations.
    #[arg(long, value_enum, default_value = "both")]
    ops: OpsName,
}

/// Runs `selfplay tasks …`.
pub fn run(args: TasksArgs) -> Result<(), CliError> {
    match args.action {
        TasksAction::Generate(g) => generate(&g),
    }
}

fn generate(g: &GenerateArgs) -> Result<(), CliError> {
    match g.task {
        TaskName::Countdown => {
            let config = CountdownConfig {
                min_count: g.min_count,
                max_count: g.max_count,
                min_num: g.min_num,
                max_num: g.max_num,
                min_target: g.min_target,
                max_target: g.max_target,
            };
            let trace_style = g.trace.with_max_lines(g.stream_max_lines);
            let task = CountdownTask { config, trace_style, ..CountdownTask::default() };
            write_problems(&task, task.problems(g.split.into(), g.seed)?, g)
        }
        TaskName::Arithmetic => {
            let ops = match g.ops {
                OpsName::Add => ArithmeticOps::Add,
                OpsName::Mul => ArithmeticOps::Mul,
                OpsName::Both => ArithmeticOps::Both,
            };
            let task = ArithmeticTask { min_digits: g.min_digits, max_digits: g.max_digits, ops };
            write_problems(&task, task.problems(g.split.into(), g.seed)?, g)
        }
    }
}

/// A problem line, optionally with its prompt and a solution trace.
#[derive(Serialize)]
struct ProblemLine<'a, P> {
    #[serde(flatten)]
    problem: &'a P,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion: Option<String>,
}

/// Writes the first `g.n` of `problems` to stdout as they are drawn: buffered, but flushed after the first line and
/// every [`FLUSH_EVERY`] lines, so a reader sees lines while later problems are still being drawn.
fn write_problems<T: Task>(
    task: &T,
    problems: impl Iterator<Item = Result<T::Problem, TasksError>>,
    g: &GenerateArgs,
) -> Result<(), CliError> {
    let mut out = BufWriter::new(crate::stdio::stdout());
    for (k, problem) in problems.take(g.n).enumerate() {
        let problem = &problem?;
        let trace = if g.traces { task.solution_trace(problem) } else { None };
        let line = ProblemLine { problem, prompt: trace.as_ref().map(|_| task.prompt(problem)), completion: trace };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
        if k % FLUSH_EVERY == 0 {
            out.flush()?;
        }
    }
    out.flush()?;
    Ok(())
}
