//! Solver-labelled benchmark positions and the mistake metric (AlphaZero.jl's Connect Four benchmark).
//!
//! A [`LabelledPosition`] is a position and the exact score of each of its moves. It is written as one line,
//! `<moves> s1 s2 s3 s4 s5 s6 s7` (`-` for a full column), the format of the committed fixtures.
//!
//! # Groups
//!
//! * **Phase**, by stones on the board: begin (≤ 14), middle (15–28), end (> 28).
//! * **Difficulty**, by how many moves the game still lasts under perfect play ([`LabelledPosition::remaining_moves`]):
//!   easy (< 14), medium (14–27), hard (≥ 28). A long perfect game means a long tactical horizon: the agent
//!   must see far to tell the moves apart. This follows the spirit of Pascal Pons's test sets (grouped by moves
//!   played and moves remaining). It is a function of the labels alone: the same for everyone who reads the
//!   file, unlike a node count, which depends on the solver and its table.
//!
//! The committed benchmark, `crates/games/data/connect4_benchmark.txt`, holds 30 positions in each of the six
//! [`GROUPS`] ([`generate_benchmark`] with seed 1; the command is in its header). Making it took about 90 s of
//! one core; begin positions dominate.
//!
//! # Mistakes
//!
//! A move is a **mistake** when its outcome (win, draw or loss under perfect play) is worse than the best
//! move's; a slower win is not a mistake. An agent's mistake rate is the fraction of positions where its move
//! is one; the rate on **decisive** positions counts only those where the moves' outcomes differ (elsewhere no
//! move can be a mistake).

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use selfplay_search::Game;

use crate::agent::Agent;
use crate::bitboard::{CELLS, WIDTH};
use crate::connect4::Connect4;
use crate::error::{AgentError, LabelError};
use crate::solver::{Outcome, Solver};

/// Where in the game a position is, by stones on the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// At most 14 moves played.
    Begin,
    /// 15 to 28 moves played.
    Middle,
    /// More than 28 moves played.
    End,
}

impl Phase {
    /// Every phase, in order.
    pub const ALL: [Phase; 3] = [Phase::Begin, Phase::Middle, Phase::End];

    /// The phase of a position with `moves` stones.
    pub fn of_moves(moves: usize) -> Self {
        match moves {
            0..=14 => Phase::Begin,
            15..=28 => Phase::Middle,
            _ => Phase::End,
        }
    }

    /// `"begin"`, `"middle"` or `"end"`.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Begin => "begin",
            Phase::Middle => "middle",
            Phase::End => "end",
        }
    }
}

/// How far ahead an agent must see, by moves left under perfect play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Difficulty {
    /// Fewer than 14 moves left.
    Easy,
    /// 14 to 27 moves left.
    Medium,
    /// 28 or more moves left.
    Hard,
}

impl Difficulty {
    /// Every difficulty, in order.
    pub const ALL: [Difficulty; 3] = [Difficulty::Easy, Difficulty::Medium, Difficulty::Hard];

    /// The difficulty of a position whose perfect game lasts `remaining` more moves.
    pub fn of_remaining(remaining: usize) -> Self {
        match remaining {
            0..=13 => Difficulty::Easy,
            14..=27 => Difficulty::Medium,
            _ => Difficulty::Hard,
        }
    }

    /// `"easy"`, `"medium"` or `"hard"`.
    pub fn name(self) -> &'static str {
        match self {
            Difficulty::Easy => "easy",
            Difficulty::Medium => "medium",
            Difficulty::Hard => "hard",
        }
    }
}

/// What a position asks of the player to move one ply deep: the tactics an agent must see before any strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tactic {
    /// The player to move can win at once, and the opponent threatens to win on its next move too: winning, not
    /// blocking, is right. Self-play between players that never leave an immediate threat unanswered never
    /// reaches such a position; random play often does.
    WinUnderThreat,
    /// The player to move can win at once; the opponent threatens nothing.
    Win,
    /// The player to move cannot win at once and the opponent threatens to: the threat must be blocked (or the
    /// game is lost whatever is played).
    Block,
    /// Neither side can win on its next move.
    Quiet,
}

impl Tactic {
    /// Every tactic, in order.
    pub const ALL: [Tactic; 4] = [Tactic::WinUnderThreat, Tactic::Win, Tactic::Block, Tactic::Quiet];

    /// The tactic of `position` (unfinished).
    pub fn of(position: &Connect4) -> Self {
        let bits = position.bits();
        let threatened = bits.their_winning_cells() & bits.playable() != 0;
        match (bits.can_win_now(), threatened) {
            (true, true) => Tactic::WinUnderThreat,
            (true, false) => Tactic::Win,
            (false, true) => Tactic::Block,
            (false, false) => Tactic::Quiet,
        }
    }

    /// `"win, threatened"`, `"win"`, `"block"` or `"quiet"`.
    pub fn name(self) -> &'static str {
        match self {
            Tactic::WinUnderThreat => "win, threatened",
            Tactic::Win => "win",
            Tactic::Block => "block",
            Tactic::Quiet => "quiet",
        }
    }
}

/// A position that is not finished, with the exact score of every legal move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledPosition {
    /// The position.
    pub position: Connect4,
    /// The score of each column for the player to move (`None`: the column is full).
    pub scores: [Option<i32>; WIDTH],
}

impl LabelledPosition {
    /// Labels `position` with `solver`; `None` if the game is over.
    pub fn label(position: Connect4, solver: &mut Solver) -> Option<Self> {
        if position.is_terminal() {
            return None;
        }
        Some(Self { position, scores: solver.analyze(&position) })
    }

    /// The position's score (its best move's).
    pub fn score(&self) -> i32 {
        self.scores.iter().flatten().copied().max().unwrap_or(0)
    }

    /// The outcome of playing `col`; `None` if it is not legal.
    pub fn outcome(&self, col: usize) -> Option<Outcome> {
        self.scores.get(col).copied().flatten().map(Outcome::of_score)
    }

    /// The best outcome among the moves.
    pub fn best_outcome(&self) -> Outcome {
        Outcome::of_score(self.score())
    }

    /// Whether `col` is a mistake: illegal, or an outcome worse than the best move's.
    pub fn is_mistake(&self, col: usize) -> bool {
        self.outcome(col).is_none_or(|o| o < self.best_outcome())
    }

    /// Whether the legal moves' outcomes differ (so a mistake is possible).
    pub fn is_decisive(&self) -> bool {
        let mut outcomes = self.scores.iter().flatten().map(|&s| Outcome::of_score(s));
        let first = outcomes.next();
        outcomes.any(|o| Some(o) != first)
    }

    /// How many more moves the game lasts when both sides play perfectly (the winner as fast as it can, the
    /// loser as slowly): from the score, since a win with the `k`-th stone scores `22 - k`.
    pub fn remaining_moves(&self) -> usize {
        let played = self.position.moves_played();
        let score = self.score();
        if score == 0 {
            return CELLS - played;
        }
        // The winner's stone count k at the win, and whether the winner is the first player.
        let k = (22 - score.abs()) as usize;
        let mover_first = played.is_multiple_of(2);
        let winner_first = if score > 0 { mover_first } else { !mover_first };
        let end = if winner_first { 2 * k - 1 } else { 2 * k };
        end.saturating_sub(played)
    }

    /// The position's phase.
    pub fn phase(&self) -> Phase {
        Phase::of_moves(self.position.moves_played())
    }

    /// The position's difficulty.
    pub fn difficulty(&self) -> Difficulty {
        Difficulty::of_remaining(self.remaining_moves())
    }

    /// The line `<moves> s1 … s7` (`-` for a full column).
    pub fn to_line(&self) -> String {
        let mut line = self.position.notation();
        for s in &self.scores {
            line.push(' ');
            match s {
                Some(s) => {
                    let _ = write!(line, "{s}");
                }
                None => line.push('-'),
            }
        }
        line
    }

    /// Reads a line written by [`LabelledPosition::to_line`] (the empty board's line starts with a space or has
    /// only the seven scores). Checks that scores are given exactly for the legal columns; never panics.
    pub fn parse_line(line: &str) -> Result<Self, LabelError> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (moves, score_fields) = match fields.len() {
            7 => ("", &fields[..]),
            8 => (fields[0], &fields[1..]),
            n => return Err(LabelError::ScoreCount { found: n.saturating_sub(1) }),
        };
        let position = Connect4::from_moves(moves)?;
        if position.is_terminal() {
            return Err(LabelError::Finished);
        }
        let mut scores = [None; WIDTH];
        for (col, (&field, slot)) in score_fields.iter().zip(scores.iter_mut()).enumerate() {
            let column = col as u8 + 1;
            *slot = if field == "-" {
                None
            } else {
                Some(field.parse::<i32>().map_err(|_| LabelError::BadScore { column, field: field.to_string() })?)
            };
            if slot.is_some() != position.is_legal(col) {
                return Err(LabelError::Legality { column });
            }
        }
        Ok(Self { position, scores })
    }
}

/// What [`generate`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateConfig {
    /// The seed: position `i` is drawn from ChaCha8 stream `i` of it, so a longer set starts with a shorter one.
    pub seed: u64,
    /// How many positions.
    pub count: usize,
    /// Fewest moves played (inclusive).
    pub min_moves: usize,
    /// Most moves played (inclusive; at most 41).
    pub max_moves: usize,
}

/// The position drawn from ChaCha8 stream `stream` of `seed`: uniformly random play from the empty board to a
/// uniformly drawn number of moves in `[min_moves, max_moves]` (clamped to `max_moves <= 41`); a game that
/// ends sooner is replayed from the same stream, so the result is never finished.
pub fn random_position(seed: u64, stream: u64, min_moves: usize, max_moves: usize) -> Connect4 {
    let max_moves = max_moves.min(CELLS - 1);
    let min_moves = min_moves.min(max_moves);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let target = min_moves + (rng.next_u64() % (max_moves - min_moves + 1) as u64) as usize;
    loop {
        let mut p = Connect4::new();
        while p.moves_played() < target && !p.is_terminal() {
            let legal: Vec<usize> = p.legal_actions().collect();
            let pick = ((u128::from(rng.next_u64()) * legal.len() as u128) >> 64) as usize;
            if let Some(&col) = legal.get(pick) {
                let _ = p.play(col);
            }
        }
        if !p.is_terminal() {
            return p;
        }
    }
}

/// Positions drawn by [`random_position`] from streams 0, 1, 2, … of `config.seed` (so a longer set starts
/// with a shorter one), duplicates skipped, each labelled by `solver`. Deterministic in the config. Early
/// positions take the solver long (no opening book): keep `min_moves` at 8 or more unless minutes per position
/// are acceptable.
pub fn generate(config: &GenerateConfig, solver: &mut Solver) -> Vec<LabelledPosition> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(config.count);
    let mut stream = 0u64;
    while out.len() < config.count {
        let position = random_position(config.seed, stream, config.min_moves, config.max_moves);
        stream += 1;
        if !seen.insert(position.position_key()) {
            continue;
        }
        if let Some(l) = LabelledPosition::label(position, solver) {
            out.push(l);
        }
    }
    out
}

/// The committed benchmark's text (`data/connect4_benchmark.txt`, made by the command in its header).
pub const COMMITTED_BENCHMARK: &str = include_str!("../data/connect4_benchmark.txt");

/// Parses a benchmark file: one [`LabelledPosition::to_line`] per line, `#` comment lines and blank lines skipped.
/// A refused line is a [`LabelError::Line`] naming it.
pub fn parse_benchmark(text: &str) -> Result<Vec<LabelledPosition>, LabelError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        .map(|(i, l)| LabelledPosition::parse_line(l).map_err(|e| LabelError::Line { line: i + 1, error: Box::new(e) }))
        .collect()
}

/// The committed benchmark: 30 positions in each of the six groups of [`GROUPS`].
pub fn committed_benchmark() -> Result<Vec<LabelledPosition>, LabelError> {
    parse_benchmark(COMMITTED_BENCHMARK)
}

/// The groups a position can fall in. An end position (more than 28 moves played) has at most 13 moves left,
/// so it is always easy; a middle one at most 27, so never hard. Six groups remain, the six test sets of
/// Pascal Pons's solver benchmark (end-easy, middle-easy, middle-medium, begin-easy, begin-medium, begin-hard).
pub const GROUPS: [(Phase, Difficulty); 6] = [
    (Phase::Begin, Difficulty::Easy),
    (Phase::Begin, Difficulty::Medium),
    (Phase::Begin, Difficulty::Hard),
    (Phase::Middle, Difficulty::Easy),
    (Phase::Middle, Difficulty::Medium),
    (Phase::End, Difficulty::Easy),
];

/// Moves played of the positions [`generate_benchmark`] draws for each phase. Begin positions start at 8 moves:
/// earlier ones take this solver (no opening book) minutes each.
pub fn benchmark_moves(phase: Phase) -> (usize, usize) {
    match phase {
        Phase::Begin => (8, 14),
        Phase::Middle => (15, 28),
        Phase::End => (29, 40),
    }
}

/// A benchmark of `per_group` positions in each of the six [`GROUPS`], in that order. For each phase, positions
/// are drawn by [`random_position`] (seed `seed`, streams `phase × 2^32 + i`) in the phase's range of
/// [`benchmark_moves`], labelled, and kept while their group has room. A phase stops after `1000 × per_group`
/// draws even if a group is still short (then the set has fewer positions). Deterministic in its arguments.
pub fn generate_benchmark(seed: u64, per_group: usize, solver: &mut Solver) -> Vec<LabelledPosition> {
    let mut groups: [Vec<LabelledPosition>; 6] = Default::default();
    let mut seen = BTreeSet::new();
    for phase in Phase::ALL {
        let (min_moves, max_moves) = benchmark_moves(phase);
        let wanted = GROUPS.iter().filter(|g| g.0 == phase).count() * per_group;
        let mut kept = 0;
        let mut i = 0u64;
        while kept < wanted && i < 1000 * per_group as u64 {
            let position = random_position(seed, ((phase as u64) << 32) + i, min_moves, max_moves);
            i += 1;
            if !seen.insert(position.position_key()) {
                continue;
            }
            let Some(l) = LabelledPosition::label(position, solver) else { continue };
            let Some(g) = GROUPS.iter().position(|&g| g == (l.phase(), l.difficulty())) else { continue };
            if groups[g].len() < per_group {
                groups[g].push(l);
                kept += 1;
            }
        }
    }
    groups.into_iter().flatten().collect()
}

/// Mistakes of an agent on a set of positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MistakeReport {
    /// Positions played.
    pub positions: usize,
    /// Positions where the agent's move was a mistake.
    pub mistakes: usize,
    /// Positions whose moves' outcomes differ.
    pub decisive_positions: usize,
    /// Mistakes on those positions (every mistake is on one).
    pub decisive_mistakes: usize,
}

impl MistakeReport {
    /// Mistakes per position (0 for an empty set).
    pub fn rate(&self) -> f64 {
        ratio(self.mistakes, self.positions)
    }

    /// Mistakes per decisive position (0 if there is none).
    pub fn decisive_rate(&self) -> f64 {
        ratio(self.decisive_mistakes, self.decisive_positions)
    }

    fn add(&mut self, position: &LabelledPosition, mistake: bool) {
        self.positions += 1;
        self.mistakes += usize::from(mistake);
        if position.is_decisive() {
            self.decisive_positions += 1;
            self.decisive_mistakes += usize::from(mistake);
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// Mistake reports per group (phase × difficulty) and over all positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupedMistakes {
    /// `groups[phase][difficulty]`, in the order of [`Phase::ALL`] and [`Difficulty::ALL`].
    pub groups: [[MistakeReport; 3]; 3],
    /// `tactics[tactic]`, in the order of [`Tactic::ALL`].
    pub tactics: [MistakeReport; 4],
    /// Every position.
    pub total: MistakeReport,
}

impl GroupedMistakes {
    /// The report of one group.
    pub fn group(&self, phase: Phase, difficulty: Difficulty) -> &MistakeReport {
        &self.groups[phase as usize][difficulty as usize]
    }

    /// The report of the positions of one tactic.
    pub fn tactic(&self, tactic: Tactic) -> &MistakeReport {
        &self.tactics[tactic as usize]
    }
}

/// Plays `agent` once in every position and counts its mistakes, per group and in total. Stops at the first
/// error of the agent.
pub fn mistakes<A: Agent<Connect4> + ?Sized>(
    agent: &mut A,
    positions: &[LabelledPosition],
) -> Result<GroupedMistakes, AgentError> {
    let moves = positions.iter().map(|p| agent.choose_move(&p.position)).collect::<Result<Vec<_>, _>>()?;
    Ok(mistakes_of_moves(positions, &moves))
}

/// The mistake reports of `moves[i]` played at `positions[i]` (moves chosen elsewhere, for example by a search
/// over many positions at once). Extra moves or positions are ignored.
pub fn mistakes_of_moves(positions: &[LabelledPosition], moves: &[usize]) -> GroupedMistakes {
    let mut out = GroupedMistakes::default();
    for (p, &m) in positions.iter().zip(moves) {
        let mistake = p.is_mistake(m);
        out.groups[p.phase() as usize][p.difficulty() as usize].add(p, mistake);
        out.tactics[Tactic::of(&p.position) as usize].add(p, mistake);
        out.total.add(p, mistake);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::{PerfectAgent, RandomAgent};

    #[test]
    fn line_round_trip_and_errors() {
        let line = "2252576253462244111563365343671351441 - - - - - -1 -2";
        let l = LabelledPosition::parse_line(line).unwrap();
        assert_eq!(l.to_line(), line);
        assert_eq!(l.score(), -1);
        assert!(!l.is_decisive());
        assert!(!l.is_mistake(6));
        assert!(l.is_mistake(0));
        assert_eq!(l.remaining_moves(), 41 - 37);
        assert_eq!(l.phase(), Phase::End);
        assert_eq!(l.difficulty(), Difficulty::Easy);
        assert!(matches!(LabelledPosition::parse_line("44 1 2"), Err(LabelError::ScoreCount { found: 2 })));
        assert!(matches!(LabelledPosition::parse_line("4 1 2 3 x 5 6 7"), Err(LabelError::BadScore { .. })));
        assert!(matches!(LabelledPosition::parse_line("111111 1 2 3 4 5 6 7"), Err(LabelError::Legality { .. })));
        assert!(matches!(LabelledPosition::parse_line("9 1 2 3 4 5 6 7"), Err(LabelError::Position(_))));
        let file = format!("# a comment\n\n{line}\n44 1 2\n");
        let err = parse_benchmark(&file).unwrap_err();
        assert!(
            matches!(&err, LabelError::Line { line: 4, error } if matches!(**error, LabelError::ScoreCount { .. }))
        );
        assert_eq!(err.to_string(), "line 4: expected 7 scores after the position, found 2");
        assert_eq!(parse_benchmark(&format!("# only\n{line}\n")).unwrap(), vec![l]);
    }

    #[test]
    fn tactics_one_ply_deep() {
        let tactic = |moves: &str| Tactic::of(&Connect4::from_moves(moves).unwrap());
        // X's bottom row 1-2-3 wins at 4; O's row above it is not yet playable.
        assert_eq!(tactic("112233"), Tactic::Win);
        // The same three for X while O's three in column 5 threatens its top.
        assert_eq!(tactic("152535"), Tactic::WinUnderThreat);
        // O threatens column 5; X has nothing.
        assert_eq!(tactic("157515"), Tactic::Block);
        assert_eq!(tactic(""), Tactic::Quiet);
        assert_eq!(tactic("4453"), Tactic::Quiet);
        // Every position of a set counts in exactly one tactic; a perfect player makes no mistake in any.
        let set = committed_benchmark().unwrap();
        let best: Vec<usize> =
            set.iter().map(|l| (0..WIDTH).find(|&c| l.outcome(c) == Some(l.best_outcome())).unwrap()).collect();
        let report = mistakes_of_moves(&set, &best);
        assert_eq!(Tactic::ALL.iter().map(|&t| report.tactic(t).positions).sum::<usize>(), set.len());
        assert!(Tactic::ALL.iter().all(|&t| report.tactic(t).mistakes == 0));
    }

    #[test]
    fn remaining_moves_from_the_score() {
        // "4455": X to move wins with its 4th stone (score 18), the 7th move: 3 more moves.
        let l = LabelledPosition { position: Connect4::from_moves("4455").unwrap(), scores: [Some(18); 7] };
        assert_eq!(l.remaining_moves(), 3);
        // O to move loses to X's 7th stone (score -15), the 13th move, after 11 played: 2 more.
        let l = LabelledPosition { position: Connect4::from_moves("44455554221").unwrap(), scores: [Some(-15); 7] };
        assert_eq!(l.remaining_moves(), 2);
    }

    #[test]
    fn generated_positions_and_mistakes() {
        let mut solver = Solver::with_table_entries(1 << 18);
        let config = GenerateConfig { seed: 7, count: 20, min_moves: 24, max_moves: 36 };
        let set = generate(&config, &mut solver);
        assert_eq!(set.len(), 20);
        assert_eq!(generate(&config, &mut solver), set);
        for l in &set {
            assert!((24..=36).contains(&l.position.moves_played()));
            assert_eq!(LabelledPosition::parse_line(&l.to_line()).as_ref(), Ok(l));
        }
        let perfect = mistakes(&mut PerfectAgent::new(Solver::with_table_entries(1 << 18)), &set).unwrap();
        assert_eq!(perfect.total.mistakes, 0);
        assert_eq!(perfect.total.positions, 20);
        let random = mistakes(&mut RandomAgent::new(1), &set).unwrap();
        assert!(random.total.mistakes > 0);
        assert_eq!(random.total.mistakes, random.total.decisive_mistakes);
        let summed: usize = random.groups.iter().flatten().map(|r| r.positions).sum();
        assert_eq!(summed, 20);
    }

    #[test]
    fn alphabeta_to_the_end_of_the_game_makes_no_mistake() {
        use crate::agent::{AlphaBetaAgent, TieBreak};
        // With at most 8 empty cells, depth 10 reaches every game's end: the heuristic is never used.
        let mut solver = Solver::with_table_entries(1 << 16);
        let set = generate(&GenerateConfig { seed: 9, count: 60, min_moves: 34, max_moves: 40 }, &mut solver);
        let mut agent = AlphaBetaAgent::new(AlphaBetaAgent::MAX_DEPTH, TieBreak::Seeded(1)).unwrap();
        let report = mistakes(&mut agent, &set).unwrap().total;
        assert!(report.decisive_positions > 10);
        assert_eq!(report.mistakes, 0);
    }

    #[test]
    fn search_depth_lowers_the_mistake_rate() {
        use crate::agent::{AlphaBetaAgent, TieBreak};
        let mut solver = Solver::with_table_entries(1 << 20);
        let set = generate(&GenerateConfig { seed: 3, count: 150, min_moves: 18, max_moves: 36 }, &mut solver);
        let random = mistakes(&mut RandomAgent::new(0), &set).unwrap().total;
        let shallow = mistakes(&mut AlphaBetaAgent::new(1, TieBreak::CentreFirst).unwrap(), &set).unwrap().total;
        let deep = mistakes(&mut AlphaBetaAgent::new(6, TieBreak::CentreFirst).unwrap(), &set).unwrap().total;
        assert!(random.decisive_positions > 50);
        assert!(
            deep.mistakes <= shallow.mistakes && shallow.mistakes < random.mistakes,
            "{deep:?} {shallow:?} {random:?}"
        );
        assert!(deep.decisive_rate() < 0.25 && random.decisive_rate() > 0.3, "{deep:?} {random:?}");
    }

    #[test]
    fn every_position_falls_in_one_of_the_six_groups() {
        for moves in 0..42 {
            for remaining in 1..=(42 - moves) {
                let g = (Phase::of_moves(moves), Difficulty::of_remaining(remaining));
                // A game can last `remaining` more moves only if the board has room.
                assert!(GROUPS.contains(&g) || moves + remaining > 42, "{moves} {remaining}");
            }
        }
    }
}
