//! The `selfplay` command line: one module per subcommand, each with its clap arguments and a `run`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The error every subcommand returns; printed as one line (with its causes) and a non-zero exit.
pub type CliError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Parser)]
#[command(name = "selfplay", version, about = "Self-play RL for reasoning: search and learn from your own attempts")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {}

/// Parses the command line, runs the subcommand, and turns any error into one line on stderr.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result: Result<(), CliError> = match cli.command {
        None => Err("no subcommand given; see `selfplay --help`".into()),
        Some(command) => match command {},
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", error_chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// `outer: cause: root cause` on one line.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}
