//! Runs a few RL steps of every algorithm from one saved policy on the demo's Countdown setting, printing
//! reward, accuracy and time per step, then the greedy accuracy on held-out problems:
//!
//! ```text
//! cargo run --release -p selfplay-engine --example rl_algorithms -- runs/demo/sft_model 20 grpo,rloo,ppo,expert_iteration
//! ```
//!
//! Arguments: the model directory (a demo's `sft_model/`), steps per algorithm (default 10), the
//! algorithms (comma-separated, default all four), and optionally settings in TOML that override the
//! demo's (`RlSettings::default()`), e.g. `$'epochs = 2\nminibatches = 2'` in bash, or
//! `$'rollouts = "mcts"\nsearch_budget = 16'` for expert iteration from search. When the model directory sits
//! in a run directory, the run's `config.toml` gives the task (numbers per problem, training problems) and the
//! completion length, so `runs/full/sft_model` is trained on 4-number problems.

use std::path::PathBuf;
use std::time::Instant;

use selfplay_engine::o1::config::RunConfig;
use selfplay_engine::o1::rl::{Algorithm, RlSettings, step};
use selfplay_engine::optimizer::ModelOptimizer;
use selfplay_engine::rollout::{completion_text, encode_prompt};
use selfplay_engine::train::Trainer;
use selfplay_model::{CharTokenizer, GenerationConfig, Model, ModelDir, SamplingParams};
use selfplay_tasks::{CountdownConfig, CountdownTask, Split, Task};

type Error = Box<dyn std::error::Error + Send + Sync>;

const SEED: u64 = 1;
const HELD_OUT: usize = 300;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "runs/demo/sft_model".into()));
    let steps: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
    let algorithms: Vec<Algorithm> = args
        .next()
        .unwrap_or_else(|| "grpo,rloo,ppo,expert_iteration".into())
        .split(',')
        .map(|name| toml::from_str::<Holder>(&format!("a = \"{name}\"")).map(|h| h.a))
        .collect::<Result<_, _>>()?;
    let base: RlSettings = toml::from_str(&args.next().unwrap_or_default())?;

    // The run the model comes from, else the demo's defaults.
    let run_config = match dir.parent().map(|run| run.join("config.toml")).filter(|f| f.is_file()) {
        Some(file) => toml::from_str(&std::fs::read_to_string(file)?)?,
        None => RunConfig::default(),
    };
    let max_new_tokens = run_config.max_new_tokens;
    let numbers = run_config.task.numbers;
    let task = CountdownTask {
        config: CountdownConfig { min_count: numbers, max_count: numbers, ..CountdownConfig::default() },
        ..CountdownTask::default()
    };
    let tokenizer = CharTokenizer::ascii();
    let train = task.generate(Split::Train, run_config.task.train_problems, SEED)?;
    let held_out = task.generate(Split::Val, HELD_OUT, SEED)?;
    let saved = ModelDir::load(&dir)?;
    let initial = Model::new(saved.config, saved.weights)?;
    println!(
        "start: greedy accuracy {:.3} on {HELD_OUT} held-out problems",
        greedy(&initial, &tokenizer, &task, &held_out, max_new_tokens)?
    );

    for algorithm in algorithms {
        let settings = RlSettings { algorithm, steps, ..base.clone() };
        let mut model = initial.clone();
        // The starting policy is the KL penalty's reference.
        let reference = (settings.kl_coef > 0.0).then_some(&initial);
        let mut optimizer = ModelOptimizer::new(model.weights(), settings.optim_config())?;
        let mut trainer = Trainer::new();
        let started = Instant::now();
        let (mut rollout_s, mut update_s, mut rollout_tok, mut update_tok) = (0.0, 0.0, 0, 0);
        for s in 1..=steps {
            let m = step(
                &mut model,
                reference,
                &mut optimizer,
                &mut trainer,
                &tokenizer,
                &task,
                &train,
                &settings,
                max_new_tokens,
                SEED,
                s,
                &selfplay_collective::SingleProcess,
                None,
            )?;
            println!(
                "{algorithm:?} step {s}: reward {:.3} acc {:.3} trained {} updates {} rollout {:.2} s update {:.2} s",
                m.reward_mean, m.train_accuracy, m.trained_sequences, m.updates, m.rollout_seconds, m.update_seconds
            );
            (rollout_s, update_s) = (rollout_s + m.rollout_seconds, update_s + m.update_seconds);
            (rollout_tok, update_tok) = (rollout_tok + m.rollout_tokens, update_tok + m.terms.tokens);
        }
        let n = steps.max(1) as f64;
        println!(
            "{algorithm:?} ({:?}): {:.2} s/step (rollout {:.2} s, {:.0} tok/s; update {:.2} s, {:.0} tok/s); greedy accuracy {:.3}",
            settings.rollouts,
            started.elapsed().as_secs_f64() / n,
            rollout_s / n,
            rollout_tok as f64 / rollout_s.max(1e-9),
            update_s / n,
            update_tok as f64 / update_s.max(1e-9),
            greedy(&model, &tokenizer, &task, &held_out, max_new_tokens)?
        );
    }
    Ok(())
}

/// Parses an algorithm's snake_case name the way a config file does.
#[derive(serde::Deserialize)]
struct Holder {
    a: Algorithm,
}

/// Fraction of `problems` the greedy completion solves.
fn greedy(
    model: &Model,
    tokenizer: &CharTokenizer,
    task: &CountdownTask,
    problems: &[<CountdownTask as Task>::Problem],
    max_new_tokens: usize,
) -> Result<f64, Error> {
    let config = GenerationConfig { max_new_tokens, sampling: SamplingParams::greedy(), stop_tokens: vec![] };
    let prompts: Vec<Vec<u32>> =
        problems.iter().map(|p| encode_prompt(tokenizer, &task.prompt(p))).collect::<Result<_, _>>()?;
    let batch: Vec<&[u32]> = prompts.iter().map(Vec::as_slice).collect();
    let seeds = vec![0; batch.len()];
    let generations = model.generate(&batch, &config, &seeds)?;
    let mut correct = 0;
    for (p, g) in problems.iter().zip(&generations) {
        correct += usize::from(task.reward(p, completion_text(tokenizer, &g.tokens)?.as_bytes()).verdict.is_correct());
    }
    Ok(correct as f64 / problems.len().max(1) as f64)
}
