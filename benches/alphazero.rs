//! AlphaZero self-play throughput on Connect Four at `AlphaZeroConfig::default()` (network: 64 hidden, 2 layers,
//! 4 heads of 16, SwiGLU 128, vocabulary 126 placed board + 7 action tokens, 42-token positions; self-play: 128
//! games at once, Gumbel MuZero with 32 simulations on a quarter of the moves and 8 on the rest, decisive moves
//! checked at every leaf), in three parts:
//!
//! * `alphazero/net_eval/batch{1,32,128,512}`: leaf evaluations/s, `NetPolicy::evaluate` (tokenising, one
//!   `Model::forward` over the batch, the 7 action logits and the value at the last position) on N seeded random
//!   positions, seed-initialised weights. Throughput in positions. With Gumbel and one leaf per tree per
//!   simulation, a self-play forward holds one leaf per game of its search group (the full and the fast searches
//!   are separate groups, ~32 and ~96 games at the start): the batch sizes of a round, `self_play`'s scheme
//!   replayed with a uniform evaluator, are printed once (see `selfplay_batches`).
//! * `alphazero/self_play/...`: one whole `self_play` round at the default config (128 games; seconds per round,
//!   so ten flat samples of one round); throughput in moves (plies), the round being deterministic.
//! * `alphazero/search/...`: the Gumbel search alone, 32 (and 8) simulations over 128 Connect Four positions with
//!   a uniform prior and zero value (`RandomRollouts { rollouts: 0 }`), so the cost of the tree code and the
//!   game's moves is visible on its own (`benches/search.rs` times 800-simulation searches on a stateless game,
//!   not the short searches over real positions self-play runs). Throughput in simulations.
//!
//! `benches/peers/torch_alphazero.py` times the same network's forward in PyTorch and prints both side by side,
//! with the FLOPs-per-position ceiling.

use std::hint::black_box;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use selfplay_engine::alphazero::net::NetPolicy;
use selfplay_engine::alphazero::{AlphaZeroConfig, self_play};
use selfplay_engine::flops::forward_flops_per_token;
use selfplay_games::Connect4;
use selfplay_model::{DEFAULT_INIT_STD, Model, init_weights};
use selfplay_search::{Game, GameEvaluator, PolicyValue, RandomRollouts, RootOutput, Search, Tree};

/// Leaf batch sizes timed for the network (1: a lone search; 32 and ~96: the full and fast groups of 128 games;
/// 128: every game at once; 512: a bigger self-play).
const NET_BATCHES: [usize; 4] = [1, 32, 128, 512];
/// Positions searched at once by the search-overhead bench (the default self-play's games).
const SEARCH_POSITIONS: usize = 128;

fn model(config: &AlphaZeroConfig) -> Model {
    let cfg = config.model_config::<Connect4>();
    let weights = init_weights(&cfg, DEFAULT_INIT_STD, config.seed).expect("valid config");
    Model::new(cfg, weights).expect("weights match config")
}

/// A splitmix64 step: the positions' random moves.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform draw in `[0, 1)` from 53 random bits.
fn unit(state: &mut u64) -> f64 {
    (next(state) >> 11) as f64 / (1u64 << 53) as f64
}

/// `n` unfinished positions after 0 to 20 uniformly random moves from the empty board, from `seed`.
fn positions(n: usize, seed: u64) -> Vec<Connect4> {
    let mut state = seed;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut p = Connect4::new();
        let moves = next(&mut state) % 21;
        for _ in 0..moves {
            if p.is_terminal() {
                break;
            }
            let legal: Vec<usize> = p.legal_actions().collect();
            p.play(legal[(next(&mut state) % legal.len() as u64) as usize]).expect("legal move");
        }
        if !p.is_terminal() {
            out.push(p);
        }
    }
    out
}

/// Forward FLOPs of one 42-token position (`selfplay_engine::flops`): token `t` attends to `t + 1` positions.
fn flops_per_position(config: &AlphaZeroConfig) -> f64 {
    let cfg = config.model_config::<Connect4>();
    (0..Connect4::OBSERVATION_LEN).map(|t| forward_flops_per_token(&cfg, t + 1)).sum()
}

/// A uniform prior and zero value (pure tree search) that records every batch it is asked for.
struct Recording {
    batches: Vec<usize>,
}

impl PolicyValue<Connect4> for Recording {
    type Error = std::convert::Infallible;
    fn evaluate(&mut self, positions: &[Connect4], logits: &mut [f32], values: &mut [f32]) -> Result<(), Self::Error> {
        self.batches.push(positions.len());
        RandomRollouts { rollouts: 0, seed: 0 }.evaluate(positions, logits, values)
    }
}

/// The forward batch sizes of one self-play round at `config`: `self_play`'s scheme (random opening moves, then
/// each move a full or a fast Gumbel search, the trees of each group searched together after one batched root
/// evaluation) with a uniform evaluator in place of the network, which an untrained network resembles.
fn selfplay_batches(config: &AlphaZeroConfig) -> Vec<usize> {
    let s = &config.selfplay;
    let mut games: Vec<Connect4> = vec![Connect4::new(); s.games];
    let mut plies = vec![0usize; s.games];
    let mut rng = config.seed;
    let mut evaluator = GameEvaluator::new(Recording { batches: Vec::new() });
    let mut full = Search::new(config.selfplay_search(s.simulations, 0), Connect4::NUM_ACTIONS).expect("valid");
    let mut fast = Search::new(config.selfplay_search(s.fast_simulations, 0), Connect4::NUM_ACTIONS).expect("valid");
    let mut invalid = vec![false; Connect4::NUM_ACTIONS];
    for move_index in 0u64.. {
        let (mut full_group, mut fast_group) = (Vec::new(), Vec::new());
        let active: Vec<usize> = (0..games.len()).filter(|&i| !games[i].is_terminal()).collect();
        if active.is_empty() {
            break;
        }
        for i in active {
            if plies[i] < s.random_opening_plies.fewest() {
                let legal: Vec<usize> = games[i].legal_actions().collect();
                games[i].play(legal[(next(&mut rng) % legal.len() as u64) as usize]).expect("legal move");
                plies[i] += 1;
            } else if unit(&mut rng) < s.full_search_probability {
                full_group.push(i);
            } else {
                fast_group.push(i);
            }
        }
        for (group, search) in [(&full_group, &mut full), (&fast_group, &mut fast)] {
            if group.is_empty() {
                continue;
            }
            let roots: Vec<Connect4> = group.iter().map(|&i| games[i]).collect();
            let a = Connect4::NUM_ACTIONS;
            let (mut logits, mut values) = (vec![0.0; roots.len() * a], vec![0.0; roots.len()]);
            evaluator.model_mut().evaluate(&roots, &mut logits, &mut values).expect("infallible");
            let mut trees: Vec<Tree<Connect4>> = Vec::with_capacity(roots.len());
            for (k, root) in roots.iter().enumerate() {
                root.invalid_mask_into(&mut invalid);
                let mut tree = Tree::new(a);
                let output = RootOutput {
                    state: *root,
                    prior_logits: &logits[k * a..(k + 1) * a],
                    value: values[k],
                    invalid_actions: Some(&invalid),
                };
                tree.reset(output).expect("valid root");
                trees.push(tree);
            }
            let mut searched = *search.config();
            searched.seed = move_index;
            search.set_config(searched).expect("valid");
            search.run(&mut trees, &mut evaluator, 0).expect("uniform evaluator cannot fail");
            for (&i, tree) in group.iter().zip(trees.iter_mut()) {
                let action = search.policy(tree).expect("searched root").action;
                games[i].play(action).expect("legal move");
                plies[i] += 1;
            }
        }
    }
    evaluator.into_model().batches
}

fn report_batches(config: &AlphaZeroConfig) {
    let batches = selfplay_batches(config);
    let positions: usize = batches.iter().sum();
    let weighted: f64 = batches.iter().map(|&b| (b * b) as f64).sum::<f64>() / positions as f64;
    let share = |lo: usize, hi: usize| {
        100.0 * batches.iter().filter(|&&b| (lo..=hi).contains(&b)).sum::<usize>() as f64 / positions as f64
    };
    eprintln!(
        "alphazero: one self-play round of {} games (uniform evaluator in place of the net): {} forwards, {} \
         positions, mean batch {:.1}, position-weighted mean batch {:.1}, max {}; positions in batches of 1-8: \
         {:.0}%, 9-32: {:.0}%, 33-64: {:.0}%, 65-128: {:.0}%",
        config.selfplay.games,
        batches.len(),
        positions,
        positions as f64 / batches.len() as f64,
        weighted,
        batches.iter().max().copied().unwrap_or(0),
        share(1, 8),
        share(9, 32),
        share(33, 64),
        share(65, 128),
    );
}

fn bench_net(c: &mut Criterion) {
    let config = AlphaZeroConfig::default();
    report_batches(&config);
    eprintln!(
        "alphazero: {:.3} MFLOP per position forward (42 tokens, selfplay_engine::flops)",
        flops_per_position(&config) / 1e6
    );
    let model = model(&config);
    let mut policy = NetPolicy::<Connect4, _>::new(&model).expect("vocabulary fits");
    let mut group = c.benchmark_group("alphazero/net_eval");
    for n in NET_BATCHES {
        let batch = positions(n, 7 + n as u64);
        let (mut logits, mut values) = (vec![0.0f32; n * Connect4::NUM_ACTIONS], vec![0.0f32; n]);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("batch{n}"), |b| {
            b.iter(|| {
                policy.evaluate(black_box(&batch), &mut logits, &mut values).expect("valid batch");
                black_box(values[0])
            })
        });
    }
    group.finish();
}

fn bench_self_play(c: &mut Criterion) {
    let config = AlphaZeroConfig::default();
    let model = model(&config);
    let start = Connect4::new();
    // The round is seeded by (seed, round) alone: every iteration plays the same moves.
    let outcome = self_play(&model, &config, &start, 0, &selfplay_collective::SingleProcess).expect("self-play runs");
    eprintln!(
        "alphazero/self_play: {} games, {} plies, {} positions evaluated per round ({:.1} per ply)",
        outcome.games,
        outcome.plies,
        outcome.evaluated,
        outcome.evaluated as f64 / outcome.plies as f64
    );
    let mut group = c.benchmark_group("alphazero/self_play");
    // A round takes seconds: ten samples of one round each (criterion's linear sampling would need 55 rounds).
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(outcome.plies as u64));
    let name = format!(
        "round_{}games_gumbel{}_{}",
        config.selfplay.games, config.selfplay.simulations, config.selfplay.fast_simulations
    );
    group.bench_function(name, |b| {
        b.iter(|| {
            self_play(&model, &config, &start, 0, &selfplay_collective::SingleProcess).expect("self-play runs").plies
        })
    });
    group.finish();
}

fn bench_search(c: &mut Criterion) {
    let config = AlphaZeroConfig::default();
    let roots = positions(SEARCH_POSITIONS, 1);
    let mut evaluator = GameEvaluator::new(RandomRollouts { rollouts: 0, seed: 0 });
    let mut group = c.benchmark_group("alphazero/search");
    for sims in [config.selfplay.simulations, config.selfplay.fast_simulations] {
        let mut search = Search::new(config.selfplay_search(sims, 0), Connect4::NUM_ACTIONS).expect("valid");
        let mut trees: Vec<Tree<Connect4>> = (0..SEARCH_POSITIONS).map(|_| Tree::new(Connect4::NUM_ACTIONS)).collect();
        group.throughput(Throughput::Elements((SEARCH_POSITIONS * sims) as u64));
        group.bench_function(format!("gumbel_{sims}sims_{SEARCH_POSITIONS}positions_uniform"), |b| {
            b.iter(|| {
                for (tree, root) in trees.iter_mut().zip(&roots) {
                    tree.reset(evaluator.root(root).expect("unfinished root")).expect("valid root");
                }
                search.run(&mut trees, &mut evaluator, 0).expect("uniform evaluator cannot fail");
                black_box(search.policy(&mut trees[0]).expect("searched root").action)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_net, bench_self_play, bench_search);
criterion_main!(benches);
