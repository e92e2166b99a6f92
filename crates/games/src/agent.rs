//! Agents: anything that chooses a move in a position. The fixed opponents live here (random, depth-limited
//! alpha-beta, the perfect solver); a trained network with search plugs in by implementing [`Agent`].

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use selfplay_search::Game;

use crate::bitboard::{Bits, CELLS, HEIGHT, WIDTH, cell};
use crate::connect4::Connect4;
use crate::error::AgentError;
use crate::solver::{CENTRE_FIRST, Solver};

/// A player: given a position, a legal move. Evaluations (mistake rates, tournaments) drive agents only
/// through this trait, so a network agent, a search agent and the fixed opponents are interchangeable.
pub trait Agent<G: Game> {
    /// A short name for reports (`"alphabeta-3"`, `"random"`).
    fn name(&self) -> String;

    /// A legal move of `position` for the player to move; [`AgentError::GameOver`] if the game is over.
    fn choose_move(&mut self, position: &G) -> Result<usize, AgentError>;
}

/// Plays one game from `start`, `first` moving for the player to move in `start` and `second` for the other,
/// and returns the final position. An agent's illegal move or error ends the game with that error.
pub fn play_game<G: Game>(start: &G, first: &mut dyn Agent<G>, second: &mut dyn Agent<G>) -> Result<G, AgentError> {
    let mut position = start.clone();
    let starter = position.to_move();
    while !position.is_terminal() {
        let first_to_move = position.to_move() == starter;
        let action = if first_to_move { first.choose_move(&position)? } else { second.choose_move(&position)? };
        if let Err(e) = position.play(action) {
            let name = if first_to_move { first.name() } else { second.name() };
            return Err(AgentError::Failed(format!("{name}: {e}")));
        }
    }
    Ok(position)
}

/// A uniform draw below `n` (> 0) by a multiply-high: the bias is below 2^-57 for the small `n` of games.
pub(crate) fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize
}

/// Plays a uniformly random legal move, from its own seeded stream (the same seed and the same sequence of
/// calls give the same moves). Works for any [`Game`].
#[derive(Debug, Clone)]
pub struct RandomAgent {
    rng: ChaCha8Rng,
}

impl RandomAgent {
    /// A random agent drawing from the ChaCha8 stream of `seed`.
    pub fn new(seed: u64) -> Self {
        Self { rng: ChaCha8Rng::seed_from_u64(seed) }
    }
}

impl<G: Game> Agent<G> for RandomAgent {
    fn name(&self) -> String {
        String::from("random")
    }

    fn choose_move(&mut self, position: &G) -> Result<usize, AgentError> {
        let legal: Vec<usize> = position.legal_actions().collect();
        if legal.is_empty() {
            return Err(AgentError::GameOver);
        }
        let i = below(&mut self.rng, legal.len());
        Ok(legal[i])
    }
}

/// How [`AlphaBetaAgent`] chooses among moves of equal value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TieBreak {
    /// The most central (column 4, then 3, 5, 2, 6, 1, 7): deterministic, one game per pairing.
    CentreFirst,
    /// Uniformly among the best, from the ChaCha8 stream of this seed: varied but reproducible games.
    Seeded(u64),
}

/// Score of a win found by the search, before the depth bonus that prefers quicker wins.
const WIN: i32 = 1_000_000;

/// Every window of four cells in a line (69 of them), for the heuristic.
const WINDOWS: [u64; 69] = {
    let mut out = [0u64; 69];
    let mut n = 0;
    // (dcol, drow) per direction; a window starts where it fits on the board.
    let dirs: [(i32, i32); 4] = [(0, 1), (1, 0), (1, 1), (1, -1)];
    let mut d = 0;
    while d < 4 {
        let (dc, dr) = dirs[d];
        let mut col = 0;
        while col < WIDTH as i32 {
            let mut row = 0;
            while row < HEIGHT as i32 {
                let (ec, er) = (col + 3 * dc, row + 3 * dr);
                if ec >= 0 && ec < WIDTH as i32 && er >= 0 && er < HEIGHT as i32 {
                    let mut w = 0u64;
                    let mut k = 0;
                    while k < 4 {
                        w |= cell((col + k * dc) as usize, (row + k * dr) as usize);
                        k += 1;
                    }
                    out[n] = w;
                    n += 1;
                }
                row += 1;
            }
            col += 1;
        }
        d += 1;
    }
    out
};

/// Points for a window holding 0, 1, 2 or 3 stones of one player and none of the other.
const WINDOW_POINTS: [i32; 4] = [0, 1, 4, 16];

/// The horizon heuristic, for the player to move: over every window of four that only one player occupies,
/// points growing with its stones (1, 4, 16), the mover's minus the opponent's. Central cells lie in more
/// windows, so this also rewards the centre.
fn heuristic(p: &Bits) -> i32 {
    let mine = p.current;
    let theirs = p.current ^ p.mask;
    WINDOWS.iter().fold(0, |acc, &w| {
        let (m, t) = ((w & mine).count_ones() as usize, (w & theirs).count_ones() as usize);
        match (m, t) {
            (m, 0) => acc + WINDOW_POINTS[m.min(3)],
            (0, t) => acc - WINDOW_POINTS[t.min(3)],
            _ => acc,
        }
    })
}

/// A fixed opponent of tunable strength: negamax with alpha-beta to `depth` plies (1–[`AlphaBetaAgent::MAX_DEPTH`]),
/// scoring the horizon with a window-counting heuristic. Wins are always seen one ply beyond the horizon (a
/// position where the mover can complete four scores as a win), so depth 1 takes an immediate win and blocks an
/// immediate threat when it can. Quicker wins and slower losses are preferred.
#[derive(Debug, Clone)]
pub struct AlphaBetaAgent {
    depth: u32,
    tie_break: TieBreak,
    rng: ChaCha8Rng,
    nodes: u64,
}

impl AlphaBetaAgent {
    /// The deepest search supported (deeper ones work but are slow without a transposition table).
    pub const MAX_DEPTH: u32 = 10;

    /// An agent searching `depth` plies; [`AgentError::Depth`] unless `1 <= depth <= MAX_DEPTH`.
    pub fn new(depth: u32, tie_break: TieBreak) -> Result<Self, AgentError> {
        if !(1..=Self::MAX_DEPTH).contains(&depth) {
            return Err(AgentError::Depth { depth, max: Self::MAX_DEPTH });
        }
        let seed = match tie_break {
            TieBreak::CentreFirst => 0,
            TieBreak::Seeded(s) => s,
        };
        Ok(Self { depth, tie_break, rng: ChaCha8Rng::seed_from_u64(seed), nodes: 0 })
    }

    /// Positions searched so far.
    pub fn nodes(&self) -> u64 {
        self.nodes
    }

    /// Every legal move's value at the agent's depth (`None` for illegal moves), from the mover's side.
    pub fn move_values(&mut self, position: &Connect4) -> [Option<i32>; WIDTH] {
        let mut out = [None; WIDTH];
        if position.is_won() {
            return out;
        }
        let p = position.bits();
        // Each root move is searched with alpha one below the best so far, so a move that ties the best gets
        // its exact value (and a tie is seen), while worse moves still prune.
        let mut best = -WIN * 2;
        for &col in &CENTRE_FIRST {
            if !p.can_play(col) {
                continue;
            }
            let v = if p.wins_with(col) {
                WIN + self.depth as i32
            } else {
                let mut next = p;
                next.play_cell(p.landing_cell(col));
                -self.search(next, self.depth - 1, -WIN * 2, -(best - 1))
            };
            best = best.max(v);
            out[col] = Some(v);
        }
        // Values below `best - 1` are upper bounds only; report them as they came (they are below the best).
        out
    }

    /// Negamax with alpha-beta (fail-soft); `p` is not finished.
    fn search(&mut self, p: Bits, depth: u32, mut alpha: i32, beta: i32) -> i32 {
        self.nodes += 1;
        if p.can_win_now() {
            return WIN + depth as i32;
        }
        if p.moves as usize == CELLS {
            return 0;
        }
        if depth == 0 {
            return heuristic(&p);
        }
        let mut best = -WIN * 2;
        for &col in &CENTRE_FIRST {
            if !p.can_play(col) {
                continue;
            }
            let mut next = p;
            next.play_cell(p.landing_cell(col));
            let v = -self.search(next, depth - 1, -beta, -alpha);
            if v > best {
                best = v;
            }
            if best > alpha {
                alpha = best;
            }
            if alpha >= beta {
                break;
            }
        }
        best
    }
}

impl Agent<Connect4> for AlphaBetaAgent {
    fn name(&self) -> String {
        format!("alphabeta-{}", self.depth)
    }

    fn choose_move(&mut self, position: &Connect4) -> Result<usize, AgentError> {
        let values = self.move_values(position);
        let best = values.iter().flatten().copied().max().ok_or(AgentError::GameOver)?;
        let ties: Vec<usize> = CENTRE_FIRST.iter().copied().filter(|&c| values[c] == Some(best)).collect();
        let pick = match self.tie_break {
            TieBreak::CentreFirst => 0,
            TieBreak::Seeded(_) => below(&mut self.rng, ties.len()),
        };
        ties.get(pick).copied().ok_or(AgentError::GameOver)
    }
}

/// The perfect player: the move with the best exact score (the quickest win, else a draw, else the slowest
/// loss), ties centre-first. The strongest fixed opponent, and the reference every mistake is measured against.
#[derive(Debug, Clone, Default)]
pub struct PerfectAgent {
    solver: Solver,
}

impl PerfectAgent {
    /// A perfect agent using `solver` (its table size decides the memory used).
    pub fn new(solver: Solver) -> Self {
        Self { solver }
    }
}

impl Agent<Connect4> for PerfectAgent {
    fn name(&self) -> String {
        String::from("perfect")
    }

    fn choose_move(&mut self, position: &Connect4) -> Result<usize, AgentError> {
        let scores = self.solver.analyze(position);
        let best = scores.iter().flatten().copied().max().ok_or(AgentError::GameOver)?;
        CENTRE_FIRST.iter().copied().find(|&c| scores[c] == Some(best)).ok_or(AgentError::GameOver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use selfplay_search::games::TicTacToe;

    #[test]
    fn windows_are_the_69_lines() {
        assert!(WINDOWS.iter().all(|w| w.count_ones() == 4));
        let mut sorted = WINDOWS;
        sorted.sort_unstable();
        assert!(sorted.windows(2).all(|p| p[0] != p[1]));
        assert!(sorted[0] != 0);
    }

    #[test]
    fn random_agent_is_seeded_and_legal() {
        let p = Connect4::from_moves("1111114").unwrap();
        let a: Vec<usize> = (0..20).map(|_| RandomAgent::new(3).choose_move(&p).unwrap()).collect();
        assert!(a.iter().all(|&m| m == a[0]));
        let mut r = RandomAgent::new(5);
        for _ in 0..100 {
            assert_ne!(r.choose_move(&p).unwrap(), 0);
        }
        let t = TicTacToe::new();
        assert!(r.choose_move(&t).unwrap() < 9);
        assert_eq!(r.choose_move(&Connect4::from_moves("1212121").unwrap()), Err(AgentError::GameOver));
    }

    #[test]
    fn alphabeta_takes_wins_and_blocks() {
        let mut a = AlphaBetaAgent::new(1, TieBreak::CentreFirst).unwrap();
        // X to move completes column 1.
        assert_eq!(a.choose_move(&Connect4::from_moves("121212").unwrap()), Ok(0));
        // O to move must block column 1.
        assert_eq!(a.choose_move(&Connect4::from_moves("12121").unwrap()), Ok(0));
        assert!(matches!(AlphaBetaAgent::new(0, TieBreak::CentreFirst), Err(AgentError::Depth { .. })));
        let mut d = AlphaBetaAgent::new(4, TieBreak::CentreFirst).unwrap();
        assert_eq!(d.choose_move(&Connect4::new()), Ok(3));
    }

    #[test]
    fn deeper_search_plays_better() {
        use selfplay_search::Player;
        // Alpha-beta depth 4 against the random agent, both colours: it should win almost every game.
        let mut wins = 0;
        for seed in 0..10 {
            let mut ab = AlphaBetaAgent::new(4, TieBreak::Seeded(seed)).unwrap();
            let mut random = RandomAgent::new(seed);
            let (a, b): (&mut dyn Agent<Connect4>, &mut dyn Agent<Connect4>) =
                if seed % 2 == 0 { (&mut ab, &mut random) } else { (&mut random, &mut ab) };
            let end = play_game(&Connect4::new(), a, b).unwrap();
            let ab_player = if seed % 2 == 0 { Player::First } else { Player::Second };
            wins += usize::from(end.winner() == Some(ab_player));
        }
        assert!(wins >= 9, "alpha-beta won {wins} of 10 against random");
        // From a position the first player wins, the perfect player (first) beats depth 2.
        let mut perfect = PerfectAgent::new(Solver::with_table_entries(1 << 20));
        let mut ab = AlphaBetaAgent::new(2, TieBreak::CentreFirst).unwrap();
        let start = Connect4::from_moves("2235365167537157").unwrap();
        // X to move wins (score 13, fixture line of tests/fixtures/connect4_scores.txt).
        let end = play_game(&start, &mut perfect, &mut ab).unwrap();
        assert_eq!(end.winner(), Some(Player::First), "{}", end.notation());
    }

    #[test]
    fn perfect_agent_plays_the_best_move() {
        let mut a = PerfectAgent::new(Solver::with_table_entries(1 << 16));
        let p = Connect4::from_moves("2252576253462244111563365343671351441").unwrap();
        // Columns 6 and 7 are the only legal ones; 6 loses later (-1) than 7 (-2).
        assert_eq!(a.choose_move(&p), Ok(5));
    }
}
