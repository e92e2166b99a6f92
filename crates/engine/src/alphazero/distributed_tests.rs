//! AlphaZero data-parallel over ranks (threads standing in for MPI processes, with the same collective
//! semantics): the games split across ranks are the one process's games, the gradient over shards is the whole
//! batch's, and a run over two ranks keeps its ranks identical and ends where one process ends.

use selfplay_collective::{SingleProcess, ThreadWorld};
use selfplay_model::{Model, ModelDir, init_weights};
use selfplay_search::games::TicTacToe;

use super::learner::loss;
use super::replay::Sample;
use super::*;
use crate::engine::RunStart;
use crate::train::Trainer;

fn tiny_net(config: &AlphaZeroConfig, seed: u64) -> Model {
    let c = config.model_config::<TicTacToe>();
    Model::new(c.clone(), init_weights(&c, 0.3, seed).unwrap()).unwrap()
}

/// The largest difference between `a` and `b`, relative to `b`'s largest magnitude.
fn relative_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0.0f32, |m, x| m.max(x.abs())).max(f32::MIN_POSITIVE);
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn games_split_across_ranks_are_the_games_of_one_process() {
    let config = AlphaZeroConfig::tiny();
    let model = tiny_net(&config, 3);
    let one = self_play(&model, &config, &TicTacToe::new(), 1, &SingleProcess).unwrap();
    for world in [2, 3] {
        let ranks = ThreadWorld::run(world, |rank| self_play(&model, &config, &TicTacToe::new(), 1, rank).unwrap());
        for (rank, outcome) in ranks.iter().enumerate() {
            assert_eq!(outcome.samples, one.samples, "{world} ranks, rank {rank}: other games");
            let counts = (outcome.games, outcome.plies, outcome.first_player_wins, outcome.draws, outcome.evaluated);
            assert_eq!(counts, (one.games, one.plies, one.first_player_wins, one.draws, one.evaluated));
        }
    }
}

#[test]
fn the_gradient_over_shards_is_the_whole_batchs_on_every_rank() {
    // Both readouts: the last cell's logits (one row a sequence), and one query per action (the ranks exchange
    // a row per action).
    for action_queries in [false, true] {
        let mut config = AlphaZeroConfig::tiny();
        config.net.action_queries = action_queries;
        let model = tiny_net(&config, 5);
        let played = self_play(&model, &config, &TicTacToe::new(), 1, &SingleProcess).unwrap();
        // 13 rows: the shards differ in size, and some rows have no policy target (the loss's mean runs over the rest).
        let batch: Vec<&Sample> = played.samples.iter().step_by(5).take(13).collect();
        assert!(batch.iter().any(|s| s.policy.is_none()));
        let layout = config.net.token_layout();
        let encoded: Vec<Vec<u32>> = batch.iter().map(|s| layout.encode::<TicTacToe>(&s.tokens)).collect();
        let sequences: Vec<&[u32]> = encoded.iter().map(Vec::as_slice).collect();
        let vocab = model.config().vocab_size;
        let gradient = |collective: &dyn selfplay_collective::Collective| {
            let mut trainer = Trainer::keeping_tail(layout.read_positions::<TicTacToe>());
            let terms = trainer
                .gradient(&model, collective, &sequences, |pass| loss::<TicTacToe, _>(&batch, pass, layout, vocab, 0.7))
                .unwrap();
            (terms, trainer.gradient_buffer().unwrap().as_flat().to_vec())
        };
        let (terms, one) = gradient(&SingleProcess);
        for world in [2, 3, 20] {
            let ranks = ThreadWorld::run(world, |rank| gradient(rank));
            for (rank, (rank_terms, grads)) in ranks.iter().enumerate() {
                assert_eq!(grads, &ranks[0].1, "{world} ranks: rank {rank}'s gradient differs from rank 0's");
                assert_eq!(rank_terms, &ranks[0].0);
            }
            let (rank_terms, grads) = &ranks[0];
            assert!(
                (rank_terms.policy_loss - terms.policy_loss).abs() < 1e-6,
                "{world} ranks: {rank_terms:?} vs {terms:?}"
            );
            assert!((rank_terms.value_loss - terms.value_loss).abs() < 1e-6);
            assert_eq!(rank_terms.policy_targets, terms.policy_targets);
            let difference = relative_difference(grads, &one);
            assert!(difference < 1e-6, "{world} ranks: the gradient differs from one process's by {difference:e}");
        }
    }
}

/// A tic-tac-toe run over two ranks: rank 0 writes the run (the runner has checked after every step that both
/// ranks hold the same weights), and its network ends within rounding of one process's.
#[test]
fn a_run_over_two_ranks_ends_where_one_process_ends() {
    let config = AlphaZeroConfig::tiny();
    let dir = |name: &str| std::env::temp_dir().join(format!("selfplay-az-ranks-{name}-{}", std::process::id()));
    let (one_dir, two_dir) = (dir("one"), dir("two"));
    let _ = (std::fs::remove_dir_all(&one_dir), std::fs::remove_dir_all(&two_dir));
    let one = run(&config, TicTacToe::new(), &one_dir, RunStart::New, &|_, _| false).unwrap().unwrap();
    let records = ThreadWorld::run(2, |rank| {
        run_on(CpuBackend, rank, &config, TicTacToe::new(), None, &two_dir, RunStart::New, &|_, _| false)
            .unwrap()
            .unwrap()
    });
    assert_eq!((records[0].games, records[0].plies), (one.games, one.plies));
    assert_eq!((records[1].games, records[1].plies), (one.games, one.plies));
    assert_eq!(records[0].curve.len(), one.curve.len(), "rank 0 measures as one process does");
    assert!(records[1].curve.is_empty(), "rank 1 measures nothing");
    let weights = |d: &std::path::Path| ModelDir::load(&d.join("model")).unwrap().weights;
    let difference = relative_difference(weights(&two_dir).as_flat(), weights(&one_dir).as_flat());
    assert!(difference < 1e-6, "the networks differ by {difference:e}");
    let lines = |d: &std::path::Path| std::fs::read_to_string(d.join("metrics.jsonl")).unwrap().lines().count();
    assert_eq!(lines(&two_dir), lines(&one_dir), "rank 0 alone logs");
    std::fs::remove_dir_all(&one_dir).unwrap();
    std::fs::remove_dir_all(&two_dir).unwrap();
}
