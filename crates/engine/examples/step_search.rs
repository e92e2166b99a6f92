//! Times the step searches on a saved model:
//! `cargo run --release -p selfplay-engine --example step_search -- MODEL_DIR [PROBLEMS] [METHODS] [SETTINGS_JSON]
//! [MAX_NEW_TOKENS] [BUDGETS]` (methods comma-separated, default `beam,mcts,gumbel`; settings as JSON, e.g.
//! `'{"candidates": 8}'` or `'{"kv_cache_tokens": 0}'` to recompute prefixes). Runs the demo's task (held-out
//! Countdown problems with three numbers, 96 new tokens by default, as the demo) at budgets 1..=64 (or the
//! comma-separated BUDGETS) and prints one JSON line per point, then the wall time.

use std::path::PathBuf;
use std::time::Instant;

use selfplay_engine::rollout::Method;
use selfplay_engine::rollout::step_search::{SearchSettings, search_test_time_methods};
use selfplay_model::{Model, ModelDir};
use selfplay_tasks::{CountdownConfig, CountdownTask, Split, Task};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: step_search MODEL_DIR [PROBLEMS] [METHODS] [SETTINGS_JSON] [MAX_NEW_TOKENS] [BUDGETS]";
    let dir = PathBuf::from(args.next().ok_or(usage)?);
    let n: usize = args.next().map_or(Ok(500), |s| s.parse())?;
    let methods: Vec<Method> = match args.next() {
        Some(list) => list.split(',').map(|m| m.parse::<Method>()).collect::<Result<_, _>>()?,
        None => Method::SEARCHES.to_vec(),
    };
    let settings: SearchSettings = match args.next() {
        Some(json) => serde_json::from_str(&json)?,
        None => SearchSettings::default(),
    };
    let max_new_tokens: usize = args.next().map_or(Ok(96), |s| s.parse())?;
    let loaded = ModelDir::load(&dir)?;
    let tokenizer = loaded.tokenizer.ok_or("the model directory has no tokenizer.json")?;
    let model = Model::new(loaded.config, loaded.weights)?;
    let task = CountdownTask {
        config: CountdownConfig { min_count: 3, max_count: 3, ..CountdownConfig::default() },
        ..CountdownTask::default()
    };
    let problems = task.generate(Split::Val, n, 1)?;
    let budgets: Vec<u32> = match args.next() {
        Some(list) => list.split(',').map(str::parse).collect::<Result<_, _>>()?,
        None => vec![1, 2, 4, 8, 16, 32, 64],
    };
    let started = Instant::now();
    let points = search_test_time_methods(
        &model,
        tokenizer.as_ref(),
        &task,
        &problems,
        &methods,
        &budgets,
        &settings,
        max_new_tokens,
        1,
    )?;
    for p in &points {
        println!("{}", serde_json::to_string(p)?);
    }
    eprintln!("{} problems, {:?}: {:.1} s", n, methods, started.elapsed().as_secs_f64());
    Ok(())
}
