//! Matches between agents from seeded random openings, and the round robin that rates fixed opponents against
//! each other ([`crate::elo`]).
//!
//! Deterministic agents (alpha-beta with centre-first ties, the perfect player) play the same game every time
//! from the same position, so a match of many games between them would be one game repeated. Every game
//! therefore starts from a few uniformly random plies ([`random_opening`]), and each opening is played twice
//! with colours swapped, so neither side gains from the opening's luck.

use alloc::vec::Vec;
use core::cmp::Ordering;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use selfplay_search::Game;

use crate::agent::{Agent, below, play_game};
use crate::elo::Pairing;
use crate::error::AgentError;

/// Opening `index` of `seed` from `start`: up to `plies` uniformly random moves (ChaCha8 stream `index` of
/// `seed`), never one that ends the game; it stops early only when every legal move would. The same arguments
/// give the same opening, so a network and fixed opponents can be tested on the same ones.
pub fn random_opening<G: Game>(start: &G, plies: usize, seed: u64, index: u64) -> G {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    let mut position = start.clone();
    for _ in 0..plies {
        let quiet: Vec<G> = position
            .legal_actions()
            .filter_map(|a| {
                let mut next = position.clone();
                next.play(a).ok().filter(|_| !next.is_terminal()).map(|()| next)
            })
            .collect();
        if quiet.is_empty() {
            break;
        }
        let pick = below(&mut rng, quiet.len());
        position = quiet[pick].clone();
    }
    position
}

/// How the finished game `end` went for the player to move in `start`: `Greater` a win, `Equal` a draw, `Less` a
/// loss; `None` if `end` is not finished.
fn starter_outcome<G: Game>(start: &G, end: &G) -> Option<Ordering> {
    let value = end.terminal_value()?;
    // `value` is for the player to move at the end.
    let for_mover = value.partial_cmp(&0.0)?;
    Some(if end.to_move() == start.to_move() { for_mover } else { for_mover.reverse() })
}

/// Plays `games` games between agents `a` and `b`: game `g` starts from [`random_opening`] `g / 2` of `seed`
/// (`opening_plies` plies), `a` playing the side to move there in the even games and `b` in the odd ones.
/// Returns the results from `a`'s side, as a [`Pairing`] of players `a_index` and `b_index`.
pub fn play_pairing<G: Game>(
    start: &G,
    (a_index, a): (usize, &mut dyn Agent<G>),
    (b_index, b): (usize, &mut dyn Agent<G>),
    games: usize,
    opening_plies: usize,
    seed: u64,
) -> Result<Pairing, AgentError> {
    let mut out = Pairing { a: a_index, b: b_index, wins: 0, draws: 0, losses: 0 };
    for g in 0..games {
        let opening = random_opening(start, opening_plies, seed, (g / 2) as u64);
        let a_moves_first = g % 2 == 0;
        let end =
            if a_moves_first { play_game(&opening, &mut *a, &mut *b)? } else { play_game(&opening, &mut *b, &mut *a)? };
        let first = starter_outcome(&opening, &end).ok_or(AgentError::GameOver)?;
        match if a_moves_first { first } else { first.reverse() } {
            Ordering::Greater => out.wins += 1,
            Ordering::Equal => out.draws += 1,
            Ordering::Less => out.losses += 1,
        }
    }
    Ok(out)
}

/// Every pair of `agents` plays `games` games ([`play_pairing`], the lower index as `a`), pairs in order
/// `(0, 1), (0, 2), …, (1, 2), …`. Ratings follow from [`crate::elo::fit_ratings`] on the result.
pub fn round_robin<G: Game>(
    start: &G,
    agents: &mut [&mut dyn Agent<G>],
    games: usize,
    opening_plies: usize,
    seed: u64,
) -> Result<Vec<Pairing>, AgentError> {
    let mut out = Vec::new();
    for j in 1..agents.len() {
        let (low, high) = agents.split_at_mut(j);
        for (i, a) in low.iter_mut().enumerate() {
            let b = high.first_mut().ok_or(AgentError::GameOver)?;
            out.push(play_pairing(start, (i, &mut **a), (j, &mut **b), games, opening_plies, seed)?);
        }
    }
    out.sort_by_key(|p| (p.a, p.b));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{AlphaBetaAgent, RandomAgent, TieBreak};
    use crate::connect4::Connect4;
    use selfplay_search::games::TicTacToe;

    #[test]
    fn openings_are_seeded_varied_and_unfinished() {
        let start = Connect4::new();
        let a = random_opening(&start, 4, 7, 0);
        assert_eq!(a, random_opening(&start, 4, 7, 0));
        assert_eq!(a.moves_played(), 4);
        let distinct: alloc::collections::BTreeSet<u64> =
            (0..20).map(|i| random_opening(&start, 4, 7, i).position_key()).collect();
        assert!(distinct.len() > 15, "{} distinct openings of 20", distinct.len());
        // Tic-tac-toe: nine plies would finish some games; the opening stops before.
        for i in 0..50 {
            assert!(!random_opening(&TicTacToe::new(), 9, 1, i).is_terminal());
        }
    }

    #[test]
    fn colours_alternate_and_results_add_up() {
        let start = Connect4::new();
        let (mut deep, mut random) = (AlphaBetaAgent::new(3, TieBreak::CentreFirst).unwrap(), RandomAgent::new(1));
        let p = play_pairing(&start, (1, &mut deep), (0, &mut random), 10, 2, 3).unwrap();
        assert_eq!((p.a, p.b, p.wins + p.draws + p.losses), (1, 0, 10));
        assert!(p.wins >= 9, "{p:?}");
        // A deterministic agent against its twin plays each opening's game twice, once from each side: it wins
        // exactly as often as it loses.
        let mut x = AlphaBetaAgent::new(2, TieBreak::CentreFirst).unwrap();
        let mut y = AlphaBetaAgent::new(2, TieBreak::CentreFirst).unwrap();
        let twins = play_pairing(&start, (0, &mut x), (1, &mut y), 20, 3, 5).unwrap();
        assert_eq!(twins.wins, twins.losses, "{twins:?}");
        assert!(twins.wins > 0, "{twins:?}");
    }

    #[test]
    fn round_robin_plays_every_pair_once() {
        let start = Connect4::new();
        let mut r = RandomAgent::new(2);
        let mut d1 = AlphaBetaAgent::new(1, TieBreak::Seeded(1)).unwrap();
        let mut d2 = AlphaBetaAgent::new(2, TieBreak::Seeded(2)).unwrap();
        let mut agents: [&mut dyn Agent<Connect4>; 3] = [&mut r, &mut d1, &mut d2];
        let results = round_robin(&start, &mut agents, 4, 2, 9).unwrap();
        let pairs: Vec<(usize, usize)> = results.iter().map(|p| (p.a, p.b)).collect();
        assert_eq!(pairs, [(0, 1), (0, 2), (1, 2)]);
        assert!(results.iter().all(|p| p.wins + p.draws + p.losses == 4));
    }
}
