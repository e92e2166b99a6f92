//! Simulations per second of MCTS (PUCT) and Gumbel MuZero with a zero-cost evaluator: 7 actions, 800
//! simulations, one tree and 64 trees per evaluator call. `benches/peers/mctx_bench.py` times DeepMind mctx
//! (JAX on CPU, jit-compiled) on the same setting; figures in `BENCHMARKS.md`.

use std::convert::Infallible;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use selfplay_search::{Evaluation, Evaluator, LeafBatch, LeafOutputs, RootOutput, Search, SearchConfig, Tree};

const ACTIONS: usize = 7;
const SIMULATIONS: usize = 800;

/// Zero prior logits, value 0, reward 0, discount 1 for every leaf (mctx bench: the same trivial recurrent_fn).
struct ZeroCost;

impl Evaluator for ZeroCost {
    type State = ();
    type Error = Infallible;
    fn evaluate(&mut self, leaves: &LeafBatch<'_, ()>, out: &mut LeafOutputs<()>) -> Result<(), Infallible> {
        for i in 0..leaves.len() {
            let eval = Evaluation { state: (), reward: 0.0, discount: 1.0, value: 0.0, terminal: false };
            // Cannot fail: the logits have the right length and `i` is in range.
            let _ = out.fill(i, eval, |logits, _| logits.fill(0.0));
        }
        Ok(())
    }
}

fn bench_search(c: &mut Criterion, name: &str, config: SearchConfig) {
    let mut group = c.benchmark_group(format!("search/{name}"));
    for batch in [1usize, 64] {
        let mut trees: Vec<Tree<()>> = (0..batch).map(|_| Tree::new(ACTIONS)).collect();
        let mut search = Search::new(config, ACTIONS).expect("valid config");
        group.throughput(Throughput::Elements((batch * SIMULATIONS) as u64));
        group.bench_function(format!("{ACTIONS}actions_{SIMULATIONS}sims_batch{batch}"), |b| {
            b.iter(|| {
                for tree in trees.iter_mut() {
                    let root =
                        RootOutput { state: (), prior_logits: &[0.0; ACTIONS], value: 0.0, invalid_actions: None };
                    tree.reset(root).expect("valid root");
                }
                search.run(&mut trees, &mut ZeroCost, 0).expect("zero-cost evaluator cannot fail");
                black_box(trees[0].root_visit_counts()[0])
            })
        });
    }
    group.finish();
}

fn searches(c: &mut Criterion) {
    bench_search(c, "muzero", SearchConfig::muzero(SIMULATIONS));
    bench_search(c, "gumbel_muzero", SearchConfig::gumbel(SIMULATIONS));
}

criterion_group!(benches, searches);
criterion_main!(benches);
