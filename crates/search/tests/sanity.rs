//! Behavioural tests of MCTS and Gumbel MuZero: bandits, tic-tac-toe against a perfect solver, visit-count
//! bookkeeping, batching and determinism, subtree reuse, and typed errors on bad evaluator output.

use selfplay_search::games::{TicTacToe, TicTacToeEvaluator};
use selfplay_search::{
    Algorithm, Evaluation, Evaluator, Game, GumbelConfig, LeafBatch, LeafOutputs, MuZeroConfig, Player, RootOutput,
    Search, SearchConfig, SearchError, Tree,
};

/// A one-step bandit: arm `a` pays `means[a]` and ends the episode.
struct Bandit {
    means: Vec<f32>,
}

impl Evaluator for Bandit {
    type State = ();
    type Error = SearchError;
    fn evaluate(&mut self, leaves: &LeafBatch<'_, ()>, out: &mut LeafOutputs<()>) -> Result<(), SearchError> {
        let zeros = vec![0.0; self.means.len()];
        for (i, leaf) in leaves.iter().enumerate() {
            let eval =
                Evaluation { state: (), reward: self.means[leaf.action], discount: 1.0, value: 0.0, terminal: true };
            out.set(i, eval, &zeros)?;
        }
        Ok(())
    }
}

fn greedy_muzero(sims: usize) -> SearchConfig {
    let mut c = SearchConfig::muzero(sims);
    c.algorithm = Algorithm::MuZero(MuZeroConfig { dirichlet_fraction: 0.0, temperature: 0.0, ..Default::default() });
    c
}

fn greedy_gumbel(sims: usize) -> SearchConfig {
    let mut c = SearchConfig::gumbel(sims);
    c.algorithm = Algorithm::GumbelMuZero(GumbelConfig { gumbel_scale: 0.0, ..Default::default() });
    c
}

fn bandit_tree(means: &[f32]) -> Tree<()> {
    let mut tree = Tree::new(means.len());
    let logits = vec![0.0; means.len()];
    tree.reset(RootOutput { state: (), prior_logits: &logits, value: 0.0, invalid_actions: None }).expect("root");
    tree
}

#[test]
fn bandit_visits_concentrate_on_the_best_arm() {
    let means = [0.1, 0.5, 0.9, 0.3, 0.2];
    for (name, config) in [("muzero", greedy_muzero(300)), ("gumbel", greedy_gumbel(300))] {
        for leaves in [1, 8] {
            let mut config = config;
            config.leaves_per_tree = leaves;
            let mut tree = bandit_tree(&means);
            let mut search = Search::new(config, means.len()).expect("config");
            search.run(std::slice::from_mut(&mut tree), &mut Bandit { means: means.to_vec() }, 0).expect("run");
            let visits = tree.root_visit_counts().to_vec();
            // Sequential Halving ends with two arms visited equally; PUCT keeps concentrating.
            assert!(visits.iter().all(|&v| v <= visits[2]), "{name} leaves {leaves}: {visits:?}");
            assert!(visits[2] > 100, "{name} leaves {leaves}: {visits:?}");
            let out = search.policy(&mut tree).expect("policy");
            assert_eq!(out.action, 2, "{name}");
            let top = out.action_weights.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i);
            assert_eq!(top, Some(2), "{name}: {:?}", out.action_weights);
        }
    }
}

#[test]
fn visit_counts_sum_to_simulations() {
    for config in [greedy_muzero(77), greedy_gumbel(77), SearchConfig::muzero(77), SearchConfig::gumbel(77)] {
        for leaves in [1, 3, 16] {
            let mut config = config;
            config.leaves_per_tree = leaves;
            let ev = TicTacToeEvaluator { rollouts: 2, seed: 1 };
            let mut mask = [false; 9];
            let mut tree = Tree::new(9);
            tree.reset(ev.root(TicTacToe::new(), &mut mask)).expect("root");
            let mut search = Search::new(config, 9).expect("config");
            search.run(std::slice::from_mut(&mut tree), &mut ev.clone(), 0).expect("run");
            assert_eq!(tree.visit_count(0), Some(78));
            assert_eq!(tree.root_visit_counts().iter().sum::<u32>(), 77);
            let weights = search.policy(&mut tree).expect("policy").action_weights;
            assert!((weights.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
}

/// Plays the search's greedy move for the player to move.
fn search_move(board: TicTacToe, config: SearchConfig, stream: u64) -> usize {
    // 16 playouts: with fewer, random playouts misjudge the centre reply to a corner opening for many simulations.
    let mut ev = TicTacToeEvaluator { rollouts: 16, seed: 11 };
    let mut mask = [false; 9];
    let mut tree = Tree::new(9);
    tree.reset(ev.root(board, &mut mask)).expect("root");
    let mut search = Search::new(config, 9).expect("config");
    search.run(std::slice::from_mut(&mut tree), &mut ev, stream).expect("run");
    search.policy(&mut tree).expect("policy").action
}

/// Positions reachable by play where the player to move has a forced win but the game is not over.
fn winning_positions() -> Vec<TicTacToe> {
    let mut out = Vec::new();
    let mut frontier = vec![TicTacToe::new()];
    let mut seen = std::collections::HashSet::new();
    while let Some(b) = frontier.pop() {
        if !seen.insert(b) || b.is_terminal() {
            continue;
        }
        if b.solve() == 1 {
            out.push(b);
        }
        frontier.extend((0..9).filter_map(|c| b.after(c).ok()));
    }
    out.sort_by_key(|b| format!("{b:?}"));
    out
}

#[test]
fn finds_forced_wins() {
    let positions = winning_positions();
    assert!(positions.len() > 100);
    // A deterministic sample across the list, including double-threat positions several moves from the end.
    for (k, board) in positions.iter().step_by(positions.len() / 25).enumerate() {
        for config in [greedy_muzero(400), greedy_gumbel(200)] {
            let m = search_move(*board, config, k as u64);
            let winning: Vec<usize> = board.best_moves().collect();
            assert!(winning.contains(&m), "{board:?}: played {m}, winning moves {winning:?}");
        }
    }
}

/// Plays a whole game; `search_plays` says which player the search is; the opponent picks
/// perfect moves (`perfect`) or uniformly random legal ones. Returns the winner.
fn play_game(config: SearchConfig, search_plays: Player, perfect: bool, seed: u64) -> (Option<Player>, Vec<usize>) {
    let mut board = TicTacToe::new();
    let mut moves = Vec::new();
    let mut k = seed;
    while !board.is_terminal() {
        let m = if board.to_move() == search_plays {
            search_move(board, config, k)
        } else if perfect {
            let best: Vec<usize> = board.best_moves().collect();
            best[(k as usize) % best.len()]
        } else {
            let legal: Vec<usize> = (0..9).filter(|&c| board.is_legal(c)).collect();
            legal[(k.wrapping_mul(2654435761) >> 7) as usize % legal.len()]
        };
        board.play(m).expect("legal move");
        moves.push(m);
        k += 1;
    }
    (board.winner(), moves)
}

#[test]
fn never_loses_from_the_start_position() {
    // PUCT against a perfect and a random opponent, as either player. Gumbel MuZero only against the random one:
    // its interior selection has no exploration bonus, and with a uniform prior and playout values it can need
    // far more simulations to see a five-ply refutation (e.g. 1, 8, 2 where only 4 defends).
    let cases = [(greedy_muzero(800), true), (greedy_muzero(800), false), (greedy_gumbel(800), false)];
    for (config, perfect) in cases {
        for player in [Player::First, Player::Second] {
            for seed in 0..3 {
                let (winner, moves) = play_game(config, player, perfect, seed);
                assert!(
                    winner.is_none() || winner == Some(player),
                    "{:?}: lost as {player:?} (perfect {perfect}) seed {seed}: {moves:?}",
                    config.algorithm
                );
            }
        }
    }
}

fn tictactoe_positions() -> Vec<TicTacToe> {
    [".........", "X........", "X...O....", "XO..X....", "XOX.O....", "X.O.X.O..", "XX.OO....", "XOXOX...."]
        .iter()
        .map(|s| TicTacToe::parse(s).expect("valid position"))
        .collect()
}

fn run_batch(config: SearchConfig, positions: &[TicTacToe], first_stream: u64) -> Vec<String> {
    let mut ev = TicTacToeEvaluator { rollouts: 2, seed: 3 };
    let mut masks = vec![[false; 9]; positions.len()];
    let mut trees: Vec<Tree<TicTacToe>> = positions.iter().map(|_| Tree::new(9)).collect();
    for ((tree, board), mask) in trees.iter_mut().zip(positions).zip(masks.iter_mut()) {
        tree.reset(ev.root(*board, mask)).expect("root");
    }
    let mut search = Search::new(config, 9).expect("config");
    search.run(&mut trees, &mut ev, first_stream).expect("run");
    trees
        .iter_mut()
        .map(|t| format!("{:?}", search.policy(t).expect("policy")) + &selfplay_search::export::to_mctx_json(t))
        .collect()
}

#[test]
fn a_tree_is_the_same_alone_or_in_a_batch() {
    let positions = tictactoe_positions();
    for mut config in [SearchConfig::muzero(64), SearchConfig::gumbel(64)] {
        config.seed = 42;
        for leaves in [1, 4] {
            config.leaves_per_tree = leaves;
            let batched = run_batch(config, &positions, 100);
            for (i, board) in positions.iter().enumerate() {
                let alone = run_batch(config, std::slice::from_ref(board), 100 + i as u64);
                assert_eq!(alone[0], batched[i], "tree {i}, leaves {leaves}");
            }
            // Same seed, same result; another seed changes the Dirichlet / Gumbel noise.
            assert_eq!(run_batch(config, &positions, 100), batched);
            config.seed = 43;
            assert_ne!(run_batch(config, &positions, 100), batched);
            config.seed = 42;
        }
    }
}

#[test]
fn dirichlet_noise_perturbs_only_the_root_prior() {
    let mut ev = TicTacToeEvaluator { rollouts: 1, seed: 0 };
    let mut mask = [false; 9];
    let mut tree = Tree::new(9);
    tree.reset(ev.root(TicTacToe::parse("X...O....").expect("position"), &mut mask)).expect("root");
    let mut search = Search::new(SearchConfig::muzero(40), 9).expect("config");
    search.run(std::slice::from_mut(&mut tree), &mut ev, 0).expect("run");
    let root: Vec<f32> = (0..9).map(|a| tree.prior(0, a).unwrap_or(f32::NAN)).collect();
    assert!((root.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert_eq!((root[0], root[4]), (0.0, 0.0), "occupied cells keep zero prior");
    let legal: Vec<f32> = root.iter().copied().filter(|&p| p > 0.0).collect();
    assert_eq!(legal.len(), 7);
    assert!(legal.iter().any(|&p| (p - 1.0 / 7.0).abs() > 1e-3), "noise applied: {root:?}");
    // Below the root the prior is the evaluator's: uniform over legal moves.
    let child = (0..9).find_map(|a| tree.child(0, a)).expect("an expanded child");
    let inner: Vec<f32> = (0..9).map(|a| tree.prior(child, a).unwrap_or(f32::NAN)).filter(|&p| p > 0.0).collect();
    assert!(inner.iter().all(|&p| (p - 1.0 / 6.0).abs() < 1e-6), "{inner:?}");
}

#[test]
fn subtree_reuse_keeps_the_child_statistics() {
    let mut ev = TicTacToeEvaluator { rollouts: 2, seed: 5 };
    let mut mask = [false; 9];
    let mut tree = Tree::new(9);
    tree.reset(ev.root(TicTacToe::new(), &mut mask)).expect("root");
    let mut search = Search::new(greedy_muzero(200), 9).expect("config");
    search.run(std::slice::from_mut(&mut tree), &mut ev, 0).expect("run");
    let action = search.policy(&mut tree).expect("policy").action;
    let child = tree.child(0, action).expect("played move was expanded");
    let (visits, value) = (tree.visit_count(child), tree.value(child));
    let grand: Vec<Option<u32>> = (0..9).map(|a| tree.child(child, a).and_then(|g| tree.visit_count(g))).collect();
    let board = *tree.state(child).expect("state");
    tree.advance(action).expect("advance");
    assert_eq!(tree.visit_count(0), visits);
    assert_eq!(tree.value(0), value);
    assert_eq!(tree.parent(0), None);
    assert_eq!(tree.state(0), Some(&board));
    let regrand: Vec<Option<u32>> = (0..9).map(|a| tree.child(0, a).and_then(|g| tree.visit_count(g))).collect();
    assert_eq!(grand, regrand);
    // Every kept node's parent has a smaller id and agrees on the edge.
    for n in 1..tree.num_nodes() {
        let p = tree.parent(n).expect("non-root has a parent");
        assert!(p < n);
        assert_eq!(tree.child(p, tree.action_from_parent(n).expect("action")), Some(n));
    }
    let before = tree.visit_count(0).expect("root");
    search.run(std::slice::from_mut(&mut tree), &mut ev, 1).expect("second search");
    assert_eq!(tree.visit_count(0), Some(before + 200));
    assert!(tree.advance(9).is_err());
}

/// An evaluator that misbehaves in a chosen way.
struct Broken(u8);

impl Evaluator for Broken {
    type State = ();
    type Error = String;
    fn evaluate(&mut self, leaves: &LeafBatch<'_, ()>, out: &mut LeafOutputs<()>) -> Result<(), String> {
        let ok = Evaluation { state: (), reward: 0.0, discount: 1.0, value: 0.0, terminal: false };
        for i in 0..leaves.len() {
            match self.0 {
                0 => out.set(i, Evaluation { value: f32::NAN, ..ok.clone() }, &[0.0; 3]).map_err(|e| e.to_string())?,
                1 => out.set(i, ok.clone(), &[0.0, f32::INFINITY, 0.0]).map_err(|e| e.to_string())?,
                2 => {}
                3 => return Err("device lost".into()),
                _ => out.set(i, ok.clone(), &[0.0; 2]).map_err(|e| e.to_string())?,
            }
        }
        Ok(())
    }
}

#[test]
fn bad_evaluator_output_is_a_typed_error() {
    let run = |mode: u8| {
        let mut tree = Tree::new(3);
        tree.reset(RootOutput { state: (), prior_logits: &[0.0; 3], value: 0.0, invalid_actions: None }).expect("root");
        let mut search = Search::new(SearchConfig::muzero(4), 3).expect("config");
        search.run(std::slice::from_mut(&mut tree), &mut Broken(mode), 0)
    };
    assert_eq!(run(0), Err(SearchError::NonFinite("value")));
    assert_eq!(run(1), Err(SearchError::NonFinite("prior logits")));
    assert_eq!(run(2), Err(SearchError::MissingEvaluation(0)));
    assert_eq!(run(3), Err(SearchError::Evaluator("device lost".to_string())));
    assert!(matches!(run(4), Err(SearchError::Evaluator(m)) if m.contains("shape mismatch")));
}

#[test]
fn bad_roots_and_configs_are_rejected() {
    let mut tree: Tree<()> = Tree::new(3);
    let root = |logits: &'static [f32], value, mask| RootOutput {
        state: (),
        prior_logits: logits,
        value,
        invalid_actions: mask,
    };
    assert!(matches!(tree.reset(root(&[0.0; 2], 0.0, None)), Err(SearchError::Shape { .. })));
    assert_eq!(tree.reset(root(&[0.0; 3], f32::NAN, None)), Err(SearchError::NonFinite("root value")));
    assert_eq!(tree.reset(root(&[0.0, f32::NAN, 0.0], 0.0, None)), Err(SearchError::NonFinite("root prior_logits")));
    assert_eq!(tree.reset(root(&[0.0; 3], 0.0, Some(&[true; 3]))), Err(SearchError::NoValidAction));
    let mut search = Search::new(SearchConfig::muzero(4), 3).expect("config");
    assert_eq!(
        search.run(std::slice::from_mut(&mut tree), &mut Bandit { means: vec![0.0; 3] }, 0),
        Err(SearchError::EmptyTree)
    );
    let mut c = SearchConfig::muzero(4);
    c.leaves_per_tree = 0;
    assert!(matches!(Search::<()>::new(c, 3), Err(SearchError::InvalidConfig(_))));
    let mut c = SearchConfig::muzero(4);
    c.algorithm = Algorithm::MuZero(MuZeroConfig { dirichlet_fraction: 1.5, ..Default::default() });
    assert!(matches!(Search::<()>::new(c, 3), Err(SearchError::InvalidConfig(_))));
    let mut c = SearchConfig::gumbel(4);
    c.algorithm = Algorithm::GumbelMuZero(GumbelConfig { max_num_considered_actions: 0, ..Default::default() });
    assert!(matches!(Search::<()>::new(c, 3), Err(SearchError::InvalidConfig(_))));
    let mut huge = Search::<()>::new(SearchConfig::gumbel(usize::MAX / 2), 3).expect("config is well-formed");
    let mut tree: Tree<()> = Tree::new(3);
    tree.reset(root(&[0.0; 3], 0.0, None)).expect("root");
    let err = huge.run(std::slice::from_mut(&mut tree), &mut Bandit { means: vec![0.0; 3] }, 0);
    assert!(matches!(err, Err(SearchError::InvalidConfig(_))), "{err:?}");
    let mut wrong: Tree<()> = Tree::new(4);
    wrong.reset(root(&[0.0; 3], 0.0, None)).expect_err("3 logits for 4 actions");
}

#[test]
fn invalid_root_actions_are_never_visited() {
    let mut tree = Tree::new(4);
    let mask = [true, false, true, false];
    tree.reset(RootOutput { state: (), prior_logits: &[5.0, 0.0, 5.0, 0.0], value: 0.0, invalid_actions: Some(&mask) })
        .expect("root");
    for config in [SearchConfig::muzero(50), SearchConfig::gumbel(50)] {
        let mut search = Search::new(config, 4).expect("config");
        search.run(std::slice::from_mut(&mut tree), &mut Bandit { means: vec![1.0, 0.2, 1.0, 0.1] }, 0).expect("run");
        let visits = tree.root_visit_counts();
        assert_eq!((visits[0], visits[2]), (0, 0), "{visits:?}");
        let out = search.policy(&mut tree).expect("policy");
        assert!(out.action == 1 || out.action == 3);
        assert_eq!((out.action_weights[0], out.action_weights[2]), (0.0, 0.0));
    }
}

#[test]
fn exports_are_well_formed() {
    let mut ev = TicTacToeEvaluator { rollouts: 1, seed: 0 };
    let mut mask = [false; 9];
    let mut tree = Tree::new(9);
    tree.reset(ev.root(TicTacToe::new(), &mut mask)).expect("root");
    Search::new(SearchConfig::gumbel(30), 9)
        .expect("config")
        .run(std::slice::from_mut(&mut tree), &mut ev, 0)
        .expect("run");
    let json: serde_json::Value =
        serde_json::from_str(&selfplay_search::export::to_mctx_json(&tree)).expect("valid JSON");
    assert_eq!(json["visit"], 31);
    assert_eq!(json["child_stats"].as_array().map(Vec::len), Some(9));
    let dot = selfplay_search::export::to_dot(&tree);
    assert!(dot.starts_with("digraph") && dot.trim_end().ends_with('}'));
    assert_eq!(dot.matches(" -> ").count(), tree.num_nodes() - 1);
}

/// Wraps the tic-tac-toe evaluator and records each call's leaves.
struct Recording {
    inner: TicTacToeEvaluator,
    calls: Vec<Vec<(usize, usize)>>,
}

impl Evaluator for Recording {
    type State = TicTacToe;
    type Error = SearchError;
    fn evaluate(
        &mut self,
        leaves: &LeafBatch<'_, TicTacToe>,
        out: &mut LeafOutputs<TicTacToe>,
    ) -> Result<(), SearchError> {
        self.calls.push(leaves.iter().map(|l| (l.tree, l.node)).collect());
        self.inner.evaluate(leaves, out)
    }
}

#[test]
fn virtual_loss_batches_distinct_leaves_from_every_tree() {
    let positions = tictactoe_positions();
    let mut config = greedy_muzero(64);
    config.leaves_per_tree = 8;
    let mut rec = Recording { inner: TicTacToeEvaluator { rollouts: 1, seed: 0 }, calls: Vec::new() };
    let mut masks = vec![[false; 9]; positions.len()];
    let mut trees: Vec<Tree<TicTacToe>> = positions.iter().map(|_| Tree::new(9)).collect();
    for ((tree, board), mask) in trees.iter_mut().zip(&positions).zip(masks.iter_mut()) {
        tree.reset(rec.inner.root(*board, mask)).expect("root");
    }
    Search::new(config, 9).expect("config").run(&mut trees, &mut rec, 0).expect("run");
    let leaves: usize = rec.calls.iter().map(Vec::len).sum();
    assert!(rec.calls.len() * 2 < 64, "{} calls: virtual loss should gather several leaves per tree", rec.calls.len());
    assert!(rec.calls.iter().all(|c| c.len() <= 8 * positions.len()));
    // Each call holds leaves of several trees and never the same node twice.
    assert!(rec.calls[0].iter().map(|l| l.0).collect::<std::collections::BTreeSet<_>>().len() == positions.len());
    for call in &rec.calls {
        let distinct: std::collections::BTreeSet<_> = call.iter().collect();
        assert_eq!(distinct.len(), call.len());
    }
    // Every evaluated leaf became a node; revisits of terminal nodes account for the rest of the budget.
    let nodes: usize = trees.iter().map(|t| t.num_nodes() - 1).sum();
    assert_eq!(leaves, nodes);
    for tree in &trees {
        assert_eq!(tree.visit_count(0), Some(65));
    }
}
