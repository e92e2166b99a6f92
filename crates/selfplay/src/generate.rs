//! `selfplay generate --model DIR --prompt TEXT|--tokens 3,1,4 --max-new-tokens N --temperature T
//! --top-p P --seed S`: samples one completion and prints it as one JSON line:
//! `{"prompt_tokens": [...], "tokens": [...], "logprobs": [...], "finish": "stop"|"max_tokens"|
//! "context_full", "text": "..."}` (`text`, the decoded completion, when the directory has a tokenizer).
//!
//! A `--prompt` is tokenised with the directory's tokenizer and starts with its BOS token when it
//! has one; `--tokens` are used exactly as given.

use std::path::PathBuf;

use clap::Args;
use selfplay_model::{FinishReason, GenerationConfig, Model, ModelDir, SamplingParams};
use serde_json::json;

use super::CliError;
use super::logits::parse_token_list;
use crate::limits::{MAX_NEW_TOKENS, bounded, fraction, non_negative, positive_fraction};
use crate::stdio::outln;

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Model directory (config.json, model.safetensors, tokenizer.json for --prompt).
    #[arg(long)]
    pub model: PathBuf,
    /// Prompt text, tokenised with the model's tokenizer.
    #[arg(long, conflicts_with = "tokens", required_unless_present = "tokens")]
    pub prompt: Option<String>,
    /// Prompt as comma-separated token ids.
    #[arg(long, allow_hyphen_values = true)]
    pub tokens: Option<String>,
    /// Most tokens to generate: 0 to 65536 (generation also stops when the model's context is full).
    #[arg(long, default_value_t = 64, allow_hyphen_values = true,
          value_parser = |s: &str| bounded(s, 0..=MAX_NEW_TOKENS))]
    pub max_new_tokens: usize,
    /// Sampling temperature, ≥ 0; 0 is greedy decoding.
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true, value_parser = non_negative)]
    pub temperature: f32,
    /// Nucleus sampling mass, in (0, 1]; 1 disables.
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true, value_parser = positive_fraction)]
    pub top_p: f32,
    /// Keep the k most likely tokens; 0 disables.
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub top_k: usize,
    /// Drop tokens below min_p times the most likely one's probability, in [0, 1]; 0 disables.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true, value_parser = fraction)]
    pub min_p: f32,
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub seed: u64,
}

pub fn run(args: GenerateArgs) -> Result<(), CliError> {
    let dir = ModelDir::load(&args.model)?;
    let prompt = match (&args.prompt, &args.tokens) {
        (Some(text), _) => {
            let tokenizer = dir.tokenizer.as_ref().ok_or("--prompt needs a tokenizer.json in the model directory")?;
            let mut ids: Vec<u32> = tokenizer.bos_id().into_iter().collect();
            ids.extend(tokenizer.encode(text)?);
            ids
        }
        (None, Some(list)) => parse_token_list(list)?,
        (None, None) => return Err("give --prompt or --tokens".into()),
    };
    let mut stop_tokens: Vec<u32> = dir.tokenizer.as_ref().and_then(|t| t.eos_id()).into_iter().collect();
    stop_tokens.retain(|t| Some(*t) != dir.config.eos_token_id);
    let config = GenerationConfig {
        max_new_tokens: args.max_new_tokens,
        sampling: SamplingParams {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            min_p: args.min_p,
        },
        stop_tokens,
    };
    let model = Model::new(dir.config, dir.weights)?;
    let generation =
        model.generate(&[prompt.as_slice()], &config, &[args.seed])?.into_iter().next().ok_or("no generation")?;
    let finish = match generation.finish {
        FinishReason::Stop(_) => "stop",
        FinishReason::MaxTokens => "max_tokens",
        FinishReason::ContextFull => "context_full",
    };
    let mut record = json!({
        "prompt_tokens": prompt,
        "tokens": generation.tokens,
        "logprobs": generation.logprobs,
        "finish": finish,
    });
    if let Some(tokenizer) = &dir.tokenizer {
        record["text"] = tokenizer.decode(&generation.tokens)?.into();
    }
    outln!("{record}")?;
    Ok(())
}
