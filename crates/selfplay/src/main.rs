//! The `selfplay` command line: one module per subcommand, each with its clap arguments and a `run` that calls
//! the libraries (`selfplay-engine` for the loop). Errors become one line on stderr and a non-zero exit here, and
//! only here; output goes through [`stdio`], so a closed pipe or a full disk is an error, never a panic.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod eval;
mod game;
mod generate;
mod interrupt;
mod limits;
mod logits;
mod output;
mod ranks;
mod score;
mod stdio;
mod tasks;
mod train;

/// The error every subcommand returns; printed as one line (with its causes) and a non-zero exit.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(
    name = "selfplay",
    version,
    about = "Self-play RL for reasoning: search and learn from your own attempts",
    after_help = "With no command, selfplay runs `selfplay demo`: the whole loop on Countdown (about 10 minutes on 2 \
                  cores), written to runs/demo, or to the next free runs/demo-2, runs/demo-3, ... when that holds a run."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The whole loop on the default task (Countdown): SFT, RL, test-time scaling, report. The default.
    ///
    /// With `--game connect4`: AlphaZero self-play on Connect Four instead, 40 iterations to `runs/demo-connect4`.
    Demo(demo::DemoArgs),
    /// The same loop under a config file: `selfplay train --config run.toml --out runs/mine [--resume]`.
    Train(train::RunArgs),
    /// AlphaZero on a board game: `train` a network by self-play, then ask it for a `move`, `play` it, `eval` it.
    Game(game::GameArgs),
    /// One test-time method at one budget on held-out problems: `selfplay eval --model DIR --method mcts --budget 64`.
    Eval(eval::EvalArgs),
    /// Verify completions: JSONL on stdin, one result line per input line on stdout (formats in --help).
    #[command(long_about = score::LONG_ABOUT)]
    Score(score::ScoreArgs),
    /// Sample a completion from a model directory; prints one JSON line.
    Generate(generate::GenerateArgs),
    /// Logits of one token sequence, written as a safetensors file (`logits` [tokens, vocab]).
    Logits(logits::LogitsArgs),
    /// Task problem sets: `selfplay tasks generate --task countdown --split train --n 1000 --seed 1`.
    Tasks(tasks::TasksArgs),
}

/// Parses the command line, runs the subcommand, and turns any error into one line on stderr: exit 0 on success
/// and when stdout's reader has gone ([`stdio::is_closed_pipe`]), 1 on any other error, 2 on a bad command line.
fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(usage) => return print_usage(&usage),
    };
    let result: Result<(), CliError> = match cli.command {
        None => demo::run(demo::DemoArgs::default()),
        Some(command) => match command {
            Command::Demo(args) => demo::run(args),
            Command::Train(args) => train::run(args, std::path::PathBuf::from("runs/train")),
            Command::Game(args) => game::run(args),
            Command::Eval(args) => eval::run(args),
            Command::Generate(args) => generate::run(args),
            Command::Logits(args) => logits::run(args),
            Command::Score(args) => score::run(args),
            Command::Tasks(args) => tasks::run(args),
        },
    };
    exit(result.and_then(|()| Ok(std::io::stdout().flush()?)))
}

/// Clap's help, version or usage error, printed as clap prints it (help and version to stdout, exit 0; a usage
/// error to stderr, exit 2), except that failing to print the help is handled like any other output error.
fn print_usage(usage: &clap::Error) -> ExitCode {
    let printed = usage.print().and_then(|()| std::io::stdout().flush()).map_err(|e| stdio::failed("stdout", e));
    match printed {
        Err(err) if !usage.use_stderr() => exit(Err(err.into())),
        // A usage error that cannot even reach stderr still exits with its code.
        _ => ExitCode::from(u8::try_from(usage.exit_code()).unwrap_or(2)),
    }
}

/// The exit status of a finished command, printing its error as one line.
fn exit(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if stdio::is_closed_pipe(err.as_ref()) => ExitCode::SUCCESS,
        Err(err) => {
            // Nowhere is left to report a failure to write this line; the exit status still tells.
            let _ = stdio::errln!("error: {}", error_chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// `outer: cause: root cause` on one line. Many errors already show their cause in their own message (`model:
/// {0}`); a cause the line so far already ends with is not repeated.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use selfplay_tasks::countdown::solver::MAX_SOLVE_NUMS;

    use super::*;
    use crate::limits::{
        MAX_BUDGET, MAX_CANDIDATES, MAX_EVAL_PROBLEMS, MAX_KV_CACHE_TOKENS, MAX_NEW_TOKENS, MAX_ROOT_WIDENING,
        MAX_SIMULATIONS, MAX_TASK_PROBLEMS,
    };

    /// An error whose message shows its cause, as `#[error("model: {0}")]` with `#[from]` does.
    #[derive(Debug)]
    struct Shows(std::io::Error);

    impl std::fmt::Display for Shows {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "model: {}", self.0)
        }
    }

    impl std::error::Error for Shows {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn the_chain_names_each_cause_once() {
        let shown = Shows(std::io::Error::other("no such file"));
        assert_eq!(error_chain(&shown), "model: no such file");
        let hidden: CliError = Box::new(std::io::Error::other(Shows(std::io::Error::other("gone"))));
        assert_eq!(error_chain(hidden.as_ref()), "model: gone");
    }

    /// Each bounded flag's `--help` states the bound its parser enforces: the constant's value, not a stale copy.
    #[test]
    fn every_bound_is_in_its_flags_help() {
        let cli = Cli::command();
        cli.clone().debug_assert();
        let help = |path: &[&str], flag: &str| {
            let command = path.iter().fold(&cli, |c, name| c.find_subcommand(name).expect("a subcommand"));
            let arg = command.get_arguments().find(|a| a.get_id() == flag).expect("a flag");
            arg.get_help().map(ToString::to_string).unwrap_or_default()
        };
        let bounds: [(&[&str], &str, String); 12] = [
            (&["eval"], "problems", format!("1 to {MAX_EVAL_PROBLEMS}")),
            (&["eval"], "root_widening", format!("0 to {MAX_ROOT_WIDENING}")),
            (&["eval"], "kv_cache_tokens", format!("0 to {MAX_KV_CACHE_TOKENS}")),
            (&["eval"], "budget", format!("1 to {MAX_BUDGET}")),
            (&["eval"], "candidates", format!("1 to {MAX_CANDIDATES}")),
            (&["eval"], "max_new_tokens", format!("1 to {MAX_NEW_TOKENS}")),
            (&["eval"], "numbers", format!("1 to {MAX_SOLVE_NUMS}")),
            (&["generate"], "max_new_tokens", format!("0 to {MAX_NEW_TOKENS}")),
            (&["tasks", "generate"], "n", format!("0 to {MAX_TASK_PROBLEMS}")),
            (&["game", "move"], "simulations", format!("0 to {MAX_SIMULATIONS}")),
            (&["game", "play"], "simulations", format!("0 to {MAX_SIMULATIONS}")),
            (&["game", "eval"], "simulations", format!("0 to {MAX_SIMULATIONS}")),
        ];
        for (path, flag, bound) in bounds {
            assert!(help(path, flag).contains(&bound), "{path:?} --{flag}: {:?} lacks {bound:?}", help(path, flag));
        }
    }
}
