//! The `Game` trait and its search adapter: tic-tac-toe's move generator counted exhaustively (perft), illegal
//! moves as typed errors, the observation tokens, and MCTS / Gumbel MuZero through `GameEvaluator` finding
//! forced wins and forced blocks; a toy game with extra turns checks the `+1` discount.

use std::collections::HashSet;
use std::convert::Infallible;

use selfplay_search::game::{count_games, observe_batch, perft};
use selfplay_search::games::{TicTacToe, TicTacToeEvaluator};
use selfplay_search::{
    Algorithm, Game, GameError, GameEvalError, GameEvaluator, GumbelConfig, MuZeroConfig, Player, PolicyValue,
    RandomRollouts, Search, SearchConfig, Tree,
};

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

/// Every position reachable from the empty board by legal play (the empty board and finished games included).
fn reachable() -> HashSet<TicTacToe> {
    let mut seen = HashSet::new();
    let mut frontier = vec![TicTacToe::new()];
    while let Some(b) = frontier.pop() {
        if seen.insert(b) {
            frontier.extend(b.legal_actions().map(|a| b.after(a).expect("legal")));
        }
    }
    seen
}

#[test]
fn tictactoe_perft_matches_the_known_counts() {
    let start = TicTacToe::new();
    // Move sequences of exactly d moves (games over sooner drop out from d = 5 on).
    let want = [1u64, 9, 72, 504, 3024, 15120, 54720, 148176, 200448, 127872, 0];
    for (d, &w) in want.iter().enumerate() {
        assert_eq!(perft(&start, d as u32), w, "perft({d})");
    }
    assert_eq!(count_games(&start), 255_168);
    let positions = reachable();
    assert_eq!(positions.len(), 5478);
    // 958 finished positions: 626 won by X, 316 by O, 16 drawn.
    let over: Vec<&TicTacToe> = positions.iter().filter(|p| p.is_terminal()).collect();
    assert_eq!(over.len(), 958);
    assert_eq!(over.iter().filter(|p| p.winner() == Some(Player::First)).count(), 626);
    assert_eq!(over.iter().filter(|p| p.winner() == Some(Player::Second)).count(), 316);
    // The key tells every position apart, and every finished position has no legal move.
    assert_eq!(positions.iter().map(Game::key).collect::<HashSet<_>>().len(), 5478);
    assert!(over.iter().all(|p| p.legal_actions().next().is_none()));
    assert!(positions.iter().filter(|p| !p.is_terminal()).all(|p| p.legal_actions().next().is_some()));
}

/// Game results of all 255168 games: X wins 131184, O wins 77904, 46080 draws.
#[test]
fn tictactoe_game_results_match_the_known_counts() {
    fn walk(b: &TicTacToe, tally: &mut [u64; 3]) {
        match b.terminal_value() {
            Some(v) => {
                assert!(v == -1.0 || v == 0.0, "the player to move at the end never holds the line");
                match b.winner() {
                    Some(Player::First) => tally[0] += 1,
                    Some(Player::Second) => tally[1] += 1,
                    None => tally[2] += 1,
                }
            }
            None => b.legal_actions().for_each(|a| walk(&b.after(a).expect("legal"), tally)),
        }
    }
    let mut tally = [0u64; 3];
    walk(&TicTacToe::new(), &mut tally);
    assert_eq!(tally, [131_184, 77_904, 46_080]);
}

#[test]
fn illegal_moves_are_typed_errors_and_leave_the_position() {
    let mut b = TicTacToe::parse("X...O....").expect("position");
    let before = b;
    assert_eq!(b.play(9), Err(GameError::OutOfRange { action: 9, num_actions: 9 }));
    assert_eq!(b.play(usize::MAX), Err(GameError::OutOfRange { action: usize::MAX, num_actions: 9 }));
    assert_eq!(b.play(0), Err(GameError::Illegal { action: 0 }));
    assert_eq!(b.play(4), Err(GameError::Illegal { action: 4 }));
    assert_eq!(b, before);
    assert!(!b.is_legal(0) && !b.is_legal(9) && b.is_legal(1));
    assert_eq!(b.after(4).map(|_| ()), Err(GameError::Illegal { action: 4 }));
    let mut won = TicTacToe::parse("XXXOO....").expect("position");
    assert_eq!(won.terminal_value(), Some(-1.0));
    assert_eq!(won.to_move(), Player::Second);
    assert_eq!(won.play(5), Err(GameError::GameOver { action: 5 }));
    assert_eq!(won.legal_actions().count(), 0);
    assert_eq!(won.invalid_mask(), [true; 9]);
    let drawn = TicTacToe::parse("XOXXOOOXX").expect("position");
    assert_eq!((drawn.terminal_value(), drawn.winner()), (Some(0.0), None));
    assert_eq!(GameError::Illegal { action: 4 }.to_string(), "action 4 is not legal in this position");
}

#[test]
fn observations_are_relative_to_the_player_to_move() {
    let x_to_move = TicTacToe::parse("XO.......").expect("position");
    let o_to_move = TicTacToe::parse("XO..X....").expect("position");
    assert_eq!(x_to_move.observation(), [1, 2, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(o_to_move.observation(), [2, 1, 0, 0, 2, 0, 0, 0, 0]);
    let mut tokens = Vec::new();
    observe_batch(&[x_to_move, o_to_move], &mut tokens);
    assert_eq!(tokens.len(), 2 * TicTacToe::OBSERVATION_LEN);
    assert_eq!(&tokens[9..], o_to_move.observation().as_slice());
    assert!(tokens.iter().all(|&t| (t as usize) < TicTacToe::NUM_TOKENS));
    let mut short = [0u32; 8];
    assert!(!x_to_move.observe_into(&mut short));
    let mut exact = [7u32; 9];
    assert!(x_to_move.observe_into(&mut exact) && exact == [1, 2, 0, 0, 0, 0, 0, 0, 0]);
}

/// The move a greedy search over `GameEvaluator<_, RandomRollouts>` plays.
fn search_move<G: Game>(position: &G, config: SearchConfig, rollouts: u32, stream: u64) -> usize {
    let mut evaluator = GameEvaluator::new(RandomRollouts { rollouts, seed: 11 });
    let mut tree = Tree::new(G::NUM_ACTIONS);
    tree.reset(evaluator.root(position).expect("root")).expect("reset");
    let mut search = Search::new(config, G::NUM_ACTIONS).expect("config");
    search.run(std::slice::from_mut(&mut tree), &mut evaluator, stream).expect("run");
    search.policy(&mut tree).expect("policy").action
}

/// The cells that complete a line of `player`'s (two marks and an empty cell) in `b`.
fn threats(b: &TicTacToe, player: Player) -> Vec<usize> {
    const LINES: [[usize; 3]; 8] =
        [[0, 1, 2], [3, 4, 5], [6, 7, 8], [0, 3, 6], [1, 4, 7], [2, 5, 8], [0, 4, 8], [2, 4, 6]];
    let mut out: Vec<usize> = LINES
        .iter()
        .filter(|l| l.iter().filter(|&&c| b.cell(c) == Some(player)).count() == 2)
        .filter_map(|l| l.iter().copied().find(|&c| b.cell(c).is_none()))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[test]
fn search_through_the_trait_finds_forced_wins() {
    let mut positions: Vec<TicTacToe> =
        reachable().into_iter().filter(|p| !p.is_terminal() && p.solve() == 1).collect();
    positions.sort_by_key(|p| p.key());
    assert!(positions.len() > 100);
    for (k, board) in positions.iter().step_by(positions.len() / 25).enumerate() {
        for config in [greedy_muzero(400), greedy_gumbel(200)] {
            let m = search_move(board, config, 16, k as u64);
            let winning: Vec<usize> = board.best_moves().collect();
            assert!(winning.contains(&m), "{board:?}: played {m}, winning moves {winning:?}");
        }
    }
}

#[test]
fn search_through_the_trait_blocks_single_threats() {
    // The opponent threatens one line, the mover has no line to complete and is not lost: the block is the only
    // move that does not lose.
    let mut positions: Vec<TicTacToe> = reachable()
        .into_iter()
        .filter(|p| !p.is_terminal() && p.solve() >= 0)
        .filter(|p| threats(p, p.to_move()).is_empty() && threats(p, p.to_move().other()).len() == 1)
        .collect();
    positions.sort_by_key(|p| p.key());
    assert!(positions.len() > 100, "{}", positions.len());
    let mut gumbel_misses = Vec::new();
    let sample: Vec<&TicTacToe> = positions.iter().step_by(positions.len() / 25).collect();
    for (k, board) in sample.iter().enumerate() {
        let block = threats(board, board.to_move().other())[0];
        assert_eq!(board.best_moves().collect::<Vec<_>>(), [block]);
        let m = search_move(*board, greedy_muzero(400), 16, k as u64);
        assert_eq!(m, block, "PUCT: {board:?}: played {m}, must block at {block}");
        if search_move(*board, greedy_gumbel(200), 16, k as u64) != block {
            gumbel_misses.push(**board);
        }
    }
    // Gumbel MuZero below the root has no exploration bonus (mctx's semantics): under a uniform prior it can
    // keep revisiting the opponent's first reply and never try the winning one (in `.XOOX.X..`, O's 8 looks
    // safe because X's 7 is never visited). It blocks in all but at most one sampled position.
    assert!(gumbel_misses.len() <= 1, "Gumbel missed blocks in {gumbel_misses:?} of {}", sample.len());
}

#[test]
fn the_adapter_searches_like_the_tictactoe_evaluator() {
    // `TicTacToeEvaluator` is the unbatched form of `GameEvaluator<TicTacToe, RandomRollouts>`: same trees.
    for pos in [".........", "X...O....", "XO..X....", "XX.OO...."] {
        let board = TicTacToe::parse(pos).expect("position");
        for mut config in [SearchConfig::muzero(96), SearchConfig::gumbel(96)] {
            config.leaves_per_tree = 4;
            let mut direct = TicTacToeEvaluator { rollouts: 3, seed: 5 };
            let mut mask = [false; 9];
            let mut a = Tree::new(9);
            a.reset(direct.root(board, &mut mask)).expect("root");
            let mut adapter = GameEvaluator::new(RandomRollouts { rollouts: 3, seed: 5 });
            let mut b = Tree::new(9);
            b.reset(adapter.root(&board).expect("root")).expect("reset");
            let mut search = Search::new(config, 9).expect("config");
            search.run(std::slice::from_mut(&mut a), &mut direct, 3).expect("run");
            let pa = search.policy(&mut a).expect("policy");
            search.run(std::slice::from_mut(&mut b), &mut adapter, 3).expect("run");
            let pb = search.policy(&mut b).expect("policy");
            assert_eq!(pa, pb, "{pos}");
            let json = selfplay_search::export::to_mctx_json;
            assert_eq!(json(&a), json(&b), "{pos}");
        }
    }
}

#[test]
fn a_finished_game_cannot_be_searched() {
    let mut ev = GameEvaluator::new(RandomRollouts { rollouts: 1, seed: 0 });
    let won = TicTacToe::parse("XXXOO....").expect("position");
    assert!(matches!(ev.root(&won), Err(GameEvalError::TerminalRoot)));
}

/// A policy-value "network" that reads the observation tokens: prefers the centre, then corners.
struct Heuristic {
    calls: usize,
    positions: usize,
}

impl PolicyValue<TicTacToe> for Heuristic {
    type Error = Infallible;
    fn evaluate(&mut self, positions: &[TicTacToe], logits: &mut [f32], values: &mut [f32]) -> Result<(), Infallible> {
        assert_eq!(logits.len(), positions.len() * 9);
        assert_eq!(values.len(), positions.len());
        let mut tokens = Vec::new();
        observe_batch(positions, &mut tokens);
        for (row, obs) in logits.chunks_exact_mut(9).zip(tokens.chunks_exact(9)) {
            for (cell, (l, &t)) in row.iter_mut().zip(obs).enumerate() {
                *l = if t != 0 {
                    -5.0
                } else if cell == 4 {
                    2.0
                } else if cell % 2 == 0 {
                    1.0
                } else {
                    0.0
                };
            }
        }
        values.fill(0.0);
        self.calls += 1;
        self.positions += positions.len();
        Ok(())
    }
}

#[test]
fn one_model_call_evaluates_a_batch_of_leaves() {
    let mut config = greedy_muzero(64);
    config.leaves_per_tree = 8;
    let mut ev = GameEvaluator::new(Heuristic { calls: 0, positions: 0 });
    let boards = [TicTacToe::new(), TicTacToe::parse("X...O....").expect("position")];
    let mut trees: Vec<Tree<TicTacToe>> = boards.iter().map(|_| Tree::new(9)).collect();
    for (tree, board) in trees.iter_mut().zip(&boards) {
        tree.reset(ev.root(board).expect("root")).expect("reset");
    }
    Search::new(config, 9).expect("config").run(&mut trees, &mut ev, 0).expect("run");
    let model = ev.model();
    // 2 root calls, then batches of several leaves from both trees.
    assert!(
        model.calls > 2 && model.calls * 4 < model.positions + 8,
        "{} calls, {} positions",
        model.calls,
        model.positions
    );
    // The prior is the model's over legal moves: the centre is the empty board's favourite.
    let centre = trees[0].prior(0, 4).expect("prior");
    assert!((0..9).all(|a| trees[0].prior(0, a).expect("prior") <= centre));
    assert_eq!(trees[1].prior(0, 4), Some(0.0), "occupied cells get no prior");
}

/// A toy game with extra turns: three moves in all, whoever makes the last one wins. Action 0 passes the turn;
/// action 1 keeps it (the same player moves again). The first player wins by keeping the turn: `1, 1, *`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ExtraTurn {
    moves: u8,
    to_move: Player,
    last: Player,
}

impl Game for ExtraTurn {
    const NUM_ACTIONS: usize = 2;
    const OBSERVATION_LEN: usize = 1;
    const NUM_TOKENS: usize = 4;

    fn to_move(&self) -> Player {
        self.to_move
    }
    fn is_legal(&self, action: usize) -> bool {
        action < 2 && self.moves < 3
    }
    fn play(&mut self, action: usize) -> Result<(), GameError> {
        if action >= 2 {
            return Err(GameError::OutOfRange { action, num_actions: 2 });
        }
        if self.moves >= 3 {
            return Err(GameError::GameOver { action });
        }
        self.moves += 1;
        self.last = self.to_move;
        if action == 0 {
            self.to_move = self.to_move.other();
        }
        Ok(())
    }
    fn terminal_value(&self) -> Option<f32> {
        (self.moves == 3).then(|| if self.last == self.to_move { 1.0 } else { -1.0 })
    }
    fn observation_token(&self, _: usize) -> u32 {
        u32::from(self.moves)
    }
}

#[test]
fn extra_turns_use_a_positive_discount() {
    let start = ExtraTurn { moves: 0, to_move: Player::First, last: Player::Second };
    let keep = selfplay_search::game_eval::transition(&start, 1).expect("legal");
    assert_eq!((keep.discount, keep.reward, keep.terminal), (1.0, 0.0, false));
    let pass = selfplay_search::game_eval::transition(&start, 0).expect("legal");
    assert_eq!(pass.discount, -1.0);
    let two = ExtraTurn { moves: 2, to_move: Player::Second, last: Player::First };
    let end = selfplay_search::game_eval::transition(&two, 0).expect("legal");
    assert_eq!((end.reward, end.discount, end.terminal), (1.0, -1.0, true), "the last mover wins");
    assert_eq!(count_games(&start), 8);
    for config in [greedy_muzero(100), greedy_gumbel(32)] {
        assert_eq!(search_move(&start, config, 4, 0), 1, "{:?}", config.algorithm);
        let mut ev = GameEvaluator::new(RandomRollouts { rollouts: 4, seed: 0 });
        let mut tree = Tree::new(2);
        tree.reset(ev.root(&start).expect("root")).expect("reset");
        let mut search = Search::new(config, 2).expect("config");
        search.run(std::slice::from_mut(&mut tree), &mut ev, 0).expect("run");
        let (pass, keep) = (tree.qvalue(0, 0).expect("q"), tree.qvalue(0, 1).expect("q"));
        assert!(keep > 0.5 && pass < 0.0, "keeping the turn wins, passing loses: {keep} {pass}");
    }
}
