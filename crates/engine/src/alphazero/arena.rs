//! The arena: the network, with the arena's search, against fixed opponents, rated in Elo.
//!
//! A game's fixed opponents ([`ArenaGame::fixed_opponents`]: a random player, and for Connect Four alpha-beta
//! players of several depths) are rated once per run by a round robin among themselves, the random player
//! anchored at 0 Elo ([`rate_opponents`]). At every arena point the network plays `[arena] games` games against
//! each of them from the same seeded random openings, colours alternating, and its Elo is the Bradley–Terry
//! maximum-likelihood rating against their ratings held fixed ([`rate_network`]; the model, the draw convention
//! and the prior are in [`selfplay_games::elo`]). Holding the opponents fixed keeps every arena point on one
//! scale: the network's later games never move the ruler it is measured with.

use rand_chacha::ChaCha8Rng;
use selfplay_games::elo::{DEFAULT_PRIOR_DRAWS, Pairing, fit_ratings};
use selfplay_games::tournament::{random_opening, round_robin};
use selfplay_games::{Agent, AgentError, AlphaBetaAgent, Connect4, RandomAgent, TieBreak};
use selfplay_model::{HostAccess, Model};
use selfplay_search::Game;
use selfplay_search::games::TicTacToe;
use serde::{Deserialize, Serialize};

use super::config::{AlphaZeroConfig, ArenaSettings};
use super::error::AlphaZeroError;
use super::play::{MatchResult, play_match_from};
use crate::rollout::row_seed;

/// The stream the fixed opponents' tie-breaking and random moves are seeded from.
const OPPONENT_STREAM: u64 = 0xA5;
/// The stream of the match openings (the same openings for the round robin and every arena point).
const OPENING_STREAM: u64 = 0xA6;

/// A game whose network can be rated: its fixed opponents. The provided method gives the uniformly random
/// player alone, so any game rates with `impl ArenaGame for MyGame {}`.
pub trait ArenaGame: Game + 'static {
    /// Fresh fixed opponents under `arena`, seeded by `seed`. The first is the anchor, rated 0 Elo: the random
    /// player (the CLI and reports call the match against it "vs random").
    fn fixed_opponents(_arena: &ArenaSettings, seed: u64) -> Result<Vec<Box<dyn Agent<Self>>>, AgentError> {
        Ok(vec![Box::new(RandomAgent::new(row_seed(seed, 0, OPPONENT_STREAM)))])
    }
}

impl ArenaGame for TicTacToe {}

impl ArenaGame for Connect4 {
    /// The random player, then alpha-beta at each of `[arena] alphabeta_depths`, ties broken at random (seeded)
    /// so that even one opening gives more than one game.
    fn fixed_opponents(arena: &ArenaSettings, seed: u64) -> Result<Vec<Box<dyn Agent<Self>>>, AgentError> {
        let mut out: Vec<Box<dyn Agent<Self>>> = vec![Box::new(RandomAgent::new(row_seed(seed, 0, OPPONENT_STREAM)))];
        for (k, &depth) in arena.alphabeta_depths.iter().enumerate() {
            let tie_break = TieBreak::Seeded(row_seed(seed, k as u64 + 1, OPPONENT_STREAM));
            out.push(Box::new(AlphaBetaAgent::new(depth, tie_break)?));
        }
        Ok(out)
    }
}

/// A fixed opponent and its rating from the round robin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RatedOpponent {
    pub name: String,
    pub elo: f64,
}

/// Two players' results, from `first`'s side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encounter {
    pub first: String,
    pub second: String,
    pub result: MatchResult,
}

/// The fixed opponents' ratings and the round robin they come from (computed once per run, kept in the record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpponentRatings {
    /// In the order of [`ArenaGame::fixed_opponents`], the anchor first.
    pub opponents: Vec<RatedOpponent>,
    pub round_robin: Vec<Encounter>,
}

/// The network's results at one arena point and its rating.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkRating {
    /// Against the anchor (the random player).
    pub vs_anchor: MatchResult,
    /// Against every other fixed opponent, in order (`first` is `"network"`).
    pub matches: Vec<Encounter>,
    pub elo: f64,
}

/// The seed of the openings: one set per run.
fn opening_seed(config: &AlphaZeroConfig) -> u64 {
    row_seed(config.seed, 0, OPENING_STREAM)
}

fn to_match_result(p: &Pairing) -> MatchResult {
    MatchResult { wins: p.wins, draws: p.draws, losses: p.losses }
}

/// Plays the round robin of the fixed opponents (`[arena] games` games a pair) and rates them, the first at 0.
pub fn rate_opponents<G: ArenaGame>(config: &AlphaZeroConfig, start: &G) -> Result<OpponentRatings, AlphaZeroError> {
    let a = &config.arena;
    let mut agents = G::fixed_opponents(a, config.seed)?;
    let names: Vec<String> = agents.iter().map(|x| x.name()).collect();
    let mut refs: Vec<&mut dyn Agent<G>> = agents.iter_mut().map(|x| &mut **x as &mut dyn Agent<G>).collect();
    let pairings = round_robin(start, &mut refs, a.games, a.opening_plies, opening_seed(config))?;
    let elo = fit_ratings(names.len(), &[(0, 0.0)], &pairings, DEFAULT_PRIOR_DRAWS)?;
    let round_robin = pairings
        .iter()
        .map(|p| Encounter { first: names[p.a].clone(), second: names[p.b].clone(), result: to_match_result(p) })
        .collect();
    let opponents = names.into_iter().zip(elo).map(|(name, elo)| RatedOpponent { name, elo }).collect();
    Ok(OpponentRatings { opponents, round_robin })
}

/// Plays the network against `agent` from `starts` ([`play_match_from`]): the adapter that makes an [`Agent`]
/// the opponent a match takes. An agent's error ends the match with that error.
pub fn play_agent<G: Game, B: HostAccess>(
    model: &Model<B>,
    config: &AlphaZeroConfig,
    starts: &[G],
    agent: &mut dyn Agent<G>,
    seed: u64,
) -> Result<MatchResult, AlphaZeroError> {
    let mut failure = None;
    let mut opponent = |position: &G, _: &mut ChaCha8Rng| match agent.choose_move(position) {
        Ok(action) => Some(action),
        Err(e) => {
            failure = Some(e);
            None
        }
    };
    let result = play_match_from(model, config, starts, &mut opponent, seed);
    match failure {
        Some(e) => Err(e.into()),
        None => result,
    }
}

/// The network's matches against every fixed opponent (fresh ones, seeded by `seed`) and its Elo against their
/// `ratings` held fixed.
pub fn rate_network<G: ArenaGame, B: HostAccess>(
    model: &Model<B>,
    config: &AlphaZeroConfig,
    start: &G,
    ratings: &OpponentRatings,
    seed: u64,
) -> Result<NetworkRating, AlphaZeroError> {
    let a = &config.arena;
    let starts: Vec<G> =
        (0..a.games).map(|g| random_opening(start, a.opening_plies, opening_seed(config), (g / 2) as u64)).collect();
    let mut agents = G::fixed_opponents(a, seed)?;
    let network = agents.len();
    let (mut results, mut pairings) = (Vec::new(), Vec::new());
    for (k, agent) in agents.iter_mut().enumerate() {
        let result = play_agent(model, config, &starts, &mut **agent, row_seed(seed, k as u64, OPPONENT_STREAM))?;
        pairings.push(Pairing { a: network, b: k, wins: result.wins, draws: result.draws, losses: result.losses });
        results.push((agent.name(), result));
    }
    let anchors: Vec<(usize, f64)> = ratings.opponents.iter().enumerate().map(|(k, o)| (k, o.elo)).collect();
    let elo = fit_ratings(network + 1, &anchors, &pairings, DEFAULT_PRIOR_DRAWS)?[network];
    let mut results = results.into_iter();
    let vs_anchor = results.next().map(|(_, r)| r).ok_or(AlphaZeroError::NoOpponent)?;
    let matches =
        results.map(|(second, result)| Encounter { first: String::from("network"), second, result }).collect();
    Ok(NetworkRating { vs_anchor, matches, elo })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect4_opponents_are_random_then_alphabeta_by_depth() {
        let arena = ArenaSettings { alphabeta_depths: vec![1, 3], ..ArenaSettings::default() };
        let names: Vec<String> = Connect4::fixed_opponents(&arena, 1).unwrap().iter().map(|a| a.name()).collect();
        assert_eq!(names, ["random", "alphabeta-1", "alphabeta-3"]);
        let names: Vec<String> = TicTacToe::fixed_opponents(&arena, 1).unwrap().iter().map(|a| a.name()).collect();
        assert_eq!(names, ["random"]);
    }

    #[test]
    fn the_round_robin_rates_deeper_search_higher() {
        let mut config = AlphaZeroConfig::tiny();
        config.arena.alphabeta_depths = vec![1, 3];
        config.arena.games = 12;
        let ratings = rate_opponents(&config, &Connect4::new()).unwrap();
        assert_eq!(ratings, rate_opponents(&config, &Connect4::new()).unwrap(), "deterministic");
        let elo: Vec<f64> = ratings.opponents.iter().map(|o| o.elo).collect();
        assert_eq!(elo[0], 0.0);
        assert!(elo[0] < elo[1] && elo[1] < elo[2], "{ratings:?}");
        assert_eq!(ratings.round_robin.len(), 3);
    }
}
