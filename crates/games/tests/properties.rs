//! Property tests: notation round trips, the mirror symmetry of the solver, bitboard rules against a naive
//! 2-D board, the solver against brute force near the end of the game.

use proptest::prelude::*;
use selfplay_games::{Connect4, ParseError, Solver};
use selfplay_search::{Game, Player};

/// Plays `picks` (each an index into the legal moves, modulo their number) until they run out or the game
/// ends. With `unfinished`, only moves that do not end the game count as legal, so the result is never over.
fn play_picks(picks: &[u8], unfinished: bool) -> Connect4 {
    let mut p = Connect4::new();
    for &k in picks {
        let legal: Vec<usize> =
            p.legal_actions().filter(|&c| !unfinished || !p.after(c).unwrap().is_terminal()).collect();
        if legal.is_empty() {
            break;
        }
        p.play(legal[usize::from(k) % legal.len()]).unwrap();
    }
    p
}

/// A 6x7 grid of 0 (empty), 1 (first player), 2 (second player), row 0 at the bottom.
fn grid(p: &Connect4) -> [[u8; 7]; 6] {
    let mut g = [[0u8; 7]; 6];
    let mut heights = [0usize; 7];
    for (i, &c) in p.columns().iter().enumerate() {
        let c = usize::from(c);
        g[heights[c]][c] = if i % 2 == 0 { 1 } else { 2 };
        heights[c] += 1;
    }
    g
}

/// Whether `who` has four in a row anywhere, checked cell by cell in every direction.
fn naive_four(g: &[[u8; 7]; 6], who: u8) -> bool {
    let dirs = [(0i32, 1i32), (1, 0), (1, 1), (1, -1)];
    for r in 0..6i32 {
        for c in 0..7i32 {
            for (dr, dc) in dirs {
                let all = (0..4).all(|k| {
                    let (rr, cc) = (r + k * dr, c + k * dc);
                    (0..6).contains(&rr) && (0..7).contains(&cc) && g[rr as usize][cc as usize] == who
                });
                if all {
                    return true;
                }
            }
        }
    }
    false
}

/// Exact Pons score by plain negamax over the `Game` interface, no pruning: for nearly full boards only.
fn brute_force(p: &Connect4) -> i32 {
    if p.is_won() {
        return -((44 - p.moves_played() as i32) / 2);
    }
    if p.moves_played() == 42 {
        return 0;
    }
    p.legal_actions().map(|c| -brute_force(&p.after(c).unwrap())).max().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn notation_round_trips(picks in proptest::collection::vec(any::<u8>(), 0..60)) {
        let p = play_picks(&picks, false);
        let q = Connect4::from_moves(&p.notation()).unwrap();
        prop_assert_eq!(q, p);
        prop_assert_eq!(q.notation(), p.notation());
        prop_assert_eq!(q.key(), p.key());
    }

    #[test]
    fn parsing_never_panics(s in "\\PC{0,50}|[0-9]{0,50}") {
        match Connect4::from_moves(&s) {
            Ok(p) => prop_assert_eq!(p.notation(), s),
            Err(ParseError::TooLong { len }) => prop_assert!(len > 42),
            Err(_) => {}
        }
    }

    #[test]
    fn win_detection_matches_a_naive_board(picks in proptest::collection::vec(any::<u8>(), 0..60)) {
        let mut p = Connect4::new();
        for &k in &picks {
            let legal: Vec<usize> = p.legal_actions().collect();
            if legal.is_empty() {
                break;
            }
            // Every legal move's "wins now" agrees with placing the stone and looking.
            let me = if p.to_move() == Player::First { 1 } else { 2 };
            for &c in &legal {
                let after = p.after(c).unwrap();
                prop_assert_eq!(p.is_winning_move(c), naive_four(&grid(&after), me));
            }
            p.play(legal[usize::from(k) % legal.len()]).unwrap();
            let g = grid(&p);
            prop_assert_eq!(p.is_won(), naive_four(&g, 1) || naive_four(&g, 2));
            // Observation tokens agree with the grid, from the mover's side.
            let mover = if p.to_move() == Player::First { 1 } else { 2 };
            for (i, t) in p.observation().iter().enumerate() {
                let v = g[i / 7][i % 7];
                let expected = if v == 0 { 0 } else if v == mover { 1 } else { 2 };
                prop_assert_eq!(*t, expected);
            }
        }
        // The Game contract: terminal exactly when nothing is legal; play succeeds exactly when legal.
        prop_assert_eq!(p.is_terminal(), p.legal_actions().count() == 0);
        for a in 0..9 {
            prop_assert_eq!(p.clone().play(a).is_ok(), p.is_legal(a));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn mirrored_analysis(picks in proptest::collection::vec(any::<u8>(), 24..42)) {
        let p = play_picks(&picks, true);
        let mut solver = Solver::with_table_entries(1 << 20);
        let a = solver.analyze(&p);
        let m = p.mirror();
        prop_assert_eq!(m.mirror(), p);
        let mut b = solver.analyze(&m);
        b.reverse();
        prop_assert_eq!(a, b);
        for c in 0..7 {
            prop_assert_eq!(m.is_legal(Connect4::mirror_column(c)), p.is_legal(c));
            prop_assert_eq!(<Connect4 as Game>::mirror_action(c), Some(Connect4::mirror_column(c)));
        }
        // The `Game` trait's mirror moves each observation token where the mirrored position has it.
        for i in 0..Connect4::OBSERVATION_LEN {
            let j = <Connect4 as Game>::mirror_observation_index(i).unwrap();
            prop_assert_eq!(m.observation_token(j), p.observation_token(i));
        }
    }

    #[test]
    fn solver_matches_brute_force_near_the_end(picks in proptest::collection::vec(any::<u8>(), 33..42)) {
        let p = play_picks(&picks, true);
        prop_assume!(42 - p.moves_played() <= 9);
        let mut solver = Solver::with_table_entries(1 << 12);
        prop_assert_eq!(solver.solve(&p), brute_force(&p));
        for (c, s) in solver.analyze(&p).into_iter().enumerate() {
            prop_assert_eq!(s, p.after(c).ok().map(|q| -brute_force(&q)));
        }
    }
}
