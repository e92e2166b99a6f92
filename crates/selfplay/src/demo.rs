//! `selfplay demo`: the whole loop on the embedded default task (what `cargo run --release` runs), written to
//! `runs/demo` unless `--out` says otherwise.

use super::CliError;
use super::train::{self, RunArgs};
use selfplay_engine::o1::default_out;

pub fn run(args: RunArgs) -> Result<(), CliError> {
    train::run(args, default_out())
}
