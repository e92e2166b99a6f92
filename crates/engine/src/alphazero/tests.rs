//! AlphaZero on tic-tac-toe: determinism, the targets self-play writes, the loss's gradient against finite
//! differences of a loss written out from the model's outputs, learning, and resume.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use selfplay_model::{Model, init_weights};
use selfplay_search::Game;
use selfplay_search::games::TicTacToe;

use selfplay_collective::SingleProcess;

use super::learner::loss;
use super::net::TokenLayout;
use super::replay::Sample;
use super::*;
use crate::engine::RunStart;
use crate::train::Trainer;

fn tiny_net(config: &AlphaZeroConfig, seed: u64) -> Model {
    let c = config.model_config::<TicTacToe>();
    let w = init_weights(&c, 0.3, seed).unwrap();
    Model::new(c, w).unwrap()
}

#[test]
fn self_play_is_deterministic_and_writes_consistent_targets() {
    let config = AlphaZeroConfig::tiny();
    let model = tiny_net(&config, 3);
    let a = self_play(&model, &config, &TicTacToe::new(), 1, &SingleProcess).unwrap();
    let b = self_play(&model, &config, &TicTacToe::new(), 1, &SingleProcess).unwrap();
    assert_eq!(a, b, "same round, same games");
    let c = self_play(&model, &config, &TicTacToe::new(), 2, &SingleProcess).unwrap();
    assert_ne!(a.samples, c.samples, "another round, other games");
    assert_eq!(a.games, config.selfplay.games);
    assert!(a.plies >= 5 * a.games && a.plies <= 9 * a.games, "{} plies", a.plies);
    // Searched positions only: the random opening plies give no sample.
    let searched = a.plies - config.selfplay.random_opening_plies.fewest() * a.games;
    assert_eq!(a.samples.len(), searched);
    let with_policy = a.samples.iter().filter(|s| s.policy.is_some()).count();
    assert!(with_policy > 0 && with_policy < a.samples.len(), "playout caps: {with_policy} of {}", a.samples.len());
    for s in &a.samples {
        assert_eq!(s.tokens.len(), TicTacToe::OBSERVATION_LEN);
        assert!([-1.0, 0.0, 1.0].contains(&s.value));
        if let Some(p) = &s.policy {
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-4);
            assert!(p.iter().zip(&s.legal).all(|(&q, &l)| l || q == 0.0), "mass on an illegal move");
        }
    }
}

/// A range of opening plies is drawn per game from the game's own generator: the games open differently, each
/// within the range, and the same round replays the same openings.
#[test]
fn each_game_draws_its_random_opening_from_the_range() {
    let mut config = AlphaZeroConfig::tiny();
    config.selfplay.random_opening_plies = OpeningPlies::Between([0, 3]);
    config.validate().unwrap();
    let model = tiny_net(&config, 3);
    let a = self_play(&model, &config, &TicTacToe::new(), 1, &SingleProcess).unwrap();
    assert_eq!(a, self_play(&model, &config, &TicTacToe::new(), 1, &SingleProcess).unwrap());
    // A game's samples are consecutive, one stone apart; the first one's stones are the game's opening (three
    // random plies cannot finish a game of tic-tac-toe, so every game has samples).
    let stones = |s: &Sample| s.tokens.iter().filter(|&&t| t != 0).count();
    let mut openings = vec![stones(&a.samples[0])];
    for pair in a.samples.windows(2) {
        if stones(&pair[1]) != stones(&pair[0]) + 1 {
            openings.push(stones(&pair[1]));
        }
    }
    assert_eq!(openings.len(), a.games, "{openings:?}");
    assert!(openings.iter().all(|&k| k <= 3), "{openings:?}");
    assert!(openings.iter().any(|&k| k != openings[0]), "every game opened alike: {openings:?}");
    assert_eq!(openings.iter().sum::<usize>(), a.plies - a.samples.len());
    // Written as a number or a range; a range that ends below its start is refused.
    let text = "[selfplay]\nrandom_opening_plies = [0, 14]\n";
    let parsed: AlphaZeroConfig = toml::from_str(text).unwrap();
    assert_eq!(parsed.selfplay.random_opening_plies, OpeningPlies::Between([0, 14]));
    assert_eq!(toml::from_str::<AlphaZeroConfig>(&parsed.to_toml().unwrap()).unwrap(), parsed);
    let fixed: AlphaZeroConfig = toml::from_str("[selfplay]\nrandom_opening_plies = 4\n").unwrap();
    assert_eq!(fixed.selfplay.random_opening_plies, OpeningPlies::Exactly(4));
    config.selfplay.random_opening_plies = OpeningPlies::Between([5, 2]);
    assert_eq!(config.validate().unwrap_err().name, "selfplay.random_opening_plies");
}

#[test]
fn the_value_target_mixes_the_result_with_the_search_value_by_its_weight() {
    let mut config = AlphaZeroConfig::tiny();
    let model = tiny_net(&config, 3);
    let with_weight = |config: &mut AlphaZeroConfig, w: f32| {
        config.learn.search_value_weight = w;
        self_play(&model, config, &TicTacToe::new(), 1, &SingleProcess).unwrap().samples
    };
    // The weight changes targets only, not play: the three rounds search and play the same games.
    let results = with_weight(&mut config, 0.0);
    let searched = with_weight(&mut config, 1.0);
    let mixed = with_weight(&mut config, 0.25);
    assert_eq!(results.len(), mixed.len());
    assert!(searched.iter().any(|s| ![-1.0, 0.0, 1.0].contains(&s.value)), "search values are not all results");
    for ((z, q), m) in results.iter().zip(&searched).zip(&mixed) {
        assert_eq!((&z.tokens, &z.policy), (&m.tokens, &m.policy));
        assert!((-1.0..=1.0).contains(&q.value), "search values are clamped to the results' range");
        assert!((m.value - (0.75 * z.value + 0.25 * q.value)).abs() < 1e-6, "{} {} {}", z.value, q.value, m.value);
    }
}

/// The policy-plus-value loss written out from `model.forward`'s outputs in f64: masked softmax cross-entropy
/// over the action tokens (action `a`'s at the last position, or at its own query), mean over rows with a target;
/// ½ mean squared value error at the last position.
fn direct_loss(model: &Model, batch: &[&Sample], value_coef: f64) -> f64 {
    let a = TicTacToe::NUM_ACTIONS;
    let vocab = model.config().vocab_size;
    let first = vocab - a;
    let layout = TokenLayout::of_vocab::<TicTacToe>(vocab).unwrap();
    let len = layout.sequence_len::<TicTacToe>();
    let encoded: Vec<Vec<u32>> = batch.iter().map(|s| layout.encode::<TicTacToe>(&s.tokens)).collect();
    let tokens: Vec<&[u32]> = encoded.iter().map(Vec::as_slice).collect();
    let outputs = model.forward(&tokens).unwrap();
    let with_policy = batch.iter().filter(|s| s.policy.is_some()).count() as f64;
    let (mut policy, mut value) = (0.0f64, 0.0f64);
    for (out, s) in outputs.iter().zip(batch) {
        let position = |i: usize| if layout.action_queries { TicTacToe::OBSERVATION_LEN + i } else { len - 1 };
        let row: Vec<f32> = (0..a).map(|i| out.logits.data()[position(i) * vocab + first + i]).collect();
        let legal: Vec<usize> = (0..a).filter(|&i| s.legal[i]).collect();
        let max = legal.iter().map(|&i| f64::from(row[i])).fold(f64::NEG_INFINITY, f64::max);
        let lse = max + legal.iter().map(|&i| (f64::from(row[i]) - max).exp()).sum::<f64>().ln();
        if let Some(p) = &s.policy {
            policy -= legal.iter().map(|&i| f64::from(p[i]) * (f64::from(row[i]) - lse)).sum::<f64>() / with_policy;
        }
        let e = f64::from(out.values[len - 1]) - f64::from(s.value);
        value += 0.5 * e * e / batch.len() as f64;
    }
    policy + value_coef * value
}

/// For both readouts: the board's last cell, and one query per action.
#[test]
fn the_loss_gradient_matches_finite_differences() {
    for action_queries in [false, true] {
        let mut config = AlphaZeroConfig::tiny();
        config.net.action_queries = action_queries;
        let mut model = tiny_net(&config, 5);
        let played = self_play(&model, &config, &TicTacToe::new(), 1, &SingleProcess).unwrap();
        let batch: Vec<&Sample> = played.samples.iter().step_by(7).take(12).collect();
        assert!(batch.iter().any(|s| s.policy.is_some()) && batch.iter().any(|s| s.policy.is_none()));
        let layout = config.net.token_layout();
        let encoded: Vec<Vec<u32>> = batch.iter().map(|s| layout.encode::<TicTacToe>(&s.tokens)).collect();
        let sequences: Vec<&[u32]> = encoded.iter().map(Vec::as_slice).collect();
        let vocab = model.config().vocab_size;
        let mut trainer = Trainer::keeping_tail(layout.read_positions::<TicTacToe>());
        let terms = trainer
            .gradient(&model, &SingleProcess, &sequences, |pass| loss::<TicTacToe, _>(&batch, pass, layout, vocab, 0.7))
            .unwrap();
        let direct = direct_loss(&model, &batch, 0.7);
        let reported = f64::from(terms.policy_loss) + 0.7 * f64::from(terms.value_loss);
        assert!((reported - direct).abs() < 1e-4 * direct.abs().max(1.0), "loss {reported} vs {direct}");
        let grads = trainer.gradient_buffer().unwrap().clone();
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for _ in 0..3 {
            // A random direction d over every weight; the gradient's projection on it against the difference
            // quotient.
            let mut direction = grads.zeros_like();
            direction.as_flat_mut().iter_mut().for_each(|x| *x = (rng.next_u64() % 2000) as f32 / 1000.0 - 1.0);
            let projected: f64 =
                grads.as_flat().iter().zip(direction.as_flat()).map(|(&g, &d)| f64::from(g) * f64::from(d)).sum();
            let h = 1e-3f32;
            let mut shifted = |sign: f32| {
                let original = model.weights().clone();
                let weights = model.weights_mut().as_flat_mut();
                weights.iter_mut().zip(direction.as_flat()).for_each(|(w, &d)| *w += sign * h * d);
                let l = direct_loss(&model, &batch, 0.7);
                *model.weights_mut() = original;
                l
            };
            let quotient = (shifted(1.0) - shifted(-1.0)) / (2.0 * f64::from(h));
            assert!((quotient - projected).abs() < 0.01 * projected.abs().max(1e-3), "{quotient} vs {projected}");
        }
        // A trainer that keeps too few positions for the queries is a typed error, not a misread.
        if action_queries {
            let err = Trainer::new()
                .gradient(&model, &SingleProcess, &sequences, |pass| {
                    loss::<TicTacToe, _>(&batch, pass, layout, vocab, 0.7)
                })
                .unwrap_err();
            assert!(matches!(err, AlphaZeroError::Model(selfplay_model::ModelError::LengthMismatch { .. })), "{err}");
        }
    }
}

/// Moves of a perfect tic-tac-toe player, chosen at random among the best ones.
fn perfect(position: &TicTacToe, rng: &mut ChaCha8Rng) -> Option<usize> {
    let best: Vec<usize> = position.best_moves().collect();
    best.get((rng.next_u64() % best.len().max(1) as u64) as usize).copied()
}

/// Self-play makes a randomly initialised network, with a 32-simulation search, perfect at tic-tac-toe. Measured
/// with these settings (the same on every machine): the untrained network with search (decisive moves checked,
/// so it already takes every immediate win and blocks every immediate threat) wins 38 and draws 2 of 40 against
/// a random player but loses 17 of 40 to a perfect player; after 24 iterations (1 536 games) it wins 37 and
/// draws 3 against random and draws all 40 against perfect play.
#[test]
fn learns_tic_tac_toe_from_self_play() {
    let mut config = AlphaZeroConfig::tiny();
    config.iterations = 24;
    config.selfplay.games = 64;
    config.selfplay.simulations = 32;
    config.selfplay.fast_simulations = 32;
    config.selfplay.sampled_plies = 2;
    config.learn.updates_per_iteration = 32;
    config.learn.batch_size = 128;
    config.arena.every = 12;
    config.arena.games = 40;
    config.arena.simulations = 32;
    config.selfplay.considered_actions = 16;
    config.learn.lr = 3e-3;
    let out = std::env::temp_dir().join(format!("selfplay-az-ttt-{}", std::process::id()));
    let start = TicTacToe::new();
    let untrained = tiny_net(&config, config.seed);
    let before = play_match(&untrained, &config, &start, 40, &mut random_action::<TicTacToe>, 7).unwrap();
    let before_perfect = play_match(&untrained, &config, &start, 40, &mut perfect, 3).unwrap();
    let record = run(&config, start, &out, RunStart::New, &|_, _| false).unwrap().unwrap();
    let saved = selfplay_model::ModelDir::load(&out.join("model")).unwrap();
    let model = Model::new(saved.config, saved.weights).unwrap();
    let after = play_match(&model, &config, &start, 40, &mut random_action::<TicTacToe>, 7).unwrap();
    let after_perfect = play_match(&model, &config, &start, 40, &mut perfect, 3).unwrap();
    eprintln!("against random {before:?} -> {after:?}; against perfect play {before_perfect:?} -> {after_perfect:?}");
    eprintln!("curve {:?}", record.curve);
    assert_eq!(record.curve.len(), 2);
    assert_eq!(record.games, 24 * 64);
    assert!(after.score() >= 0.9 && after.losses <= before.losses, "{before:?} -> {after:?}");
    assert_eq!(after_perfect.wins, 0, "nobody beats perfect play");
    assert!(
        after_perfect.draws >= 24 && after_perfect.draws >= before_perfect.draws + 10,
        "{before_perfect:?} -> {after_perfect:?}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}

/// The record with the arena points' wall-clock hours zeroed: everything else is seeded.
fn without_hours(mut record: AlphaZeroRecord) -> AlphaZeroRecord {
    record.curve.iter_mut().for_each(|p| p.hours = 0.0);
    record
}

/// A run stopped between iterations and resumed ends exactly as the uninterrupted run: the same network bit for
/// bit, the same record, the same metrics (the replay window travels in the checkpoint).
#[test]
fn a_stopped_run_resumes_bit_identically() {
    let config = AlphaZeroConfig::tiny();
    let dir = |name: &str| std::env::temp_dir().join(format!("selfplay-az-resume-{name}-{}", std::process::id()));
    let (straight_dir, stopped_dir) = (dir("straight"), dir("stopped"));
    let straight = run(&config, TicTacToe::new(), &straight_dir, RunStart::New, &|_, _| false).unwrap().unwrap();
    for stop_at in [1, 3] {
        let _ = std::fs::remove_dir_all(&stopped_dir);
        let stopped = run(&config, TicTacToe::new(), &stopped_dir, RunStart::New, &|_, step| step == stop_at).unwrap();
        assert!(stopped.is_none(), "the stop signal was ignored");
        let checkpoint = stopped_dir.join("checkpoints").join(format!("alphazero-{stop_at:07}"));
        assert!(checkpoint.join(crate::engine::STAGE_STATE_FILE).is_file(), "the replay window is checkpointed");
        let resumed = run(&config, TicTacToe::new(), &stopped_dir, RunStart::Resume, &|_, _| false).unwrap().unwrap();
        assert_eq!(without_hours(resumed), without_hours(straight.clone()));
        let weights = |d: &std::path::Path| std::fs::read(d.join("model/model.safetensors")).unwrap();
        assert!(weights(&stopped_dir) == weights(&straight_dir), "stopped at {stop_at}: the networks differ");
        let metrics = |d: &std::path::Path| {
            crate::engine::seeded_metrics(&std::fs::read_to_string(d.join("metrics.jsonl")).unwrap()).unwrap()
        };
        assert_eq!(metrics(&stopped_dir), metrics(&straight_dir));
    }
    std::fs::remove_dir_all(&straight_dir).unwrap();
    std::fs::remove_dir_all(&stopped_dir).unwrap();
}

/// Every arena point keeps its network (with the run's settings) under `arena/` and plays the `[arena] league`
/// points before it; the finished run rates every point from all those games.
#[test]
fn the_league_plays_the_earlier_networks_and_rates_every_point() {
    let mut config = AlphaZeroConfig::tiny();
    config.arena.every = 1;
    config.arena.league = 2;
    config.arena.games = 6;
    let out = std::env::temp_dir().join(format!("selfplay-az-league-{}", std::process::id()));
    let record = run(&config, TicTacToe::new(), &out, RunStart::New, &|_, _| false).unwrap().unwrap();
    let iterations: Vec<u64> = record.curve.iter().map(|p| p.iteration).collect();
    assert_eq!(iterations, [1, 2, 3, 4]);
    for (k, point) in record.curve.iter().enumerate() {
        let opponents: Vec<&str> = point.league.iter().map(|e| e.second.as_str()).collect();
        let expected: Vec<String> = iterations[k.saturating_sub(2)..k].iter().map(|&i| arena::league_name(i)).collect();
        assert_eq!(opponents, expected, "point {}", point.iteration);
        for e in &point.league {
            assert_eq!(e.result.wins + e.result.draws + e.result.losses, config.arena.games);
        }
        assert!(point.league_elo.is_some_and(f64::is_finite), "{point:?}");
        let (saved, settings) = load_agent::<TicTacToe>(&arena::snapshot_dir(&out, point.iteration)).unwrap();
        assert_eq!(settings, config);
        assert_eq!(saved.config(), &config.model_config::<TicTacToe>());
    }
    let last = arena::snapshot_dir(&out, 4);
    let final_weights = std::fs::read(out.join("model/model.safetensors")).unwrap();
    assert!(
        std::fs::read(last.join("model.safetensors")).unwrap() == final_weights,
        "the last point is the final network"
    );
    let elo = arena::league_ratings(record.opponents.as_ref().unwrap(), &record.curve).unwrap();
    assert_eq!(elo, record.curve.iter().map(|p| p.league_elo.unwrap()).collect::<Vec<_>>());
    std::fs::remove_dir_all(&out).unwrap();
}

/// Two networks searching their games in batches ([`play::play_networks`]) play exactly the games the same two
/// play when the second answers one position at a time through [`choose_moves`] (checked with the network alone,
/// where each move is its argmax); a network against its own copy wins as many of the paired games as it loses.
#[test]
fn networks_play_each_other_in_batches_as_one_at_a_time() {
    let mut config = AlphaZeroConfig::tiny();
    config.arena.simulations = 0;
    let (a, b) = (tiny_net(&config, 21), tiny_net(&config, 22));
    let starts: Vec<TicTacToe> =
        (0..12).map(|g| selfplay_games::tournament::random_opening(&TicTacToe::new(), 2, 5, (g / 2) as u64)).collect();
    let batched = play::play_networks(&a, &b, &config, &starts, 1, 2).unwrap();
    let mut one_at_a_time = |position: &TicTacToe, _: &mut ChaCha8Rng| {
        choose_moves(&b, &config, std::slice::from_ref(position), 0, 2).ok().map(|m| m.0[0])
    };
    let single = play::play_match_from(&a, &config, &starts, &mut one_at_a_time, 1).unwrap();
    assert_eq!(batched, single);
    assert_eq!(batched.wins + batched.draws + batched.losses, starts.len());

    let copy = tiny_net(&config, 21);
    let mirror = play::play_networks(&a, &copy, &config, &starts, 1, 1).unwrap();
    assert!(mirror.wins > 0 && mirror.wins == mirror.losses, "{mirror:?}");
    // With search both sides still finish every game, and the same seeds give the same result.
    config.arena.simulations = 4;
    let searched = play::play_networks(&a, &b, &config, &starts, 1, 2).unwrap();
    assert_eq!(searched.wins + searched.draws + searched.losses, starts.len());
    assert_eq!(searched, play::play_networks(&a, &b, &config, &starts, 1, 2).unwrap());
}

/// Search over an untrained network, with decisive moves checked (the default), takes an immediate win and blocks
/// an immediate loss for every random network; the network alone plays whatever its logits say, legal moves
/// only. Without the check the same search misses some (most of these networks' blocks at 64 simulations).
#[test]
fn search_finds_wins_and_blocks_that_the_network_alone_misses() {
    let mut config = AlphaZeroConfig::tiny();
    let win = TicTacToe::parse("XX.OO....").unwrap(); // X to move: 2 wins
    let block = TicTacToe::parse("XX.O.....").unwrap(); // O to move: 2 blocks
    let mut missed_without = 0;
    for seed in 0..10 {
        let model = tiny_net(&config, seed);
        config.selfplay.decisive_moves = true;
        let (moves, evaluations) = choose_moves(&model, &config, &[win, block], 64, 1).unwrap();
        assert_eq!(moves, [2, 2], "network {seed}");
        // Simulations that revisit a finished game evaluate nothing, so at most 2 + 2 × 64 evaluations.
        assert!(evaluations > 2 && evaluations <= 2 + 2 * 64, "{evaluations} evaluations");
        let (alone, evaluations) = choose_moves(&model, &config, &[win, block], 0, 1).unwrap();
        assert!(alone.iter().zip([win, block]).all(|(&m, p)| p.is_legal(m)));
        assert_eq!(evaluations, 2);
        config.selfplay.decisive_moves = false;
        missed_without += usize::from(choose_moves(&model, &config, &[win, block], 64, 1).unwrap().0 != [2, 2]);
    }
    assert!(missed_without > 0, "without decisive moves every network found both moves");
}

/// Connect Four end to end, one small iteration: mistakes measured on the solver-labelled benchmark along the way
/// and at each test-time budget, as rates.
#[test]
fn connect4_runs_with_its_benchmark() {
    let mut config = AlphaZeroConfig::tiny();
    config.iterations = 1;
    config.selfplay.games = 8;
    config.arena.games = 4;
    let out = std::env::temp_dir().join(format!("selfplay-az-c4-{}", std::process::id()));
    let record = run_connect4(&SingleProcess, &config, &out, RunStart::New, &|_, _| false).unwrap().unwrap();
    let point = &record.curve[0];
    let rates = [point.mistakes.unwrap(), point.network_mistakes.unwrap()];
    assert!(rates.iter().all(|m| (0.0..=1.0).contains(&m.all) && (0.0..=1.0).contains(&m.decisive)), "{rates:?}");
    assert_eq!(point.mistake_groups.len(), 6);
    let budgets: Vec<usize> = record.test_time.iter().map(|p| p.simulations).collect();
    assert_eq!(budgets, config.arena.test_time_simulations);
    assert!(record.test_time.iter().all(|p| p.groups.len() == 6));
    assert_eq!(record.games, 8);
    // The saved network comes back with the run's settings and plays; it is refused for another game.
    let (model, saved) = load_agent::<selfplay_games::Connect4>(&out.join("model")).unwrap();
    assert_eq!(saved, config);
    let mut agent = NetAgent::new(&model, &saved, 4, 1);
    let position = selfplay_games::Connect4::from_moves("4453").unwrap();
    assert!(position.is_legal(selfplay_games::Agent::choose_move(&mut agent, &position).unwrap()));
    let err = load_agent::<TicTacToe>(&out.join("model")).unwrap_err();
    assert!(
        matches!(&err, AlphaZeroError::WrongVocabulary { accepted, got: 133, .. } if accepted == &[36, 45, 12, 21]),
        "{err}"
    );
    // Rated against random and alpha-beta 1 and 2, each rated by their round robin.
    let opponents: Vec<&str> = record.opponents.as_ref().unwrap().opponents.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(opponents, ["random", "alphabeta-1", "alphabeta-2"]);
    assert_eq!(point.matches.len(), 2);
    assert!(point.elo.is_finite() && point.games == 8 && point.hours > 0.0, "{point:?}");
    for file in ["report.json", "report.md", "elo_flops.svg", "elo_games.png", "mistakes.svg", "test_time.png"] {
        assert!(out.join(file).is_file(), "{file}");
    }
    // Everything the run wrote is the run's own to an --overwrite, which removes it all: nothing would linger.
    crate::engine::run_dir::prepare_fresh(&out, RunStart::Overwrite).unwrap();
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
    std::fs::remove_dir_all(&out).unwrap();
}

/// A model directory without `alphazero.toml` (written by hand, or by a run before the file existed) plays with
/// the default settings; a broken one is an error, not silently the defaults; a network too short for the board
/// is refused before it is asked for a move.
#[test]
fn load_agent_reads_the_settings_beside_the_weights() {
    let dir = std::env::temp_dir().join(format!("selfplay-az-load-{}", std::process::id()));
    let config = AlphaZeroConfig::tiny();
    let model = tiny_net(&config, 2);
    selfplay_model::save_model_dir(&dir, model.config(), model.weights(), None, selfplay_tensor::DType::F32).unwrap();
    let (loaded, settings) = load_agent::<TicTacToe>(&dir).unwrap();
    assert_eq!(settings, AlphaZeroConfig::default());
    assert!(loaded.weights().as_flat() == model.weights().as_flat());
    std::fs::write(dir.join(SETTINGS_FILE), "[selfplay]\nconsidered_actions = 0\n").unwrap();
    assert!(matches!(load_agent::<TicTacToe>(&dir), Err(AlphaZeroError::SettingsFile(_))));
    std::fs::write(dir.join(SETTINGS_FILE), "[selfplay]\nconsidered_actions = 4\n").unwrap();
    assert_eq!(load_agent::<TicTacToe>(&dir).unwrap().1.selfplay.considered_actions, 4);

    let mut short = config.model_config::<TicTacToe>();
    short.max_position_embeddings = 4;
    let weights = init_weights(&short, 0.3, 1).unwrap();
    selfplay_model::save_model_dir(&dir, &short, &weights, None, selfplay_tensor::DType::F32).unwrap();
    let err = load_agent::<TicTacToe>(&dir).unwrap_err();
    assert!(matches!(err, AlphaZeroError::ShortContext { needed: 9, got: 4, .. }), "{err}");
    assert!(matches!(load_agent::<TicTacToe>(&dir.join("absent")), Err(AlphaZeroError::LoadModel { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The Connect Four presets of `selfplay demo --game connect4` can run.
#[test]
fn connect4_presets_validate() {
    for preset in [AlphaZeroConfig::connect4_demo(), AlphaZeroConfig::connect4_full()] {
        preset.validate().unwrap();
    }
    assert!(AlphaZeroConfig::connect4_demo().iterations < AlphaZeroConfig::connect4_full().iterations);
}
