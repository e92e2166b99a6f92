//! `selfplay logits --model DIR --tokens 3,1,4,1 --out FILE`: one forward pass over one sequence,
//! written as a safetensors file holding a single f32 tensor `logits` of shape `[tokens, vocab]`
//! (the file `tools/make_model_fixtures.py verify` and any numpy/torch user can read).

use std::path::PathBuf;

use clap::Args;
use selfplay_model::safetensors_io::serialize;
use selfplay_model::{Model, ModelDir};
use selfplay_tensor::DType;

use super::CliError;
use crate::output;
use crate::stdio::errln;

#[derive(Debug, Args)]
pub struct LogitsArgs {
    /// Model directory (config.json, model.safetensors).
    #[arg(long)]
    pub model: PathBuf,
    /// Comma-separated token ids, e.g. `3,1,4,1`.
    #[arg(long, allow_hyphen_values = true)]
    pub tokens: String,
    /// Output safetensors file: a regular file is replaced atomically; a symlink is followed and a FIFO or device
    /// written in place; `-` is stdout.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: LogitsArgs) -> Result<(), CliError> {
    let tokens = parse_token_list(&args.tokens)?;
    let dir = ModelDir::load(&args.model)?;
    let model = Model::new(dir.config, dir.weights)?;
    let output = model.forward(&[tokens.as_slice()])?.into_iter().next().ok_or("the model returned no output")?;
    output::write(&args.out, &serialize([("logits".to_string(), &output.logits)], DType::F32)?)?;
    // On stderr, so that `--out -` leaves stdout holding the file alone.
    errln!("wrote logits {:?} to {}", output.logits.dims(), args.out.display())?;
    Ok(())
}

/// `"3, 1,4"` → `[3, 1, 4]`. Parsed here rather than by clap so a bad list is a one-line error.
pub(super) fn parse_token_list(list: &str) -> Result<Vec<u32>, CliError> {
    let tokens = list
        .split(',')
        .map(|t| t.trim().parse::<u32>().map_err(|e| format!("--tokens: {t:?} is not a token id ({e})")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(tokens)
}
