//! `selfplay tasks generate`: write a task's problems as JSONL, deterministic by seed.

use std::io::{BufWriter, Write};

use clap::{Args, Subcommand, ValueEnum};
use selfplay_tasks::{ArithmeticOps, ArithmeticTask, CountdownConfig, CountdownTask, Split, Task, TraceStyle};
use serde::Serialize;

use super::CliError;

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
    /// Write `--n` problems of a split to stdout, one JSON object per line.
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
    /// How many problems.
    #[arg(long)]
    n: usize,
    /// Seed: the same seed gives the same problems.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Add `prompt` and `completion` (a verified solution trace) fields to each line, for SFT.
    #[arg(long)]
    traces: bool,
    /// Countdown: write search-stream traces (DFS with `back` lines) capped at this many lines instead
    /// of direct solutions; problems needing more lines get no trace fields.
    #[arg(long)]
    stream_max_lines: Option<usize>,
    /// Countdown: fewest numbers per problem.
    #[arg(long, default_value_t = CountdownConfig::default().min_count)]
    min_count: usize,
    /// Countdown: most numbers per problem (at most 6).
    #[arg(long, default_value_t = CountdownConfig::default().max_count)]
    max_count: usize,
    /// Countdown: smallest number.
    #[arg(long, default_value_t = CountdownConfig::default().min_num)]
    min_num: u64,
    /// Countdown: largest number.
    #[arg(long, default_value_t = CountdownConfig::default().max_num)]
    max_num: u64,
    /// Countdown: smallest target.
    #[arg(long, default_value_t = CountdownConfig::default().min_target)]
    min_target: u64,
    /// Countdown: largest target.
    #[arg(long, default_value_t = CountdownConfig::default().max_target)]
    max_target: u64,
    /// Arithmetic: fewest digits per operand.
    #[arg(long, default_value_t = ArithmeticTask::default().min_digits)]
    min_digits: u32,
    /// Arithmetic: most digits per operand (at most 18).
    #[arg(long, default_value_t = ArithmeticTask::default().max_digits)]
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
            let trace_style =
                g.stream_max_lines.map_or(TraceStyle::Optimal, |max_lines| TraceStyle::Stream { max_lines });
            write_problems(&CountdownTask { config, trace_style, ..CountdownTask::default() }, g)
        }
        TaskName::Arithmetic => {
            let ops = match g.ops {
                OpsName::Add => ArithmeticOps::Add,
                OpsName::Mul => ArithmeticOps::Mul,
                OpsName::Both => ArithmeticOps::Both,
            };
            write_problems(&ArithmeticTask { min_digits: g.min_digits, max_digits: g.max_digits, ops }, g)
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

fn write_problems<T: Task>(task: &T, g: &GenerateArgs) -> Result<(), CliError> {
    let problems = task.generate(g.split.into(), g.n, g.seed)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for problem in &problems {
        let trace = if g.traces { task.solution_trace(problem) } else { None };
        let line = ProblemLine { problem, prompt: trace.as_ref().map(|_| task.prompt(problem)), completion: trace };
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}
