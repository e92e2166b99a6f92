//! Step-search throughput: beam search, MCTS and Gumbel MuZero over reasoning steps at the demo's test-time
//! settings (K = 4 candidates a node, verifier on finished solutions, budget 16: the budget where the searches
//! level off today), 64 held-out problems searched together, as the demo's sweep batches them. Reported as
//! simulations (budget × problems; for beam search, beam width × problems) per second and tokens generated per
//! second.
//!
//! The policy must write well-formed steps, or every step runs to its token limit: the setup trains one with the
//! demo's policy initialisation cut to 300 steps (about half a minute, once per bench run). Each timed call builds
//! a fresh policy, so nothing is reused from an earlier call's expansion cache.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use selfplay_engine::engine::RunStart;
use selfplay_engine::o1::config::RunConfig;
use selfplay_engine::o1::{Outcome, run};
use selfplay_engine::rollout::Method;
use selfplay_engine::rollout::step_search::{SearchSettings, search_test_time_methods};
use selfplay_model::tokenizer::Tokenizer;
use selfplay_model::{Model, ModelDir};
use selfplay_tasks::{Split, Task};

const PROBLEMS: usize = 64;
const BUDGET: u32 = 16;

/// The demo's policy after 300 steps of its policy initialisation, and its tokenizer.
fn trained_policy(config: &RunConfig) -> (Model, Box<dyn Tokenizer>) {
    let dir = std::env::temp_dir().join(format!("selfplay-bench-step-search-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let outcome = run(config, &dir, RunStart::New, &|stage, step| stage == "rl" && step == 0).expect("SFT runs");
    assert!(matches!(outcome, Outcome::Interrupted { .. }), "stopped before RL");
    let loaded = ModelDir::load(&dir.join("sft_model")).expect("the SFT model was saved");
    let _ = std::fs::remove_dir_all(&dir);
    let tokenizer = loaded.tokenizer.expect("the run saves its tokenizer");
    (Model::new(loaded.config, loaded.weights).expect("saved weights match their config"), tokenizer)
}

fn step_search(c: &mut Criterion) {
    let mut config = RunConfig::default();
    config.sft.steps = 300;
    let (model, tokenizer) = trained_policy(&config);
    let task = config.task();
    let problems = task.generate(Split::Val, PROBLEMS, config.seed).expect("held-out problems");
    let settings = SearchSettings::default();
    let search = |method: Method| {
        search_test_time_methods(
            &model,
            tokenizer.as_ref(),
            &task,
            &problems,
            &[method],
            &[BUDGET],
            &settings,
            config.max_new_tokens,
            config.seed,
        )
        .expect("the search runs")
    };
    let simulations = PROBLEMS as u64 * u64::from(BUDGET);
    for (unit, per_method) in [("simulations", false), ("tokens", true)] {
        let mut group = c.benchmark_group(format!("step_search_{unit}"));
        group.sample_size(10);
        for method in Method::SEARCHES {
            let elements = if per_method {
                let point = search(method).remove(0);
                (point.tokens * PROBLEMS as f64).round() as u64
            } else {
                simulations
            };
            group.throughput(Throughput::Elements(elements));
            group.bench_function(format!("{method}_budget{BUDGET}_batch{PROBLEMS}"), |b| {
                b.iter(|| black_box(search(method)))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, step_search);
criterion_main!(benches);
