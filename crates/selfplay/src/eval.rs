//! `selfplay eval`: one test-time method at one budget on held-out problems, for any saved model directory;
//! prints one JSON line (method, budget, accuracy, tokens and FLOPs per problem).

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};
use selfplay_engine::o1::RunConfig;
use selfplay_engine::o1::eval::{EvalConfig, evaluate};
use selfplay_engine::rollout::Method;
use selfplay_engine::rollout::step_search::SearchSettings;
use selfplay_model::{Model, ModelDir, SamplingParams};
use selfplay_reward::StepAggregation;
use selfplay_tasks::countdown::solver::MAX_SOLVE_NUMS;
use selfplay_tasks::{CountdownConfig, CountdownTask, Split, Task};

use super::CliError;
use crate::limits::{
    MAX_BUDGET, MAX_CANDIDATES, MAX_EVAL_PROBLEMS, MAX_KV_CACHE_TOKENS, MAX_NEW_TOKENS, MAX_ROOT_WIDENING, bounded,
    non_negative,
};
use crate::stdio::outln;

/// Which held-out problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EvalSplit {
    /// Held-out problems over the training targets.
    #[value(name = "val")]
    Val,
    /// Problems whose targets never occur in training.
    #[value(name = "val_target")]
    ValTarget,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model directory (Hugging Face layout with `tokenizer.json`), e.g. `runs/demo/model`.
    #[arg(long)]
    model: PathBuf,
    /// Test-time method.
    #[arg(long, default_value = "greedy", value_parser = method_parser())]
    method: Method,
    /// Samples (sampling methods), beam width (beam) or simulations (mcts, gumbel) per problem: 1 to 4096.
    #[arg(long, default_value_t = 1, allow_hyphen_values = true, value_parser = |s: &str| bounded(s, 1..=MAX_BUDGET))]
    budget: u32,
    /// Held-out Countdown problems to evaluate on: 1 to 100000.
    #[arg(long, default_value_t = 500, allow_hyphen_values = true,
          value_parser = |s: &str| bounded(s, 1..=MAX_EVAL_PROBLEMS))]
    problems: usize,
    /// Numbers per Countdown problem: 1 to 6.
    #[arg(long, default_value_t = 3, allow_hyphen_values = true, value_parser = |s: &str| bounded(s, 1..=MAX_SOLVE_NUMS))]
    numbers: usize,
    #[arg(long, value_enum, default_value_t = EvalSplit::Val)]
    split: EvalSplit,
    /// Seed of the problems and of every sample (a run's evaluation uses the run's seed).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    seed: u64,
    /// Longest completion in tokens (the demo's by default): 1 to 65536.
    #[arg(long, default_value_t = RunConfig::default().max_new_tokens, allow_hyphen_values = true,
          value_parser = |s: &str| bounded(s, 1..=MAX_NEW_TOKENS))]
    max_new_tokens: usize,
    /// Sampling temperature of the sampling methods and of the search's proposals (≥ 0; 0 is greedy).
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true, value_parser = non_negative)]
    temperature: f32,
    /// Candidate next steps per expanded node (beam, mcts, gumbel): 1 to 256.
    #[arg(long, allow_hyphen_values = true, value_parser = |s: &str| bounded(s, 1..=MAX_CANDIDATES))]
    candidates: Option<usize>,
    /// Simulations per root candidate of mcts and gumbel (default 4): the root samples max(K, budget / N) first
    /// steps; 0 keeps the root at K: 0 to 65536.
    #[arg(long, allow_hyphen_values = true, value_parser = |s: &str| bounded(s, 0..=MAX_ROOT_WIDENING))]
    root_widening: Option<usize>,
    /// Tokens of keys and values the searches keep for reuse across expansions; 0 recomputes every prefix: 0 to
    /// 4194304.
    #[arg(long, allow_hyphen_values = true, value_parser = |s: &str| bounded(s, 0..=MAX_KV_CACHE_TOKENS))]
    kv_cache_tokens: Option<usize>,
    /// Search without the verifier: finished solutions are judged by the value head (or `--value-model`), and the
    /// search returns the answer with the largest judged vote over them (search without an oracle).
    #[arg(long)]
    no_verifier: bool,
    /// A value model directory (a run's `value_model/`) that judges `best_of_n_value`, `weighted_vote` and the
    /// searches' partial solutions (beam, mcts, gumbel); without it the policy's own value head judges.
    #[arg(long)]
    value_model: Option<PathBuf>,
    /// How the judge's step scores (at the end of each line) make a sample's score for `best_of_n_value` and
    /// `weighted_vote`, or a partial solution's value for the searches: last (the newest step's score), min, prod or
    /// mean.
    #[arg(long, default_value = "last", value_parser = aggregation_parser())]
    step_aggregation: StepAggregation,
}

/// `--step-aggregation`: one of the reward crate's aggregation names.
fn aggregation_parser() -> impl TypedValueParser<Value = StepAggregation> {
    PossibleValuesParser::new(StepAggregation::ALL.map(StepAggregation::name))
        .try_map(|name| name.parse::<StepAggregation>())
}

/// `--method`: one of the library's method names, listed in `--help`.
fn method_parser() -> impl TypedValueParser<Value = Method> {
    PossibleValuesParser::new(Method::ALL.map(Method::name)).try_map(|name| name.parse::<Method>())
}

pub fn run(args: EvalArgs) -> Result<(), CliError> {
    let task = CountdownTask {
        config: CountdownConfig { min_count: args.numbers, max_count: args.numbers, ..CountdownConfig::default() },
        ..CountdownTask::default()
    };
    task.config.validate()?;
    let saved = ModelDir::load(&args.model)?;
    let tokenizer = saved.tokenizer.ok_or_else(|| format!("{} has no tokenizer.json", args.model.display()))?;
    let model = Model::new(saved.config, saved.weights)?;
    let split = match args.split {
        EvalSplit::Val => Split::Val,
        EvalSplit::ValTarget => Split::ValTarget,
    };
    let problems = task.generate(split, args.problems, args.seed)?;
    let config = EvalConfig {
        max_new_tokens: args.max_new_tokens,
        sampling: SamplingParams { temperature: args.temperature, ..SamplingParams::default() },
        budgets: vec![args.budget],
        seed: args.seed,
        step_aggregation: args.step_aggregation,
    };
    let defaults = SearchSettings::default();
    let search = SearchSettings {
        candidates: args.candidates.unwrap_or(defaults.candidates),
        temperature: args.temperature,
        use_verifier: !args.no_verifier,
        root_widening: args.root_widening.unwrap_or(defaults.root_widening),
        kv_cache_tokens: args.kv_cache_tokens.unwrap_or(defaults.kv_cache_tokens),
        step_aggregation: args.step_aggregation,
        ..defaults
    };
    search.validate()?;
    let value_model = match &args.value_model {
        Some(dir) => {
            let saved = ModelDir::load(dir)?;
            Some(Model::new(saved.config, saved.weights)?)
        }
        None => None,
    };
    let point = evaluate(
        &model,
        value_model.as_ref(),
        tokenizer.as_ref(),
        &task,
        &problems,
        args.method,
        args.budget,
        &config,
        &search,
    )?;
    let line = serde_json::json!({
        "model": args.model.display().to_string(),
        "task": task.name(),
        "split": args.split.to_possible_value().map(|v| v.get_name().to_string()),
        "problems": problems.len(),
        "method": point.method,
        "budget": point.budget,
        "accuracy": point.accuracy,
        "tokens": point.tokens,
        "flops": point.flops,
    });
    outln!("{line}")?;
    Ok(())
}
