//! How well the AlphaZero network learns Connect Four from perfect labels, apart from self-play: trains the
//! network on solver-labelled positions (policy target: uniform over the best moves; value target: the solved
//! outcome, 1 / 0 / −1) with the AlphaZero loss, and prints the mistake rate and value error on held-out
//! positions and on the committed benchmark as it goes. It is how the network's input was chosen (README,
//! "Connect Four, measured").
//!
//! ```sh
//! cargo run --release -p selfplay-games --example label_positions -- --seed 11 --count 12000 --min 14 --max 32 > a.txt
//! cargo run --release -p selfplay-engine --example c4_supervised -- a.txt [--steps 3000] [--hidden 64]
//!     [--layers 2] [--lr 0.002] [--batch 256] [--shared-tokens] [--action-queries] [--save DIR]
//! ```
//!
//! The last 2 000 positions are held out. `--save DIR` writes the trained network as a model directory that
//! `selfplay game eval|move|play --model DIR` read. `--shared-tokens` reads the board as the game's own tokens (one per
//! cell state) instead of one token per cell and state; `--action-queries` reads each column's logit at a query
//! token of its own after the board instead of all at the board's last cell (`TokenLayout`).

use std::error::Error;

use selfplay_engine::alphazero::learner::loss;
use selfplay_engine::alphazero::net::NetPolicy;
use selfplay_engine::alphazero::replay::Sample;
use selfplay_engine::alphazero::{AlphaZeroConfig, AlphaZeroError};
use selfplay_engine::optimizer::{ModelOptimizer, OptimConfig};
use selfplay_engine::train::{Trainer, draw_with_replacement};
use selfplay_games::labelled::{LabelledPosition, committed_benchmark};
use selfplay_games::{Connect4, Outcome, WIDTH};
use selfplay_model::{DEFAULT_INIT_STD, Model, init_weights};
use selfplay_search::{Game, PolicyValue};
use selfplay_tensor::DType;

/// The value of `--name`, or `default` when it is absent.
fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T, Box<dyn Error>> {
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args.get(i + 1).and_then(|v| v.parse().ok()).ok_or(format!("{name} needs a valid value"))?),
        None => Ok(default),
    }
}

/// The training sample of a labelled position: every best move equally likely, the solved outcome as value.
fn sample(label: &LabelledPosition) -> Sample {
    let best = label.best_outcome();
    let legal: Vec<bool> = (0..WIDTH).map(|c| label.outcome(c).is_some()).collect();
    let is_best: Vec<bool> = (0..WIDTH).map(|c| label.outcome(c) == Some(best)).collect();
    let n = is_best.iter().filter(|&&b| b).count() as f32;
    let policy = is_best.iter().map(|&b| if b { 1.0 / n } else { 0.0 }).collect();
    let value = match best {
        Outcome::Win => 1.0,
        Outcome::Draw => 0.0,
        Outcome::Loss => -1.0,
    };
    Sample { tokens: label.position.observation(), policy: Some(policy), legal, value }
}

/// The network's mistake rate (its most likely legal move) and value mean squared error over `labels`.
fn evaluate(model: &Model, labels: &[LabelledPosition]) -> Result<(f64, f64), Box<dyn Error>> {
    let mut net = NetPolicy::<Connect4, _>::new(model)?;
    let (mut mistakes, mut squared) = (0usize, 0f64);
    for chunk in labels.chunks(256) {
        let positions: Vec<Connect4> = chunk.iter().map(|l| l.position).collect();
        let (mut logits, mut values) = (vec![0.0; chunk.len() * WIDTH], vec![0.0; chunk.len()]);
        net.evaluate(&positions, &mut logits, &mut values)?;
        for ((label, row), &value) in chunk.iter().zip(logits.chunks(WIDTH)).zip(&values) {
            let col = (0..WIDTH)
                .filter(|&c| label.outcome(c).is_some())
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .ok_or("a labelled position without a legal move")?;
            mistakes += usize::from(label.is_mistake(col));
            squared += (f64::from(value) - f64::from(sample(label).value)).powi(2);
        }
    }
    let n = labels.len().max(1) as f64;
    Ok((mistakes as f64 / n, squared / n))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mut labels = Vec::new();
    for file in args.iter().skip(1).take_while(|a| !a.starts_with("--")) {
        for line in std::fs::read_to_string(file)?.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            labels.push(LabelledPosition::parse_line(line)?);
        }
    }
    let (steps, batch_size, lr): (u64, usize, f32) =
        (arg(&args, "--steps", 3000)?, arg(&args, "--batch", 256)?, arg(&args, "--lr", 2e-3)?);
    let mut config = AlphaZeroConfig::default();
    config.net.hidden_size = arg(&args, "--hidden", config.net.hidden_size)?;
    config.net.intermediate_size = 2 * config.net.hidden_size;
    config.net.layers = arg(&args, "--layers", config.net.layers)?;
    config.net.placed_tokens = !args.iter().any(|a| a == "--shared-tokens");
    config.net.action_queries = args.iter().any(|a| a == "--action-queries");
    let layout = config.net.token_layout();
    let model_config = config.model_config::<Connect4>();
    let mut model = Model::new(model_config.clone(), init_weights(&model_config, DEFAULT_INIT_STD, 1)?)?;

    let held_out = labels.len().min(2000);
    let (train, test) = labels.split_at(labels.len() - held_out);
    let samples: Vec<Sample> = train.iter().map(sample).collect();
    let benchmark = committed_benchmark()?;
    let mut optimizer = ModelOptimizer::new(model.weights(), OptimConfig::warmup_cosine(lr, 1e-4, steps))?;
    let mut trainer = Trainer::keeping_tail(layout.read_positions::<Connect4>());
    let vocab = model_config.vocab_size;
    let started = std::time::Instant::now();
    println!("{} positions to train on, {} held out ({layout:?} tokens)", samples.len(), test.len());
    println!("  step  policy loss  value loss  held-out mistakes  held-out value mse  benchmark mistakes  seconds");
    for step in 0..steps {
        let batch = draw_with_replacement(&samples, batch_size, 1, step, 0);
        let encoded: Vec<Vec<u32>> = batch.iter().map(|s| layout.encode::<Connect4>(&s.tokens)).collect();
        let sequences: Vec<&[u32]> = encoded.iter().map(Vec::as_slice).collect();
        let (terms, _) =
            trainer.update(&mut model, &mut optimizer, &selfplay_collective::SingleProcess, &sequences, |pass| {
                loss::<Connect4, _>(&batch, pass, layout, vocab, 1.0).map_err(|e: AlphaZeroError| e)
            })?;
        if (step + 1) % 500 == 0 || step + 1 == steps {
            let (mistakes, mse) = evaluate(&model, test)?;
            let (bench, _) = evaluate(&model, &benchmark)?;
            println!(
                "{:>6}  {:>11.3}  {:>10.3}  {mistakes:>17.3}  {mse:>18.3}  {bench:>18.3}  {:>7.0}",
                step + 1,
                terms.policy_loss,
                terms.value_loss,
                started.elapsed().as_secs_f64()
            );
        }
    }
    if let Some(i) = args.iter().position(|a| a == "--save") {
        let dir = args.get(i + 1).ok_or("--save needs a directory")?;
        selfplay_model::save_model_dir(std::path::Path::new(dir), &model_config, model.weights(), None, DType::F32)?;
        println!("saved to {dir}");
    }
    Ok(())
}
